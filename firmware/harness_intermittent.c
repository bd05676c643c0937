/* The firmware's main program for intermittent builds under an emulator: harness.c's job
 * (N inputs from input.bin, N records of outputs to output.bin), resumable after a power
 * cut at any instruction.
 *
 * At every boot the newest progress record (firmware/ariel_nvm.c) says where the work
 * stands: the inference to run and the last commit it passed. Its input is read again from
 * input.bin (a sensor node keeps its sample until the inference that uses it is done) and
 * saved at commit 0; a resumed inference reads its live tensors back from NVM instead.
 * Outputs are written at their own record's place in output.bin, so writing them again
 * after a cut changes nothing; the inference counts as done once a record says so. */
#include <stdint.h>

#include "ariel_model.h"
#include "ariel_nvm.h"
#include "semihost.h"
#include "stack_usage.h"

#define EXIT_BAD_INPUT 1

/* Not static: the host power-cut test (tests/run/intermittent/) fills it with garbage after
 * each cut, as a real cut leaves RAM. */
uint8_t ariel_arena[ARIEL_ARENA_SIZE] __attribute__((aligned(16)));
#define arena ariel_arena

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

static void say_resumed(const ariel_progress_t *progress)
{
    console_write("ariel: resumed at inference ");
    console_write_uint(progress->inference);
    if (progress->commit == ARIEL_NOT_STARTED) {
        console_write(", from its start\n");
        return;
    }
    console_write(", commit ");
    console_write_uint(progress->commit);
    console_write("\n");
}

int main(void)
{
    const ariel_checkpoint_plan_t *plan = &ariel_model_checkpoints;
    const int32_t input = sh_open("input.bin", SH_MODE_READ_BINARY);
    if (input < 0) {
        return fail("cannot open input.bin");
    }
    const uint32_t in_record = record_bytes(ariel_model_inputs, ARIEL_NUM_INPUTS);
    const uint32_t out_record = record_bytes(ariel_model_outputs, ARIEL_NUM_OUTPUTS);
    const int32_t length = sh_file_length(input);
    if (length <= 0 || (uint32_t)length % in_record != 0u) {
        return fail("input.bin is not a whole number of input records");
    }
    const uint32_t count = (uint32_t)length / in_record;
    ariel_progress_t progress = ariel_progress_load(plan);
    /* A first boot starts output.bin afresh; a later one rewrites it in place. */
    const int32_t output = sh_open("output.bin", progress.seq == 0u ? SH_MODE_WRITE_BINARY
                                                                    : SH_MODE_UPDATE_BINARY);
    if (output < 0) {
        return fail("cannot open output.bin");
    }
    if (progress.seq != 0u) {
        say_resumed(&progress);
    }
    for (uint32_t n = progress.inference; n < count; ++n) {
        uint32_t from = progress.commit;
        if (from == ARIEL_NOT_STARTED) {
            if (sh_seek(input, n * in_record) != 0) {
                return fail("cannot seek in input.bin");
            }
            for (uint32_t i = 0; i < ARIEL_NUM_INPUTS; ++i) {
                const ariel_tensor_t *t = &ariel_model_inputs[i];
                if (sh_read(input, &arena[t->offset], t->nbytes) != 0) {
                    return fail("short read from input.bin");
                }
            }
            ariel_checkpoint(plan, arena, 0u);
            from = 0u;
        } else {
            ariel_restore(plan, arena);
        }
        ariel_model_run_from(arena, from);
        if (sh_seek(output, n * out_record) != 0) {
            return fail("cannot seek in output.bin");
        }
        for (uint32_t i = 0; i < ARIEL_NUM_OUTPUTS; ++i) {
            const ariel_tensor_t *t = &ariel_model_outputs[i];
            if (sh_write(output, &arena[t->offset], t->nbytes) != 0) {
                return fail("short write to output.bin");
            }
        }
        ariel_inference_done(plan, n + 1u);
        progress.commit = ARIEL_NOT_STARTED;
    }
    sh_close(output);
    sh_close(input);
    ariel_report_stack();
    console_write("ariel: ");
    console_write_uint(count);
    console_write(" inferences done\n");
    return 0;
}
