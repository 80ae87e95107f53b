/* stacks.c — stack capture and the interning table (see stacks.h). */
#include "stacks.h"

#include <dlfcn.h>
#include <string.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>                   /* types only: libunwind is dlopen'ed, never linked */

#include "unwind_cache.h"

#define INDEX_SLOTS_MIN (1u << 12)      /* the index's first size; it doubles at half full */
#define ID_LIMIT STACK_ID_LIMIT
#define CHUNK_SIZE (64 * 1024)           /* bump chunk for records */
#define INTERNAL_FRAMES_MAX 6            /* malloc -> heap -> capture, with slack */

typedef int (*backtrace_fn)(void **buffer, int size);

/* Open addressing from a stack's hash to its id. Sized to what it holds, because its
 * slots are touched at random: a table for the most stacks there may be (2M slots) was
 * 8 MB of memory for python3's 91k stacks. Inserting takes the insert lock; finding takes
 * none, so the index a finder holds may be the one just outgrown: a stack it misses there
 * is looked for again under the lock. Outgrown indexes are never freed, so that a finder
 * still probing one reads ids, not reused memory (together they are as big as the
 * current one). */
struct stack_index {
    uint32_t mask;                       /* slots - 1 */
    uint32_t slots[];                    /* slot -> id, 0 = empty */
};

static struct {
    struct pool *pool;
    uintptr_t internal_lo, internal_hi;
    backtrace_fn backtrace;
    struct stack_index *index;
    struct stack_record **records;       /* id -> record */
    uint32_t next_id;                    /* written under the insert lock */
    uint32_t indexed;                    /* ids in the index; under the insert lock */
    struct spinlock insert_lock;
    char *chunk;                         /* records are bump-allocated from it */
    size_t chunk_left;
} stacks;

static struct stack_index *new_index(uint32_t slots)
{
    struct stack_index *ix = pool_alloc(stacks.pool, sizeof *ix + slots * sizeof(uint32_t));
    if (ix)
        ix->mask = slots - 1;
    return ix;
}

bool stacks_init(struct pool *pool, uintptr_t internal_lo, uintptr_t internal_hi)
{
    stacks.pool = pool;
    stacks.internal_lo = internal_lo;
    stacks.internal_hi = internal_hi;
    stacks.index = new_index(INDEX_SLOTS_MIN);
    stacks.records = pool_alloc(pool, ID_LIMIT * sizeof(struct stack_record *));
    stacks.next_id = 1;
    unwind_cache_init(pool);
    return stacks.index && stacks.records;
}

bool stacks_load_unwinder(void)
{
    void *lib = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        return false;
    stacks.backtrace = (backtrace_fn)dlsym(lib, "unw_backtrace");
    return stacks.backtrace != NULL;
}

/* Two independent multiply-xorshift lanes: half the dependency chain of one. */
static uint64_t hash_pcs(const uintptr_t *pcs, int depth)
{
    uint64_t a = 0x9e3779b97f4a7c15ull, b = 0xc2b2ae3d27d4eb4full ^ (uint64_t)depth;
    int i = 0;
    for (; i + 1 < depth; i += 2) {
        a = (a ^ pcs[i]) * 0xff51afd7ed558ccdull;
        b = (b ^ pcs[i + 1]) * 0xc4ceb9fe1a85ec53ull;
        a ^= a >> 29;
        b ^= b >> 31;
    }
    if (i < depth)
        a = (a ^ pcs[i]) * 0xff51afd7ed558ccdull;
    a ^= b * 0x9e3779b97f4a7c15ull;
    return a ^ (a >> 32);
}

#define NARROW_BASE_BIT 0x80000000u     /* in a narrow offset: which base it is from */

/* The bases of a narrow record: its lowest pc, and the lowest of those 2^31 or more above
 * that (a library's, when the lowest is the executable's). */
