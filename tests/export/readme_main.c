#include <math.h>
#include <stdint.h>

#include "kws_dscnn_model.h"

static uint8_t arena[KWS_DSCNN_ARENA_SIZE] __attribute__((aligned(KWS_DSCNN_ARENA_ALIGN)));

/* The keyword (0..11) in 49 x 10 MFCC features. */
int classify(const float mfcc[KWS_DSCNN_INPUT0_COUNT])
{
    int8_t *in = KWS_DSCNN_INPUT0(arena);
    for (unsigned i = 0; i < KWS_DSCNN_INPUT0_COUNT; ++i) {
        const float q = rintf(mfcc[i] / KWS_DSCNN_INPUT0_SCALE) + KWS_DSCNN_INPUT0_ZERO_POINT;
        in[i] = (int8_t)(q < -128.0f ? -128.0f : q > 127.0f ? 127.0f : q);
    }
    kws_dscnn_run(arena);
    const int8_t *scores = KWS_DSCNN_OUTPUT0(arena);
    int best = 0;
    for (int k = 1; k < (int)KWS_DSCNN_OUTPUT0_COUNT; ++k) {
        best = scores[k] > scores[best] ? k : best;
    }
    return best;
}
