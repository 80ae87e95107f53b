/* leakscan.c — reachability, cliques and loss records (see leakscan.h). */
#include "leakscan.h"

#include <fcntl.h>
#include <link.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "blocks.h"
#include "leak_heuristics.h"
#include "mappings.h"
#include "nested.h"
#include "quarantine.h"
#include "stacks.h"
#include "thread_registry.h"
#include "threads.h"

#define RED_ZONE 128                 /* the x86_64 ABI lets leaf code use this below sp */
#define TCB_SIZE 2304                /* glibc's struct pthread above the thread pointer */
#define NO_CLIQUE UINT32_MAX
#define MAX_THREADS 8192

enum scan_state { UNREACHED, POSSIBLE, REACHABLE, INDIRECT };

struct scan_block {
    uintptr_t addr;
    size_t size;
    uint64_t indirect;               /* bytes lost only through this block */
    uint32_t stack;
    uint8_t state;
    uint8_t heuristic;               /* REACHABLE only through a heuristic's interior pointer */
    uint8_t kind;                    /* enum alloc_kind */
    uint8_t starts_with_vtable;      /* the heuristics' cache (leak_heuristics.h) */
};

struct range {
    uintptr_t lo, hi;
    bool shared;                     /* a readable mapping's: MAP_SHARED */
    uint8_t kind;                    /* MEMORY_* of leak_heuristics.h */
};

/* The blocks starting in one page, blocks[first, first + count): a pointer's page leads
 * to the few blocks it can be in without a search over all of them. */
struct page_run {
    uintptr_t page_plus_one;         /* 0: an empty slot */
    uint32_t first, count;
};
#define SCAN_PAGE_SHIFT 12

struct scan {
    struct pool *pool;
    struct scan_block *blocks;
    uintptr_t *starts;               /* blocks[i].addr, dense: what the pointer search reads */
    size_t nblocks;
    struct page_run *runs;           /* open addressing by page; NULL: search every block */
    size_t runs_mask;
    uintptr_t lo, hi;                /* span of all blocks, for a cheap first test */
    uint32_t *marks;                 /* mark stack of block indices */
    size_t nmarks;
    uint32_t clique;
    struct range *readable;          /* sorted, from /proc/thread-self/maps */
    size_t nreadable;
    struct range *roots;
    size_t nroots, roots_cap;
    struct range loader;             /* ld.so's text: what it allocates is its own business */
    int pagemap_fd;                  /* /proc/self/pagemap, or -1: read every page */
    struct memory_map map;           /* the readable ranges, as the heuristics see them */
    const struct scan_caller *caller;
};

/* ----------------------------------------------------------------------------------
 * Snapshot of the block table, sorted by address
 * -------------------------------------------------------------------------------- */

static void count_block(const struct block *b, void *ctx)
{
    if (b->state == BLOCK_LIVE)
        ++*(size_t *)ctx;
}

static void copy_block(const struct block *b, void *ctx)
{
    struct scan *s = ctx;
    if (b->state != BLOCK_LIVE)
        return;
    s->blocks[s->nblocks++] = (struct scan_block){
        .addr = b->addr, .size = b->size, .stack = b->alloc_stack, .kind = b->kind,
    };
}

/* LSD radix sort on the low 48 bits of the address (user space on x86_64): 16-bit digits,
 * or 8-bit ones for a few blocks, whose 65536 counters cost more than the blocks (a forked
 * child that exits at once spent a tenth of its exit clearing them). */
#define RADIX_SMALL_BLOCKS 65536
static bool sort_blocks(struct scan *s)
{
    unsigned digit_bits = s->nblocks < RADIX_SMALL_BLOCKS ? 8 : 16;
    size_t digits = (size_t)1 << digit_bits, mask = digits - 1;
    struct scan_block *tmp = pool_alloc(s->pool, s->nblocks * sizeof *tmp + 1);
    size_t *counts = pool_alloc(s->pool, digits * sizeof(size_t));
    if (!tmp || !counts)
        return false;
    for (unsigned shift = 0; shift < 48; shift += digit_bits) {
        memset(counts, 0, digits * sizeof(size_t));
        for (size_t i = 0; i < s->nblocks; i++)
            counts[(s->blocks[i].addr >> shift) & mask]++;
        size_t total = 0;
        for (size_t d = 0; d < digits; d++) {
            size_t c = counts[d];
            counts[d] = total;
            total += c;
        }
        for (size_t i = 0; i < s->nblocks; i++)
            tmp[counts[(s->blocks[i].addr >> shift) & mask]++] = s->blocks[i];
        struct scan_block *swap = s->blocks;
        s->blocks = tmp;
        tmp = swap;
    }
    pool_free(s->pool, tmp);
    pool_free(s->pool, counts);
    return true;
}

