/* What the UART harness (firmware/harness_uart.c) needs from a board: the clock tree set to
 * the board file's frequency, the console UART and the cycle counter. One family file,
 * firmware/board/<family>.c, implements the clock and the UART for each chip family; the
 * board file's [console] family picks it, and board_config.h (generated from the board file)
 * gives it the board's own numbers. */
#ifndef ARIEL_BOARD_H
#define ARIEL_BOARD_H

#include <stdint.h>

#include "board_config.h"

typedef struct {
    uint32_t core_hz;    /* the clock the core runs at once board_clock_init returns */
    uint32_t uart_hz;    /* the console UART's kernel clock, what its baud rate counts */
    const char *source;  /* where the core clock comes from, for the console */
    const char *problem; /* NULL when the board file's clock was reached, else the step that
                          * failed; the chip then keeps running at its reset clock */
} ariel_clocks_t;

/* Set the clock tree from board_config.h. Every wait on a ready flag is bounded, so a
 * machine that does not model the clock controller (QEMU, Renode) or a board whose crystal
 * does not start falls back to the reset clock and says so instead of hanging. */
void board_clock_init(ariel_clocks_t *clocks);

/* Clock the console UART and its TX pin, and start it at ARIEL_UART_BAUD. */
void board_uart_init(uint32_t uart_hz);
void board_uart_write(const char *data, uint32_t length);

/* The cycle counter (firmware/board/cycles.c): DWT CYCCNT on Armv7-M, SysTick counting
 * core clocks on Armv6-M (Cortex-M0+ has no DWT cycle counter). */
void ariel_cycles_init(void);
const char *ariel_cycles_counter(void);
uint64_t ariel_cycles_now(void);
uint64_t ariel_cycles_since(uint64_t start);

/* Lets the console (firmware/uart_console.c) write once the UART runs. */
void ariel_console_start(void);

#define ARIEL_REG(address) (*(volatile uint32_t *)(uintptr_t)(address))

/* About 60 ms at a 16 MHz reset clock on the real chip; a few ms in an emulator. Crystals
 * start and PLLs lock well within it. */
#define ARIEL_POLLS 1000000u

/* Poll until (register & mask) == want; 1 if it got there, 0 if it gave up. */
static inline int ariel_wait(uint32_t address, uint32_t mask, uint32_t want)
{
    for (uint32_t i = 0; i < ARIEL_POLLS; ++i) {
        if ((ARIEL_REG(address) & mask) == want) {
            return 1;
        }
    }
    return 0;
}

#endif
