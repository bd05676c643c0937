/* Cycles around each inference. Armv7-M cores (Cortex-M4, M7) count core clocks in the DWT
 * cycle counter. Armv6-M (Cortex-M0+) has no DWT cycle counter: SysTick counts core clocks
 * instead, 24 bits at a time, its wraps counted by its interrupt. */
#include <stdint.h>

#include "board.h"

#if defined(__ARM_ARCH_6M__)

/* Armv6-M Architecture Reference Manual B3.3 'The system timer, SysTick': SYST_CSR
 * (ENABLE bit 0, TICKINT bit 1, CLKSOURCE bit 2 = processor clock), SYST_RVR, SYST_CVR;
 * B3.2.4 ICSR, PENDSTSET bit 26. */
#define SYST_CSR 0xE000E010u
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE (1u << 2)
#define SYST_RVR 0xE000E014u
#define SYST_CVR 0xE000E018u
#define SCB_ICSR 0xE000ED04u
#define SCB_ICSR_PENDSTSET (1u << 26)
#define SYSTICK_TOP 0xFFFFFFu

static volatile uint32_t wraps;

void SysTick_Handler(void);
void SysTick_Handler(void)
{
    ++wraps;
}

void ariel_cycles_init(void)
{
    ARIEL_REG(SYST_RVR) = SYSTICK_TOP;
    ARIEL_REG(SYST_CVR) = 0u;
    ARIEL_REG(SYST_CSR) = SYST_CSR_CLKSOURCE | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
}

const char *ariel_cycles_counter(void)
{
    return "systick (the Cortex-M0+ has no DWT cycle counter)";
}

uint64_t ariel_cycles_now(void)
{
    uint32_t count, value, pending;
    do {
        count = wraps;
        value = ARIEL_REG(SYST_CVR);
        pending = ARIEL_REG(SCB_ICSR) & SCB_ICSR_PENDSTSET;
    } while (count != wraps);
    /* A reload whose interrupt has not been taken yet: the count restarted near the top. */
    if (pending && value > SYSTICK_TOP / 2u) {
        ++count;
    }
    return ((uint64_t)count << 24) + (SYSTICK_TOP - value);
}

uint64_t ariel_cycles_since(uint64_t start)
{
    return ariel_cycles_now() - start;
}

#else

/* Armv7-M Architecture Reference Manual C1.6.5 DEMCR (TRCENA bit 24) and C1.8 'Data
 * Watchpoint and Trace unit': DWT_CTRL (CYCCNTENA bit 0, NOCYCCNT bit 25), DWT_CYCCNT.
 * Cortex-M7 TRM: DWT_LAR must be written with 0xC5ACCE55 before software may program the
 * DWT (on the Cortex-M4 the write is ignored). */
#define DEMCR 0xE000EDFCu
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL 0xE0001000u
#define DWT_CTRL_CYCCNTENA (1u << 0)
#define DWT_CTRL_NOCYCCNT (1u << 25)
#define DWT_CYCCNT 0xE0001004u
#define DWT_LAR 0xE0001FB0u
#define DWT_LAR_UNLOCK 0xC5ACCE55u

static const char *counter = "none";

void ariel_cycles_init(void)
{
    ARIEL_REG(DEMCR) |= DEMCR_TRCENA;
    ARIEL_REG(DWT_LAR) = DWT_LAR_UNLOCK;
    if (ARIEL_REG(DWT_CTRL) & DWT_CTRL_NOCYCCNT) {
        counter = "none (this core's DWT has no cycle counter)";
        return;
    }
    ARIEL_REG(DWT_CYCCNT) = 0u;
    ARIEL_REG(DWT_CTRL) |= DWT_CTRL_CYCCNTENA;
    const uint32_t before = ARIEL_REG(DWT_CYCCNT);
    for (volatile int i = 0; i < 8; ++i) {
    }
    counter = ARIEL_REG(DWT_CYCCNT) != before
                  ? "dwt"
                  : "dwt (not counting: an emulator without a DWT model reads 0)";
}

const char *ariel_cycles_counter(void)
{
    return counter;
}

uint64_t ariel_cycles_now(void)
{
    return ARIEL_REG(DWT_CYCCNT);
}

/* CYCCNT is 32 bits: an inference longer than 2^32 cycles (about 36 s at 120 MHz) wraps. */
uint64_t ariel_cycles_since(uint64_t start)
{
    return (uint32_t)((uint32_t)ARIEL_REG(DWT_CYCCNT) - (uint32_t)start);
}

#endif
