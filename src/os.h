/* os.h — the runtime's one seam to the system: raw syscalls, a lock (a short spin, then a
 * futex sleep) that is safe to take inside malloc and to reset after fork, environment
 * lookup without getenv, and a fixed-buffer line formatter used instead of stdio.
 * Nothing here allocates. */
#ifndef MEMTRACE_OS_H
#define MEMTRACE_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct spinlock {
    int locked;
};

void os_lock(struct spinlock *lock);
void os_unlock(struct spinlock *lock);
/* How many memtrace locks the calling thread holds: non-zero inside a signal handler that
 * interrupted memtrace, which must then take none of them. */
int os_locks_held(void);
/* In a fork child: the locks were reset, so nothing is held any more. */
void os_forget_held_locks(void);
/* After fork the child has one thread: whoever held the lock is gone. */
static inline void os_lock_reset(struct spinlock *lock) { lock->locked = 0; }

pid_t os_gettid(void);
/* Raw mapping syscalls: libmemtrace exports mmap/munmap/mprotect itself, so its own
 * mappings must not go through those symbols. MAP_FAILED / -1 with errno on failure. */
void *os_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset);
int os_munmap(void *addr, size_t len);
int os_mprotect(void *addr, size_t len, int prot);
/* The real sigaction: libmemtrace exports sigaction itself (see interpose/signal.c). */
struct sigaction;
int os_sigaction(int sig, const struct sigaction *action, struct sigaction *old);
/* A clock's reading in ns (CLOCK_THREAD_CPUTIME_ID, CLOCK_PROCESS_CPUTIME_ID, …); 0 on failure. */
uint64_t os_clock_ns(int clock);
/* fd moved (close-on-exec) to a descriptor of 700 or more, clear of the low ones programs
 * close and dup2 over; fd itself when that fails. */
int os_move_fd_high(int fd);
/* Writes everything or gives up on a hard error; retries EINTR and short writes. */
bool os_write_all(int fd, const void *buf, size_t len);
/* The lower-case hex digits at *p (no 0x), advancing *p past them. */
uint64_t os_parse_hex(const char **p);
/* The decimal number a file (a /proc entry) starts with; 0 when it cannot be read. */
uint64_t os_read_number(const char *path);

/* Reads `name` from the process environment without getenv (safe before libc init). */
const char *os_getenv(const char *name);

/* A line built in a caller-provided fixed buffer; overflow truncates, never writes past. */
struct line {
    char *buf;
    size_t len, cap;
};

void line_init(struct line *l, char *buf, size_t cap);
void line_str(struct line *l, const char *s);
void line_mem(struct line *l, const char *s, size_t n);
void line_char(struct line *l, char c);
void line_dec(struct line *l, uint64_t v);
void line_hex(struct line *l, uint64_t v); /* with 0x */
/* Free text for the event log: backslash and newline escaped as \\ and \n. */
void line_escaped(struct line *l, const char *s);
/* Appends `pattern` with every %p replaced by pid. */
void line_expand_pid(struct line *l, const char *pattern, pid_t pid);

#endif
