/* test_guard.c — behaviours of the guarded pool and its fault handler: placement against
 * the guard, canary, double / interior free, FIFO quarantine, budget, faults in forked
 * children (with and without the handler, logged records, continue mode, chaining to the
 * program's handler), the access-size decoder and two-thread stress.
 * `test_guard bench` prints the cost of one guarded alloc+free instead. */
#include "blocks.h"
#include "eventlog.h"
#include "fault.h"
#include "x86_access.h"
#include "guard.h"
#include "options.h"
#include "pool.h"
#include "runtime.h"
#include "stacks.h"

#include "check.h"
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>



static struct pool pool;
static size_t page;
static char log_dir[64];

static uintptr_t page_end(const void *p)
{
    return ((uintptr_t)p | (page - 1)) + 1;
}

static char *alloc(size_t size, size_t align)
{
    return guard_alloc(size, align, 7, ALLOC_MALLOC, 100);
}

static enum guard_free_result release(void *p)
{
    struct guard_info info;
    return guard_free(p, ALLOC_MALLOC, 8, 100, &info);
}

static bool all_zero(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* ----------------------------------------------------------------------------------
 * Placement, describe, canary, frees, quarantine, budget
 * -------------------------------------------------------------------------------- */

/* The reservation's extent: its first guard page to its last one, nothing around it. */
static void test_extent(void)
{
    uintptr_t first;
    size_t stride, count;
    CHECK(guard_init(&pool, 16, 4096));
    guard_layout(&first, &stride, &count);
    uintptr_t base = first - page, end = first + stride * count;
    CHECK(count == 16 && stride == 2 * page);
    CHECK(guard_owns(base) && guard_owns(end - 1) && !guard_owns(base - 1) && !guard_owns(end));
    CHECK(guard_overlaps(base - page, base + 1) && guard_overlaps(end - 1, end + page));
    CHECK(guard_overlaps(base - page, end + page));
    CHECK(!guard_overlaps(base - page, base) && !guard_overlaps(end, end + (1ul << 40)));
}

static void test_placement(void)
{
    struct guard_info info;
    CHECK(guard_init(&pool, 64, 4096));
    guard_set_placement(GUARD_SIDE_OVERFLOW, false);

    char *p13 = alloc(13, 0);
    CHECK(p13 && (uintptr_t)p13 + 13 == page_end(p13));   /* ends exactly at the guard */
    CHECK(p13 && all_zero(p13, 13));
    char *p16 = alloc(16, 0);
    CHECK(p16 && (uintptr_t)p16 % 16 == 0 && (uintptr_t)p16 + 16 == page_end(p16));
    char *p24 = alloc(24, 0);
    CHECK(p24 && (uintptr_t)p24 % 8 == 0 && (uintptr_t)p24 + 24 == page_end(p24));
    char *p64 = alloc(100, 64);
    CHECK(p64 && (uintptr_t)p64 % 64 == 0 && page_end(p64) - ((uintptr_t)p64 + 100) < 64);
    char *empty = alloc(0, 0);
    CHECK(empty && guard_describe((uintptr_t)empty, &info) && info.access == GUARD_ACCESS_OVERFLOW);
    CHECK(alloc(4097, 0) == NULL);                            /* bigger than a slot */
    CHECK(alloc(16, 8192) == NULL);                           /* alignment above a page */
    CHECK(alloc(16, 24) == NULL);                             /* not a power of two */

    guard_set_placement(GUARD_SIDE_OVERFLOW, true);
    char *a16 = alloc(13, 0);
    CHECK(a16 && (uintptr_t)a16 % 16 == 0 && page_end(a16) - ((uintptr_t)a16 + 13) == 3);
    guard_set_placement(GUARD_SIDE_OVERFLOW, false);

    CHECK(guard_find(p13, &info) && info.block == (uintptr_t)p13 && info.size == 13 &&
          info.state == GUARD_BLOCK_LIVE && info.alloc_stack == 7 && info.alloc_tid == 100);
    CHECK(guard_usable_size(p24) == 24);
    CHECK(guard_usable_size(p24 + 1) == 0);
    CHECK(guard_owns((uintptr_t)p13) && !guard_owns((uintptr_t)&info));
}

static void test_describe(void)
{
    struct guard_info info;
    CHECK(guard_init(&pool, 64, 4096));
    char *p = alloc(13, 0);
    char *q = alloc(13, 0);

    CHECK(guard_describe((uintptr_t)p + 13, &info));
    CHECK(info.access == GUARD_ACCESS_OVERFLOW && info.block == (uintptr_t)p && info.size == 13);
    CHECK(guard_describe((uintptr_t)p + 13 + 2000, &info) && info.access == GUARD_ACCESS_OVERFLOW &&
          info.block == (uintptr_t)p);                      /* deep in the guard: still p's */
    CHECK(guard_describe((uintptr_t)p - 1, &info) && info.access == GUARD_ACCESS_UNDERFLOW &&
          info.block == (uintptr_t)p);
    CHECK(guard_describe((uintptr_t)p, &info) && info.access == GUARD_ACCESS_UNKNOWN);  /* in bounds, live */

    CHECK(release(q) == GUARD_FREE_OK);
    CHECK(guard_describe((uintptr_t)q + 5, &info) && info.access == GUARD_ACCESS_USE_AFTER_FREE);
    CHECK(info.state == GUARD_BLOCK_FREED && info.free_stack == 8 && info.alloc_stack == 7 &&
          info.free_kind == ALLOC_MALLOC);

    /* 40 slots past the last one used: no block near enough to explain it. */
    uintptr_t far = page_end(q) + 40 * 2 * page + 8;
    CHECK(guard_describe(far, &info) && info.access == GUARD_ACCESS_UNKNOWN &&
          info.state == GUARD_BLOCK_NONE);
    CHECK(!guard_describe((uintptr_t)&info, &info));
}

static void test_underflow_side(void)
{
    struct guard_info info;
    CHECK(guard_init(&pool, 8, 4096));
    guard_set_placement(GUARD_SIDE_UNDERFLOW, false);
    char *p = alloc(13, 0);
    CHECK(p && (uintptr_t)p % page == 0);
    CHECK(guard_describe((uintptr_t)p - 1, &info) && info.access == GUARD_ACCESS_UNDERFLOW &&
          info.block == (uintptr_t)p);
    CHECK(guard_describe((uintptr_t)p + 13, &info) && info.access == GUARD_ACCESS_OVERFLOW);
    p[13] = 1;                                    /* slack after the block: the canary sees it */
    CHECK(guard_free(p, ALLOC_MALLOC, 8, 100, &info) == GUARD_FREE_CANARY_CORRUPT);
    CHECK(info.access == GUARD_ACCESS_OVERFLOW && info.bad_addr == (uintptr_t)p + 13);
    guard_set_placement(GUARD_SIDE_OVERFLOW, false);
}

static void test_canary(void)
{
    struct guard_info info;
    CHECK(guard_init(&pool, 8, 4096));

    guard_set_placement(GUARD_SIDE_OVERFLOW, true);
    char *p = alloc(13, 0);
    CHECK(guard_check(p, &info));
    p[14] = 0x55;
    CHECK(!guard_check(p, &info) && info.access == GUARD_ACCESS_OVERFLOW &&
          info.bad_addr == (uintptr_t)p + 14);
    enum guard_free_result r = guard_free(p, ALLOC_MALLOC, 8, 100, &info);
    CHECK(r == GUARD_FREE_CANARY_CORRUPT && guard_free_released(r));
    CHECK(info.access == GUARD_ACCESS_OVERFLOW && info.bad_addr == (uintptr_t)p + 14 &&
          info.block == (uintptr_t)p && info.size == 13);
    CHECK(guard_usable_size(p) == 0);             /* released all the same */
    guard_set_placement(GUARD_SIDE_OVERFLOW, false);

    char *u = alloc(13, 0);
    u[-20] = 0;
    u[-3] = 0;
    CHECK(guard_free(u, ALLOC_MALLOC, 8, 100, &info) == GUARD_FREE_CANARY_CORRUPT);
    CHECK(info.access == GUARD_ACCESS_UNDERFLOW && info.bad_addr == (uintptr_t)u - 3);

    char *ok = alloc(100, 0);
    memset(ok, 0xaa, 100);                        /* the block's own bytes are never canary */
    CHECK(guard_free(ok, ALLOC_MALLOC, 8, 100, &info) == GUARD_FREE_OK);
}

static void test_double_and_interior_free(void)
{
    struct guard_info info;
    CHECK(guard_init(&pool, 8, 4096));
    char *p = guard_alloc(64, 0, 11, ALLOC_NEW, 100);

    CHECK(guard_free(p + 1, ALLOC_NEW, 0, 100, &info) == GUARD_FREE_NOT_A_BLOCK_START);
    CHECK(info.state == GUARD_BLOCK_LIVE && info.block == (uintptr_t)p);
    CHECK(guard_usable_size(p) == 64);            /* the invalid free changed nothing */
    CHECK(guard_free((char *)page_end(p) + 10, ALLOC_MALLOC, 0, 100, &info) ==
          GUARD_FREE_NOT_A_BLOCK_START);          /* a guard page */
    CHECK(guard_free((char *)page_end(p) + 3 * page, ALLOC_MALLOC, 0, 100, &info) ==
          GUARD_FREE_NOT_A_BLOCK_START && info.state == GUARD_BLOCK_NONE);  /* an unused slot */

    CHECK(guard_free(p, ALLOC_NEW, 22, 101, &info) == GUARD_FREE_OK);
    CHECK(guard_free(p, ALLOC_MALLOC, 33, 102, &info) == GUARD_FREE_DOUBLE_FREE);
    CHECK(info.alloc_stack == 11 && info.free_stack == 22 && info.free_tid == 101 &&
          info.alloc_kind == ALLOC_NEW && info.free_kind == ALLOC_NEW);
    CHECK(guard_free(p + 1, ALLOC_MALLOC, 0, 100, &info) == GUARD_FREE_NOT_A_BLOCK_START);

    struct guard_stats stats;
    guard_get_stats(&stats);
    CHECK(stats.allocs == 1 && stats.frees == 1 && stats.live == 0);
}

static void test_quarantine_fifo(void)
{
    struct guard_stats stats;
    char *a[4], *b[4];
    CHECK(guard_init(&pool, 4, 4096));
    CHECK(guard_cost_ns() == 0);
    for (int i = 0; i < 4; i++) {
        a[i] = alloc(32, 0);
        memset(a[i], 0xff, 32);
    }
    CHECK(alloc(32, 0) == NULL);                  /* every slot live */
    static const int order[4] = {2, 0, 3, 1};
    for (int i = 0; i < 4; i++)
        CHECK(release(a[order[i]]) == GUARD_FREE_OK);
    bool fifo = true, zeroed = true;
    for (int i = 0; i < 4; i++) {
        b[i] = alloc(32, 0);
        fifo &= b[i] == a[order[i]];
        zeroed &= b[i] && all_zero(b[i], 32);
    }
    CHECK(fifo);
    CHECK(zeroed);
    guard_get_stats(&stats);
    CHECK(stats.refused_no_slot == 1 && stats.live == 4 && stats.allocs == 8);
    uint64_t cost = guard_cost_ns();              /* 8 openings, 4 closings, timed */
    CHECK(cost > 0);
    CHECK(release(b[0]) == GUARD_FREE_OK && guard_cost_ns() > cost);
}

static void test_budget(void)
{
    struct guard_stats stats;
    char *p[4];
    CHECK(guard_init(&pool, 16, 4096));
    guard_get_stats(&stats);
    CHECK(stats.live_limit == 16);                /* max_map_count / 4 is far above */
    guard_set_live_limit(4);
    for (int i = 0; i < 4; i++)
        p[i] = alloc(8, 0);
    CHECK(p[0] && p[1] && p[2] && p[3]);
    CHECK(alloc(8, 0) == NULL);
    guard_get_stats(&stats);
    CHECK(stats.refused_budget == 1 && stats.live == 4 && stats.live_limit == 4);
    CHECK(release(p[0]) == GUARD_FREE_OK);
    CHECK(alloc(8, 0) != NULL);
}

static void count_live(const struct guard_info *info, void *ctx)
{
    size_t *totals = ctx;
    totals[0]++;
    totals[1] += info->size;
}

static void test_for_each_live(void)
{
    size_t totals[2] = {0, 0};
    CHECK(guard_init(&pool, 16, 4096));
    alloc(10, 0);
    char *gone = alloc(20, 0);
    alloc(30, 0);
    release(gone);
    guard_for_each_live(count_live, totals);
    CHECK(totals[0] == 2 && totals[1] == 40);
}

/* ----------------------------------------------------------------------------------
 * Faults, in forked children
 * -------------------------------------------------------------------------------- */

__attribute__((noinline)) static void victim_write(volatile char *p, size_t i)
{
    p[i] = 1;
}

__attribute__((noinline)) static char victim_read(volatile char *p, ptrdiff_t i)
{
    return p[i];
}

__attribute__((noinline)) static uint64_t victim_read8(volatile uint64_t *p)
{
    return *p;
}

static int run_child(void (*fn)(void *arg), void *arg)
{
    int status = 0;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        fn(arg);
        _exit(0);
    }
    waitpid(pid, &status, 0);
    return status;
}