static size_t page_home(uintptr_t page, size_t mask)
{
    return (size_t)((page * 0x9e3779b97f4a7c15ull) >> 40) & mask;
}

/* Pages a block reaches past the page it starts in that are filed for it (perl's arenas,
 * kilobytes each, hold pointers into their own later pages), and all such pages at most:
 * a huge block is searched for rather than filed page by page. */
#define COVERED_PAGES_PER_BLOCK 1024
#define COVERED_PAGES_MAX (1u << 20)

/* The pages after `page` that the block reaches, up to (not including) `next_page`. */
static size_t covered_pages(const struct scan_block *b, uintptr_t page, uintptr_t next_page)
{
    uintptr_t last = (b->addr + (b->size ? b->size - 1 : 0)) >> SCAN_PAGE_SHIFT;
    if (last >= next_page)
        last = next_page - 1;
    size_t n = last > page ? last - page : 0;
    return n < COVERED_PAGES_PER_BLOCK ? n : COVERED_PAGES_PER_BLOCK;
}

static void file_run(struct scan *s, uintptr_t page, uint32_t first, uint32_t count)
{
    size_t slot = page_home(page, s->runs_mask);
    while (s->runs[slot].page_plus_one)
        slot = (slot + 1) & s->runs_mask;
    s->runs[slot] = (struct page_run){page + 1, first, count};
}

/* The run of blocks starting in the page of blocks[i]: its length, and in *reach the
 * pages after it that its last block covers. */
static size_t run_at(const struct scan *s, size_t i, size_t *reach)
{
    uintptr_t page = s->starts[i] >> SCAN_PAGE_SHIFT;
    size_t count = 1;
    while (i + count < s->nblocks && s->starts[i + count] >> SCAN_PAGE_SHIFT == page)
        count++;
    uintptr_t next = i + count < s->nblocks ? s->starts[i + count] >> SCAN_PAGE_SHIFT : UINTPTR_MAX;
    *reach = covered_pages(&s->blocks[i + count - 1], page, next);
    return count;
}

/* Files each page's run of block starts (the blocks are sorted), and each page a block
 * covers past its first one as an empty run after it, so that a pointer into a block's
 * later page also finds it at once. Without the memory for it the scan still works,
 * searching every block for each pointer. */
static void index_pages(struct scan *s)
{
    size_t runs = 0, covered = 0, slots = 16, reach;
    for (size_t i = 0; i < s->nblocks; i += run_at(s, i, &reach)) {
        runs++;
        covered += reach;
    }
    bool file_covered = covered <= COVERED_PAGES_MAX;
    while (slots < 2 * (runs + (file_covered ? covered : 0)))
        slots *= 2;
    if (!(s->runs = pool_alloc(s->pool, slots * sizeof *s->runs)))
        return;
    s->runs_mask = slots - 1;
    for (size_t i = 0, count; i < s->nblocks; i += count) {
        count = run_at(s, i, &reach);
        uintptr_t page = s->starts[i] >> SCAN_PAGE_SHIFT;
        file_run(s, page, (uint32_t)i, (uint32_t)count);
        for (size_t k = 1; file_covered && k <= reach; k++)
            file_run(s, page + k, (uint32_t)(i + count), 0);
    }
}

static const struct page_run *page_run_of(const struct scan *s, uintptr_t page)
{
    for (size_t slot = page_home(page, s->runs_mask);; slot = (slot + 1) & s->runs_mask) {
        if (s->runs[slot].page_plus_one == page + 1)
            return &s->runs[slot];
        if (s->runs[slot].page_plus_one == 0)
            return NULL;
    }
}