static void pick_bases(const uintptr_t *pcs, int depth, uint64_t base[2])
{
    base[0] = base[1] = UINTPTR_MAX;
    for (int i = 0; i < depth; i++)
        if (pcs[i] < base[0])
            base[0] = pcs[i];
    for (int i = 0; i < depth; i++)
        if (pcs[i] - base[0] >= NARROW_BASE_BIT && pcs[i] < base[1])
            base[1] = pcs[i];
}

/* pcs as offsets from the bases, base 0 first (so a stack has one narrow form); false
 * when some pc is out of both bases' reach. */
static bool narrow_frames(const uintptr_t *pcs, int depth, const uint64_t base[2], uint32_t *out)
{
    for (int i = 0; i < depth; i++) {
        if (pcs[i] - base[0] < NARROW_BASE_BIT)
            out[i] = (uint32_t)(pcs[i] - base[0]);
        else if (pcs[i] - base[1] < NARROW_BASE_BIT)
            out[i] = (uint32_t)(pcs[i] - base[1]) | NARROW_BASE_BIT;
        else
            return false;
    }
    return true;
}

uintptr_t stacks_frame(const struct stack_record *rec, int i)
{
    if (!rec->narrow)
        return rec->frames[i];
    uint32_t off;
    memcpy(&off, (const char *)&rec->frames[2] + (size_t)i * sizeof off, sizeof off);
    return rec->frames[off >> 31] + (off & ~NARROW_BASE_BIT);
}

static struct stack_record *new_record(uint64_t hash, const uintptr_t *pcs, int depth)
{
    uint64_t base[2];
    uint32_t offsets[STACK_MAX_DEPTH];
    pick_bases(pcs, depth, base);
    bool narrow = depth <= STACK_MAX_DEPTH && narrow_frames(pcs, depth, base, offsets);
    size_t frames = narrow ? sizeof base + (size_t)depth * sizeof(uint32_t) : (size_t)depth * sizeof(uintptr_t);
    size_t size = (sizeof(struct stack_record) + frames + 15) & ~15ul;
    if (stacks.chunk_left < size) {
        char *chunk = pool_alloc(stacks.pool, CHUNK_SIZE);
        if (!chunk)
            return NULL;
        stacks.chunk = chunk;
        stacks.chunk_left = CHUNK_SIZE;
    }
    struct stack_record *rec = (struct stack_record *)stacks.chunk;
    stacks.chunk += size;
    stacks.chunk_left -= size;
    rec->hash = hash;
    rec->depth = (uint16_t)depth;
    rec->logged = 0;
    rec->narrow = narrow;
    if (narrow) {
        memcpy(rec->frames, base, sizeof base);
        memcpy(&rec->frames[2], offsets, (size_t)depth * sizeof *offsets);
    } else {
        memcpy(rec->frames, pcs, (size_t)depth * sizeof(uintptr_t));
    }
    return rec;
}

/* pcs in rec's narrow form, compared as offsets: decoding the record instead (a base
 * load that depends on each offset) made a dedup hit ~60 ns slower than a memcmp. */
static bool same_narrow_frames(const struct stack_record *rec, const uintptr_t *pcs, int depth)
{
    uint32_t offsets[STACK_MAX_DEPTH];
    uint64_t base[2];
    memcpy(base, rec->frames, sizeof base);
    return narrow_frames(pcs, depth, base, offsets) &&
           memcmp(&rec->frames[2], offsets, (size_t)depth * sizeof *offsets) == 0;
}

static bool same_stack(const struct stack_record *rec, uint64_t hash,
                       const uintptr_t *pcs, int depth)
{
    if (rec->hash != hash || rec->depth != depth)
        return false;
    if (rec->narrow)
        return depth <= STACK_MAX_DEPTH && same_narrow_frames(rec, pcs, depth);
    return memcmp(rec->frames, pcs, (size_t)depth * sizeof *pcs) == 0;
}

/* The stack's id in ix, or 0 with *empty set to the slot where it would go (the index is
 * at most half full, so probing ends). */
