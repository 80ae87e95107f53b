/* runtime.h — the runtime's global state and life cycle: lazy initialisation from the
 * first allocation (ld.so switches to our malloc before any constructor runs), the
 * per-thread re-entrancy flag, fork handling, and the exit sequence (leak scan, summary,
 * end of log, and the reporter when no launcher is waiting for the log). */
#ifndef MEMTRACE_RUNTIME_H
#define MEMTRACE_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "options.h"
#include "pool.h"
#include "term_signals.h"

enum runtime_state { RUNTIME_UNINIT, RUNTIME_STARTING, RUNTIME_READY, RUNTIME_DISABLED };

/* Hot per-thread state, one cache line, initial-exec TLS (no __tls_get_addr, no malloc). */
struct thread_state {
    int busy;            /* inside memtrace: nested allocations go straight to libc */
    pid_t tid;           /* cached: gettid is a syscall */
    unsigned sample_tick; /* --guard=sample:N, and --guard=auto past a site's floor */
    int exit_hooked;     /* runtime_thread_start ran: memtrace hears of this thread's end */
    int pending_signal;  /* a termination signal that landed while busy (term_signals.h) */
};

extern struct options runtime_options;
extern struct pool runtime_pool;
extern __thread struct thread_state runtime_thread;

/* Leaves memtrace on this thread (busy cleared); a termination signal that landed while it
 * ran is taken now. The fences keep the compiler from moving the two across each other. */
static inline void runtime_leave(void)
{
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    runtime_thread.busy = 0;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (__builtin_expect(runtime_thread.pending_signal != 0, 0))
        term_signals_deliver_pending();
}

/* Initialises on first use; returns true when allocations may be tracked. */
bool runtime_ensure_ready(void);
/* True once the block table exists: even re-entrant allocations are recorded then. */
bool runtime_tables_ready(void);
pid_t runtime_tid(void);
/* On a thread's first tracked call: arranges for its memtrace state to be given back when
 * it ends. */
void runtime_thread_start(void);

/* The exit sequence; runs once, whichever of exit, return from main or _exit gets here. */
void runtime_exit(void);
/* The same, from a fatal signal's handler: the interrupted context's stack and registers
 * are the roots, not the handler's own frames. */
void runtime_exit_from_signal(const void *ucontext);
/* How the process is ending, when an entry point sees it (main's return, exit, _exit):
 * written to the log, since without a launcher nobody else knows. `frame` is that entry
 * point's, on the calling thread: the exit scan of its stack starts there. Below lie
 * exit's handlers and memtrace's destructor, run over the program's returned frames, whose
 * stale pointers would pass leaks off as reachable (valgrind's scan starts at exit's own
 * frame too). */
void runtime_note_exit(int status, uintptr_t frame);
/* The same for a fatal signal that is ending the process. */
void runtime_note_exit_signal(int sig);
/* Before the process replaces itself with exec: the log says so, and is not a report of
 * its own unless the new program (traced with --trace-children=yes) writes one. */
void runtime_before_exec(void);
/* After dlopen: write the new modules now, while it is safe. */
void runtime_modules_changed(void);

#endif
