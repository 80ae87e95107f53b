/* leakscan.h — leak detection by reachability at exit, as valgrind and LeakSanitizer do
 * it. Roots: writable segments of every loaded module but memtrace's own, the program's
 * own writable mmaps, every thread's registers, stack (from its stack pointer up) and
 * static TLS. Blocks reached by a start pointer from a root or a reachable block are
 * reachable, as are those reached through an interior pointer that one of valgrind's
 * heuristics accepts (leak_heuristics.h); reached only through other interior pointers,
 * possible; the rest are lost, and
 * among them a block pointed to only by other lost blocks is indirect, charged to the
 * definite block that owns it. Results are written as loss records grouped by
 * (class, allocation stack). Uses only pool memory; other threads are stopped meanwhile. */
#ifndef MEMTRACE_LEAKSCAN_H
#define MEMTRACE_LEAKSCAN_H

#include <stdint.h>

#include "eventlog.h"
#include "pool.h"

struct scan_caller {
    uintptr_t stack_from;            /* the exiting thread's stack, scanned from here up */
    const void *saved_regs;          /* its callee-saved registers, spilled by setjmp */
    size_t saved_regs_size;
    uintptr_t self_lo, self_hi;      /* memtrace's own module: never a root */
    size_t static_tls_size;          /* main thread static TLS below the thread pointer */
    unsigned heuristics;             /* --leak-check-heuristics (leak_heuristics.h) */
    /* Take and drop every memtrace lock, so that no thread is stopped holding one. */
    void (*lock_all)(void);
    void (*unlock_all)(void);
    /* Runs once the other threads are stopped, the quarantine and the block table locked:
     * checks that must not race with them. Must take neither of those locks. */
    void (*while_stopped)(void);
};

/* Classifies every live block and writes the loss records; fills the live and the
 * allocation counts of *totals (taken while the other threads are stopped). */
void leakscan_run(struct pool *pool, const struct scan_caller *caller, struct heap_totals *totals);

#endif
