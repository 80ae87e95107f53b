/* stress_threads.c — many threads hammering the allocator at once, for the reliability tests
 * (tests/e2e/test_stress.py). Usage:
 *
 *   stress_threads join         NTHREADS [ITERS]  workers churn, main joins them
 *   stress_threads pthread-exit NTHREADS [ITERS]  main calls pthread_exit; the last worker
 *                                                 to finish cleans up, the process ends on it
 *   stress_threads detached     NTHREADS [ITERS]  detached workers churn, then keep calling
 *                                                 malloc/free until the process exits under
 *                                                 them (main returns while they run)
 *   stress_threads fork         NTHREADS [FORKS]  NTHREADS-1 threads churn while main forks
 *                                                 FORKS times; each child mallocs, frees and
 *                                                 _exit(0)s, and must do so within 20 s
 *   stress_threads signal       0        [ITERS]  single thread: SIGALRM every 200 us from
 *                                                 setitimer; the handler mallocs and frees
 *                                                 while main mallocs, callocs, reallocs, frees
 *
 * Churn: each worker allocates blocks (malloc, calloc, or realloc grown or shrunk from a
 * first allocation), checks realloc kept the contents, and swaps each block into a shared
 * array of atomic slots; whatever it takes out was usually made by another thread, and it
 * checks that block's pattern, then frees it. Workers do different numbers of iterations
 * (ITERS * (1 + id % 4) / 4), so threads exit while others still allocate. A corrupt block
 * prints a line on stderr and exits with status 3.
 *
 * Expected leaks, exactly (modes join, pthread-exit and detached): every worker calls
 * leak_blocks() once, from one call site, which leaks LEAKS_PER_THREAD blocks of 24, 40
 * and 104 bytes from one malloc call: NTHREADS * 3 blocks and NTHREADS * 168 bytes
 * definitely lost, in ONE loss record per worker function (churn_worker for join and
 * pthread-exit, detached_worker for detached). Nothing else the sample allocates is lost:
 * the slots are emptied and freed before exit. Modes fork and signal leak nothing.
 * On success the last line on stdout is "<mode> ok ..." with the numbers (and, for fork,
 * the parent's pid). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sample.h"

#define NSLOTS 512
#define MAX_THREADS 128
#define LEAKS_PER_THREAD 3
#define CHILD_TIMEOUT_S 20

static const size_t leak_sizes[LEAKS_PER_THREAD] = {24, 40, 104};

/* Blocks in flight between threads: each starts with its size, the rest is a byte derived
 * from it (see fill/check). */
static _Atomic(unsigned char *) g_slots[NSLOTS];
static atomic_int g_finished;  /* workers past their leak_blocks() call */
static atomic_int g_stop;      /* fork mode: background threads stop churning */
static int g_nthreads;
static long g_iters;

static void die(const char *what, long a, long b)
{
    char line[160];
    int n = snprintf(line, sizeof line, "stress_threads: %s (%ld, %ld)\n", what, a, b);
    if (write(STDERR_FILENO, line, (size_t)n) < 0)
        _exit(4);
    _exit(3);
}

static uint64_t next_rand(uint64_t *state)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return *state >> 33;
}

static unsigned char pattern(size_t size)
{
    return (unsigned char)(size * 31u + 7u);
}

/* Blocks are at least 16 bytes: the size, then the pattern. No byte of it is a pointer. */
static void fill(unsigned char *p, size_t size)
{
    memcpy(p, &size, sizeof size);
    memset(p + sizeof size, pattern(size), size - sizeof size);
}

static void check(const unsigned char *p, size_t expect_size)
{
    size_t size;
    memcpy(&size, p, sizeof size);
    if (size < 16 || size > 4096 || (expect_size && size != expect_size))
        die("corrupt block header", (long)size, (long)expect_size);
    for (size_t i = sizeof size; i < size; i++)
        if (p[i] != pattern(size))
            die("corrupt block contents", (long)size, (long)i);
}

static unsigned char *xmalloc(size_t size)
{
    unsigned char *p = malloc(size);
    if (p == NULL)
        die("malloc failed", (long)size, errno);
    return p;
}

/* One new block, made one of four ways; realloc must keep the contents. */
static unsigned char *make_block(uint64_t *rng)
{
    size_t size = 16 + next_rand(rng) % 400;
    unsigned char *p;
    switch (next_rand(rng) % 4) {
    case 0:
        p = xmalloc(size);
        break;
    case 1:
        p = calloc(1, size);
        if (p == NULL)
            die("calloc failed", (long)size, errno);
        for (size_t i = 0; i < size; i++)
            if (p[i] != 0)
                die("calloc returned non-zero bytes", (long)size, (long)i);
        break;
    default: {
        /* grow (case 2) or shrink (case 3) an existing block to `size` */
        size_t first = (next_rand(rng) & 1) ? 16 + size / 2 : size + 64;
        p = xmalloc(first);
        fill(p, first);
        unsigned char *q = realloc(p, size);
        if (q == NULL)
            die("realloc failed", (long)first, (long)size);
        size_t kept = first < size ? first : size;
        for (size_t i = sizeof first; i < kept; i++)
            if (q[i] != pattern(first))
                die("realloc lost the contents", (long)first, (long)size);
        p = q;
        break;
    }
    }
    fill(p, size);
    return p;
}

