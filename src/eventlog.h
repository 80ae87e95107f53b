/* eventlog.h — writes the event log (docs/event-log.md): the only thing the runtime
 * produces. Records are formatted in fixed buffers and written with write(2) under one
 * lock, so lines never interleave and a killed process leaves a readable prefix. Stacks
 * and modules are written the first time a record needs them.
 * Never call with a block-table lock held: writing modules takes the loader lock. */
#ifndef MEMTRACE_EVENTLOG_H
#define MEMTRACE_EVENTLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "leak_heuristics.h"
#include "pool.h"

enum error_kind {
    ERROR_DOUBLE_FREE,
    ERROR_INVALID_FREE,
    ERROR_MISMATCHED_FREE,
    ERROR_INVALID_SIZE,
    ERROR_HEAP_OVERFLOW,
    ERROR_HEAP_UNDERFLOW,
    ERROR_USE_AFTER_FREE,
    ERROR_INVALID_MUNMAP,
    ERROR_OVERLAP,
};

enum access_op { ACCESS_NONE, ACCESS_READ, ACCESS_WRITE };

struct error_event {
    enum error_kind kind;
    pid_t tid;
    uintptr_t addr;
    uint32_t stack;
    bool exact;                 /* frame 0 of stack is the faulting instruction */
    enum access_op op;
    size_t access_size;
    bool has_block;
    uintptr_t block;
    size_t block_size;
    bool size_unknown;          /* the block's size was lost (its header overwritten) */
    uint32_t alloc_stack, free_stack;
    int alloc_kind, free_kind;  /* enum alloc_kind, or -1 */
    bool has_requested;
    uint64_t requested;
    bool on_stack;              /* addr is in the thread's own stack (an invalid free) */
    const char *function;       /* invalid-size, overlap: the call, as valgrind names it */
    const char *argument;       /* invalid-size: the argument ("nmemb"); times: calloc's */
    uint64_t times;             /* other factor */
    uintptr_t source;           /* overlap: the source (addr is the destination) */
};

enum leak_class { LEAK_DEFINITE, LEAK_INDIRECT, LEAK_POSSIBLE, LEAK_REACHABLE, LEAK_CLASS_COUNT };

struct heap_totals {
    uint64_t live_bytes, live_blocks, allocs, frees, bytes_allocated;
    uint64_t guarded;                 /* allocations placed in the guarded pool */
    /* reachable only through a heuristic's interior pointer, by enum leak_heuristic */
    uint64_t heuristic_bytes[HEURISTIC_COUNT], heuristic_blocks[HEURISTIC_COUNT];
};

/* Creates the log from `pattern` (%p = pid; a child of fork without %p in the pattern
 * gets ".PID" appended) and writes the header and module records. */
bool eventlog_open(struct pool *pool, const char *pattern, const char *options_text);
/* After fork, in the child: a log of its own, with the inherited stacks written again. */
bool eventlog_reopen_in_child(void);
const char *eventlog_path(void);
void eventlog_write_modules(void);
void eventlog_error(const struct error_event *error);
/* alloc_kind: enum alloc_kind of the record's blocks. */
void eventlog_leak(enum leak_class cls, int alloc_kind, uint64_t bytes, uint64_t blocks,
                   uint64_t indirect_bytes, uint32_t stack);
void eventlog_mapping(uintptr_t addr, size_t len, uint32_t stack);
void eventlog_summary(const struct heap_totals *totals);
/* `exit status=N` or `exit signal=N`. */
void eventlog_exit(bool signaled, int value);
/* The program's own fault, about to end it (memtrace's guard faults are errors instead):
 * the signal, its si_code, the address and the faulting stack, as valgrind shows them
 * ("Process terminating with default action of signal 11"). */
void eventlog_crash(int sig, int code, uintptr_t addr, uint32_t stack);
void eventlog_end(void);
/* `exec`: the process is about to become another program (no `end` will follow). */
void eventlog_exec(void);

void eventlog_lock(void);
void eventlog_unlock(void);
void eventlog_reset_lock(void);

#endif
