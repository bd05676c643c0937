/* STM32L4+ (RM0432, the STM32L4R5 of NUCLEO-L4R5ZI): the clock tree from the board file
 * (HSI16, main PLL, voltage range 1 boost, prescalers, flash wait states). The console is
 * LPUART1 or a USART (firmware/board/stm32_usart.c); port G pins need VDDIO2 declared
 * valid first. */
#include "stm32.h"

/* RM0432 'Memory map and register boundary addresses'. */
#define RCC_BASE 0x40021000u
#define PWR_BASE 0x40007000u
#define FLASH_IF_BASE 0x40022000u

/* RM0432 'RCC registers'. */
#define RCC_CR (RCC_BASE + 0x00u)
#define RCC_CR_HSION (1u << 8)
#define RCC_CR_HSIRDY (1u << 10)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_CFGR (RCC_BASE + 0x08u)
#define RCC_CFGR_SW_MASK 3u         /* SW, bits 1:0 */
#define RCC_CFGR_SW_PLL 3u
#define RCC_CFGR_SWS_MASK (3u << 2) /* SWS, bits 3:2 */
#define RCC_CFGR_SWS_PLL (3u << 2)
#define RCC_CFGR_HPRE_SHIFT 4u      /* HPRE, bits 7:4 */
#define RCC_CFGR_HPRE_MASK (0xFu << 4)
#define RCC_CFGR_PPRE1_SHIFT 8u     /* PPRE1, bits 10:8 */
#define RCC_CFGR_PPRE2_SHIFT 11u    /* PPRE2, bits 13:11 */
#define RCC_CFGR_PPRE_MASK ((7u << 8) | (7u << 11))
#define RCC_PLLCFGR (RCC_BASE + 0x0Cu)
#define RCC_PLLCFGR_PLLSRC_HSI16 2u /* PLLSRC, bits 1:0 */
#define RCC_PLLCFGR_PLLM_SHIFT 4u   /* PLLM, bits 7:4: M - 1 */
#define RCC_PLLCFGR_PLLN_SHIFT 8u   /* PLLN, bits 14:8 */
#define RCC_PLLCFGR_PLLREN (1u << 24)
#define RCC_PLLCFGR_PLLR_SHIFT 25u  /* PLLR, bits 26:25: R = 2 * (code + 1) */
#define RCC_APB1ENR1 (RCC_BASE + 0x58u)
#define RCC_APB1ENR1_PWREN (1u << 28)

/* RM0432 'PWR registers': PWR_CR1 VOS bits 10:9 (01 = range 1); PWR_CR2 IOSV bit 9
 * (VDDIO2 valid: port G pins 2-15); PWR_SR2 VOSF bit 10 (voltage scaling in progress);
 * PWR_CR5 R1MODE bit 8 (0 = range 1 boost, needed above 80 MHz). */
#define PWR_CR1 (PWR_BASE + 0x00u)
#define PWR_CR1_VOS_MASK (3u << 9)
#define PWR_CR1_VOS_RANGE1 (1u << 9)
#define PWR_CR2 (PWR_BASE + 0x04u)
#define PWR_CR2_IOSV (1u << 9)
#define PWR_SR2 (PWR_BASE + 0x14u)
#define PWR_SR2_VOSF (1u << 10)
#define PWR_CR5 (PWR_BASE + 0x80u)
#define PWR_CR5_R1MODE (1u << 8)

/* RM0432 FLASH_ACR: LATENCY bits 3:0, PRFTEN bit 8, ICEN bit 9, DCEN bit 10. */
#define FLASH_ACR (FLASH_IF_BASE + 0x00u)
#define FLASH_ACR_LATENCY_MASK 0xFu
#define FLASH_ACR_PRFTEN (1u << 8)
#define FLASH_ACR_ICEN (1u << 9)
#define FLASH_ACR_DCEN (1u << 10)

/* RM0432 'Clocks': MSI at 4 MHz runs the chip after reset. */
#define MSI_HZ 4000000u
/* Port G, whose pins 2-15 are supplied by VDDIO2. */
#define PORT_G 6u

static void spin(uint32_t loops)
{
    for (volatile uint32_t i = 0; i < loops; ++i) {
    }
}