static void churn(unsigned id, long iters)
{
    uint64_t rng = 0x9e3779b97f4a7c15ULL * (id + 1);
    unsigned char *mine = NULL;  /* a private block, reallocated now and then */
    size_t mine_size = 0;

    for (long i = 0; i < iters; i++) {
        unsigned char *p = make_block(&rng);
        unsigned char *old = atomic_exchange(&g_slots[next_rand(&rng) % NSLOTS], p);
        if (old != NULL) {
            check(old, 0);
            free(old);
        }
        if (next_rand(&rng) % 16 == 0) {
            if (mine != NULL)
                check(mine, mine_size);
            mine_size = 16 + next_rand(&rng) % 2000;
            mine = realloc(mine, mine_size);
            if (mine == NULL)
                die("realloc of the private block failed", (long)mine_size, errno);
            fill(mine, mine_size);
        }
    }
    free(mine);
}

static void drain_slots(void)
{
    for (int i = 0; i < NSLOTS; i++) {
        unsigned char *old = atomic_exchange(&g_slots[i], NULL);
        if (old != NULL) {
            check(old, 0);
            free(old);
        }
    }
}

/* The only leaks of the sample: LEAKS_PER_THREAD blocks from this one malloc call. The
 * pointer goes through a volatile local that is cleared at once; the callers scrub their
 * stack and registers (sample_forget) before anything else. */
__attribute__((noinline)) static void leak_blocks(unsigned id)
{
    for (int k = 0; k < LEAKS_PER_THREAD; k++) {
        unsigned char *volatile lost = malloc(leak_sizes[k]); /* expect: leak definite per thread */
        if (lost == NULL)
            die("malloc failed", (long)leak_sizes[k], (long)id);
        memset(lost, 0xa0 + k, leak_sizes[k]);
        lost = NULL;
    }
}

static long iters_for(unsigned id)
{
    return g_iters * (1 + id % 4) / 4;
}

static void print_ok(const char *mode)
{
    printf("%s ok threads=%d leaked_blocks=%d leaked_bytes=%d\n", mode, g_nthreads,
           g_nthreads * LEAKS_PER_THREAD,
           g_nthreads * (int)(leak_sizes[0] + leak_sizes[1] + leak_sizes[2]));
    fflush(stdout);
}

/* join and pthread-exit modes. In pthread-exit mode the last worker to get here empties
 * the slots (nobody uses them any more) and prints the result. */
static void *churn_worker(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    int pthread_exit_mode = id >= MAX_THREADS;
    id %= MAX_THREADS;
    churn(id, iters_for(id));
    leak_blocks(id);
    sample_forget();
    if (atomic_fetch_add(&g_finished, 1) == g_nthreads - 1 && pthread_exit_mode) {
        drain_slots();
        print_ok("pthread-exit");
    }
    return NULL;
}

/* detached mode: churn, leak, then allocate and free privately until the process ends. */
static void *detached_worker(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    churn(id, iters_for(id));
    leak_blocks(id);
    sample_forget();
    atomic_fetch_add(&g_finished, 1);
    uint64_t rng = 77 + id;
    for (;;) {
        size_t size = 16 + next_rand(&rng) % 300;
        unsigned char *p = xmalloc(size);
        fill(p, size);
        check(p, size);
        free(p);
    }
    return NULL;
}

/* fork mode: background churn until main says stop. */
static void *background_worker(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    uint64_t rng = 1234 + id;
    while (!atomic_load(&g_stop)) {
        unsigned char *p = make_block(&rng);
        unsigned char *old = atomic_exchange(&g_slots[next_rand(&rng) % NSLOTS], p);
        if (old != NULL) {
            check(old, 0);
            free(old);
        }
    }
    return NULL;
}

static void start_threads(void *(*fn)(void *), int n, uintptr_t id_offset, int detach,
                          pthread_t *out)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (detach)
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < n; i++) {
        pthread_t t;
        int err = pthread_create(&t, &attr, fn, (void *)((uintptr_t)i + id_offset));
        if (err != 0)
            die("pthread_create failed", i, err);
        if (out != NULL)
            out[i] = t;
    }
    pthread_attr_destroy(&attr);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int run_fork(int forks)
{
    pthread_t threads[MAX_THREADS];
    int nbg = g_nthreads - 1;
    start_threads(background_worker, nbg, 0, 0, threads);
    sleep_ms(20);  /* let them get going */

    for (int f = 0; f < forks; f++) {
        pid_t pid = fork();
        if (pid < 0)
            die("fork failed", f, errno);
        if (pid == 0) {
            /* The child: single-threaded again; the allocator must not be locked. */
            uint64_t rng = 99 + (uint64_t)f;
            unsigned char *held[32];
            for (int i = 0; i < 32; i++)
                held[i] = make_block(&rng);
            for (int i = 0; i < 32; i++) {
                check(held[i], 0);
                free(held[i]);
            }
            _exit(0);
        }
        double deadline = now_s() + CHILD_TIMEOUT_S;
        int status;
        for (;;) {
            pid_t got = waitpid(pid, &status, WNOHANG);
            if (got == pid)
                break;
            if (got < 0 && errno != EINTR)
                die("waitpid failed", pid, errno);
            if (now_s() > deadline) {
                fprintf(stderr, "stress_threads: fork %d: child %ld did not exit within %d s\n",
                        f, (long)pid, CHILD_TIMEOUT_S);
                fflush(stderr);
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                _exit(5);
            }
            sleep_ms(1);
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "stress_threads: fork %d: child %ld ended with wait status 0x%x\n",
                    f, (long)pid, status);
            fflush(stderr);
            _exit(6);
        }
    }
    atomic_store(&g_stop, 1);
    for (int i = 0; i < nbg; i++)
        pthread_join(threads[i], NULL);
    drain_slots();
    printf("fork ok threads=%d forks=%d pid=%ld\n", g_nthreads, forks, (long)getpid());
    fflush(stdout);
    return 0;
}

