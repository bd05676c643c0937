/* The firmware's main program on a real board (--io uart): no host sends inputs, so it runs
 * the model on the test input built into flash, measures the cycles of each run, prints the
 * outputs and checks them against the outputs ariel computed on the host at build time.
 *
 * Console lines (115200 baud, 8N1, CR LF endings), in this order:
 *   ariel: board NAME, console UART at BAUD baud
 *   ariel: core clock HZ Hz from SOURCE
 *   ariel: clock set-up stopped: WHY; running at the reset clock      (only if it did)
 *   ariel: cycle counter COUNTER                    (dwt, systick, or none with the reason)
 *   ariel: input SOURCE                             (the first sample of a file, or zeros)
 * then for each run R = 1..ARIEL_UART_RUNS:
 *   ariel-cycles R CYCLES                           (core clocks around ariel_model_run)
 *   ariel-output R I HEX                            (output I's bytes in memory order)
 *   ariel-check R pass | ariel-check R fail output I byte B
 * and last:
 *   ariel: stack high-water N bytes of M
 *   ariel: done, RUNS runs, all outputs as expected | ariel: done, RUNS runs, K failed
 * The core then sleeps; press reset to run again. codegen/devkit/uart.py reads these lines. */
#include <stdint.h>
#include <string.h>

#include "ariel_model.h"
#include "ariel_test_data.h"
#include "board/board.h"
#include "semihost.h"
#include "stack_usage.h"

static uint8_t arena[ARIEL_ARENA_SIZE] __attribute__((aligned(16)));

static void write_u64(uint64_t value)
{
    char digits[21];
    int position = (int)sizeof digits - 1;
    digits[position] = '\0';
    do {
        digits[--position] = (char)('0' + (int)(value % 10u));
        value /= 10u;
    } while (value != 0u);
    console_write(&digits[position]);
}

static void write_run(const char *tag, uint32_t run)
{
    console_write(tag);
    console_write(" ");
    console_write_uint(run);
}

static void write_bytes(const uint8_t *bytes, uint32_t count)
{
    char chunk[65];
    uint32_t used = 0;
    for (uint32_t i = 0; i < count; ++i) {
        chunk[used++] = "0123456789abcdef"[bytes[i] >> 4];
        chunk[used++] = "0123456789abcdef"[bytes[i] & 0xFu];
        if (used == sizeof chunk - 1u || i + 1u == count) {
            chunk[used] = '\0';
            console_write(chunk);
            used = 0;
        }
    }
}

/* The index of the first byte outside the expected output, or -1 if it matches: float32
 * outputs within the tolerance (the host's libm may differ from newlib's in the last bit),
 * everything else exactly. */
static int32_t mismatch(const ariel_test_expected_t *want, const uint8_t *got)
{
    if (!want->is_float32) {
        for (uint32_t i = 0; i < want->nbytes; ++i) {
            if (got[i] != want->data[i]) {
                return (int32_t)i;
            }
        }
        return -1;
    }
    for (uint32_t i = 0; i + 4u <= want->nbytes; i += 4u) {
        float a, b;
        memcpy(&a, &got[i], sizeof a);
        memcpy(&b, &want->data[i], sizeof b);
        const float difference = a > b ? a - b : b - a;
        if (!(difference <= want->tolerance)) {
            return (int32_t)i;
        }
    }
    return -1;
}

static int run_once(uint32_t run)
{
    for (uint32_t i = 0; i < ARIEL_NUM_INPUTS; ++i) {
        const ariel_tensor_t *t = &ariel_model_inputs[i];
        memcpy(&arena[t->offset], ariel_test_inputs[i].data, t->nbytes);
    }
    const uint64_t start = ariel_cycles_now();
    ariel_model_run(arena);
    const uint64_t cycles = ariel_cycles_since(start);
    write_run("ariel-cycles", run);
    console_write(" ");
    write_u64(cycles);
    console_write("\n");
    int ok = 1;
    for (uint32_t i = 0; i < ARIEL_NUM_OUTPUTS; ++i) {
        const ariel_tensor_t *t = &ariel_model_outputs[i];
        write_run("ariel-output", run);
        console_write(" ");
        console_write_uint(i);
        console_write(" ");
        write_bytes(&arena[t->offset], t->nbytes);
        console_write("\n");
        const int32_t at = mismatch(&ariel_test_expected[i], &arena[t->offset]);
        if (at >= 0 && ok) {
            ok = 0;
            write_run("ariel-check", run);
            console_write(" fail output ");
            console_write_uint(i);
            console_write(" byte ");
            console_write_uint((uint32_t)at);
            console_write("\n");
        }
    }
    if (ok) {
        write_run("ariel-check", run);
        console_write(" pass\n");
    }
    return ok;
}

int main(void)
{
    ariel_clocks_t clocks;
    board_clock_init(&clocks);
    board_uart_init(clocks.uart_hz);
    ariel_console_start();
    console_write("\nariel: board " ARIEL_BOARD_NAME ", console " ARIEL_UART_NAME " at ");
    console_write_uint(ARIEL_UART_BAUD);
    console_write(" baud\nariel: core clock ");
    console_write_uint(clocks.core_hz);
    console_write(" Hz from ");
    console_write(clocks.source);
    console_write("\n");
    if (clocks.problem) {
        console_write("ariel: clock set-up stopped: ");
        console_write(clocks.problem);
        console_write("; running at the reset clock\n");
    }
    ariel_cycles_init();
    console_write("ariel: cycle counter ");
    console_write(ariel_cycles_counter());
    console_write("\nariel: input ");
    console_write(ariel_test_input_source);
    console_write("\n");
    uint32_t failed = 0;
    for (uint32_t run = 1; run <= ARIEL_UART_RUNS; ++run) {
        failed += run_once(run) ? 0u : 1u;
    }
    ariel_report_stack();
    console_write("ariel: done, ");
    console_write_uint(ARIEL_UART_RUNS);
    console_write(" runs, ");
    if (failed == 0u) {
        console_write("all outputs as expected\n");
    } else {
        console_write_uint(failed);
        console_write(" failed\n");
    }
    for (;;) {
        __asm__ volatile("wfi");
    }
}
