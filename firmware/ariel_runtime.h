/* ariel runtime: the few types and macros that generated models and the harness share. */
#ifndef ARIEL_RUNTIME_H
#define ARIEL_RUNTIME_H

#include <stdint.h>

/* A model input or output: where it lives in the arena and how many bytes it holds. */
typedef struct {
    const char *name;
    uint32_t offset;
    uint32_t nbytes;
} ariel_tensor_t;

/* Layer markers around every kernel call. They compile to nothing unless a profiling
 * build defines ARIEL_PROFILE and provides the two hooks. */
#ifdef ARIEL_PROFILE
void ariel_profile_begin(uint32_t layer);
void ariel_profile_end(uint32_t layer);
#define ARIEL_LAYER_BEGIN(layer) ariel_profile_begin(layer)
#define ARIEL_LAYER_END(layer) ariel_profile_end(layer)
#else
#define ARIEL_LAYER_BEGIN(layer) ((void)0)
#define ARIEL_LAYER_END(layer) ((void)0)
#endif

/* The one rounding rule of integer kernels: floor((value + 2^(shift-1)) / 2^shift), i.e. the
 * exact quotient rounded half up; 1 <= shift <= 62. (GCC's >> on a negative int64_t is an
 * arithmetic shift, which this relies on.) codegen/quant/fixedpoint.py is its numpy twin. */
static inline int64_t ariel_rounding_shift(int64_t value, int32_t shift)
{
    return (value + ((int64_t)1 << (shift - 1))) >> shift;
}

/* The output stage every integer kernel ends with: scale the int32 accumulator by
 * multiplier * 2^-shift (both computed at compile time), add the output zero point, clamp
 * to [low, high] (the int8 range narrowed by any fused activation). */
static inline int32_t ariel_requantize(int32_t acc, int32_t multiplier, int32_t shift,
                                       int32_t zero_point, int32_t low, int32_t high)
{
    const int64_t value = ariel_rounding_shift((int64_t)acc * multiplier, shift) + zero_point;
    return (int32_t)(value < low ? low : (value > high ? high : value));
}

#endif