static const char *set_clock_tree(void)
{
    ARIEL_REG(RCC_APB1ENR1) |= RCC_APB1ENR1_PWREN;
    (void)ARIEL_REG(RCC_APB1ENR1);
    ARIEL_REG(PWR_CR1) = (ARIEL_REG(PWR_CR1) & ~PWR_CR1_VOS_MASK) | PWR_CR1_VOS_RANGE1;
    if (!ariel_wait(PWR_SR2, PWR_SR2_VOSF, 0u)) {
        return "the regulator did not settle in range 1 (PWR_SR2.VOSF)";
    }
#if ARIEL_BOOST
    /* Range 1 boost (RM0432 'Dynamic voltage scaling management'): above 80 MHz, switch
     * with the AHB at half speed, then restore it after 1 us. */
    ARIEL_REG(RCC_CFGR) = (ARIEL_REG(RCC_CFGR) & ~RCC_CFGR_HPRE_MASK)
                          | (stm32_ahb_code(2u) << RCC_CFGR_HPRE_SHIFT);
    ARIEL_REG(PWR_CR5) &= ~PWR_CR5_R1MODE;
    if (!ariel_wait(PWR_SR2, PWR_SR2_VOSF, 0u)) {
        return "the regulator did not settle in range 1 boost (PWR_SR2.VOSF)";
    }
#endif
    ARIEL_REG(RCC_CR) |= RCC_CR_HSION;
    if (!ariel_wait(RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY)) {
        return "HSI16 did not start (RCC_CR.HSIRDY)";
    }
    ARIEL_REG(RCC_PLLCFGR) = RCC_PLLCFGR_PLLSRC_HSI16
                             | ((ARIEL_PLL_M - 1u) << RCC_PLLCFGR_PLLM_SHIFT)
                             | (ARIEL_PLL_N << RCC_PLLCFGR_PLLN_SHIFT) | RCC_PLLCFGR_PLLREN
                             | ((ARIEL_PLL_DIV / 2u - 1u) << RCC_PLLCFGR_PLLR_SHIFT);
    ARIEL_REG(RCC_CR) |= RCC_CR_PLLON;
    if (!ariel_wait(RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY)) {
        return "the main PLL did not lock (RCC_CR.PLLRDY)";
    }
    ARIEL_REG(FLASH_ACR) = ARIEL_FLASH_LATENCY | FLASH_ACR_PRFTEN | FLASH_ACR_ICEN
                           | FLASH_ACR_DCEN;
    if ((ARIEL_REG(FLASH_ACR) & FLASH_ACR_LATENCY_MASK) != ARIEL_FLASH_LATENCY) {
        return "the flash interface did not take the wait states (FLASH_ACR)";
    }
    ARIEL_REG(RCC_CFGR) = (ARIEL_REG(RCC_CFGR) & ~RCC_CFGR_PPRE_MASK)
                          | (stm32_apb_code(ARIEL_APB1_DIV) << RCC_CFGR_PPRE1_SHIFT)
                          | (stm32_apb_code(ARIEL_APB2_DIV) << RCC_CFGR_PPRE2_SHIFT);
    ARIEL_REG(RCC_CFGR) = (ARIEL_REG(RCC_CFGR) & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL;
    if (!ariel_wait(RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL)) {
        ARIEL_REG(RCC_CFGR) &= ~(RCC_CFGR_PPRE_MASK | RCC_CFGR_SW_MASK);
        return "the system clock did not switch to the PLL (RCC_CFGR.SWS)";
    }
    spin(ARIEL_CLOCK_HZ / 2000000u + 1u); /* at least 1 us at half speed */
    ARIEL_REG(RCC_CFGR) = (ARIEL_REG(RCC_CFGR) & ~RCC_CFGR_HPRE_MASK)
                          | (stm32_ahb_code(ARIEL_CORE_DIV) << RCC_CFGR_HPRE_SHIFT);
    return 0;
}

void board_clock_init(ariel_clocks_t *clocks)
{
    const char *problem = set_clock_tree();
    if (problem) {
        ARIEL_REG(RCC_CFGR) &= ~RCC_CFGR_HPRE_MASK;
    }
    stm32_report_clocks(clocks, problem, MSI_HZ, "MSI 4 MHz (the reset clock)");
}

void board_uart_init(uint32_t uart_hz)
{
    if (ARIEL_UART_TX_PORT == PORT_G) {
        ARIEL_REG(RCC_APB1ENR1) |= RCC_APB1ENR1_PWREN;
        (void)ARIEL_REG(RCC_APB1ENR1);
        ARIEL_REG(PWR_CR2) |= PWR_CR2_IOSV;
    }
    stm32_console_pins(RCC_BASE);
    stm32_usart_start(uart_hz);
}