static bool snapshot_blocks(struct scan *s)
{
    size_t n = 0;
    blocks_for_each(count_block, &n);
    s->blocks = pool_alloc(s->pool, n * sizeof(struct scan_block) + 1);
    s->marks = pool_alloc(s->pool, (2 * n + 1) * sizeof(uint32_t));
    if (!s->blocks || !s->marks)
        return false;
    blocks_for_each(copy_block, s);
    if (!sort_blocks(s) || !(s->starts = pool_alloc(s->pool, s->nblocks * sizeof *s->starts + 1)))
        return false;
    for (size_t i = 0; i < s->nblocks; i++)
        s->starts[i] = s->blocks[i].addr;
    index_pages(s);
    s->lo = s->nblocks ? s->blocks[0].addr : 0;
    s->hi = 0;
    for (size_t i = 0; i < s->nblocks; i++) {
        uintptr_t end = s->blocks[i].addr + (s->blocks[i].size ? s->blocks[i].size : 1);
        if (end > s->hi)
            s->hi = end;
    }
    return true;
}

/* ----------------------------------------------------------------------------------
 * Marking
 * -------------------------------------------------------------------------------- */

/* The last of blocks[first, first + n) that starts at or before p, blocks[first] being
 * one: branch-free halving over the dense start addresses. */
static size_t last_start_at_or_before(const struct scan *s, size_t first, size_t n, uintptr_t p)
{
    const uintptr_t *at = s->starts + first;
    while (n > 1) {
        size_t half = n / 2;
        at = at[half] <= p ? at + half : at;
        n -= half;
    }
    return (size_t)(at - s->starts);
}

/* The block containing p (start or interior), or -1. Most pointers land in a page where
 * blocks start, or one a block covers, and are looked for among those; the rest (between
 * blocks, or pages deep into a huge block) search them all. */
static long find_block(const struct scan *s, uintptr_t p)
{
    if (s->nblocks == 0 || p < s->starts[0])
        return -1;
    const struct page_run *run = s->runs ? page_run_of(s, p >> SCAN_PAGE_SHIFT) : NULL;
    size_t i;
    if (!run)
        i = last_start_at_or_before(s, 0, s->nblocks, p);
    else if (run->count && s->starts[run->first] <= p)
        i = last_start_at_or_before(s, run->first, run->count, p);
    else
        i = run->first - 1;          /* below its page's first block (or none starts there) */
    const struct scan_block *b = &s->blocks[i];
    return (p < b->addr + b->size || p == b->addr) ? (long)i : -1;
}

static void push(struct scan *s, size_t i)
{
    s->marks[s->nmarks++] = (uint32_t)i;
}

static enum leak_heuristic heuristic_of(const struct scan *s, uintptr_t p, struct scan_block *b)
{
    if (p == b->addr || !s->caller->heuristics)
        return HEURISTIC_NONE;
    struct heuristic_block hb = {b->addr, b->size, b->starts_with_vtable};
    enum leak_heuristic h = leak_heuristic_of(p, &hb, s->caller->heuristics, &s->map);
    b->starts_with_vtable = hb.starts_with_vtable;
    return h;
}

/* valgrind's rule: a start pointer from a definite (root or reachable) holder makes a
 * block reachable, and so does an interior pointer a heuristic accepts; anything else
 * makes an unreached block possible. In clique mode every unreached block found is
 * charged to the clique's leader as indirect. */
static void mark_pointer(struct scan *s, uintptr_t p, bool from_definite)
{
    long found = find_block(s, p);
    if (found < 0)
        return;
    struct scan_block *b = &s->blocks[found];
    if (s->clique != NO_CLIQUE) {
        if (b->state == UNREACHED && (uint32_t)found != s->clique) {
            b->state = INDIRECT;
            s->blocks[s->clique].indirect += b->size + b->indirect;
            b->indirect = 0;
            push(s, (size_t)found);
        }
        return;
    }
    if (b->state == REACHABLE) {
        if (p == b->addr)
            b->heuristic = HEURISTIC_NONE;
        return;
    }
    enum leak_heuristic h = heuristic_of(s, p, b);
    if ((p == b->addr || h != HEURISTIC_NONE) && from_definite) {
        b->state = REACHABLE;
        b->heuristic = (uint8_t)h;
        push(s, (size_t)found);
    } else if (b->state == UNREACHED) {
        b->state = POSSIBLE;
        push(s, (size_t)found);
    }
}

