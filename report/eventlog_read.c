/* eventlog_read.c — the event log parser (format: docs/event-log.md).
 *
 * The log was written by a process that may have been corrupted or killed, and the parser
 * will be fuzzed, so nothing read is trusted: lines are length-capped, numbers are parsed
 * with overflow checks, counts are checked against the tokens actually present, and
 * stack ids (arbitrary 32-bit values) are kept in a hash map. The first malformed line
 * stops parsing with one warning; everything before it is kept and rendered. */
#include "eventlog_read.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------- */
/* Names                                                                                  */
/* ------------------------------------------------------------------------------------- */

static const char *const error_kind_names[MT_ERR_KIND_COUNT] = {
    [MT_ERR_DOUBLE_FREE] = "double-free",       [MT_ERR_INVALID_FREE] = "invalid-free",
    [MT_ERR_MISMATCHED_FREE] = "mismatched-free", [MT_ERR_INVALID_SIZE] = "invalid-size",
    [MT_ERR_HEAP_OVERFLOW] = "heap-overflow",   [MT_ERR_HEAP_UNDERFLOW] = "heap-underflow",
    [MT_ERR_USE_AFTER_FREE] = "use-after-free", [MT_ERR_INVALID_MUNMAP] = "invalid-munmap",
    [MT_ERR_OVERLAP] = "overlap",
};

static const char *const leak_class_names[MT_LEAK_CLASS_COUNT] = {
    [MT_LEAK_DEFINITE] = "definite", [MT_LEAK_INDIRECT] = "indirect",
    [MT_LEAK_POSSIBLE] = "possible", [MT_LEAK_REACHABLE] = "reachable",
};

/* Indexed by enum mt_alloc_fn; MT_FN_UNKNOWN has no spelling in the log. */
static const char *const alloc_fn_names[] = { NULL, "malloc", "new", "new[]", "aligned" };

const char *const mt_heuristic_names[MT_HEURISTIC_COUNT] = {
    "stdstring", "length64", "newarray", "multipleinheritance",
};

const char *mt_error_kind_name(enum mt_error_kind kind)
{
    return (unsigned)kind < MT_ERR_KIND_COUNT ? error_kind_names[kind] : "unknown";
}

const char *mt_leak_class_name(enum mt_leak_class cls)
{
    return (unsigned)cls < MT_LEAK_CLASS_COUNT ? leak_class_names[cls] : "unknown";
}

static int name_index(const char *const *names, int count, const char *s)
{
    for (int i = 0; i < count; i++)
        if (names[i] && strcmp(names[i], s) == 0)
            return i;
    return -1;
}

/* ------------------------------------------------------------------------------------- */
/* Small helpers: growth, numbers, tokens, text                                           */
/* ------------------------------------------------------------------------------------- */

/* Returns ARR grown to hold NEED elements (possibly moved), or NULL with ARR untouched. */
static void *grow(void *arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return arr;
    size_t n = *cap ? *cap : 16;
    while (n < need) {
        if (n > SIZE_MAX / 2 / elem)
            return NULL;
        n *= 2;
    }
    void *p = realloc(arr, n * elem);
    if (p)
        *cap = n;
    return p;
}

#define GROW(arr, need, cap)                                                              \
    ({                                                                                    \
        void *g_ = grow((arr), &(cap), (need), sizeof *(arr));                            \
        if (g_)                                                                           \
            (arr) = g_;                                                                   \
        g_ != NULL;                                                                       \
    })

