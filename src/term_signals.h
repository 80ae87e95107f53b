/* term_signals.h — the signals that end the process by default without being a fault of
 * the program's (SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGALRM, SIGABRT, ...): a CI
 * timeout, a ^C, a closed pipe or abort(). While the program leaves one at SIG_DFL,
 * memtrace's handler stands in for the default action: the log gets its crash record (the
 * signal and where the thread was) and its end (leak check, summaries) before the process
 * dies of the same signal, as under valgrind. The program still sees SIG_DFL; an action of
 * its own replaces ours outright. A signal that lands while memtrace runs on that thread
 * (runtime_thread.busy: it may hold memtrace's locks) is taken as memtrace leaves
 * (runtime_leave). Fault signals are src/fault.h's. No malloc, no stdio. */
#ifndef MEMTRACE_TERM_SIGNALS_H
#define MEMTRACE_TERM_SIGNALS_H

#include <stdbool.h>

/* Set by the runtime: ends the log before the process dies of sig. ucontext is the
 * interrupted one, or NULL when the signal waited for memtrace to leave (then the caller's
 * own registers and stack are the roots). Runs with runtime_thread.busy clear. */
extern void (*term_signals_before_death)(int sig, void *ucontext);

/* Puts memtrace's handler on each such signal whose action is SIG_DFL now. */
void term_signals_install(void);
/* The program's sigaction for one of those signals: SIG_DFL keeps (or puts back) ours,
 * anything else goes to the kernel; old reads SIG_DFL while ours is there. Returns false
 * (nothing done) for any other signal or before term_signals_install. */
struct sigaction;
bool term_signals_take_program_action(int sig, const struct sigaction *action, struct sigaction *old);
/* Takes the signal that landed while memtrace ran on this thread: does not return. */
void term_signals_deliver_pending(void);

#endif
