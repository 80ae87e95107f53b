/* fault.c — the SIGSEGV/SIGBUS handler for the guarded pool (see fault.h). */
#include "fault.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "eventlog.h"
#include "guard.h"
#include "os.h"
#include "runtime.h"
#include "stacks.h"
#include "x86_access.h"

/* The handler's own deepest path (cursor unwind, error line, module records) uses ~24 KiB;
 * fault_before_death may run the whole exit sequence. Reserved, not committed. */
#define ALT_STACK_SIZE (256 * 1024)
#define PF_WRITE 0x2                 /* x86 page-fault error code: the access was a write */
#define PF_INSTR 0x10                /* ... an instruction fetch */

void (*fault_before_death)(int sig, void *ucontext);

/* The signals a faulting instruction raises: memtrace's guard pages raise the first two;
 * a program's own fault of any of them gets its report before the process dies. */
static const int fault_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};
#define FAULT_SIGNALS (sizeof fault_signals / sizeof *fault_signals)

static struct {
    bool installed;
    bool continue_after;
    struct sigaction previous[FAULT_SIGNALS];   /* the program's, as fault_signals */
} fault;

static __thread struct {
    bool done;
    char *map;                       /* ours, to release; NULL when the program has its own */
    size_t len;
} alt_stack;

/* The program's action for sig, or NULL when sig is not one of fault_signals. */
static struct sigaction *previous_action(int sig)
{
    for (size_t i = 0; i < FAULT_SIGNALS; i++)
        if (fault_signals[i] == sig)
            return &fault.previous[i];
    return NULL;
}

/* ----------------------------------------------------------------------------------
 * The handler
 * -------------------------------------------------------------------------------- */

/* Dies of sig as if memtrace were not there: default action back, and the signal sent to
 * this thread again. It stays blocked while the handler runs and lands as it returns,
 * even if another thread made the page accessible in between. */
static void die_of(int sig)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    os_sigaction(sig, &dfl, NULL);
    syscall(SYS_tgkill, getpid(), os_gettid(), sig);
}

/* The program's own fault is about to end the process: the log gets its end (heap and
 * leak summaries) first, as after abort() or under valgrind, unless the fault came from
 * inside memtrace, which may hold its locks. */
static void end_log_before_program_death(int sig, const siginfo_t *si, void *context)
{
    if (runtime_thread.busy || !fault_before_death)
        return;
    runtime_thread.busy = 1;
    if (si->si_code > 0) {
        int depth = runtime_options.num_callers;
        eventlog_crash(sig, si->si_code, (uintptr_t)si->si_addr,
                       stacks_capture_from_context(context, depth > 0 ? depth : STACK_MAX_DEPTH));
    }
    fault_before_death(sig, context);
    runtime_thread.busy = 0;
}

/* Not ours: the program's previous action, as the kernel would have taken it. */
static void pass_to_previous(int sig, siginfo_t *si, void *context)
{
    struct sigaction *prev = previous_action(sig), call = *prev;
    bool sent = si->si_code <= 0;                 /* kill/raise, not a fault: no retry */
    sigset_t saved;

    if (call.sa_handler == SIG_IGN && sent)
        return;
    if (call.sa_handler == SIG_DFL || call.sa_handler == SIG_IGN) {
        /* A fault cannot be ignored: either way the default action ends the process. */
        end_log_before_program_death(sig, si, context);
        if (sent)
            die_of(sig);
        else
            os_sigaction(sig, prev, NULL);           /* the instruction faults again, unhandled */
        return;
    }
    if (call.sa_flags & SA_RESETHAND) {
        prev->sa_handler = SIG_DFL;
        prev->sa_flags &= ~SA_SIGINFO;
    }
    pthread_sigmask(SIG_BLOCK, &call.sa_mask, &saved);
    if (call.sa_flags & SA_SIGINFO)
        call.sa_sigaction(sig, si, context);
    else
        call.sa_handler(sig);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
}

static enum error_kind error_kind_of(enum guard_access access)
{
    if (access == GUARD_ACCESS_UNDERFLOW)
        return ERROR_HEAP_UNDERFLOW;
    return access == GUARD_ACCESS_USE_AFTER_FREE ? ERROR_USE_AFTER_FREE : ERROR_HEAP_OVERFLOW;
}

static void log_fault(uintptr_t addr, ucontext_t *uc, const struct guard_info *info)
{
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    greg_t code = uc->uc_mcontext.gregs[REG_ERR];
    int depth = runtime_options.num_callers;
    /* A jump into the pool: pc is the faulting address itself and cannot be read. */
    bool fetch = (code & PF_INSTR) || guard_owns(pc);
    struct x86_access access = {0, false, 0};
    if (!fetch)
        x86_access_decode((const void *)pc, uc->uc_mcontext.gregs, &access);
    size_t size = access.size;
    /* An access that starts before the page it faulted on is named by its first byte, as
     * valgrind names it ("8 bytes inside a block of size 13"), when the decoder agrees. */
    if (access.has_address && access.address < addr && addr - access.address < size)
        addr = access.address;
    struct error_event e = {
        .kind = error_kind_of(info->access), .tid = runtime_tid(), .addr = addr,
        .stack = stacks_capture_from_context(uc, depth > 0 ? depth : STACK_MAX_DEPTH),
        .op = (code & PF_WRITE) ? ACCESS_WRITE : ACCESS_READ,
        .access_size = size ? size : 1,           /* not decoded: 1, the least any access is */
        .has_block = true, .block = info->block, .block_size = info->size,
        .alloc_stack = info->alloc_stack, .free_stack = info->free_stack,
        .alloc_kind = info->alloc_kind, .free_kind = info->free_kind,
    };
    e.exact = e.stack != 0;
    eventlog_error(&e);
}

