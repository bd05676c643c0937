/* STM32F74x/75x (RM0385): the clock tree from the board file (HSE, main PLL, voltage scale 1
 * with over-drive, prescalers, flash wait states), then the L1 caches. The console is the
 * second-generation USART (firmware/board/stm32_usart.c). */
#include "cortex_m7.h"
#include "stm32.h"

/* RM0385 'Memory map and register boundary addresses'. */
#define RCC_BASE 0x40023800u
#define PWR_BASE 0x40007000u
#define FLASH_IF_BASE 0x40023C00u

/* RM0385 'RCC registers': the same CR, PLLCFGR and CFGR layout as the STM32F4. */
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
#define RCC_CFGR_HPRE_SHIFT 4u
#define RCC_CFGR_PPRE1_SHIFT 10u
#define RCC_CFGR_PPRE2_SHIFT 13u
#define RCC_CFGR_PRESCALERS ((0xFu << 4) | (7u << 10) | (7u << 13))
#define RCC_APB1ENR (RCC_BASE + 0x40u)
#define RCC_APB1ENR_PWREN (1u << 28)

/* RM0385 'PWR registers': PWR_CR1 VOS bits 15:14 (11 = scale 1), ODEN bit 16, ODSWEN bit
 * 17; PWR_CSR1 ODRDY bit 16, ODSWRDY bit 17. */
#define PWR_CR1 (PWR_BASE + 0x00u)
#define PWR_CR1_VOS_SCALE1 (3u << 14)
#define PWR_CR1_ODEN (1u << 16)
#define PWR_CR1_ODSWEN (1u << 17)
#define PWR_CSR1 (PWR_BASE + 0x04u)
#define PWR_CSR1_ODRDY (1u << 16)
#define PWR_CSR1_ODSWRDY (1u << 17)

/* RM0385 FLASH_ACR: LATENCY bits 3:0, PRFTEN bit 8, ARTEN bit 9. */
#define FLASH_ACR (FLASH_IF_BASE + 0x00u)
#define FLASH_ACR_LATENCY_MASK 0xFu
#define FLASH_ACR_PRFTEN (1u << 8)
#define FLASH_ACR_ARTEN (1u << 9)

/* RM0385 'Clocks': the 16 MHz HSI RC oscillator runs the chip after reset. */
#define HSI_HZ 16000000u

static const char *set_clock_tree(void)
{
    ARIEL_REG(RCC_APB1ENR) |= RCC_APB1ENR_PWREN;
    ARIEL_REG(PWR_CR1) |= PWR_CR1_VOS_SCALE1;
    ARIEL_REG(RCC_CR) |= RCC_CR_HSEON;
    if (!ariel_wait(RCC_CR, RCC_CR_HSERDY, RCC_CR_HSERDY)) {
        return "the HSE crystal did not start (RCC_CR.HSERDY)";
    }
    ARIEL_REG(RCC_PLLCFGR) = ARIEL_PLL_M | (ARIEL_PLL_N << RCC_PLLCFGR_PLLN_SHIFT)
                             | ((ARIEL_PLL_DIV / 2u - 1u) << RCC_PLLCFGR_PLLP_SHIFT)
                             | RCC_PLLCFGR_PLLSRC_HSE
                             | (ARIEL_PLL_Q << RCC_PLLCFGR_PLLQ_SHIFT);
    ARIEL_REG(RCC_CR) |= RCC_CR_PLLON;
#if ARIEL_OVERDRIVE
    /* Over-drive, needed above 180 MHz, while the PLL locks (RM0385 'Entering Over-drive
     * mode'): ODEN, wait ODRDY, then ODSWEN, wait ODSWRDY. */
    ARIEL_REG(PWR_CR1) |= PWR_CR1_ODEN;
    if (!ariel_wait(PWR_CSR1, PWR_CSR1_ODRDY, PWR_CSR1_ODRDY)) {
        return "over-drive did not become ready (PWR_CSR1.ODRDY)";
    }
    ARIEL_REG(PWR_CR1) |= PWR_CR1_ODSWEN;
    if (!ariel_wait(PWR_CSR1, PWR_CSR1_ODSWRDY, PWR_CSR1_ODSWRDY)) {
        return "over-drive did not switch in (PWR_CSR1.ODSWRDY)";
    }
#endif
    if (!ariel_wait(RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY)) {
        return "the main PLL did not lock (RCC_CR.PLLRDY)";
    }
    ARIEL_REG(FLASH_ACR) = ARIEL_FLASH_LATENCY | FLASH_ACR_PRFTEN | FLASH_ACR_ARTEN;
    if ((ARIEL_REG(FLASH_ACR) & FLASH_ACR_LATENCY_MASK) != ARIEL_FLASH_LATENCY) {
        return "the flash interface did not take the wait states (FLASH_ACR)";
    }
    const uint32_t prescalers = (stm32_ahb_code(ARIEL_CORE_DIV) << RCC_CFGR_HPRE_SHIFT)
                                | (stm32_apb_code(ARIEL_APB1_DIV) << RCC_CFGR_PPRE1_SHIFT)
                                | (stm32_apb_code(ARIEL_APB2_DIV) << RCC_CFGR_PPRE2_SHIFT);
    ARIEL_REG(RCC_CFGR) = (ARIEL_REG(RCC_CFGR) & ~RCC_CFGR_PRESCALERS) | prescalers;
    ARIEL_REG(RCC_CFGR) = (ARIEL_REG(RCC_CFGR) & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL;
    if (!ariel_wait(RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL)) {
        ARIEL_REG(RCC_CFGR) &= ~(RCC_CFGR_PRESCALERS | RCC_CFGR_SW_MASK);
        return "the system clock did not switch to the PLL (RCC_CFGR.SWS)";
    }
    return 0;
}

void board_clock_init(ariel_clocks_t *clocks)
{
    stm32_report_clocks(clocks, set_clock_tree(), HSI_HZ, "HSI 16 MHz (the reset clock)");
    cortex_m7_caches_enable();
}

void board_uart_init(uint32_t uart_hz)
{
    stm32_console_pins(RCC_BASE);
    stm32_usart_start(uart_hz);
}