/* Words at lo, lo+8, …: a block placed against a guard page may start at any address,
 * and its pointers sit at 8-byte offsets from its start, not from address 0. */
static void scan_words(struct scan *s, uintptr_t lo, uintptr_t hi, bool from_definite)
{
    for (uintptr_t w = lo; w + sizeof(uintptr_t) <= hi; w += sizeof(uintptr_t)) {
        uintptr_t v;
        memcpy(&v, (const void *)w, sizeof v);
        if (v >= s->lo && v < s->hi)
            mark_pointer(s, v, from_definite);
    }
}

/* As scan_words, but large private spans skip the pages the process never touched (in
 * /proc/self/pagemap neither present nor swapped out): they read as zeros, and reading
 * them cost a page fault each (an 8 GiB read-write reservation, barely used, took 2.9 s).
 * A shared mapping's page may be written back to its file and dropped: read whole. */
#define PAGEMAP_MIN_SPAN (1ul << 20)
#define PAGEMAP_BATCH 512
#define PAGEMAP_PRESENT_OR_SWAPPED (3ull << 62)
static void scan_touched_words(struct scan *s, uintptr_t lo, uintptr_t hi, bool from_definite,
                               bool shared)
{
    uint64_t entries[PAGEMAP_BATCH];
    if (shared || s->pagemap_fd < 0 || hi - lo < PAGEMAP_MIN_SPAN || (lo & (sizeof(uintptr_t) - 1))) {
        scan_words(s, lo, hi, from_definite);
        return;
    }
    for (uintptr_t page = lo >> SCAN_PAGE_SHIFT; lo < hi;) {
        size_t n = ((hi - 1) >> SCAN_PAGE_SHIFT) - page + 1;
        n = n < PAGEMAP_BATCH ? n : PAGEMAP_BATCH;
        if (pread(s->pagemap_fd, entries, n * sizeof *entries, (off_t)(page * sizeof *entries)) !=
            (ssize_t)(n * sizeof *entries)) {
            scan_words(s, lo, hi, from_definite);
            return;
        }
        for (size_t i = 0; i < n; i++, page++) {
            uintptr_t end = (page + 1) << SCAN_PAGE_SHIFT;
            end = end < hi ? end : hi;
            if (entries[i] & PAGEMAP_PRESENT_OR_SWAPPED)
                scan_words(s, lo, end, from_definite);
            lo = end;
        }
    }
}

static void scan_readable(struct scan *s, uintptr_t lo, uintptr_t hi, bool from_definite);

/* A block of a page or more may hold pages the program protected (heap_check_mprotect). */
static void scan_block(struct scan *s, const struct scan_block *b, bool from_definite)
{
    if (b->size >= (1ul << SCAN_PAGE_SHIFT))
        scan_readable(s, b->addr, b->addr + b->size, from_definite);
    else
        scan_words(s, b->addr, b->addr + b->size, from_definite);
}

static void drain_marks(struct scan *s)
{
    while (s->nmarks > 0) {
        const struct scan_block *b = &s->blocks[s->marks[--s->nmarks]];
        scan_block(s, b, b->state == REACHABLE);
    }
}

/* ----------------------------------------------------------------------------------
 * Roots
 * -------------------------------------------------------------------------------- */

/* MEMORY_* of a readable maps line, from its permissions on:
 * "r-xp 00001000 fe:01 1234 /lib/x.so" (inode 0: no file). */
static uint8_t range_kind(const char *perms)
{
    const char *p = perms;
    uint8_t kind = MEMORY_READABLE | (perms[2] == 'x' ? MEMORY_CODE : 0);
    for (int field = 0; field < 3; field++) {       /* permissions, offset, device */
        while (*p && *p != ' ' && *p != '\n')
            p++;
        while (*p == ' ')
            p++;
    }
    return kind | (*p >= '1' && *p <= '9' ? MEMORY_FILE : 0);
}

