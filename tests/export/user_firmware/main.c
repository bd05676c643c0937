/* The test's own main: runs the exported model on every input of inputs.h (written by the
 * test) and prints each output word in hex through semihosting, one line per inference;
 * then "stack " and the most stack any run used below its entry, in hex (the stack under
 * main's is painted before each run and the lowest changed word found after it). */
#include <stdint.h>
#include <string.h>

#include "inputs.h"
#include "model_binding.h" /* the exported header, its names as MODEL_* (the test writes it) */

void semihost(uint32_t operation, const void *argument);

static uint8_t arena[MODEL_ARENA_SIZE] __attribute__((aligned(MODEL_ARENA_ALIGN)));

#define PAINT 0xA5A5A5A5u
#define PAINTED_WORDS 2048u /* 8 KiB below main's frame */
#define SPARE_WORDS 16u     /* left unpainted just below the stack pointer, for the loop */

static void print(const char *text)
{
    semihost(0x04u, text); /* SYS_WRITE0 */
}

static void hex(char *out, uint32_t value)
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned d = 0; d < 8; ++d) {
        out[d] = digits[(value >> (28 - 4 * d)) & 0xFu];
    }
}

int main(void)
{
    uint32_t deepest = 0;
    for (unsigned n = 0; n < INPUT_COUNT; ++n) {
        memcpy(MODEL_INPUT0(arena), inputs[n], MODEL_INPUT0_BYTES);
        volatile uint32_t *sp;
        __asm__ volatile("mov %0, sp" : "=r"(sp));
        for (volatile uint32_t *p = sp - PAINTED_WORDS; p < sp - SPARE_WORDS; ++p) {
            *p = PAINT;
        }
        model_run(arena);
        volatile uint32_t *lowest = sp - PAINTED_WORDS;
        while (lowest < sp && *lowest == PAINT) {
            ++lowest;
        }
        const uint32_t used = (uint32_t)((uintptr_t)sp - (uintptr_t)lowest);
        deepest = used > deepest ? used : deepest;
        uint32_t words[MODEL_OUTPUT0_BYTES / 4];
        memcpy(words, MODEL_OUTPUT0(arena), sizeof words);
        char line[sizeof words * 2 + 2];
        for (unsigned i = 0; i < sizeof words / 4; ++i) {
            hex(&line[8 * i], words[i]);
        }
        line[sizeof words * 2] = '\n';
        line[sizeof words * 2 + 1] = '\0';
        print(line);
    }
    char stack[] = "stack 00000000\n";
    hex(&stack[6], deepest);
    print(stack);
    return 0;
}
