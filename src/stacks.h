/* stacks.h — allocation stacks. Captures with libunwind's unw_backtrace (libunwind is
 * dlopen'ed RTLD_LOCAL, never linked: linked, its _Unwind_* would capture the program's
 * C++ exceptions) and interns each stack in an insert-only table (found without a lock,
 * added under one), so a million allocations from one call site cost one record. Id 0
 * means "no stack".
 * Call stacks_capture before taking any memtrace lock: unwinding may take the loader lock.
 * Records live in the runtime pool and are never freed. */
#ifndef MEMTRACE_STACKS_H
#define MEMTRACE_STACKS_H

#include <stdbool.h>
#include <stdint.h>

#include "pool.h"

#define STACK_MAX_DEPTH 64
#define STACK_ID_LIMIT (1u << 20)   /* ids are below this */

/* Read a record's frames with stacks_frame: most records hold them as 32-bit offsets
 * from two bases (a program's frames lie in its executable and a few libraries), half the
 * memory of full words (python3: 91k stacks of 24 frames). */
struct stack_record {
    uint64_t hash;
    uint32_t id;
    uint16_t depth;
    uint8_t logged;          /* written to the event log already */
    uint8_t narrow;          /* frames: bases[2] then 32-bit offsets; else full words */
    uint64_t frames[];
};

/* Frames whose pc lies in [internal_lo, internal_hi) are memtrace's own and are dropped
 * from the top of every captured stack. */
bool stacks_init(struct pool *pool, uintptr_t internal_lo, uintptr_t internal_hi);
/* Loads the unwinder. Allocates (dlopen): call it where re-entrant mallocs are handled. */
bool stacks_load_unwinder(void);
uint32_t stacks_capture(int max_depth);
/* The stack of a thread stopped by a signal, from the handler's ucontext: frame 0 is the
 * interrupted (faulting) instruction itself, not a return address. Uses libunwind's cursor
 * (slow, ~1 us a frame, but async-signal-safe). The first call resolves the cursor entry
 * points with dlsym: make it outside any handler, once the unwinder is loaded (a NULL
 * ucontext only resolves). 0 when there is no unwinder or no frame. */
uint32_t stacks_capture_from_context(void *ucontext, int max_depth);
uint32_t stacks_intern(const uintptr_t *pcs, int depth);
const struct stack_record *stacks_get(uint32_t id);
/* Frame i of rec (0: innermost), i < rec->depth: a return address, or a faulting pc. */
uintptr_t stacks_frame(const struct stack_record *rec, int i);
/* One past the highest id handed out. */
uint32_t stacks_id_limit(void);

void stacks_fork_child(void);

#endif
