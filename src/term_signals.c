/* term_signals.c — memtrace standing in for the default action of the signals that end
 * the process (see term_signals.h). */
#include "term_signals.h"

#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "eventlog.h"
#include "os.h"
#include "runtime.h"
#include "stacks.h"

void (*term_signals_before_death)(int sig, void *ucontext);

/* Default action: terminate or dump core. Not the faults (src/fault.h), not SIGKILL, nor
 * SIGTRAP (debuggers) or the real-time ones (glibc keeps two for itself). */
static const int term_signals[] = {SIGHUP,  SIGINT,  SIGQUIT, SIGTERM, SIGPIPE, SIGALRM,
                                   SIGUSR1, SIGUSR2, SIGABRT, SIGXCPU, SIGXFSZ, SIGVTALRM};
#define TERM_SIGNALS (sizeof term_signals / sizeof *term_signals)

static struct {
    bool installed;
    struct sigaction ours;
    struct sigaction program[TERM_SIGNALS];  /* the SIG_DFL the program last set, for old */
} term;

static int index_of(int sig)
{
    for (size_t i = 0; i < TERM_SIGNALS; i++)
        if (term_signals[i] == sig)
            return (int)i;
    return -1;
}

/* The default action at last: the signal again, unblocked, with SIG_DFL in place. */
static void die_of(int sig)
{
    struct sigaction dfl;
    sigset_t only;

    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    os_sigaction(sig, &dfl, NULL);
    syscall(SYS_tgkill, getpid(), os_gettid(), sig);
    sigemptyset(&only);
    sigaddset(&only, sig);
    pthread_sigmask(SIG_UNBLOCK, &only, NULL);
    for (;;)
        syscall(SYS_exit_group, 128 + sig);
}

/* Where the thread was when sig came, then the end of the log. */
static void end_log_and_die(int sig, int code, void *ucontext)
{
    int depth = runtime_options.num_callers > 0 ? runtime_options.num_callers : STACK_MAX_DEPTH;
    runtime_thread.busy = 1;
    eventlog_crash(sig, code, 0,
                   ucontext ? stacks_capture_from_context(ucontext, depth) : stacks_capture(depth));
    runtime_thread.busy = 0;
    if (term_signals_before_death)
        term_signals_before_death(sig, ucontext);
    die_of(sig);
}

static void on_term_signal(int sig, siginfo_t *si, void *context)
{
    if (runtime_thread.busy) {       /* memtrace may hold its locks here: wait for it */
        runtime_thread.pending_signal = sig;
        return;
    }
    end_log_and_die(sig, si->si_code > 0 ? si->si_code : SI_USER, context);  /* sent: no cause */
}

void term_signals_deliver_pending(void)
{
    int sig = runtime_thread.pending_signal;
    runtime_thread.pending_signal = 0;
    end_log_and_die(sig, SI_USER, NULL);
}

void term_signals_install(void)
{
    struct sigaction current;

    memset(&term.ours, 0, sizeof term.ours);
    term.ours.sa_sigaction = on_term_signal;
    term.ours.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&term.ours.sa_mask);
    for (size_t i = 0; i < TERM_SIGNALS; i++)
        sigaddset(&term.ours.sa_mask, term_signals[i]);
    for (size_t i = 0; i < TERM_SIGNALS; i++)
        if (os_sigaction(term_signals[i], NULL, &current) == 0 && current.sa_handler == SIG_DFL) {
            term.program[i] = current;
            os_sigaction(term_signals[i], &term.ours, NULL);
        }
    __atomic_store_n(&term.installed, true, __ATOMIC_RELEASE);
}

bool term_signals_take_program_action(int sig, const struct sigaction *action, struct sigaction *old)
{
    int i = index_of(sig);
    struct sigaction current;

    if (i < 0 || !__atomic_load_n(&term.installed, __ATOMIC_ACQUIRE) ||
        os_sigaction(sig, NULL, &current) != 0)
        return false;
    if (old)
        *old = (current.sa_flags & SA_SIGINFO) && current.sa_sigaction == on_term_signal
                   ? term.program[i] : current;
    if (action && action->sa_handler == SIG_DFL) {
        term.program[i] = *action;
        os_sigaction(sig, &term.ours, NULL);
    } else if (action && os_sigaction(sig, action, NULL) != 0) {
        return false;                /* the caller's own sigaction fails the same way */
    }
    return true;
}