static bool died_of_segv(int status)
{
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
}

static void log_path(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s.log", log_dir, name);
}

static void end_log(int sig, void *ucontext)
{
    (void)ucontext;
    if (sig == SIGSEGV)
        eventlog_end();
}

/* In the child: a log of its own, the handler, and the runtime's hook. */
static void child_setup(const char *name)
{
    char path[128];
    log_path(path, sizeof path, name);
    signal(SIGSEGV, SIG_DFL);
    if (!eventlog_open(&pool, path, "test"))
        _exit(90);
    fault_before_death = end_log;
    if (!fault_install())
        _exit(91);
}

static char *read_log(const char *name)
{
    static char text[1 << 16];
    char path[128];
    log_path(path, sizeof path, name);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f)
        fclose(f);
    text[n] = '\0';
    return text;
}

static int count_lines(const char *text, const char *start)
{
    int n = 0;
    size_t len = strlen(start);
    for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
        n += strncmp(l, start, len) == 0;
    return n;
}

/* The first error record, and frame 0 of its stack. */
static const char *error_line(const char *text, uintptr_t *frame0)
{
    const char *e = strstr(text, "\nerror ");
    *frame0 = 0;
    if (!e)
        return "";
    const char *s = strstr(e, " stack=");
    unsigned id = s ? (unsigned)strtoul(s + 7, NULL, 10) : 0;
    char want[32];
    snprintf(want, sizeof want, "\nstack %u ", id);
    const char *st = strstr(text, want);
    if (st) {
        const char *pcs = strchr(st + strlen(want), ' ');
        *frame0 = pcs ? (uintptr_t)strtoull(pcs + 1, NULL, 16) : 0;
    }
    return e + 1;
}

