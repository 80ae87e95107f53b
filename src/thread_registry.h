/* thread_registry.h — what the exit-time leak scan needs to know of threads it cannot ask:
 * the stack bounds of each live thread memtrace has seen (a running thread that blocks the
 * stop signal is then read whole, where its stack pointer is unknown), and the thread
 * pointers of joinable threads that ended and were not joined (glibc keeps such a thread's
 * descriptor and static TLS, with its return value and __thread variables, until it is
 * joined; valgrind reads them too, and calls what only a joined or detached thread's TLS
 * held lost). Fixed tables in memtrace's own memory, no lock: slots are claimed with one
 * atomic operation. */
#ifndef MEMTRACE_THREAD_REGISTRY_H
#define MEMTRACE_THREAD_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* An ended thread's static TLS and descriptor: [tls_lo, tp + the descriptor's size). */
struct ended_thread {
    uintptr_t tls_lo, tp;
};

void thread_registry_started(pid_t tid, uintptr_t stack_lo, uintptr_t stack_hi);
/* The thread is ending: its stack leaves the table; if it waits to be joined, it joins the
 * last ended ones (a thread pointer already there is replaced: glibc reuses stacks).
 * tls_lo: the start of its static TLS blocks, which sit right above its first frame. */
void thread_registry_ended(pid_t tid, uintptr_t tls_lo, uintptr_t tp, bool joinable);
/* The thread whose pthread_t (its thread pointer) is tp was joined or detached. */
void thread_registry_released(uintptr_t tp);
bool thread_registry_stack(pid_t tid, uintptr_t *lo, uintptr_t *hi);
/* Copies at most cap ended threads; returns how many. */
size_t thread_registry_ended_threads(struct ended_thread *out, size_t cap);

#endif
