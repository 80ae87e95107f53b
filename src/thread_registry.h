/* thread_registry.h — what the exit-time leak scan needs to know of threads it cannot ask:
 * the stack bounds of each live thread memtrace has seen (a running thread that blocks the
 * stop signal is then read whole, where its stack pointer is unknown), and the thread
 * pointers of threads that ended (glibc keeps an ended thread's descriptor and static TLS,
 * with its return value and __thread variables, while its stack stays mapped; valgrind
 * reads them there too). Fixed tables in memtrace's own memory, no lock: slots are claimed
 * with one atomic operation. */
#ifndef MEMTRACE_THREAD_REGISTRY_H
#define MEMTRACE_THREAD_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

void thread_registry_started(pid_t tid, uintptr_t stack_lo, uintptr_t stack_hi);
/* The thread is ending: its stack leaves the table, its thread pointer joins the last
 * ended ones (a thread pointer already there is not added twice: glibc reuses stacks). */
void thread_registry_ended(pid_t tid, uintptr_t tp);
bool thread_registry_stack(pid_t tid, uintptr_t *lo, uintptr_t *hi);
/* Copies at most cap thread pointers of ended threads; returns how many. */
size_t thread_registry_ended_tps(uintptr_t *out, size_t cap);

#endif
