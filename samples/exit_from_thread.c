/* exit_from_thread.c — a second thread calls exit(7) while the main thread is still running
 * (blocked in a sleep loop). The leak check runs on the exiting thread with the main thread
 * alive: the block it leaked must still be found, and the block main keeps on its own
 * stack must count as reachable, not lost.
 *
 * Expected (valgrind 3.19 agrees):
 *   56 bytes in 1 blocks definitely lost (leak_and_exit, on the second thread)
 *   40 bytes in 1 blocks still reachable (held by main's live stack frame)
 *   exit status 7. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sample.h"

__attribute__((noinline)) static void leak_block(void)
{
    char *volatile p = malloc(56); /* expect: leak definite from thread */
    memset(p, 'x', 56);
    p = NULL;
}

static void *leak_and_exit(void *arg)
{
    (void)arg;
    leak_block();
    sample_forget();
    exit(7);
}

int main(void)
{
    char *volatile kept = malloc(40); /* expect: reachable on main stack */
    memset(kept, 'k', 40);

    pthread_t t;
    if (pthread_create(&t, NULL, leak_and_exit, NULL) != 0)
        return 1;
    for (;;) {                          /* never returns: the other thread ends the process */
        struct timespec tick = {0, 10 * 1000 * 1000};
        nanosleep(&tick, NULL);
        kept[0]++;
    }
}
