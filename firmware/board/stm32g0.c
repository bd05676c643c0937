/* STM32G0x1 (RM0444, the STM32G071 of NUCLEO-G071RB): the clock tree from the board file
 * (HSI16, PLL, prescalers, flash wait states). The console is the second-generation USART
 * (firmware/board/stm32_usart.c). */
#include "stm32.h"

/* RM0444 'Memory organization' (register boundary addresses). */
#define RCC_BASE 0x40021000u
#define FLASH_IF_BASE 0x40022000u

/* RM0444 'RCC registers'. */
#define RCC_CR (RCC_BASE + 0x00u)
#define RCC_CR_HSION (1u << 8)
#define RCC_CR_HSIRDY (1u << 10)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_CFGR (RCC_BASE + 0x08u)
#define RCC_CFGR_SW_MASK 7u         /* SW, bits 2:0 */
#define RCC_CFGR_SW_PLLR 2u
#define RCC_CFGR_SWS_MASK (7u << 3) /* SWS, bits 5:3 */
#define RCC_CFGR_SWS_PLLR (2u << 3)
#define RCC_CFGR_HPRE_SHIFT 8u      /* HPRE, bits 11:8 */
#define RCC_CFGR_PPRE_SHIFT 12u     /* PPRE, bits 14:12 */
#define RCC_CFGR_PRESCALERS ((0xFu << 8) | (7u << 12))
#define RCC_PLLCFGR (RCC_BASE + 0x0Cu)
#define RCC_PLLCFGR_PLLSRC_HSI16 2u /* PLLSRC, bits 1:0 */
#define RCC_PLLCFGR_PLLM_SHIFT 4u   /* PLLM, bits 6:4: M - 1 */
#define RCC_PLLCFGR_PLLN_SHIFT 8u   /* PLLN, bits 14:8 */
#define RCC_PLLCFGR_PLLREN (1u << 28)
#define RCC_PLLCFGR_PLLR_SHIFT 29u  /* PLLR, bits 31:29: R - 1 */

/* RM0444 FLASH_ACR: LATENCY bits 2:0, PRFTEN bit 8, ICEN bit 9. */
#define FLASH_ACR (FLASH_IF_BASE + 0x00u)
#define FLASH_ACR_LATENCY_MASK 7u
#define FLASH_ACR_PRFTEN (1u << 8)
#define FLASH_ACR_ICEN (1u << 9)

/* RM0444 'Clocks': HSI16 runs the chip after reset (HSISYS, divided by 1). Voltage range
 * 1, needed at 64 MHz, is the reset value of PWR_CR1.VOS. */
#define HSI_HZ 16000000u

static const char *set_clock_tree(void)
{
    ARIEL_REG(RCC_CR) |= RCC_CR_HSION;
    if (!ariel_wait(RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY)) {
        return "HSI16 did not start (RCC_CR.HSIRDY)";
    }
    ARIEL_REG(RCC_PLLCFGR) = RCC_PLLCFGR_PLLSRC_HSI16
                             | ((ARIEL_PLL_M - 1u) << RCC_PLLCFGR_PLLM_SHIFT)
                             | (ARIEL_PLL_N << RCC_PLLCFGR_PLLN_SHIFT) | RCC_PLLCFGR_PLLREN
                             | ((ARIEL_PLL_DIV - 1u) << RCC_PLLCFGR_PLLR_SHIFT);
    ARIEL_REG(RCC_CR) |= RCC_CR_PLLON;
    if (!ariel_wait(RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY)) {
        return "the PLL did not lock (RCC_CR.PLLRDY)";
    }
    ARIEL_REG(FLASH_ACR) = ARIEL_FLASH_LATENCY | FLASH_ACR_PRFTEN | FLASH_ACR_ICEN;
    if ((ARIEL_REG(FLASH_ACR) & FLASH_ACR_LATENCY_MASK) != ARIEL_FLASH_LATENCY) {
        return "the flash interface did not take the wait states (FLASH_ACR)";
    }
    const uint32_t prescalers = (stm32_ahb_code(ARIEL_CORE_DIV) << RCC_CFGR_HPRE_SHIFT)
                                | (stm32_apb_code(ARIEL_APB1_DIV) << RCC_CFGR_PPRE_SHIFT);
    ARIEL_REG(RCC_CFGR) = (ARIEL_REG(RCC_CFGR) & ~RCC_CFGR_PRESCALERS) | prescalers;
    ARIEL_REG(RCC_CFGR) = (ARIEL_REG(RCC_CFGR) & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLLR;
    if (!ariel_wait(RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLLR)) {
        ARIEL_REG(RCC_CFGR) &= ~(RCC_CFGR_PRESCALERS | RCC_CFGR_SW_MASK);
        return "the system clock did not switch to the PLL (RCC_CFGR.SWS)";
    }
    return 0;
}

void board_clock_init(ariel_clocks_t *clocks)
{
    stm32_report_clocks(clocks, set_clock_tree(), HSI_HZ, "HSI16 (the reset clock)");
}

void board_uart_init(uint32_t uart_hz)
{
    stm32_console_pins(RCC_BASE);
    stm32_usart_start(uart_hz);
}
