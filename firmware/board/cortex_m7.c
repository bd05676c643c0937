/* The Cortex-M7's L1 instruction and data caches, off after reset. Flash at 0x08000000 is
 * reached through the AXI bus, where only these caches hide its wait states. */
#include <stdint.h>

#include "board.h"
#include "cortex_m7.h"

/* Armv7-M Architecture Reference Manual, B2.2 'Caches and branch predictors' and the
 * system control block registers of B3.2; Cortex-M7 TRM 'L1 caches'. */
#define SCB_CCR 0xE000ED14u
#define SCB_CCR_DC (1u << 16) /* data cache enable */
#define SCB_CCR_IC (1u << 17) /* instruction cache enable */
#define SCB_CCSIDR 0xE000ED80u /* NumSets bits 27:13, Associativity bits 12:3,
                                * LineSize bits 2:0 (log2(words) - 2) */
#define SCB_CSSELR 0xE000ED84u /* 0 selects the level 1 data cache */
#define SCB_ICIALLU 0xE000EF50u /* invalidate all instruction cache lines */
#define SCB_DCISW 0xE000EF60u   /* invalidate a data cache line by set and way */

static inline void barriers(void)
{
    __asm__ volatile("dsb\n\tisb" ::: "memory");
}

void cortex_m7_caches_enable(void)
{
    barriers();
    ARIEL_REG(SCB_ICIALLU) = 0u;
    barriers();
    ARIEL_REG(SCB_CCR) |= SCB_CCR_IC;
    barriers();

    ARIEL_REG(SCB_CSSELR) = 0u;
    barriers();
    const uint32_t ccsidr = ARIEL_REG(SCB_CCSIDR);
    const uint32_t sets = ((ccsidr >> 13) & 0x7FFFu) + 1u;
    const uint32_t ways = ((ccsidr >> 3) & 0x3FFu) + 1u;
    const uint32_t set_shift = (ccsidr & 7u) + 4u; /* log2 of the line size in bytes */
    /* DCISW takes the way in its top log2(ways) bits. */
    const uint32_t way_shift = ways > 1u ? (uint32_t)__builtin_clz(ways - 1u) : 0u;
    for (uint32_t set = 0; set < sets; ++set) {
        for (uint32_t way = 0; way < ways; ++way) {
            ARIEL_REG(SCB_DCISW) = (way << way_shift) | (set << set_shift);
        }
    }
    barriers();
    ARIEL_REG(SCB_CCR) |= SCB_CCR_DC;
    barriers();
}
