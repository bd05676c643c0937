/* STM32F405/407 (RM0090): the clock tree from the board file (HSE, main PLL, prescalers,
 * flash wait states) and the console on the first-generation USART. */
#include "stm32.h"

/* RM0090 section 2.3, 'Memory map' (register boundary addresses). */
#define RCC_BASE 0x40023800u
#define PWR_BASE 0x40007000u
#define FLASH_IF_BASE 0x40023C00u

/* RM0090 'RCC registers'. */
#define RCC_CR (RCC_BASE + 0x00u)
#define RCC_CR_HSEON (1u << 16)
#define RCC_CR_HSERDY (1u << 17)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_PLLCFGR (RCC_BASE + 0x04u)
#define RCC_PLLCFGR_PLLN_SHIFT 6u   /* PLLN, bits 14:6 */
#define RCC_PLLCFGR_PLLP_SHIFT 16u  /* PLLP, bits 17:16: P = 2 * (code + 1) */
#define RCC_PLLCFGR_PLLSRC_HSE (1u << 22)
#define RCC_PLLCFGR_PLLQ_SHIFT 24u  /* PLLQ, bits 27:24 */
#define RCC_CFGR (RCC_BASE + 0x08u)
#define RCC_CFGR_SW_MASK 3u         /* SW, bits 1:0 */
#define RCC_CFGR_SW_PLL 2u
#define RCC_CFGR_SWS_MASK (3u << 2) /* SWS, bits 3:2 */
#define RCC_CFGR_SWS_PLL (2u << 2)
#define RCC_CFGR_HPRE_SHIFT 4u      /* HPRE, bits 7:4 */
#define RCC_CFGR_PPRE1_SHIFT 10u    /* PPRE1, bits 12:10 */
#define RCC_CFGR_PPRE2_SHIFT 13u    /* PPRE2, bits 15:13 */
#define RCC_CFGR_PRESCALERS ((0xFu << 4) | (7u << 10) | (7u << 13))
#define RCC_APB1ENR (RCC_BASE + 0x40u)
#define RCC_APB1ENR_PWREN (1u << 28)

/* RM0090 PWR_CR: VOS, bit 14 (1 = scale 1, needed at 168 MHz). */
#define PWR_CR (PWR_BASE + 0x00u)
#define PWR_CR_VOS (1u << 14)

/* RM0090 FLASH_ACR: LATENCY bits 2:0, PRFTEN bit 8, ICEN bit 9, DCEN bit 10. */
#define FLASH_ACR (FLASH_IF_BASE + 0x00u)
#define FLASH_ACR_LATENCY_MASK 7u
#define FLASH_ACR_PRFTEN (1u << 8)
#define FLASH_ACR_ICEN (1u << 9)
#define FLASH_ACR_DCEN (1u << 10)

/* RM0090 'Clocks': the 16 MHz HSI RC oscillator runs the chip after reset. */
#define HSI_HZ 16000000u

