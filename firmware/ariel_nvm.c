/* The checkpoint runtime of intermittent builds (see ariel_nvm.h). */
#include "ariel_nvm.h"

#include <string.h>

/* One progress record, written last in a commit: a cut before its check word is stored
 * leaves a record whose check fails, and the other slot's (the previous commit) stands. */
typedef struct {
    uint32_t seq;
    uint32_t inference;
    uint32_t commit;
    uint32_t check;
} ariel_record_t;

static ariel_progress_t progress;

/* A host test (tests/run/intermittent/) cuts power before any NVM word store: it builds
 * this file with ARIEL_NVM_CUT_HOOK defined and provides the hook. */
#ifdef ARIEL_NVM_CUT_HOOK
void ariel_nvm_cut_hook(void);
#define BEFORE_NVM_STORE() ariel_nvm_cut_hook()
#else
#define BEFORE_NVM_STORE() ((void)0)
#endif

static uint32_t check_word(const ariel_checkpoint_plan_t *plan, uint32_t seq,
                           uint32_t inference, uint32_t commit)
{
    uint32_t h = plan->tag ^ 0x2545F491u;
    h = (h ^ seq) * 0x9E3779B1u;
    h ^= h >> 15;
    h = (h ^ inference) * 0x85EBCA77u;
    h ^= h >> 13;
    h = (h ^ commit) * 0xC2B2AE3Du;
    return h ^ (h >> 16);
}

void ariel_nvm_write(void *dst, const void *src, uint32_t n)
{
    volatile uint32_t *to = (volatile uint32_t *)dst;
    const uint32_t *from = (const uint32_t *)src;
    if (ariel_nvm_erase_bytes > 1u) {
        /* Flash: every page the write touches is erased (all ones) before it is
         * programmed, as the chip's flash controller requires. */
        const uintptr_t mask = (uintptr_t)ariel_nvm_erase_bytes - 1u;
        const uintptr_t end = ((uintptr_t)dst + n + mask) & ~mask;
        for (uintptr_t word = (uintptr_t)dst & ~mask; word < end; word += 4u) {
            BEFORE_NVM_STORE();
            *(volatile uint32_t *)word = 0xFFFFFFFFu;
        }
    }
    for (uint32_t i = 0; i < n / 4u; ++i) {
        BEFORE_NVM_STORE();
        to[i] = from[i];
    }
}

ariel_progress_t ariel_progress_load(const ariel_checkpoint_plan_t *plan)
{
    ariel_progress_t newest = {0u, 0u, ARIEL_NOT_STARTED};
    for (uint32_t slot = 0; slot < 2u; ++slot) {
        ariel_record_t record;
        memcpy(&record, ariel_nvm_start + plan->records[slot], sizeof record);
        const int valid = record.seq != 0u && record.seq != 0xFFFFFFFFu &&
                          (record.commit < plan->commits ||
                           record.commit == ARIEL_NOT_STARTED) &&
                          record.check == check_word(plan, record.seq, record.inference,
                                                     record.commit);
        if (valid && record.seq > newest.seq) {
            newest.seq = record.seq;
            newest.inference = record.inference;
            newest.commit = record.commit;
        }
    }
    progress = newest;
    return newest;
}

static void commit(const ariel_checkpoint_plan_t *plan, uint32_t inference, uint32_t index)
{
    ariel_record_t record;
    record.seq = progress.seq + 1u;
    record.inference = inference;
    record.commit = index;
    record.check = check_word(plan, record.seq, inference, index);
    ariel_nvm_write(ariel_nvm_start + plan->records[record.seq & 1u], &record, sizeof record);
    progress.seq = record.seq;
    progress.inference = inference;
    progress.commit = index;
}

void ariel_checkpoint(const ariel_checkpoint_plan_t *plan, uint8_t *arena, uint32_t index)
{
    if (plan->strategy == ARIEL_CHECKPOINT_RESTART) {
        return;
    }
    if (plan->strategy == ARIEL_CHECKPOINT_ARENA) {
        /* The copy the newest record does not point to. */
        const uint32_t copy = plan->copies[(progress.seq + 1u) & 1u];
        ariel_nvm_write(ariel_nvm_start + copy, arena, plan->arena_size);
    } else {
        for (uint32_t i = plan->save_first[index]; i < plan->save_first[index + 1u]; ++i) {
            const ariel_span_t *span = &plan->saves[i];
            ariel_nvm_write(ariel_nvm_start + span->nvm, arena + span->arena, span->nbytes);
        }
    }
    commit(plan, progress.inference, index);
}

void ariel_restore(const ariel_checkpoint_plan_t *plan, uint8_t *arena)
{
    if (plan->strategy == ARIEL_CHECKPOINT_ARENA) {
        memcpy(arena, ariel_nvm_start + plan->copies[progress.seq & 1u], plan->arena_size);
        return;
    }
    const uint32_t index = progress.commit;
    for (uint32_t i = plan->restore_first[index]; i < plan->restore_first[index + 1u]; ++i) {
        const ariel_span_t *span = &plan->restores[i];
        memcpy(arena + span->arena, ariel_nvm_start + span->nvm, span->nbytes);
    }
}

void ariel_inference_done(const ariel_checkpoint_plan_t *plan, uint32_t next)
{
    commit(plan, next, ARIEL_NOT_STARTED);
}
