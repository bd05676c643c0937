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

#endif