void board_clock_init(ariel_clocks_t *clocks)
{
    clocks->core_hz = HSI_HZ;
    clocks->uart_hz = HSI_HZ;
    clocks->source = "HSI 16 MHz (the reset clock)";
    clocks->problem = 0;

    ARIEL_REG(RCC_APB1ENR) |= RCC_APB1ENR_PWREN;
    ARIEL_REG(PWR_CR) |= PWR_CR_VOS;
    ARIEL_REG(RCC_CR) |= RCC_CR_HSEON;
    if (!ariel_wait(RCC_CR, RCC_CR_HSERDY, RCC_CR_HSERDY)) {
        clocks->problem = "the HSE crystal did not start (RCC_CR.HSERDY)";
        return;
    }
    ARIEL_REG(RCC_PLLCFGR) = ARIEL_PLL_M | (ARIEL_PLL_N << RCC_PLLCFGR_PLLN_SHIFT)
                             | ((ARIEL_PLL_DIV / 2u - 1u) << RCC_PLLCFGR_PLLP_SHIFT)
                             | RCC_PLLCFGR_PLLSRC_HSE
                             | (ARIEL_PLL_Q << RCC_PLLCFGR_PLLQ_SHIFT);
    ARIEL_REG(RCC_CR) |= RCC_CR_PLLON;
    if (!ariel_wait(RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY)) {
        clocks->problem = "the main PLL did not lock (RCC_CR.PLLRDY)";
        return;
    }
    /* Wait states before the faster clock; read back, as RM0090 3.5.1 asks. */
    ARIEL_REG(FLASH_ACR) = ARIEL_FLASH_LATENCY | FLASH_ACR_PRFTEN | FLASH_ACR_ICEN
                           | FLASH_ACR_DCEN;
    if ((ARIEL_REG(FLASH_ACR) & FLASH_ACR_LATENCY_MASK) != ARIEL_FLASH_LATENCY) {
        clocks->problem = "the flash interface did not take the wait states (FLASH_ACR)";
        return;
    }
    const uint32_t prescalers = (stm32_ahb_code(ARIEL_CORE_DIV) << RCC_CFGR_HPRE_SHIFT)
                                | (stm32_apb_code(ARIEL_APB1_DIV) << RCC_CFGR_PPRE1_SHIFT)
                                | (stm32_apb_code(ARIEL_APB2_DIV) << RCC_CFGR_PPRE2_SHIFT);
    ARIEL_REG(RCC_CFGR) = (ARIEL_REG(RCC_CFGR) & ~RCC_CFGR_PRESCALERS) | prescalers;
    ARIEL_REG(RCC_CFGR) = (ARIEL_REG(RCC_CFGR) & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL;
    if (!ariel_wait(RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL)) {
        ARIEL_REG(RCC_CFGR) &= ~(RCC_CFGR_PRESCALERS | RCC_CFGR_SW_MASK);
        clocks->problem = "the system clock did not switch to the PLL (RCC_CFGR.SWS)";
        return;
    }
    clocks->core_hz = ARIEL_CLOCK_HZ;
    clocks->uart_hz = ARIEL_UART_KERNEL_HZ;
    clocks->source = ARIEL_CLOCK_SOURCE;
}

/* RM0090 'USART registers' (first generation): SR at 0x00 (TXE bit 7, TC bit 6), DR at
 * 0x04, BRR at 0x08, CR1 at 0x0C (UE bit 13, TE bit 3). */
#define USART_SR (ARIEL_UART_BASE + 0x00u)
#define USART_SR_TXE (1u << 7)
#define USART_SR_TC (1u << 6)
#define USART_DR (ARIEL_UART_BASE + 0x04u)
#define USART_BRR (ARIEL_UART_BASE + 0x08u)
#define USART_CR1 (ARIEL_UART_BASE + 0x0Cu)
#define USART_CR1_UE (1u << 13)
#define USART_CR1_TE (1u << 3)

void board_uart_init(uint32_t uart_hz)
{
    stm32_console_pins(RCC_BASE);
    /* Oversampling by 16: BRR holds USARTDIV * 16 = fck / baud as mantissa and fraction
     * (RM0090 'Fractional baud rate generation'). */
    ARIEL_REG(USART_BRR) = (uart_hz + ARIEL_UART_BAUD / 2u) / ARIEL_UART_BAUD;
    ARIEL_REG(USART_CR1) = USART_CR1_UE | USART_CR1_TE;
}

void board_uart_write(const char *data, uint32_t length)
{
    for (uint32_t i = 0; i < length; ++i) {
        if (ariel_wait(USART_SR, USART_SR_TXE, USART_SR_TXE)) {
            ARIEL_REG(USART_DR) = (uint8_t)data[i];
        }
    }
    (void)ariel_wait(USART_SR, USART_SR_TC, USART_SR_TC);
}
