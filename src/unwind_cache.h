/* unwind_cache.h — a per-thread cache of captured stacks, so that a call site that
 * allocates again from the same place does not pay for a full unwind each time.
 *
 * An entry is keyed by the capturing frame's stack pointer and return address, and holds
 * the stack id with the address of every return-address slot the unwinder walked. It is
 * valid while each slot still holds the same return address: the frames have not
 * returned, or were re-entered from the same call sites at the same depth, which is the
 * same stack. (bytehound's shadow stack rests on the same observation.) Only stacks that
 * lie wholly on the thread's own stack are cached; a signal alternate stack or a
 * coroutine's stack always takes the full unwind. */
#ifndef MEMTRACE_UNWIND_CACHE_H
#define MEMTRACE_UNWIND_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "pool.h"

/* Caches live in `pool`, one per thread, made on its first capture. */
void unwind_cache_init(struct pool *pool);
/* The calling thread is ending: its cache goes back to the pool, and it caches no more. */
void unwind_cache_thread_exit(void);

/* The cached id for a capture at (sp, ra) with this depth limit, or 0. */
uint32_t unwind_cache_find(uintptr_t sp, uintptr_t ra, int max_depth);
/* The calling thread's stack, [*lo, *hi), as its cache knows it; false when unknown. (An
 * invalid free's address there is "on thread N's stack"; the leak scan reads a thread it
 * cannot stop whole.) */
bool unwind_cache_stack_bounds(uintptr_t *lo, uintptr_t *hi);
/* The calling thread's finds that hit and that missed, so far. */
void unwind_cache_counts(uint64_t *hits, uint64_t *misses);
/* Remembers id for the frames pcs[1..n) just unwound from (sp, ra); pcs[0] is the
 * capturing function's own pc, pcs[key_frame] the first outside memtrace. Does nothing
 * when a return address cannot be located. */
void unwind_cache_store(uintptr_t sp, uintptr_t ra, int max_depth, void *const *pcs, int n,
                        int key_frame, uint32_t id);

#endif
