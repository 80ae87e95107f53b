/* small_stacks.c — threads on small stacks: 4 threads with a 64 KiB stack from
 * pthread_attr_setstacksize, and 4 on 64 KiB stacks the program maps itself
 * (pthread_attr_setstack). Each allocates through a few frames, frees, and leaks one
 * 40-byte block. A checker whose per-thread state lives in static TLS (glibc carves it out
 * of every thread's stack) makes pthread_create fail with EINVAL here, or eats the stack.
 *
 * Expected: every pthread_create returns 0 (the sample exits 1 otherwise); 320 bytes in 8
 * blocks definitely lost in one loss record at leak_one; no other error. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "sample.h"

#define THREADS 4
#define STACK_SIZE (64 * 1024)

__attribute__((noinline)) static void leak_one(void)
{
    volatile char *p = malloc(40); /* expect: leak */
    p[0] = 1;
    p = NULL;
}

__attribute__((noinline)) static int churn(int depth)
{
    if (depth > 0)
        return churn(depth - 1) + 1;
    for (int i = 0; i < 1000; i++)
        free(malloc(16 + i % 64));
    return 0;
}

static void *worker(void *arg)
{
    churn(8);
    leak_one();
    sample_scrub_stack();
    return arg;
}

static int start(pthread_t *t, pthread_attr_t *attr)
{
    int rc = pthread_create(t, attr, worker, NULL);
    if (rc != 0)
        printf("pthread_create failed: %d\n", rc);
    return rc;
}

int main(void)
{
    pthread_t sized[THREADS], mapped[THREADS];
    pthread_attr_t attr;
    int failed = 0;

    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, STACK_SIZE);
    for (int i = 0; i < THREADS; i++)
        failed |= start(&sized[i], &attr);
    for (int i = 0; i < THREADS && !failed; i++)
        pthread_join(sized[i], NULL);
    for (int i = 0; i < THREADS && !failed; i++) {
        void *stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        pthread_attr_setstack(&attr, stack, STACK_SIZE);
        failed |= start(&mapped[i], &attr);
    }
    for (int i = 0; i < THREADS && !failed; i++)
        pthread_join(mapped[i], NULL);
    pthread_attr_destroy(&attr);
    printf(failed ? "failed\n" : "done\n");
    return failed ? 1 : 0;
}