/* The readable mappings of the process, so that no root read can fault. */
static bool read_maps(struct scan *s)
{
    size_t cap = 1 << 20, len = 0;
    char *text = pool_alloc(s->pool, cap);
    /* thread-self: once main called pthread_exit, /proc/self/maps reads empty. */
    int fd = open("/proc/thread-self/maps", O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (!text || fd < 0)
        return false;
    while ((n = read(fd, text + len, cap - 1 - len)) > 0) {
        len += (size_t)n;
        if (len + 1 >= cap) {
            char *bigger = pool_alloc(s->pool, cap * 2);
            if (!bigger)
                break;
            memcpy(bigger, text, len);
            pool_free(s->pool, text);
            text = bigger;
            cap *= 2;
        }
    }
    close(fd);
    text[len] = '\0';
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    s->readable = pool_alloc(s->pool, (lines + 1) * sizeof(struct range));
    if (!s->readable)
        return false;
    for (const char *p = text; *p;) {
        uintptr_t lo = os_parse_hex(&p);
        p++;
        uintptr_t hi = os_parse_hex(&p);
        p++;
        if (*p == 'r')
            s->readable[s->nreadable++] = (struct range){lo, hi, p[3] == 's', range_kind(p)};
        while (*p && *p != '\n')
            p++;
        if (*p)
            p++;
    }
    pool_free(s->pool, text);
    return true;
}

/* The readable mapping that contains addr, or NULL. */
static const struct range *mapping_of(const struct scan *s, uintptr_t addr)
{
    size_t lo = 0, hi = s->nreadable;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->readable[mid].hi <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->nreadable && s->readable[lo].lo <= addr ? &s->readable[lo] : NULL;
}

static unsigned memory_kind_of(const struct memory_map *map, uintptr_t addr, uintptr_t *end)
{
    const struct scan *s = (const struct scan *)((const char *)map - offsetof(struct scan, map));
    const struct range *r = mapping_of(s, addr);
    if (!r)
        return 0;
    *end = r->hi;
    return r->kind;
}

static void add_root(struct scan *s, uintptr_t lo, uintptr_t hi)
{
    if (lo >= hi)
        return;
    if (s->nroots == s->roots_cap) {
        size_t cap = s->roots_cap ? s->roots_cap * 2 : 256;
        struct range *bigger = pool_alloc(s->pool, cap * sizeof(struct range));
        if (!bigger)
            return;
        if (s->roots)
            memcpy(bigger, s->roots, s->nroots * sizeof(struct range));
        pool_free(s->pool, s->roots);
        s->roots = bigger;
        s->roots_cap = cap;
    }
    s->roots[s->nroots++] = (struct range){lo, hi, false, 0};
}

static int add_module_roots(struct dl_phdr_info *info, size_t size, void *ctx)
{
    struct scan *s = ctx;
    bool is_loader = info->dlpi_name && strstr(info->dlpi_name, "/ld-linux");
    (void)size;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (is_loader && ph->p_type == PT_LOAD && (ph->p_flags & PF_X))
            s->loader = (struct range){lo, lo + ph->p_memsz, false, 0};
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W))
            continue;
        if (lo >= s->caller->self_lo && lo < s->caller->self_hi)
            continue;
        add_root(s, lo, lo + ph->p_memsz);
    }
    return 0;
}

static void add_mapping_root(const struct mapping *m, void *ctx)
{
    if ((m->prot & 3) == 3)          /* PROT_READ | PROT_WRITE */
        add_root(ctx, m->start, m->end);
}

static void add_nested_root(uintptr_t block, size_t size, void *ctx)
{
    add_root(ctx, block, block + size);
}

/* Scans [lo, hi) only where it is readable: roots may cross guard pages and holes. */
static void scan_readable(struct scan *s, uintptr_t lo, uintptr_t hi, bool from_definite)
{
    while (lo < hi) {
        const struct range *m = mapping_of(s, lo);
        if (!m) {
            size_t i = 0;
            while (i < s->nreadable && s->readable[i].hi <= lo)
                i++;
            if (i == s->nreadable || s->readable[i].lo >= hi)
                return;
            lo = s->readable[i].lo;
            continue;
        }
        uintptr_t end = m->hi < hi ? m->hi : hi;
        scan_touched_words(s, lo, end, from_definite, m->shared);
        lo = end;
    }
}

