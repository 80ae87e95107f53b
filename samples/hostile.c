/* hostile.c — programs that are hard on a tool living inside them (memtrace issue 6,
 * "Reliability"). One mode per run, `hostile MODE [args]`; every mode first leaks one block
 * of 123 bytes in leak_once() (a definite leak a report must still show) and prints one line
 * on stdout with write(2) (no stdio buffer), then:
 *
 *   vfork PROG [ARGS]   vfork(); the child execs PROG (or _exit(127) if it cannot); the
 *                       parent waits and exits with the child's exit status.
 *   vfork-exit N        vfork(); the child calls _exit(N) without exec (what POSIX allows
 *                       a vfork child); the parent prints the child's status, exits 0.
 *   spawn PROG [ARGS]   posix_spawn of PROG; the parent waits and exits with its status.
 *   longjmp N           main allocates and frees in a loop while SIGALRM (setitimer, every
 *                       100 us) and SIGUSR1 (raised by main every 64 rounds) arrive; both
 *                       handlers siglongjmp back to main's sigsetjmp. As POSIX requires of a
 *                       handler that does not return, the two signals are blocked around each
 *                       malloc and free (sigprocmask), so a jump never leaves the middle of
 *                       one. Stops after N jumps (or 20 s). Every block the loop allocates
 *                       is freed, whether or not a jump cut its round short (the pointers
 *                       live in volatile slots).
 *                       (Without the masking, glibc's own malloc aborts with "corrupted
 *                       double-linked list" within a few thousand jumps.)
 *   rlimit MB           setrlimit(RLIMIT_AS) to the current size + MB megabytes, then
 *                       mallocs 1 MB blocks until malloc returns NULL (prints how many), then
 *                       small blocks until NULL, frees them all, exits 0.
 *   sigkill             a double free (an error memtrace reports and lets the program go on),
 *                       then kill(getpid(), SIGKILL).
 *   closefds DIR        what a daemon does first: closes descriptors 3 to 1023, changes to
 *                       DIR, opens a.txt and b.txt (they get the low numbers again), writes
 *                       200 records to each while allocating from new call stacks (some in
 *                       a SIGUSR2 handler), reads
 *                       both back and exits 0 when each holds exactly what was written, 3
 *                       when not (a tool's own descriptor was still in use under them).
 *
 * Expected: the 123-byte definite leak in every mode, and for vfork, vfork-exit and spawn a
 * second one of 77 bytes, leaked by the parent after its child ended (leak_after_child); no runtime error except sigkill's double free; exit status as described. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sample.h"

extern char **environ;

__attribute__((noinline, format(printf, 1, 2))) static void out(const char *fmt, ...)
{
    char line[160];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (write(STDOUT_FILENO, line, (size_t)n) < 0)
        _exit(1);
}

__attribute__((noinline)) static void leak_once(void)
{
    char *volatile p = malloc(123); /* expect: leak definite hostile */
    memset(p, 'h', 123);
    p = NULL;
}

/* After a child ran (vfork, posix_spawn): the parent's report must still see this. */
__attribute__((noinline)) static void leak_after_child(void)
{
    char *volatile p = malloc(77); /* expect: leak definite after child */
    memset(p, 'a', 77);
    p = NULL;
    sample_forget();
}

