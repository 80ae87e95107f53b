/* mtalloc.c — memtrace's own multi-threaded allocation benchmark (bench/run.py builds it).
 *
 *   mtalloc THREADS OPS_PER_THREAD [SEED]
 *
 * THREADS threads sit in a ring. Each one allocates OPS_PER_THREAD blocks of mixed sizes
 * (mostly 16..512 bytes, some up to 8 KiB), stamps every block with a header (size, tag),
 * keeps a window of recent blocks and frees the ones that fall out of it; every 4th block
 * is handed to the next thread through a lock-free single-producer/single-consumer ring
 * and freed there (cross-thread frees). A full ring means "free it yourself", so nobody
 * ever spins on a busy neighbour (important under valgrind, which runs one thread at a
 * time). Every free checks the block's header and tail.
 *
 * stdout (compared across tools; independent of scheduling):
 *   threads=T ops=N bytes=B checksum=C verified=V errors=E
 * stderr (timing of the allocation phase only, read by run.py's scaling test):
 *   mtalloc: threads=T ops=N ns=ELAPSED cross_frees=X
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>

#define RING 1024          /* slots per ring (power of two) */
#define WINDOW 256         /* blocks a thread keeps alive before freeing the oldest */
#define MAX_THREADS 64

struct header {
    uint64_t size;
    uint64_t tag;
};

struct ring {
    _Atomic uint64_t head;                 /* written by the consumer */
    char pad1[56];
    _Atomic uint64_t tail;                 /* written by the producer */
    char pad2[56];
    void *slot[RING];
    _Atomic int producer_done;
} __attribute__((aligned(64)));

struct worker {
    pthread_t thread;
    int index;
    long ops;
    uint64_t seed;
    struct ring *in, *out;
    /* results */
    uint64_t bytes, checksum, verified, errors, cross_frees;
} __attribute__((aligned(64)));

static int nthreads;
static struct ring rings[MAX_THREADS];
static struct worker workers[MAX_THREADS];

static uint64_t splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t pick_size(uint64_t r)
{
    unsigned k = (unsigned)(r & 63);
    if (k < 40)
        return 16 + (r >> 8) % 112;            /* 16..127 */
    if (k < 60)
        return 128 + (r >> 8) % 384;           /* 128..511 */
    return 512 + (r >> 8) % 7680;              /* 512..8191 */
}

static uint64_t tag_of(int thread, long i)
{
    return ((uint64_t)thread << 40) ^ (uint64_t)i ^ 0x5a5a000000ull;
}

static void *make_block(struct worker *w, long i)
{
    size_t size = pick_size(splitmix(&w->seed));
    struct header *h = malloc(size);
    if (!h) {
        w->errors++;
        return NULL;
    }
    h->size = size;
    h->tag = tag_of(w->index, i);
    ((unsigned char *)h)[size - 1] = (unsigned char)h->tag;
    w->bytes += size;
    w->checksum += h->tag * 31 + size;
    return h;
}

static void check_and_free(struct worker *w, void *p)
{
    struct header *h = p;
    if (((unsigned char *)h)[h->size - 1] != (unsigned char)h->tag)
        w->errors++;
    w->verified++;
    free(h);
}

static int ring_push(struct ring *r, void *p)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    if (tail - head == RING)
        return 0;
    r->slot[tail & (RING - 1)] = p;
    atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
    return 1;
}

static void *ring_pop(struct ring *r)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (head == tail)
        return NULL;
    void *p = r->slot[head & (RING - 1)];
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
    return p;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    void *window[WINDOW] = {0};
    void *p;

    for (long i = 0; i < w->ops; i++) {
        void *b = make_block(w, i);
        if (!b)
            continue;
        if ((i & 3) == 3 && ring_push(w->out, b)) {
            /* handed over: the next thread frees it */
        } else {
            void **slot = &window[i % WINDOW];
            if (*slot)
                check_and_free(w, *slot);
            *slot = b;
        }
        if ((i & 1) && (p = ring_pop(w->in)) != NULL) {
            check_and_free(w, p);
            w->cross_frees++;
        }
    }
    for (int i = 0; i < WINDOW; i++)
        if (window[i])
            check_and_free(w, window[i]);
    atomic_store_explicit(&w->out->producer_done, 1, memory_order_release);
    /* Drain what the previous thread still sends; yield (never spin) while it works. */
    for (;;) {
        int done = atomic_load_explicit(&w->in->producer_done, memory_order_acquire);
        while ((p = ring_pop(w->in)) != NULL) {
            check_and_free(w, p);
            w->cross_frees++;
        }
        if (done)
            break;
        sched_yield();
    }
    return NULL;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: mtalloc THREADS OPS_PER_THREAD [SEED]\n");
        return 2;
    }
    nthreads = atoi(argv[1]);
    long ops = atol(argv[2]);
    uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 0) : 12345;
    if (nthreads < 1 || nthreads > MAX_THREADS || ops < 1) {
        fprintf(stderr, "mtalloc: bad arguments\n");
        return 2;
    }
    for (int t = 0; t < nthreads; t++) {
        workers[t].index = t;
        workers[t].ops = ops;
        workers[t].seed = seed * 1000003u + (uint64_t)t;
        workers[t].out = &rings[(t + 1) % nthreads];
        workers[t].in = &rings[t];
    }
    uint64_t t0 = now_ns();
    for (int t = 0; t < nthreads; t++)
        if (pthread_create(&workers[t].thread, NULL, work, &workers[t]) != 0) {
            fprintf(stderr, "mtalloc: pthread_create failed\n");
            return 1;
        }
    for (int t = 0; t < nthreads; t++)
        pthread_join(workers[t].thread, NULL);
    uint64_t elapsed = now_ns() - t0;

    uint64_t bytes = 0, checksum = 0, verified = 0, errors = 0, cross = 0;
    for (int t = 0; t < nthreads; t++) {
        bytes += workers[t].bytes;
        checksum += workers[t].checksum;
        verified += workers[t].verified;
        errors += workers[t].errors;
        cross += workers[t].cross_frees;
    }
    printf("threads=%d ops=%ld bytes=%llu checksum=%llu verified=%llu errors=%llu\n", nthreads,
           ops * nthreads, (unsigned long long)bytes, (unsigned long long)checksum,
           (unsigned long long)verified, (unsigned long long)errors);
    fprintf(stderr, "mtalloc: threads=%d ops=%ld ns=%llu cross_frees=%llu\n", nthreads,
            ops * nthreads, (unsigned long long)elapsed, (unsigned long long)cross);
    return errors ? 1 : 0;
}