static bool has_key(const char *line, const char *key)
{
    const char *end = strchr(line, '\n');
    const char *hit = strstr(line, key);
    return hit && (!end || hit < end);
}

static bool has_hex_key(const char *line, const char *key, uintptr_t value)
{
    char want[64];
    snprintf(want, sizeof want, " %s=0x%lx", key, (unsigned long)value);
    return has_key(line, want);
}

static bool pc_in(uintptr_t pc, const void *fn)
{
    return pc >= (uintptr_t)fn && pc < (uintptr_t)fn + 512;   /* ASan builds make it long */
}

static char *overflow_block, *freed_block, *wide_block, *left_block, *two_page_block;

static void plain_overflow(void *arg)
{
    (void)arg;
    signal(SIGSEGV, SIG_DFL);
    victim_write(overflow_block, 13);
}

static void plain_use_after_free(void *arg)
{
    (void)arg;
    signal(SIGSEGV, SIG_DFL);
    victim_read(freed_block, 0);
}

static void plain_underflow(void *arg)
{
    (void)arg;
    signal(SIGSEGV, SIG_DFL);
    victim_read(left_block, -1);
}

static void logged_overflow(void *arg)
{
    (void)arg;
    child_setup("overflow");
    victim_write(overflow_block, 13);
}

static void logged_use_after_free(void *arg)
{
    (void)arg;
    child_setup("uaf");
    victim_read(freed_block, 3);
}