static bool parse_dec(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (*s == '\0')
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool parse_u32(const char *s, uint32_t *out)
{
    uint64_t v;
    if (!parse_dec(s, UINT32_MAX, &v))
        return false;
    *out = (uint32_t)v;
    return true;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Addresses are always written with 0x. */
static bool parse_hex(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X') || s[2] == '\0')
        return false;
    for (s += 2; *s; s++) {
        int d = hex_digit(*s);
        if (d < 0 || (v >> 60) != 0)
            return false;
        v = (v << 4) | (unsigned)d;
    }
    *out = v;
    return true;
}

/* Splits the next space-separated word off *CUR. NULL when none is left or when two
 * spaces meet (the writer never emits an empty word). */
static char *next_word(char **cur)
{
    char *w = *cur;
    if (*w == '\0' || *w == ' ')
        return NULL;
    char *sp = strchr(w, ' ');
    if (sp) {
        *sp = '\0';
        *cur = sp + 1;
    } else {
        *cur = w + strlen(w);
    }
    return w;
}

/* Undoes the writer's escaping of free text (`\\` and `\n`); an unknown escape is kept
 * as written rather than rejected, since it cannot hurt the reader. */
static char *unescape_dup(const char *s)
{
    char *out = malloc(strlen(s) + 1), *o = out;
    if (!out)
        return NULL;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] == '\\') {
            *o++ = '\\';
            s++;
        } else if (s[0] == '\\' && s[1] == 'n') {
            *o++ = '\n';
            s++;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
    return out;
}

/* ------------------------------------------------------------------------------------- */
/* The stack id map                                                                       */
/* ------------------------------------------------------------------------------------- */

/* Ids come from the file, so they are mixed before probing: sequential or adversarial
 * ids must not pile up in one run of slots. */
static size_t mix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

static void stack_slot_set(uint32_t *slots, size_t mask, const struct mt_stack *stacks,
                           uint32_t id, uint32_t value)
{
    size_t i = mix32(id) & mask;
    while (slots[i] && stacks[slots[i] - 1].id != id)
        i = (i + 1) & mask;
    slots[i] = value; /* a redefined id: the later stack wins */
}

static bool stack_map_rehash(struct mt_log *log, size_t nslots)
{
    uint32_t *slots = calloc(nslots, sizeof *slots);
    if (!slots)
        return false;
    for (size_t i = 0; i < log->nstacks; i++)
        stack_slot_set(slots, nslots - 1, log->stacks, log->stacks[i].id, (uint32_t)(i + 1));
    free(log->stack_slots);
    log->stack_slots = slots;
    log->stack_slot_mask = nslots - 1;
    return true;
}

/* Registers log->stacks[log->nstacks] (already filled) and counts it. */
static bool stack_map_add(struct mt_log *log)
{
    size_t nslots = log->stack_slots ? log->stack_slot_mask + 1 : 0;
    if ((log->nstacks + 1) * 2 > nslots) {
        if (nslots > SIZE_MAX / 4 / sizeof(uint32_t))
            return false;
        log->nstacks++; /* rehash includes the new one */
        if (!stack_map_rehash(log, nslots ? nslots * 2 : 64)) {
            log->nstacks--;
            return false;
        }
        return true;
    }
    const struct mt_stack *s = &log->stacks[log->nstacks];
    stack_slot_set(log->stack_slots, log->stack_slot_mask, log->stacks, s->id,
                   (uint32_t)(log->nstacks + 1));
    log->nstacks++;
    return true;
}

const struct mt_stack *mt_log_find_stack(const struct mt_log *log, uint32_t id)
{
    if (id == 0 || !log->stack_slots)
        return NULL;
    for (size_t i = mix32(id) & log->stack_slot_mask;; i = (i + 1) & log->stack_slot_mask) {
        uint32_t v = log->stack_slots[i];
        if (v == 0)
            return NULL;
        if (log->stacks[v - 1].id == id)
            return &log->stacks[v - 1];
    }
}

/* ------------------------------------------------------------------------------------- */
/* Records                                                                                */
/* ------------------------------------------------------------------------------------- */

struct parser {
    struct mt_log *log;
    const char *why;   /* what was wrong with the current line */
    bool oom;
};

static bool fail(struct parser *p, const char *why)
{
    p->why = why;
    return false;
}

static bool oom(struct parser *p)
{
    p->oom = true;
    return fail(p, "out of memory");
}

static bool set_text(struct parser *p, char **dst, const char *rest)
{
    char *s = unescape_dup(rest);
    if (!s)
        return oom(p);
    free(*dst);
    *dst = s;
    return true;
}

static bool rec_process(struct parser *p, char *rest)
{
    uint64_t pid, ppid;
    char *a = next_word(&rest), *b = next_word(&rest);
    if (!a || !b || *rest || !parse_dec(a, INT32_MAX, &pid) || !parse_dec(b, INT32_MAX, &ppid))
        return fail(p, "expected PID PPID");
    p->log->has_process = true;
    p->log->pid = (long)pid;
    p->log->ppid = (long)ppid;
    return true;
}

static bool rec_exe(struct parser *p, char *rest)
{
    return set_text(p, &p->log->exe, rest);
}

static bool rec_options(struct parser *p, char *rest)
{
    return set_text(p, &p->log->options, rest);
}

static bool rec_arg(struct parser *p, char *rest)
{
    struct mt_log *log = p->log;
    if (!GROW(log->argv, log->argc + 1, log->cap_argv))
        return oom(p);
    log->argv[log->argc] = NULL;
    if (!set_text(p, &log->argv[log->argc], rest))
        return false;
    log->argc++;
    return true;
}

/* Build ids are short hex strings; anything else is not one. */
static bool valid_build_id(const char *s)
{
    size_t n = strlen(s);
    if (n < 2 || n > 128 || n % 2)
        return false;
    for (; *s; s++)
        if (hex_digit(*s) < 0)
            return false;
    return true;
}

static bool rec_module(struct parser *p, char *rest)
{
    struct mt_log *log = p->log;
    struct mt_module m = { 0 };
    char *base = next_word(&rest), *lo = next_word(&rest), *hi = next_word(&rest);
    char *bid = next_word(&rest);
    if (!base || !lo || !hi || !bid || !*rest)
        return fail(p, "expected BASE LO HI BUILDID PATH");
    if (!parse_hex(base, &m.base) || !parse_hex(lo, &m.lo) || !parse_hex(hi, &m.hi) ||
        m.lo > m.hi)
        return fail(p, "bad address");
    if (strcmp(bid, "-") != 0 && !valid_build_id(bid))
        return fail(p, "bad build id");
    if (!GROW(log->modules, log->nmodules + 1, log->cap_modules))
        return oom(p);
    if (strcmp(bid, "-") != 0) {
        if (!(m.build_id = strdup(bid)))
            return oom(p);
        for (char *c = m.build_id; *c; c++)
            if (*c >= 'A' && *c <= 'F')
                *c = (char)(*c - 'A' + 'a');
    }
    if (!(m.path = unescape_dup(rest))) {
        free(m.build_id);
        return oom(p);
    }
    log->modules[log->nmodules++] = m;
    return true;
}

static bool rec_stack(struct parser *p, char *rest)
{
    struct mt_log *log = p->log;
    uint32_t id, depth;
    char *w_id = next_word(&rest), *w_n = next_word(&rest);
    if (!w_id || !w_n || !parse_u32(w_id, &id) || id == 0)
        return fail(p, "bad stack id");
    if (!parse_u32(w_n, &depth) || depth > MT_LOG_MAX_FRAMES)
        return fail(p, "bad frame count");
    if (log->nstacks >= UINT32_MAX - 1)
        return fail(p, "too many stacks");
    if (!GROW(log->pcs, log->npcs + depth, log->cap_pcs) ||
        !GROW(log->stacks, log->nstacks + 1, log->cap_stacks))
        return oom(p);
    /* PCs go into reserved space and are committed only once the record is complete. */
    for (uint32_t i = 0; i < depth; i++) {
        char *w = next_word(&rest);
        if (!w || !parse_hex(w, &log->pcs[log->npcs + i]))
            return fail(p, "fewer PCs than announced, or a bad PC");
    }
    if (*rest)
        return fail(p, "more PCs than announced");
    log->stacks[log->nstacks] = (struct mt_stack){ .id = id, .depth = depth, .first = log->npcs };
    if (!stack_map_add(log))
        return oom(p);
    log->npcs += depth;
    return true;
}

/* Calls SET for each key=value word of REST; unknown keys are SET's business. */
static bool for_each_pair(struct parser *p, char *rest, void *obj,
                          bool (*set)(void *obj, const char *key, const char *val))
{
    char *w;
    while ((w = next_word(&rest)) != NULL) {
        char *eq = strchr(w, '=');
        if (!eq || eq == w)
            return fail(p, "expected key=value");
        *eq = '\0';
        if (!set(obj, w, eq + 1))
            return fail(p, "bad value");
    }
    if (*rest)
        return fail(p, "stray space");
    return true;
}

/* Only these are logged: the strings live here, not in the log's buffer. */
static const char *const call_fn_names[] = {
    "malloc", "calloc", "realloc", "memalign", "__builtin_new", "__builtin_new_aligned",
    "__builtin_vec_new", "__builtin_vec_new_aligned", "strcpy", "stpcpy", "strncpy", "stpncpy",
    "strcat", "strncat",
};
static const char *const size_arg_names[] = { "size", "nmemb", "nmemb*size" };

static bool set_name(const char **out, const char *const *names, int count, const char *val)
{
    int i = name_index(names, count, val);
    *out = i < 0 ? NULL : names[i];
    return i >= 0;
}

static bool set_alloc_fn(enum mt_alloc_fn *fn, const char *val)
{
    int i = name_index(alloc_fn_names, (int)(sizeof alloc_fn_names / sizeof *alloc_fn_names), val);
    if (i < 0)
        return false;
    *fn = (enum mt_alloc_fn)i;
    return true;
}

/* Marks an optional key as present; the value is only valid when OK. */
static bool present(unsigned *has, unsigned bit, bool ok)
{
    *has |= bit;
    return ok;
}

/* kind is stored as MT_ERR_KIND_COUNT until seen, so a record without one is caught. */
static bool error_set(void *obj, const char *k, const char *v)
{
    struct mt_error *e = obj;
    if (strcmp(k, "kind") == 0) {
        int i = name_index(error_kind_names, MT_ERR_KIND_COUNT, v);
        e->kind = (enum mt_error_kind)i;
        return i >= 0;
    }
    if (strcmp(k, "tid") == 0)
        return present(&e->has, MT_HAS_TID, parse_u32(v, &e->tid));
    if (strcmp(k, "addr") == 0)
        return present(&e->has, MT_HAS_ADDR, parse_hex(v, &e->addr));
    if (strcmp(k, "stack") == 0)
        return parse_u32(v, &e->stack);
    if (strcmp(k, "alloc") == 0)
        return parse_u32(v, &e->alloc_stack);
    if (strcmp(k, "free") == 0)
        return parse_u32(v, &e->free_stack);
    if (strcmp(k, "exact") == 0) {
        e->exact = strcmp(v, "1") == 0;
        return e->exact || strcmp(v, "0") == 0;
    }
    if (strcmp(k, "op") == 0) {
        e->op = strcmp(v, "read") == 0 ? MT_OP_READ : strcmp(v, "write") == 0 ? MT_OP_WRITE
                                                                               : MT_OP_UNKNOWN;
        return e->op != MT_OP_UNKNOWN;
    }
    if (strcmp(k, "access") == 0)
        return present(&e->has, MT_HAS_ACCESS, parse_dec(v, UINT32_MAX, &e->access_size));
    if (strcmp(k, "block") == 0)
        return present(&e->has, MT_HAS_BLOCK, parse_hex(v, &e->block));
    if (strcmp(k, "size") == 0)
        return present(&e->has, MT_HAS_SIZE, parse_dec(v, UINT64_MAX, &e->size));
    if (strcmp(k, "alloc_fn") == 0)
        return set_alloc_fn(&e->alloc_fn, v);
    if (strcmp(k, "free_fn") == 0)
        return set_alloc_fn(&e->free_fn, v);
    if (strcmp(k, "requested") == 0)
        return present(&e->has, MT_HAS_REQUESTED, parse_dec(v, UINT64_MAX, &e->requested));
    if (strcmp(k, "repeats") == 0)
        return parse_dec(v, UINT64_MAX, &e->count) && e->count > 0;
    if (strcmp(k, "fn") == 0)
        return set_name(&e->call_fn, call_fn_names,
                        (int)(sizeof call_fn_names / sizeof *call_fn_names), v);
    if (strcmp(k, "arg") == 0)
        return set_name(&e->size_arg, size_arg_names,
                        (int)(sizeof size_arg_names / sizeof *size_arg_names), v);
    if (strcmp(k, "times") == 0)
        return parse_dec(v, UINT64_MAX, &e->times);
    if (strcmp(k, "src") == 0)
        return present(&e->has, MT_HAS_SOURCE, parse_hex(v, &e->source));
    if (strcmp(k, "where") == 0) {
        e->on_stack = strcmp(v, "stack") == 0;
        return e->on_stack;
    }
    return true; /* a key from a later format version */
}

/* Errors of one context: valgrind's (kind, read or write and its size, the error's stack).
 * Errors without a stack are never folded. */
static bool same_context(const struct mt_error *a, const struct mt_error *b)
{
    return a->kind == b->kind && a->stack == b->stack && a->exact == b->exact &&
           a->op == b->op && a->access_size == b->access_size;
}

static uint32_t context_hash(const struct mt_error *e)
{
    return mix32(e->stack ^ mix32((uint32_t)e->kind << 8 ^ (uint32_t)e->op << 4 ^ e->exact ^
                                  (uint32_t)e->access_size << 12));
}

static void error_slot_set(uint32_t *slots, size_t mask, uint32_t hash, uint32_t value)
{
    size_t i = hash & mask;
    while (slots[i])
        i = (i + 1) & mask;
    slots[i] = value;
}

static struct mt_error *first_of_context(const struct mt_log *log, const struct mt_error *e)
{
    if (!log->error_slots)
        return NULL;
    for (size_t i = context_hash(e) & log->error_slot_mask;; i = (i + 1) & log->error_slot_mask) {
        uint32_t v = log->error_slots[i];
        if (v == 0)
            return NULL;
        if (same_context(&log->errors[v - 1], e))
            return &log->errors[v - 1];
    }
}

/* Registers log->errors[log->nerrors] (already filled) as its context's first error. */
static bool error_map_add(struct mt_log *log)
{
    size_t nslots = log->error_slots ? log->error_slot_mask + 1 : 0;
    if ((log->nerrors + 1) * 2 > nslots) {
        size_t grown = nslots ? nslots * 2 : 64;
        uint32_t *slots = grown <= UINT32_MAX ? calloc(grown, sizeof *slots) : NULL;
        if (!slots)
            return false;
        for (size_t i = 0; i < log->nerrors; i++)
            if (log->errors[i].stack)
                error_slot_set(slots, grown - 1, context_hash(&log->errors[i]), (uint32_t)(i + 1));
        free(log->error_slots);
        log->error_slots = slots;
        log->error_slot_mask = grown - 1;
    }
    error_slot_set(log->error_slots, log->error_slot_mask, context_hash(&log->errors[log->nerrors]),
                   (uint32_t)(log->nerrors + 1));
    return true;
}

static bool rec_error(struct parser *p, char *rest)
{
    struct mt_log *log = p->log;
    struct mt_error e = { .kind = MT_ERR_KIND_COUNT };
    if (!for_each_pair(p, rest, &e, error_set))
        return false;
    if (e.kind == MT_ERR_KIND_COUNT)
        return fail(p, "no kind");
    uint64_t times = e.count ? e.count : 1; /* a `repeats` line stands for that many */
    struct mt_error *first = e.stack ? first_of_context(log, &e) : NULL;
    if (first) {
        first->count = first->count + times < first->count ? UINT64_MAX : first->count + times;
        return true;
    }
    if (!GROW(log->errors, log->nerrors + 1, log->cap_errors))
        return oom(p);
    e.count = times;
    log->errors[log->nerrors] = e;
    if (e.stack && !error_map_add(log))
        return oom(p);
    log->nerrors++;
    return true;
}

static bool leak_set(void *obj, const char *k, const char *v)
{
    struct mt_leak *l = obj;
    if (strcmp(k, "class") == 0) {
        int i = name_index(leak_class_names, MT_LEAK_CLASS_COUNT, v);
        l->cls = (enum mt_leak_class)i;
        return i >= 0;
    }
    if (strcmp(k, "bytes") == 0)
        return parse_dec(v, UINT64_MAX, &l->bytes);
    if (strcmp(k, "blocks") == 0)
        return parse_dec(v, UINT64_MAX, &l->blocks);
    if (strcmp(k, "indirect") == 0)
        return parse_dec(v, UINT64_MAX, &l->indirect);
    if (strcmp(k, "stack") == 0)
        return parse_u32(v, &l->stack);
    if (strcmp(k, "alloc_fn") == 0)
        return set_alloc_fn(&l->alloc_fn, v);
    return true;
}

static bool rec_leak(struct parser *p, char *rest)
{
    struct mt_log *log = p->log;
    struct mt_leak l = { .cls = MT_LEAK_CLASS_COUNT };
    if (!for_each_pair(p, rest, &l, leak_set))
        return false;
    if (l.cls == MT_LEAK_CLASS_COUNT)
        return fail(p, "no class");
    if (!GROW(log->leaks, log->nleaks + 1, log->cap_leaks))
        return oom(p);
    log->leaks[log->nleaks++] = l;
    return true;
}

static bool mapping_set(void *obj, const char *k, const char *v)
{
    struct mt_mapping *m = obj;
    if (strcmp(k, "addr") == 0)
        return parse_hex(v, &m->addr);
    if (strcmp(k, "len") == 0)
        return parse_dec(v, UINT64_MAX, &m->len);
    if (strcmp(k, "stack") == 0)
        return parse_u32(v, &m->stack);
    return true;
}

static bool rec_mapping(struct parser *p, char *rest)
{
    struct mt_log *log = p->log;
    struct mt_mapping m = { 0 };
    if (!for_each_pair(p, rest, &m, mapping_set))
        return false;
    if (!GROW(log->mappings, log->nmappings + 1, log->cap_mappings))
        return oom(p);
    log->mappings[log->nmappings++] = m;
    return true;
}

static bool summary_set(void *obj, const char *k, const char *v)
{
    struct mt_summary *s = obj;
    static const struct { const char *key; size_t off; } keys[] = {
        { "live_bytes", offsetof(struct mt_summary, live_bytes) },
        { "live_blocks", offsetof(struct mt_summary, live_blocks) },
        { "allocs", offsetof(struct mt_summary, allocs) },
        { "frees", offsetof(struct mt_summary, frees) },
        { "bytes_allocated", offsetof(struct mt_summary, bytes_allocated) },
        { "guarded", offsetof(struct mt_summary, guarded) },
    };
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (strcmp(k, keys[i].key) == 0)
            return parse_dec(v, UINT64_MAX, (uint64_t *)((char *)s + keys[i].off));
    for (size_t h = 0; h < MT_HEURISTIC_COUNT; h++) {
        size_t n = strlen(mt_heuristic_names[h]);
        if (strncmp(k, mt_heuristic_names[h], n) != 0)
            continue;
        if (strcmp(k + n, "_bytes") == 0)
            return parse_dec(v, UINT64_MAX, &s->heuristic_bytes[h]);
        if (strcmp(k + n, "_blocks") == 0)
            return parse_dec(v, UINT64_MAX, &s->heuristic_blocks[h]);
    }
    return true;
}

static bool rec_summary(struct parser *p, char *rest)
{
    struct mt_summary s = { .present = true };
    if (!for_each_pair(p, rest, &s, summary_set))
        return false;
    p->log->summary = s;
    return true;
}

/* `exit status=N` or `exit signal=N`: written by the runtime as the process ends (not yet
 * in docs/event-log.md), so a report rendered later still knows how it ended. */
static bool rec_exit(struct parser *p, char *rest)
{
    char *w = next_word(&rest), *eq = w ? strchr(w, '=') : NULL;
    uint64_t v;
    if (!eq || *rest)
        return fail(p, "expected status=N or signal=N");
    *eq = '\0';
    bool signaled = strcmp(w, "signal") == 0;
    if ((!signaled && strcmp(w, "status") != 0) || !parse_dec(eq + 1, INT32_MAX, &v))
        return fail(p, "expected status=N or signal=N");
    p->log->has_exit = true;
    p->log->exit_signaled = signaled;
    p->log->exit_value = (int)v;
    return true;
}

static bool crash_set(void *obj, const char *k, const char *v)
{
    struct mt_crash *c = obj;
    uint64_t n;
    if (strcmp(k, "signal") == 0 || strcmp(k, "code") == 0) {
        if (!parse_dec(v, INT32_MAX, &n))
            return false;
        *(strcmp(k, "signal") == 0 ? &c->signal : &c->code) = (int)n;
        return true;
    }
    if (strcmp(k, "addr") == 0)
        return parse_hex(v, &c->addr);
    if (strcmp(k, "stack") == 0)
        return parse_u32(v, &c->stack);
    return true;
}

static bool rec_crash(struct parser *p, char *rest)
{
    struct mt_crash c = { .present = true };
    if (!for_each_pair(p, rest, &c, crash_set))
        return false;
    if (c.signal <= 0)
        return fail(p, "no signal");
    p->log->crash = c;
    return true;
}

static bool rec_end(struct parser *p, char *rest)
{
    if (*rest)
        return fail(p, "unexpected text after end");
    p->log->ended = true;
    p->log->replaced_by_exec = false;
    return true;
}

static bool rec_exec(struct parser *p, char *rest)
{
    if (*rest)
        return fail(p, "unexpected text after exec");
    p->log->replaced_by_exec = true;
    return true;
}

static const struct {
    const char *name;
    bool (*parse)(struct parser *p, char *rest);
} records[] = {
    { "process", rec_process }, { "exe", rec_exe },         { "arg", rec_arg },
    { "options", rec_options }, { "module", rec_module },   { "stack", rec_stack },
    { "error", rec_error },     { "leak", rec_leak },       { "mapping", rec_mapping },
    { "summary", rec_summary }, { "exit", rec_exit },       { "end", rec_end },
    { "exec", rec_exec },       { "crash", rec_crash },
};

/* A record name this version does not know is skipped if it looks like one (a later
 * format version may add records); anything else is garbage. */
static bool plausible_record_name(const char *w)
{
    if (!*w)
        return false;
    for (; *w; w++)
        if (!((*w >= 'a' && *w <= 'z') || (*w >= '0' && *w <= '9') || *w == '-' || *w == '_'))
            return false;
    return true;
}

/* Parses one complete line; on failure p->why says why and *NAME the record name. */
static bool parse_record(struct parser *p, char *line, const char **name)
{
    char *sp = strchr(line, ' ');
    char *rest = sp ? sp + 1 : line + strlen(line);
    if (sp)
        *sp = '\0';
    *name = line;
    for (size_t i = 0; i < sizeof records / sizeof *records; i++)
        if (strcmp(line, records[i].name) == 0)
            return records[i].parse(p, rest);
    if (plausible_record_name(line))
        return true;
    *name = NULL;
    return fail(p, "not a record");
}

/* ------------------------------------------------------------------------------------- */
/* Lines and the file                                                                     */
/* ------------------------------------------------------------------------------------- */

enum line_status { LINE_OK, LINE_EOF, LINE_UNTERMINATED, LINE_TOO_LONG, LINE_NUL };

/* BUF holds MT_LOG_MAX_LINE + 1 bytes. An unterminated last line is what a killed
 * writer leaves behind; it is reported separately so it is not called malformed. */
static enum line_status read_line(FILE *f, char *buf)
{
    size_t n = 0;
    bool nul = false;
    int c;
    while ((c = getc_unlocked(f)) != EOF) {
        if (c == '\n') {
            buf[n] = '\0';
            return nul ? LINE_NUL : LINE_OK;
        }
        if (n == MT_LOG_MAX_LINE)
            return LINE_TOO_LONG;
        nul |= c == '\0';
        buf[n++] = (char)c;
    }
    buf[n] = '\0';
    return n ? LINE_UNTERMINATED : LINE_EOF;
}

static enum mt_log_status check_magic(const char *path, FILE *f, char *buf)
{
    enum line_status st = read_line(f, buf);
    uint64_t version;
    if ((st == LINE_OK || st == LINE_UNTERMINATED) && strncmp(buf, "memtrace-log ", 13) == 0 &&
        parse_dec(buf + 13, UINT32_MAX, &version)) {
        if (version == 1)
            return MT_LOG_OK;
        fprintf(stderr, "memtrace: %s: unsupported event log version %llu (this memtrace "
                "reads version 1)\n", path, (unsigned long long)version);
        return MT_LOG_BAD_VERSION;
    }
    fprintf(stderr, "memtrace: %s: not a memtrace event log\n", path);
    return MT_LOG_NOT_A_LOG;
}

static void warn_stop(const struct mt_log *log, unsigned long lineno, const char *what,
                      const char *why)
{
    fprintf(stderr, "memtrace: warning: %s:%lu: %s (%s); ignoring the rest of the log\n",
            log->path, lineno, what, why);
}

static void read_records(struct mt_log *log, FILE *f, char *buf)
{
    struct parser p = { .log = log };
    for (unsigned long lineno = 2; !log->ended; lineno++) {
        enum line_status st = read_line(f, buf);
        if (st == LINE_EOF || st == LINE_UNTERMINATED)
            return; /* an unterminated line is the torn tail of a truncated log */
        const char *name = NULL;
        if (st == LINE_TOO_LONG || st == LINE_NUL) {
            p.why = st == LINE_TOO_LONG ? "line longer than 1 MiB" : "NUL byte";
        } else if (parse_record(&p, buf, &name)) {
            continue;
        }
        char what[64] = "malformed line";
        if (name)
            snprintf(what, sizeof what, "malformed '%.20s' record", name);
        warn_stop(log, lineno, p.oom ? "cannot load it" : what, p.why);
        log->damaged = true;
        return;
    }
}

enum mt_log_status mt_log_read(const char *path, struct mt_log *log)
{
    memset(log, 0, sizeof *log);
    log->path = strdup(path);
    FILE *f = fopen(path, "r");
    if (!f || !log->path) {
        int err = log->path ? errno : ENOMEM;
        fprintf(stderr, "memtrace: cannot read %s: %s\n", path, strerror(err));
        if (f)
            fclose(f);
        mt_log_free(log);
        errno = err;
        return MT_LOG_CANNOT_OPEN;
    }
    char *buf = malloc(MT_LOG_MAX_LINE + 1);
    enum mt_log_status st = buf ? check_magic(path, f, buf) : MT_LOG_CANNOT_OPEN;
    if (!buf)
        fprintf(stderr, "memtrace: cannot read %s: %s\n", path, strerror(ENOMEM));
    if (st == MT_LOG_OK)
        read_records(log, f, buf);
    if (st == MT_LOG_OK && ferror(f)) {
        fprintf(stderr, "memtrace: warning: %s: read error; showing what was read\n", path);
        log->damaged = true;
    }
    free(buf);
    fclose(f);
    if (st != MT_LOG_OK)
        mt_log_free(log);
    return st;
}

void mt_log_free(struct mt_log *log)
{
    for (size_t i = 0; i < log->argc; i++)
        free(log->argv[i]);
    for (size_t i = 0; i < log->nmodules; i++) {
        free(log->modules[i].build_id);
        free(log->modules[i].path);
    }
    free(log->path);
    free(log->exe);
    free(log->options);
    free(log->argv);
    free(log->modules);
    free(log->stacks);
    free(log->pcs);
    free(log->errors);
    free(log->leaks);
    free(log->mappings);
    free(log->stack_slots);
    free(log->error_slots);
    memset(log, 0, sizeof *log);
}
