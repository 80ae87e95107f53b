/* reachable_specific.c — blocks whose only pointers are thread-specific values
 * (pthread_setspecific) of keys past the first 32: glibc keeps those in a second-level
 * array it mallocs on the thread's first such key, here in the main thread and in a worker
 * still waiting at exit. pthread_getspecific can still return them: still reachable.
 * A tool whose own code sets such a key first (libunwind's per-thread cache, while memtrace
 * unwinds) must still scan that array.
 * Expected (valgrind 3.19 agrees): 77 bytes in 1 blocks and 88 bytes in 1 blocks still
 * reachable (keep_value); 0 definite, 0 indirect, 0 possible; 0 errors. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sample.h"

#define KEYS 40

static pthread_key_t keys[KEYS];
static pthread_barrier_t started;

__attribute__((noinline)) static void keep_value(size_t size)
{
    char *volatile p = malloc(size); /* expect: reachable through a key */
    memset(p, 's', size);
    pthread_setspecific(keys[KEYS - 1], p);
    p = NULL;
}

static void *worker(void *arg)
{
    (void)arg;
    keep_value(88);
    sample_forget();
    pthread_barrier_wait(&started);
    for (;;)
        pause();
    return NULL;
}

int main(void)
{
    pthread_t t;
    for (int i = 0; i < KEYS; i++)
        pthread_key_create(&keys[i], NULL);
    pthread_barrier_init(&started, NULL, 2);
    keep_value(77);
    sample_forget();
    if (pthread_create(&t, NULL, worker, NULL) != 0)
        return 1;
    pthread_barrier_wait(&started);
    printf("%s\n", pthread_getspecific(keys[KEYS - 1]) ? "value kept" : "no value");
    return 0;
}