static void logged_wide_read(void *arg)
{
    (void)arg;
    child_setup("wide");
    victim_read8((volatile uint64_t *)(wide_block + 16));
}

static void logged_underflow(void *arg)
{
    (void)arg;
    child_setup("underflow");
    victim_read(left_block, -1);
}

static void busy_overflow(void *arg)
{
    (void)arg;
    child_setup("busy");
    runtime_thread.busy = 1;                      /* as if inside memtrace */
    victim_write(overflow_block, 13);
}

static void continue_after_faults(void *arg)
{
    struct guard_stats stats;
    (void)arg;
    child_setup("continue");
    fault_set_continue(true);
    victim_write(overflow_block, 13);            /* reported, guard page opened */
    victim_write(overflow_block, 14);            /* no fault any more */
    victim_read(freed_block, 0);                 /* another slot: reported */
    victim_read(two_page_block, 0);              /* freed, 2 pages: reported once ... */
    victim_read(two_page_block, 4200);           /* ... the second page is the same slot */
    guard_get_stats(&stats);
    _exit(stats.retired >= 3 ? 0 : 1);
}

static void test_faults_without_handler(void)
{
    CHECK(guard_init(&pool, 16, 8192));
    overflow_block = alloc(13, 0);
    freed_block = alloc(13, 0);
    release(freed_block);
    guard_set_placement(GUARD_SIDE_UNDERFLOW, false);
    left_block = alloc(13, 0);
    guard_set_placement(GUARD_SIDE_OVERFLOW, false);
    CHECK(died_of_segv(run_child(plain_overflow, NULL)));
    CHECK(died_of_segv(run_child(plain_use_after_free, NULL)));
    CHECK(died_of_segv(run_child(plain_underflow, NULL)));
}