static int status_of(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

static int mode_vfork(char **argv)
{
    pid_t pid = vfork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return 1;
    out("vfork child %ld status=%d\n", (long)pid, status_of(status));
    leak_after_child();
    return status_of(status);
}

static int mode_vfork_exit(int code)
{
    pid_t pid = vfork();
    if (pid < 0)
        return 1;
    if (pid == 0)
        _exit(code);
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return 1;
    out("vfork-exit child %ld status=%d\n", (long)pid, status_of(status));
    leak_after_child();
    return 0;
}

static int mode_spawn(char **argv)
{
    pid_t pid;
    int err = posix_spawn(&pid, argv[0], NULL, NULL, argv, environ);
    if (err != 0) {
        out("spawn failed errno=%d\n", err);
        return 1;
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return 1;
    out("spawn child %ld status=%d\n", (long)pid, status_of(status));
    leak_after_child();
    return status_of(status);
}

/* ---- longjmp out of signal handlers ---- */
static sigjmp_buf jump_back;
static volatile sig_atomic_t armed;
static volatile long alarm_jumps, usr1_jumps;

static void jump_handler(int sig)
{
    if (!armed)
        return;
    armed = 0;
    if (sig == SIGALRM)
        alarm_jumps++;
    else
        usr1_jumps++;
    siglongjmp(jump_back, 1);
}

#define SLOTS 16
static void *volatile slots[SLOTS];
static sigset_t jump_signals;

static void allocs_begin(void)
{
    sigprocmask(SIG_BLOCK, &jump_signals, NULL);
}

static void allocs_end(void)
{
    sigprocmask(SIG_UNBLOCK, &jump_signals, NULL);
}

/* Slot I is replaced by a new block: the old one is freed first, and the slot never holds
 * a pointer to a freed block, whichever instruction a jump leaves from. */
__attribute__((noinline)) static void churn_round(long round)
{
    for (int i = 0; i < SLOTS; i++) {
        allocs_begin();
        void *p = slots[i];
        slots[i] = NULL;
        free(p);
        slots[i] = malloc((size_t)(16 + (round * 7 + i * 13) % 2000));
        allocs_end();
    }
    if (round % 64 == 0)
        raise(SIGUSR1);
    for (int i = 0; i < SLOTS; i += 2) {
        allocs_begin();
        void *p = slots[i];
        slots[i] = NULL;
        free(p);
        allocs_end();
    }
}

static int mode_longjmp(long target)
{
    sigemptyset(&jump_signals);
    sigaddset(&jump_signals, SIGALRM);
    sigaddset(&jump_signals, SIGUSR1);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = jump_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    struct itimerval it = {{0, 100}, {0, 100}};
    setitimer(ITIMER_REAL, &it, NULL);

    time_t deadline = time(NULL) + 20;
    volatile long rounds = 0;
    sigsetjmp(jump_back, 1);
    while (alarm_jumps + usr1_jumps < target && time(NULL) < deadline) {
        rounds = rounds + 1;
        armed = 1;
        churn_round(rounds);
    }
    armed = 0;
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    for (int i = 0; i < SLOTS; i++) {
        free(slots[i]);
        slots[i] = NULL;
    }
    long jumps = alarm_jumps + usr1_jumps;
    out("longjmp jumps=%ld usr1=%ld rounds=%ld %s\n", jumps, (long)usr1_jumps, (long)rounds,
        jumps >= target ? "ok" : "short");
    return jumps >= target ? 0 : 1;
}

/* ---- allocation until malloc fails ---- */
static long vm_size_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0;
    if (!f)
        return -1;
    if (fscanf(f, "%ld", &pages) != 1)
        pages = -1;
    fclose(f);
    return pages < 0 ? -1 : pages * sysconf(_SC_PAGESIZE);
}

struct node {
    struct node *next;
};

static int mode_rlimit(long mb)
{
    long now = vm_size_bytes();
    if (now < 0)
        return 1;
    struct rlimit lim = {(rlim_t)now + (rlim_t)mb * 1048576, (rlim_t)now + (rlim_t)mb * 1048576};
    if (setrlimit(RLIMIT_AS, &lim) != 0)
        return 1;
    struct node *big = NULL, *small = NULL;
    long nbig = 0, nsmall = 0;
    for (;;) {
        struct node *n = malloc(1048576);
        if (!n)
            break;
        n->next = big;
        big = n;
        nbig++;
    }
    int big_errno = errno;
    for (;;) {
        struct node *n = malloc(64);
        if (!n)
            break;
        n->next = small;
        small = n;
        nsmall++;
    }
    while (big) {
        struct node *n = big->next;
        free(big);
        big = n;
    }
    while (small) {
        struct node *n = small->next;
        free(small);
        small = n;
    }
    out("rlimit big=%ld enomem=%d small=%d\n", nbig, big_errno == ENOMEM, nsmall > 0);
    /* With the memory back, malloc works again. */
    char *volatile again = malloc(4096);
    if (!again)
        return 1;
    free(again);
    return nbig > 0 ? 0 : 1;
}

static int mode_sigkill(void)
{
    char *volatile p = malloc(48);
    free(p);
    free(p); /* expect: double free before kill */
    out("sigkill %ld\n", (long)getpid());
    kill(getpid(), SIGKILL);
    return 1;
}

/* A new stack for every depth: each one unwinds from scratch, not from a cache. */
__attribute__((noinline)) static int alloc_at_depth(int depth, size_t size)
{
    if (depth > 0)
        return alloc_at_depth(depth - 1, size + 1) + 1;
    char *volatile p = malloc(size);
    memset(p, 1, size);
    free(p);
    return 0;
}

/* Raised from main, never mid-malloc: a stack through a signal frame is unwound step by
 * step, where libunwind checks each word it reads. */
static void alloc_in_handler(int sig)
{
    alloc_at_depth(sig, 40);
}

static bool holds_exactly(const char *path, const char *expected, size_t len)
{
    static char got[8192];
    int fd = open(path, O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, got, sizeof got);
    if (fd >= 0)
        close(fd);
    return n == (ssize_t)len && memcmp(got, expected, len) == 0;
}

static int mode_closefds(const char *dir)
{
    static char written[8192];
    size_t len = 0;

    for (int fd = 3; fd < 1024; fd++)
        close(fd);
    if (chdir(dir) != 0)
        return 3;
    int fa = open("a.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fb = open("b.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fa < 0 || fb < 0)
        return 3;
    signal(SIGUSR2, alloc_in_handler);
    for (int i = 0; i < 200; i++) {
        alloc_at_depth(i % 40, 16 + (size_t)i);
        if (i % 50 == 0)
            raise(SIGUSR2);
        char line[32];
        int n = snprintf(line, sizeof line, "record %03d\n", i);
        /* dprintf's buffer is malloc'd from inside libc, whose frames libunwind checks */
        if (dprintf(fa, "%s", line) != n || write(fb, line, (size_t)n) != n)
            return 3;
        memcpy(written + len, line, (size_t)n);
        len += (size_t)n;
    }
    close(fa);
    close(fb);
    if (!holds_exactly("a.txt", written, len) || !holds_exactly("b.txt", written, len))
        return 3;
    out("closefds ok\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    leak_once();
    sample_forget();
    out("hostile %ld\n", (long)getpid());
    if (strcmp(argv[1], "vfork") == 0 && argc >= 3)
        return mode_vfork(argv + 2);
    if (strcmp(argv[1], "vfork-exit") == 0 && argc >= 3)
        return mode_vfork_exit(atoi(argv[2]));
    if (strcmp(argv[1], "spawn") == 0 && argc >= 3)
        return mode_spawn(argv + 2);
    if (strcmp(argv[1], "longjmp") == 0 && argc >= 3)
        return mode_longjmp(atol(argv[2]));
    if (strcmp(argv[1], "rlimit") == 0 && argc >= 3)
        return mode_rlimit(atol(argv[2]));
    if (strcmp(argv[1], "sigkill") == 0)
        return mode_sigkill();
    if (strcmp(argv[1], "closefds") == 0 && argc >= 3)
        return mode_closefds(argv[2]);
    return 2;
}