static void report_guard_fault(int sig, uintptr_t addr, ucontext_t *uc, const struct guard_info *info)
{
    /* Inside memtrace this thread may hold the log or pool lock: logging could deadlock. */
    if (runtime_thread.busy) {
        die_of(sig);
        return;
    }
    runtime_thread.busy = 1;
    if (guard_claim_report(info->slot))
        log_fault(addr, uc, info);
    if (__atomic_load_n(&fault.continue_after, __ATOMIC_RELAXED) && guard_open_page(addr)) {
        runtime_leave();
        return;                                   /* the access is retried and now succeeds */
    }
    if (fault_before_death)
        fault_before_death(sig, uc);
    die_of(sig);
}

static void on_fault(int sig, siginfo_t *si, void *context)
{
    int saved_errno = errno;
    struct guard_info info;
    uintptr_t addr = (uintptr_t)si->si_addr;

    /* Only a fault raised by the kernel (si_code > 0) carries a meaningful si_addr. */
    if ((sig == SIGSEGV || sig == SIGBUS) && si->si_code > 0 && guard_describe(addr, &info) &&
        info.access != GUARD_ACCESS_UNKNOWN)
        report_guard_fault(sig, addr, context, &info);
    else
        pass_to_previous(sig, si, context);
    errno = saved_errno;
}

/* ----------------------------------------------------------------------------------
 * Public interface
 * -------------------------------------------------------------------------------- */

bool fault_install(void)
{
    struct sigaction action;
    ucontext_t here;

    if (fault.installed)
        return true;
    /* Resolves the cursor entry points and warms libunwind's caches, outside any handler. */
    if (getcontext(&here) == 0)
        stacks_capture_from_context(&here, 2);
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_fault;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < FAULT_SIGNALS; i++)
        if (os_sigaction(fault_signals[i], &action, &fault.previous[i]) != 0) {
            while (i-- > 0)
                os_sigaction(fault_signals[i], &fault.previous[i], NULL);
            return false;
        }
    fault.installed = true;
    fault_thread_init();
    return true;
}

bool fault_take_program_action(int sig, const struct sigaction *action, struct sigaction *old)
{
    struct sigaction *prev = previous_action(sig);
    if (!prev || !__atomic_load_n(&fault.installed, __ATOMIC_ACQUIRE))
        return false;
    struct sigaction was = *prev;
    if (action)
        *prev = *action;
    if (old)
        *old = was;
    return true;
}

void fault_uninstall(void)
{
    if (!fault.installed)
        return;
    for (size_t i = 0; i < FAULT_SIGNALS; i++)
        os_sigaction(fault_signals[i], &fault.previous[i], NULL);
    fault.installed = false;
}

void fault_thread_init(void)
{
    stack_t current, ours;

    if (alt_stack.done)
        return;
    alt_stack.done = true;
    if (sigaltstack(NULL, &current) == 0 && !(current.ss_flags & SS_DISABLE))
        return;                                   /* the program's own: keep it */
    size_t page = (size_t)sysconf(_SC_PAGESIZE), len = ALT_STACK_SIZE + page;
    char *map = os_mmap(NULL, len, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (map == MAP_FAILED)
        return;
    os_mprotect(map, page, PROT_NONE);            /* overflowing it faults, not corrupts */
    ours.ss_sp = map + page;
    ours.ss_size = ALT_STACK_SIZE;
    ours.ss_flags = 0;
    if (sigaltstack(&ours, NULL) != 0) {
        os_munmap(map, len);
        return;
    }
    alt_stack.map = map;
    alt_stack.len = len;
}

void fault_thread_exit(void)
{
    stack_t current, off = {.ss_flags = SS_DISABLE};

    if (!alt_stack.map || sigaltstack(NULL, &current) != 0)
        return;
    /* Still installed: switch it off first (refused while running on it). Replaced by the
     * program: nothing uses it any more. */
    bool installed = current.ss_sp == alt_stack.map + (alt_stack.len - ALT_STACK_SIZE) &&
                     !(current.ss_flags & SS_DISABLE);
    if (installed && sigaltstack(&off, NULL) != 0)
        return;
    os_munmap(alt_stack.map, alt_stack.len);
    alt_stack.map = NULL;
    alt_stack.done = false;
}

void fault_set_continue(bool yes)
{
    __atomic_store_n(&fault.continue_after, yes, __ATOMIC_RELAXED);
}