static void test_faults_logged(void)
{
    uintptr_t frame0;
    const char *e;

    CHECK(guard_init(&pool, 16, 8192));
    overflow_block = alloc(13, 0);
    freed_block = alloc(13, 0);
    release(freed_block);
    wide_block = alloc(16, 0);
    guard_set_placement(GUARD_SIDE_UNDERFLOW, false);
    left_block = alloc(13, 0);
    guard_set_placement(GUARD_SIDE_OVERFLOW, false);

    CHECK(died_of_segv(run_child(logged_overflow, NULL)));
    e = error_line(read_log("overflow"), &frame0);
    CHECK(has_key(e, "error kind=heap-overflow "));
    CHECK(has_key(e, " op=write access=1"));
    CHECK(has_hex_key(e, "addr", (uintptr_t)overflow_block + 13));
    CHECK(has_hex_key(e, "block", (uintptr_t)overflow_block) && has_key(e, " size=13 "));
    CHECK(has_key(e, " exact=1") && has_key(e, " alloc_fn=malloc"));
    CHECK(pc_in(frame0, (const void *)victim_write));    /* frame 0 is the faulting store */
    CHECK(count_lines(read_log("overflow"), "end") == 1);  /* fault_before_death ran */

    CHECK(died_of_segv(run_child(logged_use_after_free, NULL)));
    e = error_line(read_log("uaf"), &frame0);
    CHECK(has_key(e, "error kind=use-after-free ") && has_key(e, " op=read access=1"));
    CHECK(has_key(e, " free=8") && has_key(e, " free_fn=malloc"));
    CHECK(pc_in(frame0, (const void *)victim_read));

    CHECK(died_of_segv(run_child(logged_wide_read, NULL)));
    e = error_line(read_log("wide"), &frame0);
    CHECK(has_key(e, "error kind=heap-overflow ") && has_key(e, " op=read access=8"));

    CHECK(died_of_segv(run_child(logged_underflow, NULL)));
    e = error_line(read_log("underflow"), &frame0);
    CHECK(has_key(e, "error kind=heap-underflow ") && has_key(e, " op=read access=1"));
    CHECK(has_hex_key(e, "addr", (uintptr_t)left_block - 1));

    CHECK(died_of_segv(run_child(busy_overflow, NULL)));
    CHECK(count_lines(read_log("busy"), "error ") == 0);  /* no logging inside memtrace */

    two_page_block = alloc(5000, 0);
    release(two_page_block);
    int status = run_child(continue_after_faults, NULL);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    const char *text = read_log("continue");
    CHECK(count_lines(text, "error ") == 3);
    CHECK(count_lines(text, "error kind=heap-overflow") == 1);
    CHECK(count_lines(text, "error kind=use-after-free") == 2);
}