static uint32_t index_find(const struct stack_index *ix, uint64_t hash, const uintptr_t *pcs,
                           int depth, uint32_t *empty)
{
    for (uint32_t slot = (uint32_t)hash & ix->mask;; slot = (slot + 1) & ix->mask) {
        uint32_t id = __atomic_load_n(&ix->slots[slot], __ATOMIC_ACQUIRE);
        if (id == 0) {
            *empty = slot;
            return 0;
        }
        const struct stack_record *rec = stacks_get(id);
        if (rec && same_stack(rec, hash, pcs, depth))
            return id;
    }
}

/* A twice bigger index with every id of the current one, published for finders. */
static struct stack_index *grow_index(void)
{
    const struct stack_index *old = stacks.index;
    struct stack_index *ix = new_index((old->mask + 1) * 2);
    if (!ix)
        return NULL;
    for (uint32_t i = 0; i <= old->mask; i++) {
        uint32_t id = old->slots[i];
        if (id == 0)
            continue;
        uint32_t slot = (uint32_t)stacks.records[id]->hash & ix->mask;
        while (ix->slots[slot])
            slot = (slot + 1) & ix->mask;
        ix->slots[slot] = id;
    }
    __atomic_store_n(&stacks.index, ix, __ATOMIC_RELEASE);
    return ix;
}

/* Under the insert lock: the stack's id, made when new; 0 when out of ids or memory. */
static uint32_t insert_locked(uint64_t hash, const uintptr_t *pcs, int depth)
{
    uint32_t slot, id = index_find(stacks.index, hash, pcs, depth, &slot);
    if (id || stacks.next_id >= ID_LIMIT)
        return id;
    struct stack_index *ix = stacks.index;
    if ((stacks.indexed + 1) * 2 > ix->mask + 1) {
        if (!(ix = grow_index()))
            return 0;
        index_find(ix, hash, pcs, depth, &slot);
    }
    struct stack_record *rec = new_record(hash, pcs, depth);
    if (!rec)
        return 0;
    id = rec->id = stacks.next_id;
    __atomic_store_n(&stacks.records[id], rec, __ATOMIC_RELEASE);
    __atomic_store_n(&stacks.next_id, id + 1, __ATOMIC_RELEASE);
    __atomic_store_n(&ix->slots[slot], id, __ATOMIC_RELEASE);
    stacks.indexed++;
    return id;
}

uint32_t stacks_intern(const uintptr_t *pcs, int depth)
{
    uint64_t hash = hash_pcs(pcs, depth);
    const struct stack_index *ix = __atomic_load_n(&stacks.index, __ATOMIC_ACQUIRE);
    uint32_t slot, id;

    if (!ix)
        return 0;
    if ((id = index_find(ix, hash, pcs, depth, &slot)) != 0)
        return id;
    /* A fault handler that interrupted memtrace on this thread must take no lock: its
     * stack goes unrecorded when it is a new one. */
    if (os_locks_held() > 0)
        return 0;
    os_lock(&stacks.insert_lock);
    id = insert_locked(hash, pcs, depth);
    os_unlock(&stacks.insert_lock);
    return id;
}

/* Keeps at most max_depth frames that are not memtrace's own: the entry points on top,
 * and the main() wrapper near the bottom. */
uint32_t stacks_capture(int max_depth)
{
    void *buf[STACK_MAX_DEPTH + INTERNAL_FRAMES_MAX];
    uintptr_t kept[STACK_MAX_DEPTH];
    int n, depth = 0;

    if (!stacks.backtrace)
        return 0;
    if (max_depth > STACK_MAX_DEPTH)
        max_depth = STACK_MAX_DEPTH;
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    uintptr_t ra = (uintptr_t)__builtin_return_address(0);
    uint32_t id = unwind_cache_find(sp, ra, max_depth);
    if (id)
        return id;
    n = stacks.backtrace(buf, max_depth + INTERNAL_FRAMES_MAX);
    int first_outside = -1;
    for (int i = 0; i < n && depth < max_depth; i++) {
        uintptr_t pc = (uintptr_t)buf[i];
        if (pc < stacks.internal_lo || pc >= stacks.internal_hi) {
            first_outside = first_outside < 0 ? i : first_outside;
            kept[depth++] = pc;
        }
    }
    id = depth ? stacks_intern(kept, depth) : 0;
    /* buf[0] is here and buf[1] at ra: the program's frames start at 2 at the earliest. */
    unwind_cache_store(sp, ra, max_depth, buf, n, first_outside > 2 ? first_outside : 2, id);
    return id;
}

