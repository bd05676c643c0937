/* Host builds only (codegen/run/hostrun.py compiles the model with -DARIEL_PROFILE and this
 * file): the layer markers around every kernel call write which kernel is running into a cell
 * of memory the parent process shares, so a kernel that kills the host process with a signal
 * (an arithmetic trap, a bad access) can be named. The cell holds the layer index plus one,
 * 0 between kernels. */
#include <stdint.h>

#include "ariel_runtime.h"

/* Set by codegen/run/host_worker.py before the first run. */
volatile uint32_t *ariel_host_progress;

void ariel_profile_begin(uint32_t layer)
{
    *ariel_host_progress = layer + 1u;
}

void ariel_profile_end(uint32_t layer)
{
    (void)layer;
    *ariel_host_progress = 0u;
}