static char *outside;                            /* PROT_NONE, not in the pool */

static void own_handler(int sig, siginfo_t *si, void *context)
{
    (void)sig;
    (void)si;
    (void)context;
    _exit(42);
}

static void install_own_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = own_handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
}

static void chain_to_own_handler(void *arg)
{
    (void)arg;
    install_own_handler();
    fault_install();
    victim_write(outside, 0);
}

static void guard_fault_with_own_handler(void *arg)
{
    (void)arg;
    install_own_handler();
    fault_install();
    victim_write(overflow_block, 13);            /* ours: reported, then death by SIGSEGV */
}

static void chain_to_default(void *arg)
{
    (void)arg;
    child_setup("default");
    victim_write(outside, 0);
}

static void chain_to_ignore(void *arg)
{
    (void)arg;
    signal(SIGSEGV, SIG_IGN);
    fault_install();
    kill(getpid(), SIGSEGV);                     /* sent, and ignored as the program asked */
    victim_write(outside, 0);                    /* a real fault cannot be ignored */
}

static void test_chaining(void)
{
    CHECK(guard_init(&pool, 16, 4096));
    overflow_block = alloc(13, 0);
    outside = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int status = run_child(chain_to_own_handler, NULL);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 42);
    CHECK(died_of_segv(run_child(guard_fault_with_own_handler, NULL)));
    CHECK(died_of_segv(run_child(chain_to_default, NULL)));
    CHECK(count_lines(read_log("default"), "error ") == 0);
    CHECK(died_of_segv(run_child(chain_to_ignore, NULL)));
    munmap(outside, page);
}

