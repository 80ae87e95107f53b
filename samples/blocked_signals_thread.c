/* blocked_signals_thread.c — a worker thread blocks every signal (as servers do, leaving
 * signals to one thread) and waits in sigwait, holding a block only in its own stack
 * frame, when main returns. The exit-time leak check cannot stop that thread with a
 * signal: its stack must still be scanned (the block is reachable, not lost), and the
 * check must not wait long for it. With the argument `spin` the worker runs instead, in a
 * loop of its own code, where not even /proc can say where its stack pointer is.
 *
 * Expected (valgrind 3.19 agrees):
 *   24 bytes in 1 blocks definitely lost (leak_block, from main)
 *   64 bytes in 1 blocks still reachable (held by the worker's stack frame)
 *   exit status 0. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sample.h"

static pthread_barrier_t ready;
static volatile pid_t worker_tid;
static volatile int spin, spinning;

/* Whether the thread sleeps in rt_sigtimedwait (128), by its /proc syscall file: main
 * must not exit while the worker is still on its way there. */
static int in_sigwait(pid_t tid)
{
    char path[64], text[32] = "";
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 1;
    int ok = fgets(text, sizeof text, f) != NULL;
    fclose(f);
    return !ok || strncmp(text, "128 ", 4) == 0;
}

__attribute__((noinline)) static void leak_block(void)
{
    char *volatile p = malloc(24); /* expect: leak definite from main */
    memset(p, 'x', 24);
    p = NULL;
}

static void *hold_and_wait(void *arg)
{
    (void)arg;
    char *volatile held = malloc(64); /* expect: reachable on blocked thread's stack */
    worker_tid = gettid();
    memset(held, 'h', 64);
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    pthread_barrier_wait(&ready);
    while (spin)
        spinning = 1;
    sigset_t never;
    sigemptyset(&never);
    sigaddset(&never, SIGUSR2);
    int sig;
    for (;;)
        sigwait(&never, &sig);
    return (void *)held;
}

int main(int argc, char **argv)
{
    pthread_t worker;
    spin = argc > 1 && strcmp(argv[1], "spin") == 0;
    pthread_barrier_init(&ready, NULL, 2);
    if (pthread_create(&worker, NULL, hold_and_wait, NULL) != 0)
        return 1;
    pthread_barrier_wait(&ready);
    while (spin ? !spinning : !in_sigwait(worker_tid))
        sched_yield();
    leak_block();
    sample_forget();
    return 0;
}
