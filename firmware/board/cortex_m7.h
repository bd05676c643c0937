/* The Cortex-M7's L1 caches (firmware/board/cortex_m7.c). */
#ifndef ARIEL_CORTEX_M7_H
#define ARIEL_CORTEX_M7_H

/* Invalidate, then enable, the instruction and data caches. */
void cortex_m7_caches_enable(void);

#endif