const struct stack_record *stacks_get(uint32_t id)
{
    if (id == 0 || id >= ID_LIMIT || !stacks.records)
        return NULL;
    return __atomic_load_n(&stacks.records[id], __ATOMIC_ACQUIRE);
}

uint32_t stacks_id_limit(void)
{
    uint32_t n = __atomic_load_n(&stacks.next_id, __ATOMIC_RELAXED);
    return n < ID_LIMIT ? n : ID_LIMIT;
}

/* The child writes a fresh event log: every stack must be written to it again. A thread
 * of the parent's that was inserting is gone: its half-made insert is not published. */
void stacks_fork_child(void)
{
    os_lock_reset(&stacks.insert_lock);
    uint32_t limit = stacks_id_limit();
    for (uint32_t id = 1; id < limit; id++) {
        struct stack_record *rec = stacks.records[id];
        if (rec)
            rec->logged = 0;
    }
}

/* ----------------------------------------------------------------------------------
 * Capture from a signal context (the fault handler)
 * -------------------------------------------------------------------------------- */

typedef int (*unw_init_local2_fn)(unw_cursor_t *cursor, unw_context_t *context, int flags);
typedef int (*unw_step_fn)(unw_cursor_t *cursor);
typedef int (*unw_get_reg_fn)(unw_cursor_t *cursor, unw_regnum_t reg, unw_word_t *value);

static struct {
    int state;                           /* 0 unresolved, 1 ready, -1 unavailable */
    unw_init_local2_fn init_local2;
    unw_step_fn step;
    unw_get_reg_fn get_reg;
} context_unwinder;

/* dlsym takes the loader lock: never from a handler (see stacks.h). */
static int resolve_context_unwinder(void)
{
    void *lib = stacks.backtrace ? dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD) : NULL;
    if (lib) {
        context_unwinder.init_local2 = (unw_init_local2_fn)dlsym(lib, "_ULx86_64_init_local2");
        context_unwinder.step = (unw_step_fn)dlsym(lib, "_ULx86_64_step");
        context_unwinder.get_reg = (unw_get_reg_fn)dlsym(lib, "_ULx86_64_get_reg");
    }
    int state = context_unwinder.init_local2 && context_unwinder.step && context_unwinder.get_reg ? 1 : -1;
    __atomic_store_n(&context_unwinder.state, state, __ATOMIC_RELEASE);
    return state;
}

uint32_t stacks_capture_from_context(void *ucontext, int max_depth)
{
    uintptr_t pcs[STACK_MAX_DEPTH];
    unw_cursor_t cursor;
    unw_word_t ip;
    int n = 0;

    int state = __atomic_load_n(&context_unwinder.state, __ATOMIC_ACQUIRE);
    if (state == 0)
        state = resolve_context_unwinder();
    if (state < 0 || !ucontext || max_depth <= 0)
        return 0;
    if (max_depth > STACK_MAX_DEPTH)
        max_depth = STACK_MAX_DEPTH;
    /* SIGNAL_FRAME: frame 0's pc is where the fault happened, so it is looked up as is. */
    if (context_unwinder.init_local2(&cursor, (unw_context_t *)ucontext, UNW_INIT_SIGNAL_FRAME) < 0)
        return 0;
    /* Frame 0 is kept wherever it is; later frames inside memtrace (its main() wrapper)
     * are dropped, as stacks_capture does. */
    do {
        if (context_unwinder.get_reg(&cursor, UNW_REG_IP, &ip) < 0 || ip == 0)
            break;
        if (n == 0 || ip < stacks.internal_lo || ip >= stacks.internal_hi)
            pcs[n++] = (uintptr_t)ip;
    } while (n < max_depth && context_unwinder.step(&cursor) > 0);
    return n ? stacks_intern(pcs, n) : 0;
}
