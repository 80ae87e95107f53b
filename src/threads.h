/* threads.h — stops every other thread of the process for the exit-time leak scan and
 * records what the scan needs from each: its registers, stack pointer and thread pointer.
 * A signal handshake from inside the process (no ptrace, so it works under gdb, strace
 * and in containers): each thread's handler saves its context, acknowledges, and waits on
 * a futex until released. A thread that blocks the signal is not sent it (nor waited
 * for); it and any other that does not answer in time are reported as not stopped, with
 * the stack pointer /proc gives while they sleep in the kernel. */
#ifndef MEMTRACE_THREADS_H
#define MEMTRACE_THREADS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define THREAD_REG_COUNT 23          /* NGREG on x86_64 */

struct thread_snapshot {
    pid_t tid;
    int stopped;                    /* set by the thread itself, in the handler */
    uintptr_t sp, tp;
    uintptr_t asleep_sp;            /* not stopped: its stack pointer from /proc, or 0 */
    uintptr_t regs[THREAD_REG_COUNT];
};

/* Stops all threads but the caller, filling at most `cap` snapshots; returns how many.
 * Allocates nothing, so it may run while every memtrace lock is held. */
size_t threads_stop_others(struct thread_snapshot *snaps, size_t cap);
void threads_resume_others(void);
/* Whether the calling thread is the process's only one (false when /proc cannot say). */
bool threads_alone(void);

#endif