static void test_access_size(void)
{
    static const struct {
        uint8_t bytes[8];
        size_t size;
    } cases[] = {
        {{0x88, 0x07}, 1},                         /* mov [rdi], al */
        {{0x89, 0x07}, 4},                         /* mov [rdi], eax */
        {{0x48, 0x89, 0x07}, 8},                   /* mov [rdi], rax */
        {{0x66, 0x89, 0x07}, 2},                   /* mov [rdi], ax */
        {{0xc6, 0x07, 0x01}, 1},                   /* mov byte [rdi], 1 */
        {{0x0f, 0xb6, 0x07}, 1},                   /* movzx eax, byte [rdi] */
        {{0x0f, 0xb7, 0x07}, 2},                   /* movzx eax, word [rdi] */
        {{0x48, 0x63, 0x07}, 4},                   /* movsxd rax, [rdi] */
        {{0x01, 0x07}, 4},                         /* add [rdi], eax */
        {{0x80, 0x3f, 0x00}, 1},                   /* cmp byte [rdi], 0 */
        {{0xf3, 0xa4}, 1},                         /* rep movsb */
        {{0xf3, 0x48, 0xab}, 8},                   /* rep stosq */
        {{0xf3, 0x0f, 0x6f, 0x07}, 16},            /* movdqu xmm0, [rdi] */
        {{0x66, 0x0f, 0x74, 0x07}, 16},            /* pcmpeqb xmm0, [rdi] */
        {{0xf2, 0x0f, 0x10, 0x07}, 8},             /* movsd xmm0, [rdi] */
        {{0xc5, 0xfe, 0x6f, 0x07}, 32},            /* vmovdqu ymm0, [rdi] */
        {{0xc5, 0xfa, 0x7f, 0x07}, 16},            /* vmovdqu [rdi], xmm0 */
        {{0x62, 0xe1, 0xfe, 0x48, 0x6f, 0x07}, 64},/* vmovdqu64 zmm16, [rdi] */
        {{0x90}, 0},                               /* nop: not a memory access */
    };
    struct x86_access access;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        x86_access_decode(cases[i].bytes, NULL, &access);
        CHECK(access.size == cases[i].size && !access.has_address);
    }
}

/* Where an access starts: base + index * scale + displacement, from the registers. */
static void test_access_address(void)
{
    static const struct {
        uint8_t bytes[12];
        uintptr_t address;                     /* 0: no address */
    } cases[] = {
        {{0x48, 0x89, 0x02}, 0x1000},                          /* mov [rdx], rax */
        {{0x89, 0x47, 0x08}, 0x2008},                          /* mov [rdi+8], eax */
        {{0x88, 0x44, 0x17, 0xff}, 0x2000 + 0x1000 - 1},       /* mov [rdi+rdx-1], al */
        {{0x42, 0x88, 0x04, 0x87}, 0x2000 + 4 * 0x30},         /* mov [rdi+r8*4], al */
        {{0x41, 0x88, 0x04, 0x24}, 0x3000},                    /* mov [r12], al */
        {{0x89, 0x85, 0x00, 0x01, 0x00, 0x00}, 0x4100},        /* mov [rbp+0x100], eax */
        {{0xc5, 0xfe, 0x7f, 0x47, 0xe1}, 0x2000 - 31},         /* vmovdqu [rdi-31], ymm0 */
        {{0x62, 0xe1, 0xfe, 0x28, 0x7f, 0x47, 0xff}, 0x2000 - 32},
                                                 /* vmovdqu64 [rdi-32], ymm16: disp8 * 32 */
        {{0x48, 0x8b, 0x05, 0x10, 0x00, 0x00, 0x00}, 0},       /* mov rax, [rip+16] */
        {{0x64, 0x48, 0x8b, 0x04, 0x25, 0x28, 0, 0, 0}, 0},   /* mov rax, fs:0x28 */
        {{0xf3, 0xa4}, 0},                                     /* rep movsb: no ModRM */
        {{0x48, 0x89, 0xc2}, 0},                               /* mov rdx, rax: registers */
    };
    gregset_t regs = {0};
    regs[REG_RDX] = 0x1000;
    regs[REG_RDI] = 0x2000;
    regs[REG_R12] = 0x3000;
    regs[REG_RBP] = 0x4000;
    regs[REG_R8] = 0x30;
    struct x86_access access;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        x86_access_decode(cases[i].bytes, regs, &access);
        CHECK(access.has_address == (cases[i].address != 0));
        CHECK(!access.has_address || access.address == cases[i].address);
    }
}

