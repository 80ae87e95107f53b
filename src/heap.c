/* heap.c — the allocation core behind every interposed entry point (see heap.h). */
#include "heap.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"
#include "stacks.h"

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void *__libc_memalign(size_t align, size_t size);
extern void __libc_free(void *ptr);

/* Sizes above this are the signed result of a bug (malloc(-5)), as valgrind flags them. */
#define FISHY_SIZE ((size_t)PTRDIFF_MAX)
#define COUNTER_SHARDS 16

/* Totals sharded by thread so that threads do not fight over one cache line. */
static struct counter_shard {
    uint64_t allocs, frees, bytes_allocated;
} __attribute__((aligned(64))) counters[COUNTER_SHARDS];

static struct counter_shard *my_counters(void)
{
    return &counters[(unsigned)runtime_thread.tid % COUNTER_SHARDS];
}

void heap_totals(struct heap_totals *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < COUNTER_SHARDS; i++) {
        out->allocs += __atomic_load_n(&counters[i].allocs, __ATOMIC_RELAXED);
        out->frees += __atomic_load_n(&counters[i].frees, __ATOMIC_RELAXED);
        out->bytes_allocated += __atomic_load_n(&counters[i].bytes_allocated, __ATOMIC_RELAXED);
    }
}

static void *raw_alloc(size_t size, size_t align)
{
    return align ? __libc_memalign(align, size) : __libc_malloc(size);
}

static void record(void *ptr, size_t size, enum alloc_kind kind, uint32_t stack, bool untracked)
{
    struct block b = {
        .addr = (uintptr_t)ptr, .size = size, .alloc_stack = stack,
        .tid = (uint32_t)runtime_tid(), .kind = (uint8_t)kind, .untracked = untracked,
    };
    struct counter_shard *c = my_counters();
    blocks_insert(&b);
    if (untracked)
        return;
    __atomic_fetch_add(&c->allocs, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&c->bytes_allocated, size, __ATOMIC_RELAXED);
}

static void count_free(void)
{
    __atomic_fetch_add(&my_counters()->frees, 1, __ATOMIC_RELAXED);
}

static void report(struct error_event *e)
{
    e->tid = runtime_tid();
    eventlog_error(e);
}

static void report_fishy_size(uint64_t requested, uint32_t stack)
{
    struct error_event e = {
        .kind = ERROR_INVALID_SIZE, .addr = 0, .stack = stack,
        .alloc_kind = -1, .free_kind = -1, .has_requested = true, .requested = requested,
    };
    report(&e);
}

/* Allocations made while memtrace itself is running (dlopen, the unwinder's first call):
 * forwarded, and recorded without a stack once the table exists. */
static void *alloc_reentrant(size_t size, size_t align, enum alloc_kind kind)
{
    void *p = raw_alloc(size, align);
    if (p && runtime_tables_ready())
        record(p, size, kind, 0, true);
    return p;
}

void *heap_alloc(size_t size, size_t align, enum alloc_kind kind)
{
    if (!runtime_ensure_ready() || runtime_thread.busy)
        return alloc_reentrant(size, align, kind);
    runtime_thread.busy = 1;
    uint32_t stack = stacks_capture(runtime_options.num_callers);
    void *p = NULL;
    if (size > FISHY_SIZE) {
        report_fishy_size(size, stack);
        errno = ENOMEM;
    } else if ((p = raw_alloc(size, align)) != NULL) {
        record(p, size, kind, stack, false);
    }
    runtime_thread.busy = 0;
    return p;
}

void *heap_calloc(size_t count, size_t size)
{
    size_t total;
    if (!runtime_ensure_ready() || runtime_thread.busy) {
        void *p = __libc_calloc(count, size);
        if (p && runtime_tables_ready())
            record(p, count * size, ALLOC_MALLOC, 0, true);
        return p;
    }
    runtime_thread.busy = 1;
    uint32_t stack = stacks_capture(runtime_options.num_callers);
    void *p = NULL;
    if (__builtin_mul_overflow(count, size, &total) || total > FISHY_SIZE) {
        report_fishy_size(__builtin_mul_overflow(count, size, &total) ? UINT64_MAX : total, stack);
        errno = ENOMEM;
    } else if ((p = __libc_calloc(count, size)) != NULL) {
        record(p, total, ALLOC_MALLOC, stack, false);
    }
    runtime_thread.busy = 0;
    return p;
}

