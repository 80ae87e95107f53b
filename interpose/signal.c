/* signal.c — sigaction and signal, so that a program installing its own SIGSEGV or SIGBUS
 * handler (or SIGFPE, SIGILL) does not take the guard-page faults away from memtrace, nor
 * the report of its own fatal faults, nor memtrace the program's faults from it: the
 * program's handler is kept and called for every fault that is not memtrace's
 * (src/fault.h). The termination signals (SIGTERM, SIGINT, ...) read SIG_DFL while
 * memtrace's handler stands in for it (src/term_signals.h). Every other signal goes
 * straight to libc. */
#include <signal.h>
#include <string.h>

#include "fault.h"
#include "interpose.h"
#include "os.h"
#include "term_signals.h"

MEMTRACE_EXPORT int sigaction(int sig, const struct sigaction *action, struct sigaction *old)
{
    if (fault_take_program_action(sig, action, old) ||
        term_signals_take_program_action(sig, action, old))
        return 0;
    return os_sigaction(sig, action, old);
}

/* glibc's signal(): BSD semantics, i.e. SA_RESTART and the handler stays installed. */
MEMTRACE_EXPORT __sighandler_t signal(int sig, __sighandler_t handler)
{
    struct sigaction action, old;
    memset(&action, 0, sizeof action);
    action.sa_handler = handler;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaddset(&action.sa_mask, sig);
    if (sigaction(sig, &action, &old) != 0)
        return SIG_ERR;
    return old.sa_handler;
}