static void scan_root(struct scan *s, uintptr_t lo, uintptr_t hi)
{
    scan_readable(s, lo, hi, true);
    drain_marks(s);
}

/* A thread's stack from its stack pointer to the end of the mapping holding it (glibc
 * puts the thread's TCB and static TLS there too), and its static TLS otherwise. */
static void scan_thread(struct scan *s, uintptr_t from, uintptr_t tp)
{
    const struct range *stack = mapping_of(s, from);
    if (stack)
        scan_root(s, from, stack->hi);
    if (!tp)
        return;
    /* On a thread's own stack mapping, the static TLS sits above its frames, and the
     * static TLS size (surplus included) can reach below the stack pointer, into dead
     * frames whose stale pointers would pass leaks off as reachable. */
    uintptr_t tls_lo = tp - s->caller->static_tls_size;
    if (tls_lo < from && tp > from)
        tls_lo = from;
    scan_root(s, tls_lo, tp + TCB_SIZE);
}

/* Blocks the dynamic linker allocated (DTVs, dynamic TLS, link maps) hang off places
 * no scan can see, such as glibc's cache of exited threads' stacks: they are roots, as
 * LeakSanitizer treats them. */
static void mark_loader_blocks(struct scan *s)
{
    for (size_t i = 0; i < s->nblocks; i++) {
        const struct stack_record *rec = stacks_get(s->blocks[i].stack);
        if (rec && rec->depth > 0 && stacks_frame(rec, 0) >= s->loader.lo &&
            stacks_frame(rec, 0) < s->loader.hi) {
            s->blocks[i].state = REACHABLE;
            push(s, i);
        }
    }
    drain_marks(s);
}

static void scan_stopped_threads(struct scan *s, const struct thread_snapshot *t, size_t n)
{
    uintptr_t lo, hi;
    for (size_t i = 0; i < n; i++) {
        if (__atomic_load_n(&t[i].stopped, __ATOMIC_ACQUIRE)) {
            scan_words(s, (uintptr_t)t[i].regs, (uintptr_t)(t[i].regs + THREAD_REG_COUNT), true);
            drain_marks(s);
            scan_thread(s, t[i].sp - RED_ZONE, t[i].tp);
        } else if (t[i].asleep_sp) {
            /* One that blocks signals, asleep in the kernel: its stack (a pthread's TLS
             * sits at the top of it) from the stack pointer /proc gave; its registers are
             * unseen. */
            scan_thread(s, t[i].asleep_sp - RED_ZONE, 0);
        } else if (thread_registry_stack(t[i].tid, &lo, &hi)) {
            /* One that blocks signals and runs: its whole stack, dead frames and all. */
            scan_root(s, lo, hi);
        }
    }
}

/* Ended threads' descriptors and static TLS, where glibc keeps them while the stack
 * stays mapped (read only where it still is; not the dead frames below the TLS). */
#define ENDED_THREADS_READ 1024
static void scan_ended_threads(struct scan *s)
{
    struct ended_thread ended[ENDED_THREADS_READ];
    size_t n = thread_registry_ended_threads(ended, ENDED_THREADS_READ);
    for (size_t i = 0; i < n; i++)
        scan_root(s, ended[i].tls_lo, ended[i].tp + TCB_SIZE);
}

/* ----------------------------------------------------------------------------------
 * Classes and loss records
 * -------------------------------------------------------------------------------- */

static void form_cliques(struct scan *s)
{
    for (size_t i = 0; i < s->nblocks; i++) {
        if (s->blocks[i].state != UNREACHED)
            continue;
        s->clique = (uint32_t)i;
        scan_block(s, &s->blocks[i], false);
        drain_marks(s);
    }
    s->clique = NO_CLIQUE;
}

