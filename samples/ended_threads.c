/* ended_threads.c — threads that end without being joined, each leaving the only pointer
 * to a block where glibc keeps it while the thread's stack stays mapped: its return value,
 * its pthread_exit value, a __thread variable. The blocks are reachable, as valgrind says;
 * a fourth thread drops its block's pointer, a fifth (joined) leaves one in its __thread
 * variable: both definitely lost.
 * Expected (valgrind 3.19 agrees, besides the DTVs of the threads that it counts possibly
 * lost and memtrace's default suppressions leave out): 111, 222 and 333 bytes in 1 blocks
 * each still reachable; 44 and 55 bytes in 1 blocks each definitely lost. */
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "sample.h"

static __thread void *kept_in_tls;

static void *return_block(void *arg)
{
    (void)arg;
    return malloc(111); /* expect: reachable through the return value */
}

static void *keep_in_tls(void *arg)
{
    (void)arg;
    kept_in_tls = malloc(222); /* expect: reachable through a __thread variable */
    return NULL;
}

static void *exit_with_block(void *arg)
{
    (void)arg;
    pthread_exit(malloc(333)); /* expect: reachable through pthread_exit */
}

static void *leave_in_tls(void *arg)
{
    (void)arg;
    kept_in_tls = malloc(55); /* expect: leak definite in a joined thread's TLS */
    return NULL;
}

__attribute__((noinline)) static void *drop_block(void *arg)
{
    (void)arg;
    char *volatile p = malloc(44); /* expect: leak definite in a thread */
    memset(p, 'd', 44);
    p = NULL;
    sample_scrub_stack();
    return NULL;
}

/* Threads of this process still running, main's included (/proc/self/task). */
static int running_threads(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return 1;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

int main(void)
{
    void *(*const bodies[])(void *) = {return_block, keep_in_tls, exit_with_block, drop_block,
                                        leave_in_tls};
    pthread_t t[5];
    for (int i = 0; i < 5; i++)
        if (pthread_create(&t[i], NULL, bodies[i], NULL) != 0)
            return 1;
    pthread_join(t[3], NULL);
    pthread_join(t[4], NULL);
    while (running_threads() > 1)   /* the others end, and are never joined */
        sched_yield();
    sample_forget();
    return 0;
}
