/* Stack high-water mark: startup.c paints the stack with a known word at reset, and this
 * reads back how much of it has been written since. */
#ifndef ARIEL_STACK_USAGE_H
#define ARIEL_STACK_USAGE_H

#include <stdint.h>

/* The word the unused stack holds. A stack slot that happens to hold this same value is
 * taken as unused, so the figure can fall short by that slot (rare, and at most one word
 * at the deepest point, which is where such a value would have to be). */
#define ARIEL_STACK_PAINT 0xA51E57ACu

/* Bytes of the stack section written since reset (deepest use), counting from its top. If
 * it equals ariel_stack_size(), the stack was used to its end and may have overflowed. */
uint32_t ariel_stack_high_water(void);
uint32_t ariel_stack_size(void);

/* Print "ariel: stack high-water N bytes of M" on the console (codegen/target/stack_usage.py). */
void ariel_report_stack(void);

#endif
