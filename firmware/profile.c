/* The two hooks of a profiling build (make profile, -DARIEL_PROFILE): the generated run
 * function calls ariel_profile_begin(layer) before and ariel_profile_end(layer) after each
 * kernel. They do nothing: the emulator's counting plugin watches their addresses
 * (codegen/run/emulate/counting.py) and splits its instruction counts there.
 *
 * noipa keeps each hook a real, separate function: not inlined, not merged with its twin
 * (identical bodies would otherwise be folded into one), so each has an address of its own
 * and every call reaches it. Each compiles to one instruction (bx lr), so a marker costs
 * the caller its argument, the call and that return. */
#include "ariel_runtime.h"

__attribute__((noipa)) void ariel_profile_begin(uint32_t layer)
{
    (void)layer;
}

__attribute__((noipa)) void ariel_profile_end(uint32_t layer)
{
    (void)layer;
}
