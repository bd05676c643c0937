/* Intermittent builds (--power intermittent): the checkpoint runtime over the board's
 * non-volatile memory. The generated model says what to save and where (its
 * ariel_checkpoint_plan_t, codegen/compiler/checkpoint.py); this runtime writes it, commits
 * progress records and reads them back after a power cut.
 *
 * The NVM region is [ariel_nvm_start, ariel_nvm_end) (the linker script's symbols: the
 * board file's [nvm] origin and size). Every byte written there goes through
 * ariel_nvm_write, word by word in address order, so an emulator that cuts power between
 * two instructions tears a write the way the memory would. */
#ifndef ARIEL_NVM_H
#define ARIEL_NVM_H

#include <stdint.h>

extern uint8_t ariel_nvm_start[];
extern uint8_t ariel_nvm_end[];
/* The memory's erase unit in bytes (flash: its page), or 1 where bytes are rewritten in
 * place (FRAM, MRAM); generated with the model. */
extern const uint32_t ariel_nvm_erase_bytes;

/* Writes n bytes (a multiple of 4, both pointers 4-byte aligned) to NVM at dst: on flash,
 * first erases every page [dst, dst + n) touches (the checkpoint plan gives each saved
 * tensor whole pages of its own), then stores the words. */
void ariel_nvm_write(void *dst, const void *src, uint32_t n);

enum { ARIEL_CHECKPOINT_LIVE = 0, ARIEL_CHECKPOINT_ARENA = 1, ARIEL_CHECKPOINT_RESTART = 2 };
#define ARIEL_NOT_STARTED 0xFFFFFFFFu /* a record's commit before its inference's first */

/* Bytes copied between the arena and NVM (`nvm`: an offset into the region). */
typedef struct {
    uint32_t arena;
    uint32_t nvm;
    uint32_t nbytes;
} ariel_span_t;

typedef struct {
    uint32_t tag;      /* this build's plan: records another build left are not resumed */
    uint32_t strategy; /* ARIEL_CHECKPOINT_* */
    uint32_t commits;
    const uint32_t *save_first;    /* commits + 1: saves[save_first[i] .. save_first[i + 1]) */
    const uint32_t *restore_first; /* commits + 1, likewise into restores */
    const ariel_span_t *saves;
    const ariel_span_t *restores;
    uint32_t records[2]; /* the two record slots' offsets, written by turn */
    uint32_t copies[2];  /* ARIEL_CHECKPOINT_ARENA: the two arena copies' offsets */
    uint32_t arena_size;
} ariel_checkpoint_plan_t;

/* The last committed state: inference `inference` has passed commit `commit`
 * (ARIEL_NOT_STARTED: not begun); seq 0: NVM holds no record of this build. */
typedef struct {
    uint32_t seq;
    uint32_t inference;
    uint32_t commit;
} ariel_progress_t;

/* Reads the newer valid record (a torn one fails its check word and is passed over). */
ariel_progress_t ariel_progress_load(const ariel_checkpoint_plan_t *plan);
/* Saves what commit `index` needs, then records that the current inference passed it. */
void ariel_checkpoint(const ariel_checkpoint_plan_t *plan, uint8_t *arena, uint32_t index);
/* Reads back into the arena what the last committed state needs to continue. */
void ariel_restore(const ariel_checkpoint_plan_t *plan, uint8_t *arena);
/* Records that inferences before `next` are done and their outputs written. */
void ariel_inference_done(const ariel_checkpoint_plan_t *plan, uint32_t next);

#endif
