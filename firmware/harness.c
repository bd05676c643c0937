/* The firmware's main program under an emulator: read N inputs from input.bin through
 * semihosting, run the model on each, append its outputs to output.bin.
 *
 * input.bin holds N records, each the model's inputs one after the other (their bytes as
 * they lie in the arena); output.bin receives N records of the outputs the same way.
 *
 * After a successful run it prints the stack's high-water mark (firmware/stack_usage.h),
 * then "ariel: N inferences done" as its last line. */
#include <stdint.h>

#include "ariel_model.h"
#include "semihost.h"
#include "stack_usage.h"

#define EXIT_BAD_INPUT 1

static uint8_t arena[ARIEL_ARENA_SIZE] __attribute__((aligned(16)));

static int fail(const char *message)
{
    console_write("ariel: ");
    console_write(message);
    console_write("\n");
    return EXIT_BAD_INPUT;
}

static uint32_t record_bytes(const ariel_tensor_t *tensors, uint32_t count)
{
    uint32_t total = 0;
    for (uint32_t i = 0; i < count; ++i) {
        total += tensors[i].nbytes;
    }
    return total;
}

int main(void)
{
    const int32_t input = sh_open("input.bin", SH_MODE_READ_BINARY);
    if (input < 0) {
        return fail("cannot open input.bin");
    }
    const uint32_t record = record_bytes(ariel_model_inputs, ARIEL_NUM_INPUTS);
    const int32_t length = sh_file_length(input);
    if (length <= 0 || (uint32_t)length % record != 0u) {
        return fail("input.bin is not a whole number of input records");
    }
    const int32_t output = sh_open("output.bin", SH_MODE_WRITE_BINARY);
    if (output < 0) {
        return fail("cannot create output.bin");
    }
    const uint32_t count = (uint32_t)length / record;
    for (uint32_t n = 0; n < count; ++n) {
        for (uint32_t i = 0; i < ARIEL_NUM_INPUTS; ++i) {
            const ariel_tensor_t *t = &ariel_model_inputs[i];
            if (sh_read(input, &arena[t->offset], t->nbytes) != 0) {
                return fail("short read from input.bin");
            }
        }
        ariel_model_run(arena);
        for (uint32_t i = 0; i < ARIEL_NUM_OUTPUTS; ++i) {
            const ariel_tensor_t *t = &ariel_model_outputs[i];
            if (sh_write(output, &arena[t->offset], t->nbytes) != 0) {
                return fail("short write to output.bin");
            }
        }
    }
    sh_close(output);
    sh_close(input);
    /* Measured here, after every inference, and printed before the last line so that the
     * last line stays the harness's own (error reports quote the last line). */
    ariel_report_stack();
    console_write("ariel: ");
    console_write_uint(count);
    console_write(" inferences done\n");
    return 0;
}