/* ----------------------------------------------------------------------------------
 * Threads, and the benchmark
 * -------------------------------------------------------------------------------- */

#define STRESS_OPS 10000
#define STRESS_HELD 4

static void *stress_thread(void *arg)
{
    int *errors = arg;
    char *held[STRESS_HELD] = {0};
    size_t sizes[STRESS_HELD] = {0};
    struct guard_info info;

    for (int i = 0; i < STRESS_OPS + STRESS_HELD; i++) {
        int k = i % STRESS_HELD;
        if (held[k]) {
            for (size_t j = 0; j < sizes[k]; j++)
                *errors += held[k][j] != (char)(j + k);
            *errors += guard_free(held[k], ALLOC_MALLOC, 1, 1, &info) != GUARD_FREE_OK;
            held[k] = NULL;
        }
        if (i >= STRESS_OPS)
            continue;
        sizes[k] = 1 + (size_t)(i * 37) % 300;
        held[k] = guard_alloc(sizes[k], 0, 1, ALLOC_MALLOC, 1);
        if (!held[k]) {
            (*errors)++;
            continue;
        }
        for (size_t j = 0; j < sizes[k]; j++)
            held[k][j] = (char)(j + k);
    }
    return NULL;
}

static void test_two_thread_stress(void)
{
    struct guard_stats stats;
    pthread_t threads[2];
    int errors[2] = {0, 0};
    CHECK(guard_init(&pool, 64, 4096));
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&threads[i], NULL, stress_thread, &errors[i]) == 0);
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    CHECK(errors[0] == 0 && errors[1] == 0);
    guard_get_stats(&stats);
    CHECK(stats.allocs == 2 * STRESS_OPS && stats.frees == 2 * STRESS_OPS && stats.live == 0);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median ns of one guarded alloc + first write + free, over 7 runs of 10^4. */
static void bench(void)
{
    enum { RUNS = 7, OPS = 10000 };
    double ns[RUNS];
    struct guard_info info;
    guard_init(&pool, 1024, 4096);
    for (int r = 0; r < RUNS; r++) {
        double start = now_ns();
        for (int i = 0; i < OPS; i++) {
            volatile char *p = guard_alloc(64, 0, 1, ALLOC_MALLOC, 1);
            p[0] = 1;
            guard_free((void *)p, ALLOC_MALLOC, 1, 1, &info);
        }
        ns[r] = (now_ns() - start) / OPS;
    }
    qsort(ns, RUNS, sizeof ns[0], compare_doubles);
    printf("guarded alloc+write+free (64 bytes, 1024 slots): median %.0f ns, min %.0f, max %.0f\n",
           ns[RUNS / 2], ns[0], ns[RUNS - 1]);
}

int main(int argc, char **argv)
{
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);             /* the children die of SIGSEGV on purpose */
    page = (size_t)sysconf(_SC_PAGESIZE);
    pool_init(&pool, 24, 0);
    options_init(&runtime_options);
    stacks_init(&pool, 0, 0);
    stacks_load_unwinder();
    if (argc > 1 && strcmp(argv[1], "bench") == 0) {
        bench();
        return 0;
    }
    snprintf(log_dir, sizeof log_dir, "/tmp/test_guard.XXXXXX");
    if (!mkdtemp(log_dir))
        return 2;

    test_extent();
    test_placement();
    test_describe();
    test_underflow_side();
    test_canary();
    test_double_and_interior_free();
    test_quarantine_fifo();
    test_budget();
    test_for_each_live();
    test_faults_without_handler();
    test_faults_logged();
    test_chaining();
    test_access_size();
    test_access_address();
    test_two_thread_stress();

    char command[128];
    snprintf(command, sizeof command, "rm -rf %s", log_dir);
    if (system(command) != 0)
        fprintf(stderr, "could not remove %s\n", log_dir);
    return CHECK_DONE("test_guard");
}
