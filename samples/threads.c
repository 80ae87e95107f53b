/* threads.c — 8 threads allocate blocks and hand them to the next thread, which frees
 * them (allocation and free happen on different threads), and each thread leaks exactly one
 * 24-byte block from the same code path.
 *
 * Expected (valgrind 3.19 agrees):
 *   192 bytes in 8 blocks definitely lost in ONE loss record (leak_one, called by worker:
 *   the same allocation stack in every thread); 0 indirect, 0 possible;
 *   8 * 100 blocks of 32 bytes allocated and freed across threads. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sample.h"

#define NTHREADS 8
#define NBLOCKS 100

/* One single-slot mailbox per thread: thread i posts into mailbox (i + 1) % NTHREADS. */
struct mailbox {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    void *slot;
};

static struct mailbox g_box[NTHREADS];

static void post(struct mailbox *box, void *block)
{
    pthread_mutex_lock(&box->lock);
    while (box->slot != NULL)
        pthread_cond_wait(&box->changed, &box->lock);
    box->slot = block;
    pthread_cond_broadcast(&box->changed);
    pthread_mutex_unlock(&box->lock);
}

static void *take(struct mailbox *box)
{
    pthread_mutex_lock(&box->lock);
    while (box->slot == NULL)
        pthread_cond_wait(&box->changed, &box->lock);
    void *block = box->slot;
    box->slot = NULL;
    pthread_cond_broadcast(&box->changed);
    pthread_mutex_unlock(&box->lock);
    return block;
}

__attribute__((noinline)) static void leak_one(int id)
{
    char *volatile lost = malloc(24); /* expect: leak definite per thread */
    memset(lost, id, 24);
    lost = NULL;
}

static void *worker(void *arg)
{
    int id = (int)(long)arg;
    struct mailbox *out = &g_box[(id + 1) % NTHREADS];
    struct mailbox *in = &g_box[id];

    /* Interleave: post one, take one, so no thread waits on a full mailbox forever. */
    for (int i = 0; i < NBLOCKS; i++) {
        char *block = malloc(32);
        memset(block, id, 32);
        post(out, block);
        free(take(in));
    }
    leak_one(id);
    sample_forget();
    return NULL;
}

int main(void)
{
    pthread_t threads[NTHREADS];

    for (int i = 0; i < NTHREADS; i++) {
        pthread_mutex_init(&g_box[i].lock, NULL);
        pthread_cond_init(&g_box[i].changed, NULL);
    }
    for (int i = 0; i < NTHREADS; i++)
        if (pthread_create(&threads[i], NULL, worker, (void *)(long)i) != 0)
            return 1;
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(threads[i], NULL);

    sample_forget();
    return 0;
}
