/* threads.c — stop-the-world by signal handshake (see threads.h). */
#include "threads.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "os.h"

#define STOP_SIGNAL (SIGRTMAX - 4)   /* glibc keeps SIGRTMIN..+2; programs rarely use this one */
#define STOP_TIMEOUT_MS 1000
#define RUNNING_WAIT_MS 20           /* for an unstopped thread to sleep in the kernel */

static struct {
    struct thread_snapshot *snaps;
    size_t count;
    int sent;
    int acks;
    int left;
    int release;
    struct sigaction old_action;
} stop;

static void futex_wait(int *addr, int expected)
{
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake_all(int *addr)
{
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

static void stop_handler(int sig, siginfo_t *info, void *context)
{
    int saved_errno = errno;
    ucontext_t *uc = context;
    pid_t tid = os_gettid();

    (void)sig;
    (void)info;
    for (size_t i = 0; i < stop.count; i++) {
        struct thread_snapshot *s = &stop.snaps[i];
        if (s->tid != tid || s->stopped)
            continue;
        for (int r = 0; r < THREAD_REG_COUNT; r++)
            s->regs[r] = (uintptr_t)uc->uc_mcontext.gregs[r];
        s->sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
        s->tp = (uintptr_t)__builtin_thread_pointer();
        __atomic_store_n(&s->stopped, 1, __ATOMIC_RELEASE);
        __atomic_fetch_add(&stop.acks, 1, __ATOMIC_ACQ_REL);
        while (!__atomic_load_n(&stop.release, __ATOMIC_ACQUIRE))
            futex_wait(&stop.release, 0);
        __atomic_fetch_add(&stop.left, 1, __ATOMIC_ACQ_REL);
        break;
    }
    errno = saved_errno;
}

/* Fills snaps[].tid with the process's threads other than `self`; returns how many. */
static size_t list_threads(struct thread_snapshot *snaps, size_t cap, pid_t self)
{
    char buf[4096];
    size_t n = 0;
    int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    long got;

    if (fd < 0)
        return 0;
    while ((got = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
        for (long off = 0; off < got;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            pid_t tid = 0;
            for (const char *c = d->d_name; *c >= '0' && *c <= '9'; c++)
                tid = tid * 10 + (*c - '0');
            if (tid > 0 && tid != self && n < cap) {
                memset(&snaps[n], 0, sizeof snaps[n]);
                snaps[n++].tid = tid;
            }
            off += d->d_reclen;
        }
    }
    close(fd);
    return n;
}

bool threads_alone(void)
{
    struct thread_snapshot other;
    int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return false;
    close(fd);
    return list_threads(&other, 1, os_gettid()) == 0;
}

/* Reads /proc/self/task/TID/<file> into buf as a string; false when it cannot. */
static bool read_task_file(pid_t tid, const char *file, char *buf, size_t cap)
{
    char path_buf[64];
    struct line path;
    line_init(&path, path_buf, sizeof path_buf);
    line_str(&path, "/proc/self/task/");
    line_dec(&path, (uint64_t)tid);
    line_char(&path, '/');
    line_str(&path, file);
    line_char(&path, '\0');
    int fd = open(path_buf, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t got = read(fd, buf, cap - 1);
    close(fd);
    buf[got > 0 ? got : 0] = '\0';
    return got > 0;
}

/* Whether the thread blocks sig (its SigBlk mask): it would never answer the handshake. */
static bool blocks_signal(pid_t tid, int sig)
{
    char status[4096];
    const char *at = read_task_file(tid, "status", status, sizeof status) ? strstr(status, "\nSigBlk:") : NULL;
    if (!at)
        return false;
    for (at += 8; *at == ' ' || *at == '\t'; at++)
        ;
    return os_parse_hex(&at) >> (sig - 1) & 1;
}

/* The stack pointer of a thread asleep in the kernel, from its syscall file ("nr args…
 * sp pc", or "-1 sp pc"; "running" gives nothing): 0 when unknown. */
static uintptr_t sleeping_sp(pid_t tid)
{
    char text[256];
    if (!read_task_file(tid, "syscall", text, sizeof text) || strncmp(text, "running", 7) == 0)
        return 0;
    uintptr_t fields[2] = {0, 0};
    for (const char *c = text; *c;) {
        while (*c == ' ')
            c++;
        if (c[0] != '0' || c[1] != 'x') {
            while (*c && *c != ' ')
                c++;
            continue;
        }
        c += 2;
        fields[0] = fields[1];
        fields[1] = os_parse_hex(&c);
    }
    return fields[0];
}

static void sleep_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* sleeping_sp, given a moment to go to sleep (a thread that blocks signals is most often
 * on its way into a wait). */
static uintptr_t unstopped_sp(pid_t tid)
{
    uintptr_t sp = sleeping_sp(tid);
    for (int waited = 0; !sp && waited < RUNNING_WAIT_MS; waited++) {
        sleep_ms(1);
        sp = sleeping_sp(tid);
    }
    return sp;
}

size_t threads_stop_others(struct thread_snapshot *snaps, size_t cap)
{
    pid_t pid = getpid();
    struct sigaction action;
    size_t n = list_threads(snaps, cap, os_gettid());
    int sent = 0;

    stop.snaps = snaps;
    stop.count = n;
    stop.acks = stop.left = stop.release = 0;
    if (n == 0)
        return 0;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = stop_handler;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&action.sa_mask);
    os_sigaction(STOP_SIGNAL, &action, &stop.old_action);
    for (size_t i = 0; i < n; i++)
        if (!blocks_signal(snaps[i].tid, STOP_SIGNAL) && syscall(SYS_tgkill, pid, snaps[i].tid, STOP_SIGNAL) == 0)
            sent++;
    for (int waited = 0; waited < STOP_TIMEOUT_MS &&
                         __atomic_load_n(&stop.acks, __ATOMIC_ACQUIRE) < sent;
         waited++)
        sleep_ms(1);
    stop.sent = sent;
    for (size_t i = 0; i < n; i++)
        if (!__atomic_load_n(&snaps[i].stopped, __ATOMIC_ACQUIRE))
            snaps[i].asleep_sp = unstopped_sp(snaps[i].tid);
    return n;
}

void threads_resume_others(void)
{
    int acks = __atomic_load_n(&stop.acks, __ATOMIC_ACQUIRE);

    __atomic_store_n(&stop.release, 1, __ATOMIC_RELEASE);
    futex_wake_all(&stop.release);
    /* The old action comes back only once every handler has returned; a thread that
     * blocked the signal may still take it later, so then ours stays (as a no-op). */
    for (int waited = 0; waited < STOP_TIMEOUT_MS &&
                         __atomic_load_n(&stop.left, __ATOMIC_ACQUIRE) < acks;
         waited++)
        sleep_ms(1);
    if (stop.count && acks == stop.sent && __atomic_load_n(&stop.left, __ATOMIC_ACQUIRE) == acks)
        os_sigaction(STOP_SIGNAL, &stop.old_action, NULL);
    stop.count = 0;
}