static void report_bad_free(void *ptr, enum alloc_kind kind, uint32_t stack)
{
    struct error_event e = {
        .kind = ERROR_INVALID_FREE, .addr = (uintptr_t)ptr, .stack = stack,
        .alloc_kind = -1, .free_kind = (int)kind,
    };
    report(&e);
}

static void report_mismatch(const struct block *b, enum alloc_kind kind, uint32_t stack)
{
    struct error_event e = {
        .kind = ERROR_MISMATCHED_FREE, .addr = b->addr, .stack = stack,
        .has_block = true, .block = b->addr, .block_size = b->size,
        .alloc_stack = b->alloc_stack, .alloc_kind = b->kind, .free_kind = (int)kind,
    };
    report(&e);
}

void heap_free(void *ptr, enum alloc_kind kind)
{
    struct block b;

    if (!ptr)
        return;
    if (!runtime_tables_ready()) {
        __libc_free(ptr);
        return;
    }
    bool found = blocks_remove((uintptr_t)ptr, &b);
    if (runtime_thread.busy || !runtime_ensure_ready()) {
        if (found)
            __libc_free(ptr);
        return;
    }
    runtime_thread.busy = 1;
    if (!found) {
        report_bad_free(ptr, kind, stacks_capture(runtime_options.num_callers));
    } else {
        if (b.kind != kind && !b.untracked)
            report_mismatch(&b, kind, stacks_capture(runtime_options.num_callers));
        if (!b.untracked)
            count_free();
        __libc_free(ptr);
    }
    runtime_thread.busy = 0;
}

void *heap_realloc(void *ptr, size_t size)
{
    struct block old;

    if (!ptr)
        return heap_alloc(size, 0, ALLOC_MALLOC);
    if (size == 0) {
        heap_free(ptr, ALLOC_MALLOC);    /* glibc frees and returns NULL */
        return NULL;
    }
    if (!runtime_tables_ready())
        return __libc_realloc(ptr, size);
    bool nested = runtime_thread.busy || !runtime_ensure_ready();
    if (!nested)
        runtime_thread.busy = 1;
    uint32_t stack = nested ? 0 : stacks_capture(runtime_options.num_callers);
    void *p = NULL;
    if (!blocks_remove((uintptr_t)ptr, &old)) {
        if (!nested)
            report_bad_free(ptr, ALLOC_MALLOC, stack);
    } else if (size > FISHY_SIZE) {
        blocks_insert(&old);
        if (!nested)
            report_fishy_size(size, stack);
        errno = ENOMEM;
    } else if ((p = __libc_realloc(ptr, size)) == NULL) {
        blocks_insert(&old);             /* the old block is still the program's */
    } else {
        count_free();
        record(p, size, (enum alloc_kind)old.kind, stack, nested);
    }
    if (!nested)
        runtime_thread.busy = 0;
    return p;
}

size_t heap_usable_size(void *ptr)
{
    struct block b;
    if (!ptr || !runtime_tables_ready() || !blocks_find((uintptr_t)ptr, &b))
        return 0;
    return b.size;
}

static bool is_power_of_two(size_t x)
{
    return x && !(x & (x - 1));
}

int heap_posix_memalign(void **out, size_t align, size_t size)
{
    if (!is_power_of_two(align) || align % sizeof(void *) != 0)
        return EINVAL;
    int saved = errno;
    void *p = heap_alloc(size, align, ALLOC_MALLOC);
    if (!p && size > 0) {
        errno = saved;
        return ENOMEM;
    }
    errno = saved;
    *out = p;
    return 0;
}
