/* STM32H7 (RM0433 for the H742/743/753, RM0455 for the H7A3/7B3): the supply, the voltage
 * scale, PLL1 from the 64 MHz HSI, the bus prescalers and the flash wait states from the
 * board file, then the L1 caches. The console is the second-generation USART
 * (firmware/board/stm32_usart.c). ARIEL_H7_LINE_AB selects the H7A3/7B3 differences: the
 * SMPS supply bits and the voltage-scale encoding. */
#include "cortex_m7.h"
#include "stm32.h"

/* RM0433 and RM0455 'Memory map and register boundary addresses'. */
#define RCC_BASE 0x58024400u
#define PWR_BASE 0x58024800u
#define FLASH_IF_BASE 0x52002000u

/* RCC registers (RM0433 names; RM0455 calls D1CFGR, D2CFGR and D3CFGR CDCFGR1, CDCFGR2
 * and SRDCFGR, at the same offsets with the same fields). */
#define RCC_CR (RCC_BASE + 0x00u)
#define RCC_CR_HSIRDY (1u << 2)
#define RCC_CR_PLL1ON (1u << 24)
#define RCC_CR_PLL1RDY (1u << 25)
#define RCC_CFGR (RCC_BASE + 0x10u)
#define RCC_CFGR_SW_MASK 7u          /* SW, bits 2:0 */
#define RCC_CFGR_SW_PLL1 3u
#define RCC_CFGR_SWS_MASK (7u << 3)  /* SWS, bits 5:3 */
#define RCC_CFGR_SWS_PLL1 (3u << 3)
#define RCC_D1CFGR (RCC_BASE + 0x18u) /* HPRE 3:0, D1PPRE 6:4, D1CPRE 11:8 */
#define RCC_D2CFGR (RCC_BASE + 0x1Cu) /* D2PPRE1 6:4, D2PPRE2 10:8 */
#define RCC_D3CFGR (RCC_BASE + 0x20u) /* D3PPRE 6:4 */
#define RCC_PLLCKSELR (RCC_BASE + 0x28u)
#define RCC_PLLCKSELR_PLLSRC_MASK 3u  /* PLLSRC, bits 1:0: 00 = HSI */
#define RCC_PLLCKSELR_DIVM1_SHIFT 4u  /* DIVM1, bits 9:4 */
#define RCC_PLLCKSELR_DIVM1_MASK (0x3Fu << 4)
#define RCC_PLLCFGR (RCC_BASE + 0x2Cu)
#define RCC_PLLCFGR_PLL1_MASK 0xFu    /* PLL1FRACEN 0, PLL1VCOSEL 1, PLL1RGE 3:2 */
#define RCC_PLLCFGR_PLL1RGE_4_8MHZ (2u << 2) /* 10: input 4-8 MHz; VCOSEL 0: wide VCO */
#define RCC_PLLCFGR_DIVP1EN (1u << 16)
#define RCC_PLL1DIVR (RCC_BASE + 0x30u)
#define RCC_PLL1DIVR_DIVP1_SHIFT 9u   /* DIVN1 8:0 = N - 1, DIVP1 15:9 = P - 1 */
#define RCC_PLL1DIVR_DIVQ1_SHIFT 16u  /* DIVQ1 22:16 */
#define RCC_PLL1DIVR_DIVR1_SHIFT 24u  /* DIVR1 30:24 */

/* PWR registers: PWR_CSR1 ACTVOSRDY bit 13; PWR_CR3 supply configuration, written once
 * after reset (RM0433: SCUEN 2, LDOEN 1, BYPASS 0; RM0455: SMPSLEVEL 5:4, SMPSEXTHP 3,
 * SMPSEN 2, LDOEN 1, BYPASS 0); PWR_D3CR (RM0455: PWR_SRDCR) VOS bits 15:14, VOSRDY bit
 * 13. A supply configuration that does not match the board's wiring stops the chip until
 * it is reflashed under reset: the board file names the board's supply. */
#define PWR_CSR1 (PWR_BASE + 0x04u)
#define PWR_CSR1_ACTVOSRDY (1u << 13)
#define PWR_CR3 (PWR_BASE + 0x0Cu)
#define PWR_CR3_LDOEN (1u << 1)
#define PWR_CR3_SMPSEN (1u << 2)
#define PWR_VOSCR (PWR_BASE + 0x18u)
#define PWR_VOS_SHIFT 14u
#define PWR_VOS_MASK (3u << 14)
#define PWR_VOSRDY (1u << 13)
#if ARIEL_H7_LINE_AB
#define PWR_CR3_SUPPLY_MASK 0x3Fu    /* SMPSLEVEL, SMPSEXTHP, SMPSEN, LDOEN, BYPASS */
/* RM0455 PWR_SRDCR.VOS: 00 = scale 3 ... 10 = scale 1, 11 = scale 0. */
#define PWR_VOS_CODE(scale) (3u - (scale))
#else
#define PWR_CR3_SUPPLY_MASK 0x7u     /* SCUEN, LDOEN, BYPASS */
/* RM0433 PWR_D3CR.VOS: 01 = scale 3, 10 = scale 2, 11 = scale 1 (scale 0 is scale 1 plus
 * SYSCFG over-drive, which ariel does not use). */
#define PWR_VOS_CODE(scale) (4u - (scale))
#if ARIEL_H7_VOS == 0
#error "voltage scale 0 on the STM32H742/743/753 needs SYSCFG over-drive, which ariel does not set"
#endif
#endif

