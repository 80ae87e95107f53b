/* os.c — raw system access for the runtime (see os.h). */
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static __thread int locks_held __attribute__((tls_model("initial-exec")));

int os_locks_held(void)
{
    return locks_held;
}

void os_forget_held_locks(void)
{
    locks_held = 0;
}

/* lock->locked: 0 free, 1 held, 2 held with sleepers. A short spin first (critical
 * sections are a few dozen instructions), then sleep on the futex: with more threads than
 * cores a spinner (or a sched_yield loop) burns the time slice its preempted holder
 * needs. */
#define LOCK_SPINS 64

static void lock_futex(struct spinlock *lock, int op, int value)
{
    syscall(SYS_futex, &lock->locked, op, value, NULL, NULL, 0);
}

void os_lock(struct spinlock *lock)
{
    locks_held++;
    int seen = 0;
    if (__atomic_compare_exchange_n(&lock->locked, &seen, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return;
    for (int spins = 0; spins < LOCK_SPINS; spins++) {
        __builtin_ia32_pause();
        seen = 0;
        if (__atomic_load_n(&lock->locked, __ATOMIC_RELAXED) == 0 &&
            __atomic_compare_exchange_n(&lock->locked, &seen, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return;
    }
    while (__atomic_exchange_n(&lock->locked, 2, __ATOMIC_ACQUIRE) != 0)
        lock_futex(lock, FUTEX_WAIT_PRIVATE, 2);
}

void os_unlock(struct spinlock *lock)
{
    if (__atomic_exchange_n(&lock->locked, 0, __ATOMIC_RELEASE) == 2)
        lock_futex(lock, FUTEX_WAKE_PRIVATE, 1);
    locks_held--;
}

pid_t os_gettid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

void *os_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset)
{
    return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, offset);
}

int os_munmap(void *addr, size_t len)
{
    return (int)syscall(SYS_munmap, addr, len);
}

int os_mprotect(void *addr, size_t len, int prot)
{
    return (int)syscall(SYS_mprotect, addr, len, prot);
}

uint64_t os_clock_ns(int clock)
{
    struct timespec ts;
    if (clock_gettime(clock, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

extern int __sigaction(int sig, const struct sigaction *action, struct sigaction *old);

int os_sigaction(int sig, const struct sigaction *action, struct sigaction *old)
{
    return __sigaction(sig, action, old);
}

int os_move_fd_high(int fd)
{
    int high = fcntl(fd, F_DUPFD_CLOEXEC, 700);
    if (high < 0)
        return fd;
    close(fd);
    return high;
}

bool os_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

const char *os_getenv(const char *name)
{
    size_t len = strlen(name);
    if (!environ)
        return NULL;
    for (char **e = environ; *e; e++)
        if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
            return *e + len + 1;
    return NULL;
}

void line_init(struct line *l, char *buf, size_t cap)
{
    l->buf = buf;
    l->len = 0;
    l->cap = cap;
}

void line_mem(struct line *l, const char *s, size_t n)
{
    if (n > l->cap - l->len)
        n = l->cap - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

void line_str(struct line *l, const char *s)
{
    line_mem(l, s, strlen(s));
}

void line_char(struct line *l, char c)
{
    line_mem(l, &c, 1);
}

void line_dec(struct line *l, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    line_mem(l, tmp + sizeof tmp - n, (size_t)n);
}

uint64_t os_parse_hex(const char **p)
{
    uint64_t v = 0;
    for (;; (*p)++) {
        char c = **p;
        if (c >= '0' && c <= '9')
            v = v * 16 + (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = v * 16 + (uint64_t)(c - 'a' + 10);
        else
            return v;
    }
}

uint64_t os_read_number(const char *path)
{
    char buf[32];
    uint64_t value = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
    if (fd >= 0)
        close(fd);
    for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
        value = value * 10 + (uint64_t)(buf[i] - '0');
    return value;
}

void line_hex(struct line *l, uint64_t v)
{
    char tmp[18];
    int n = 0;
    do {
        tmp[sizeof tmp - 1 - n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    line_str(l, "0x");
    line_mem(l, tmp + sizeof tmp - n, (size_t)n);
}

void line_escaped(struct line *l, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            line_str(l, "\\\\");
        else if (*s == '\n')
            line_str(l, "\\n");
        else
            line_char(l, *s);
    }
}

void line_expand_pid(struct line *l, const char *pattern, pid_t pid)
{
    for (const char *s = pattern; *s; s++) {
        if (s[0] == '%' && s[1] == 'p') {
            line_dec(l, (uint64_t)pid);
            s++;
        } else {
            line_char(l, *s);
        }
    }
}
