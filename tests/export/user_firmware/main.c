/* The test's own main: runs the exported model on every input of inputs.h (written by the
 * test) and prints each output word in hex through semihosting, one line per inference. */
#include <stdint.h>
#include <string.h>

#include "inputs.h"
#include "kws_dscnn_model.h"

void semihost(uint32_t operation, const void *argument);

static uint8_t arena[KWS_DSCNN_ARENA_SIZE] __attribute__((aligned(KWS_DSCNN_ARENA_ALIGN)));

static void print(const char *text)
{
    semihost(0x04u, text); /* SYS_WRITE0 */
}

int main(void)
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned n = 0; n < INPUT_COUNT; ++n) {
        memcpy(KWS_DSCNN_INPUT0(arena), inputs[n], KWS_DSCNN_INPUT0_BYTES);
        kws_dscnn_run(arena);
        uint32_t words[KWS_DSCNN_OUTPUT0_BYTES / 4];
        memcpy(words, KWS_DSCNN_OUTPUT0(arena), sizeof words);
        char line[sizeof words * 2 + 2];
        for (unsigned i = 0; i < sizeof words / 4; ++i) {
            for (unsigned d = 0; d < 8; ++d) {
                line[8 * i + d] = digits[(words[i] >> (28 - 4 * d)) & 0xFu];
            }
        }
        line[sizeof words * 2] = '\n';
        line[sizeof words * 2 + 1] = '\0';
        print(line);
    }
    return 0;
}