/* RM0433 and RM0455 FLASH_ACR: LATENCY bits 3:0, WRHIGHFREQ bits 5:4. */
#define FLASH_ACR (FLASH_IF_BASE + 0x00u)
#define FLASH_ACR_MASK 0x3Fu
#define FLASH_ACR_WRHIGHFREQ_SHIFT 4u

/* RM0433 'Clocks': HSI at 64 MHz runs the chip after reset. */
#define HSI_HZ 64000000u

static int set_scale(uint32_t scale)
{
    ARIEL_REG(PWR_VOSCR) = (ARIEL_REG(PWR_VOSCR) & ~PWR_VOS_MASK)
                           | (PWR_VOS_CODE(scale) << PWR_VOS_SHIFT);
    return ariel_wait(PWR_VOSCR, PWR_VOSRDY, PWR_VOSRDY);
}

static const char *set_clock_tree(void)
{
#if ARIEL_H7_SUPPLY_SMPS
    const uint32_t supply = PWR_CR3_SMPSEN;
#else
    const uint32_t supply = PWR_CR3_LDOEN;
#endif
    ARIEL_REG(PWR_CR3) = (ARIEL_REG(PWR_CR3) & ~PWR_CR3_SUPPLY_MASK) | supply;
    if (!ariel_wait(PWR_CSR1, PWR_CSR1_ACTVOSRDY, PWR_CSR1_ACTVOSRDY)) {
        return "the supply did not become ready (PWR_CSR1.ACTVOSRDY)";
    }
    /* Scale 0 is entered from scale 1 (RM0455 'Voltage scaling'). */
    if (!set_scale(1u) || (ARIEL_H7_VOS == 0 && !set_scale(0u))) {
        return "the regulator did not reach its voltage scale (VOSRDY)";
    }
    if (!ariel_wait(RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY)) {
        return "HSI did not start (RCC_CR.HSIRDY)";
    }
    ARIEL_REG(RCC_PLLCKSELR) = (ARIEL_REG(RCC_PLLCKSELR)
                                & ~(RCC_PLLCKSELR_PLLSRC_MASK | RCC_PLLCKSELR_DIVM1_MASK))
                               | (ARIEL_PLL_M << RCC_PLLCKSELR_DIVM1_SHIFT);
    ARIEL_REG(RCC_PLLCFGR) = (ARIEL_REG(RCC_PLLCFGR) & ~RCC_PLLCFGR_PLL1_MASK)
                             | RCC_PLLCFGR_PLL1RGE_4_8MHZ | RCC_PLLCFGR_DIVP1EN;
    ARIEL_REG(RCC_PLL1DIVR) = (ARIEL_PLL_N - 1u)
                              | ((ARIEL_PLL_DIV - 1u) << RCC_PLL1DIVR_DIVP1_SHIFT)
                              | (1u << RCC_PLL1DIVR_DIVQ1_SHIFT)
                              | (1u << RCC_PLL1DIVR_DIVR1_SHIFT);
    ARIEL_REG(RCC_CR) |= RCC_CR_PLL1ON;
    if (!ariel_wait(RCC_CR, RCC_CR_PLL1RDY, RCC_CR_PLL1RDY)) {
        return "PLL1 did not lock (RCC_CR.PLL1RDY)";
    }
    const uint32_t acr = ARIEL_FLASH_LATENCY
                         | (ARIEL_FLASH_WRHIGHFREQ << FLASH_ACR_WRHIGHFREQ_SHIFT);
    ARIEL_REG(FLASH_ACR) = (ARIEL_REG(FLASH_ACR) & ~FLASH_ACR_MASK) | acr;
    if ((ARIEL_REG(FLASH_ACR) & FLASH_ACR_MASK) != acr) {
        return "the flash interface did not take the wait states (FLASH_ACR)";
    }
    ARIEL_REG(RCC_D1CFGR) = (stm32_ahb_code(ARIEL_CORE_DIV) << 8)
                            | (stm32_apb_code(ARIEL_APB3_DIV) << 4)
                            | stm32_ahb_code(ARIEL_AHB_DIV);
    ARIEL_REG(RCC_D2CFGR) = (stm32_apb_code(ARIEL_APB2_DIV) << 8)
                            | (stm32_apb_code(ARIEL_APB1_DIV) << 4);
    ARIEL_REG(RCC_D3CFGR) = stm32_apb_code(ARIEL_APB4_DIV) << 4;
    ARIEL_REG(RCC_CFGR) = (ARIEL_REG(RCC_CFGR) & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL1;
    if (!ariel_wait(RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL1)) {
        ARIEL_REG(RCC_CFGR) &= ~RCC_CFGR_SW_MASK;
        ARIEL_REG(RCC_D1CFGR) = 0u;
        ARIEL_REG(RCC_D2CFGR) = 0u;
        ARIEL_REG(RCC_D3CFGR) = 0u;
        return "the system clock did not switch to PLL1 (RCC_CFGR.SWS)";
    }
    return 0;
}

void board_clock_init(ariel_clocks_t *clocks)
{
    stm32_report_clocks(clocks, set_clock_tree(), HSI_HZ, "HSI 64 MHz (the reset clock)");
    cortex_m7_caches_enable();
}

void board_uart_init(uint32_t uart_hz)
{
    stm32_console_pins(RCC_BASE);
    stm32_usart_start(uart_hz);
}