/* signal mode. The handler allocates only blocks of HANDLER_SIZE, a size class main never
 * uses, and frees each before returning, after main primed that class: so under glibc
 * alone the handler only ever touches its own tcache bin, which main never does, and the
 * program is safe in practice (not by POSIX: malloc is not async-signal-safe). */
#define HANDLER_SIZE 1000
static volatile sig_atomic_t g_ticks;

static void on_alarm(int sig)
{
    (void)sig;
    int saved = errno;
    unsigned char *p = malloc(HANDLER_SIZE);
    if (p == NULL)
        die("malloc in the signal handler failed", HANDLER_SIZE, errno);
    fill(p, HANDLER_SIZE);
    check(p, HANDLER_SIZE);
    free(p);
    g_ticks++;
    errno = saved;
}

static int run_signal(long iters)
{
    const int want_ticks = 1000;
    free(xmalloc(HANDLER_SIZE));  /* prime the handler's size class */

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGALRM, &sa, NULL) != 0)
        die("sigaction failed", errno, 0);
    struct itimerval it = {{0, 200}, {0, 200}};
    if (setitimer(ITIMER_REAL, &it, NULL) != 0)
        die("setitimer failed", errno, 0);

    /* main: blocks of 16..479 bytes, malloc, calloc and realloc, never HANDLER_SIZE */
    uint64_t rng = 4242;
    double deadline = now_s() + 20;
    long i = 0;
    while (i < iters || g_ticks < want_ticks) {
        unsigned char *p = make_block(&rng);
        check(p, 0);
        free(p);
        i++;
        if ((i & 255) == 0 && now_s() > deadline)
            break;
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    signal(SIGALRM, SIG_IGN);
    if (g_ticks < want_ticks) {
        fprintf(stderr, "stress_threads: only %d SIGALRM handlers ran in 20 s (%ld iterations)\n",
                (int)g_ticks, i);
        return 7;
    }
    printf("signal ok iterations=%ld ticks>=%d\n", i, want_ticks);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s join|pthread-exit|detached|fork|signal NTHREADS [N]\n",
                argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    g_nthreads = atoi(argv[2]);
    long n = argc > 3 ? atol(argv[3]) : -1;
    int signal_mode = strcmp(mode, "signal") == 0;
    if (!signal_mode && (g_nthreads < 2 || g_nthreads > MAX_THREADS)) {
        fprintf(stderr, "stress_threads: NTHREADS must be 2..%d\n", MAX_THREADS);
        return 2;
    }
    g_iters = n > 0 ? n : 2000;

    if (strcmp(mode, "join") == 0) {
        pthread_t threads[MAX_THREADS];
        start_threads(churn_worker, g_nthreads, 0, 0, threads);
        for (int i = 0; i < g_nthreads; i++)
            pthread_join(threads[i], NULL);
        drain_slots();
        print_ok("join");
        sample_forget();
        return 0;
    }
    if (strcmp(mode, "pthread-exit") == 0) {
        /* ids offset by MAX_THREADS tell churn_worker it runs in this mode */
        start_threads(churn_worker, g_nthreads, MAX_THREADS, 1, NULL);
        pthread_exit(NULL);
    }
    if (strcmp(mode, "detached") == 0) {
        start_threads(detached_worker, g_nthreads, 0, 1, NULL);
        double deadline = now_s() + 60;
        while (atomic_load(&g_finished) < g_nthreads) {
            if (now_s() > deadline)
                die("detached workers did not finish in 60 s", atomic_load(&g_finished), 0);
            sleep_ms(1);
        }
        drain_slots();
        print_ok("detached");
        sample_forget();
        return 0;  /* exit runs while the workers are still calling malloc and free */
    }
    if (strcmp(mode, "fork") == 0)
        return run_fork(n > 0 ? (int)n : 100);
    if (signal_mode)
        return run_signal(n > 0 ? n : 20000);
    fprintf(stderr, "stress_threads: unknown mode %s\n", mode);
    return 2;
}
