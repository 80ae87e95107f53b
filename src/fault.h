/* fault.h — the SIGSEGV/SIGBUS handler behind the guarded pool (src/guard.h), which also
 * hears SIGFPE and SIGILL so that a program dying of its own fault is reported. A fault in
 * the pool becomes an error record: the kind from guard_describe, read or write from the
 * page-fault error code, the access's size and first byte decoded from the instruction
 * (src/x86_access.h), and the faulting
 * thread's stack unwound from the signal context (frame 0 exact). Any other fault goes to
 * the program's previous handler exactly as if memtrace were not there; when that is the
 * default action, fault_before_death runs first.
 * After a report the process dies of the original signal (fault_before_death runs first),
 * or, with fault_set_continue, the page is opened and the program goes on; each slot is
 * reported once. The handler runs on a per-thread alternate stack and calls only
 * async-signal-safe code; a fault inside memtrace itself (runtime_thread.busy) is not
 * logged, since this thread may hold memtrace's locks. No malloc, no stdio. */
#ifndef MEMTRACE_FAULT_H
#define MEMTRACE_FAULT_H

#include <stdbool.h>
#include <stddef.h>

/* Set by the runtime: ends the log before the process dies of a fault (e.g.
 * runtime_note_exit_signal(sig) + runtime_exit_from_signal(ucontext)). Runs in the
 * handler, on the alternate stack, with runtime_thread.busy set. */
extern void (*fault_before_death)(int sig, void *ucontext);

/* Installs the handler for SIGSEGV, SIGBUS, SIGFPE and SIGILL, remembering the previous
 * actions, and gives the calling thread its alternate stack. Call after
 * stacks_load_unwinder: it resolves the context unwinder here, outside any handler. */
bool fault_install(void);
/* Puts the previous actions back (tests, or a runtime that turns itself off). */
void fault_uninstall(void);
/* Gives the calling thread an alternate signal stack unless it has one; cheap after the
 * first call on a thread. Call lazily, e.g. on each thread's first allocation. */
void fault_thread_init(void);
/* Releases the calling thread's alternate stack, if it is ours (for a thread-exit hook). */
void fault_thread_exit(void);
/* The program's own sigaction for one of those signals while ours is installed: its action
 * is kept as the one faults that are not memtrace's go to, and ours stays in place.
 * Returns false (nothing done) for any other signal or before fault_install. */
struct sigaction;
bool fault_take_program_action(int sig, const struct sigaction *action, struct sigaction *old);
/* --continue-after-fault=yes: open the faulting page and let the program go on. */
void fault_set_continue(bool yes);

#endif