static enum leak_class class_of(uint8_t state)
{
    switch (state) {
    case UNREACHED: return LEAK_DEFINITE;
    case INDIRECT: return LEAK_INDIRECT;
    case POSSIBLE: return LEAK_POSSIBLE;
    default: return LEAK_REACHABLE;
    }
}

/* Blocks of one class, allocation stack and allocator family: valgrind's stacks start in
 * the allocator, so malloc and new from one line are two records there too. */
struct loss_record {
    uint64_t key;                    /* (kind << 2 | class) << 32 | stack, + 1: 0 is empty */
    uint64_t bytes, blocks, indirect;
};

static void write_loss_records(struct scan *s, struct heap_totals *totals)
{
    size_t cap = 16;
    while (cap < 2 * s->nblocks)
        cap *= 2;
    struct loss_record *recs = pool_alloc(s->pool, cap * sizeof *recs);
    if (!recs)
        return;
    for (size_t i = 0; i < s->nblocks; i++) {
        const struct scan_block *b = &s->blocks[i];
        totals->live_blocks++;
        totals->live_bytes += b->size;
        uint64_t key = ((uint64_t)(b->kind << 2 | class_of(b->state)) << 32 | b->stack) + 1;
        size_t slot = (key * 0x9e3779b97f4a7c15ull) >> 20 & (cap - 1);
        while (recs[slot].key && recs[slot].key != key)
            slot = (slot + 1) & (cap - 1);
        recs[slot].key = key;
        recs[slot].bytes += b->size;
        recs[slot].blocks++;
        recs[slot].indirect += b->indirect;
        if (b->state == REACHABLE && b->heuristic != HEURISTIC_NONE) {
            totals->heuristic_bytes[b->heuristic] += b->size;
            totals->heuristic_blocks[b->heuristic]++;
        }
    }
    for (size_t i = 0; i < cap; i++) {
        if (!recs[i].key)
            continue;
        uint64_t key = recs[i].key - 1;
        eventlog_leak((enum leak_class)(key >> 32 & 3), (int)(key >> 34),
                      recs[i].bytes, recs[i].blocks,
                      recs[i].indirect, (uint32_t)key);
    }
    pool_free(s->pool, recs);
}

void leakscan_run(struct pool *pool, const struct scan_caller *caller, struct heap_totals *totals)
{
    struct scan s = {.pool = pool, .caller = caller, .clique = NO_CLIQUE,
                     .pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC),
                     .map = {memory_kind_of}};
    struct thread_snapshot *threads = pool_alloc(pool, MAX_THREADS * sizeof *threads);
    size_t nthreads = 0;

    dl_iterate_phdr(add_module_roots, &s);   /* takes the loader lock: before the stop */
    caller->lock_all();
    if (threads)
        nthreads = threads_stop_others(threads, MAX_THREADS);
    caller->unlock_all();
    /* The quarantine and the table stay locked until the scan is done: a thread the stop
     * signal cannot reach (one exiting, its signals blocked, still freeing its TLS) waits
     * at them, where it would change what is being counted and read: allocs - frees would
     * miss the blocks found live, and a guarded block freed meanwhile has no pages left to
     * scan. */
    quarantine_lock_all();
    blocks_lock_all();
    blocks_totals(&totals->allocs, &totals->frees, &totals->bytes_allocated);
    caller->while_stopped();

    mappings_for_each(add_mapping_root, &s);
    nested_for_each(add_nested_root, &s);
    if (read_maps(&s) && snapshot_blocks(&s)) {
        mark_loader_blocks(&s);
        for (size_t i = 0; i < s.nroots; i++)
            scan_root(&s, s.roots[i].lo, s.roots[i].hi);
        scan_words(&s, (uintptr_t)caller->saved_regs,
                   (uintptr_t)caller->saved_regs + caller->saved_regs_size, true);
        drain_marks(&s);
        scan_thread(&s, caller->stack_from, (uintptr_t)__builtin_thread_pointer());
        scan_stopped_threads(&s, threads, nthreads);
        scan_ended_threads(&s);
        form_cliques(&s);
        write_loss_records(&s, totals);
    }
    blocks_unlock_all();
    quarantine_unlock_all();
    threads_resume_others();
    if (s.pagemap_fd >= 0)
        close(s.pagemap_fd);
}
