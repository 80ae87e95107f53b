/* eventlog.c — the event log writer (see eventlog.h and docs/event-log.md). */
#include "eventlog.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blocks.h"
#include "os.h"
#include "stacks.h"

#define MAX_MODULES 4096
#define LINE_SIZE 4096

static struct {
    struct pool *pool;
    struct spinlock lock;
    struct spinlock modules_lock;
    int fd;
    bool ended;                      /* `end` written: nothing more belongs in the log */
    int write_failed;                /* a write failed: said once on stderr */
    dev_t dev;                       /* the log file itself, to notice a stolen descriptor */
    ino_t ino;
    char pattern[512];
    char path[600];
    const char *options_text;
    unsigned long long module_adds;  /* dl_iterate_phdr's load counter at the last scan */
    uintptr_t *known_modules;        /* lo addresses already written */
    size_t known_count;
} elog = {.fd = -1};

/* Errors of one context (kind, stack, access) after the first are counted, not written:
 * a bad access in a hot loop would otherwise write a line, and a system call, each time
 * (200k repeats: 20 MB of log). The counts are written at the end, one `error` line with
 * `repeats=N` per context; a context past the table's capacity is written every time. */
#define ERROR_CONTEXTS 1024
struct error_context {
    uint32_t stack;                  /* 0: empty entry */
    uint8_t kind, op, exact;
    uint32_t access_size;
    uint64_t repeats;
};
static struct error_context error_contexts[ERROR_CONTEXTS];

static const char *const error_kind_names[] = {
    "double-free", "invalid-free", "mismatched-free", "invalid-size",
    "heap-overflow", "heap-underflow", "use-after-free", "invalid-munmap", "overlap",
};
static const char *const alloc_kind_names[] = {"malloc", "new", "new[]"};
static const char *const leak_class_names[] = {"definite", "indirect", "possible", "reachable"};
static const char *const heuristic_keys[HEURISTIC_COUNT][2] = {
    [HEURISTIC_STDSTRING] = {"stdstring_bytes", "stdstring_blocks"},
    [HEURISTIC_LENGTH64] = {"length64_bytes", "length64_blocks"},
    [HEURISTIC_NEWARRAY] = {"newarray_bytes", "newarray_blocks"},
    [HEURISTIC_MULTIPLE_INHERITANCE] = {"multipleinheritance_bytes", "multipleinheritance_blocks"},
};

/* Opens the log (never through a planted symlink, readable by its owner only) on a high
 * descriptor, and remembers which file it is. */
static int open_log(const char *path, int flags)
{
    struct stat st;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | flags, 0600);
    if (fd < 0)
        return -1;
    fd = os_move_fd_high(fd);
    if (fstat(fd, &st) == 0) {
        elog.dev = st.st_dev;
        elog.ino = st.st_ino;
    }
    return fd;
}

/* Programs close every descriptor (daemons) or dup2 over ours: then our descriptor is
 * gone or is someone else's file, and the log is opened again, appending. */
static void keep_log_fd(void)
{
    struct stat st;
    if (fstat(elog.fd, &st) == 0 && st.st_dev == elog.dev && st.st_ino == elog.ino)
        return;
    elog.fd = open_log(elog.path, O_APPEND);
}

/* A full disk or a failing device: the report will lack what follows, so say so once,
 * in one line (no strerror: it may allocate). The program itself goes on untouched. */
static void say_write_failed(int error)
{
    char buf[800];
    struct line l;
    if (__atomic_exchange_n(&elog.write_failed, 1, __ATOMIC_RELAXED))
        return;
    line_init(&l, buf, sizeof buf - 1);
    line_str(&l, "memtrace: cannot write the event log ");
    line_str(&l, elog.path);
    line_str(&l, error == ENOSPC ? ": no space left on device" : ": write failed, errno ");
    if (error != ENOSPC)
        line_dec(&l, (uint64_t)error);
    line_str(&l, "; the report will be incomplete\n");
    os_write_all(2, l.buf, l.len);
}

static void write_line(struct line *l)
{
    line_char(l, '\n');
    if (elog.fd < 0)
        return;
    keep_log_fd();
    if (elog.fd >= 0 && !os_write_all(elog.fd, l->buf, l->len))
        say_write_failed(errno);
}

/* The program's own command line, one `arg` record per element of /proc/self/cmdline. */
static void write_args(void)
{
    char buf[LINE_SIZE], text[LINE_SIZE];
    struct line l;
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    size_t have = 0;
    ssize_t n;

    if (fd < 0)
        return;
    while ((n = read(fd, text + have, sizeof text - 1 - have)) > 0)
        have += (size_t)n;
    close(fd);
    text[have] = '\0';
    for (size_t i = 0; i < have; i += strlen(text + i) + 1) {
        line_init(&l, buf, sizeof buf - 1);
        line_str(&l, "arg ");
        line_escaped(&l, text + i);
        write_line(&l);
    }
}

static void write_header(void)
{
    char buf[LINE_SIZE], exe[LINE_SIZE];
    struct line l;
    ssize_t n;

    line_init(&l, buf, sizeof buf - 1);
    line_str(&l, "memtrace-log 1");
    write_line(&l);
    line_init(&l, buf, sizeof buf - 1);
    line_str(&l, "process ");
    line_dec(&l, (uint64_t)getpid());
    line_char(&l, ' ');
    line_dec(&l, (uint64_t)getppid());
    write_line(&l);
    n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        line_init(&l, buf, sizeof buf - 1);
        line_str(&l, "exe ");
        line_escaped(&l, exe);
        write_line(&l);
    }
    write_args();
    line_init(&l, buf, sizeof buf - 1);
    line_str(&l, "options ");
    line_escaped(&l, elog.options_text ? elog.options_text : "");
    write_line(&l);
}

static bool open_from_pattern(void)
{
    struct line l;
    line_init(&l, elog.path, sizeof elog.path - 1);
    line_expand_pid(&l, elog.pattern, getpid());
    elog.path[l.len] = '\0';
    elog.fd = open_log(elog.path, O_TRUNC);
    if (elog.fd < 0)
        return false;
    write_header();
    return true;
}

/* The pattern against today's directory: a program that changes directory reopens its log
 * (keep_log_fd, a fork child) where it was created, not where the program went. */
static bool set_pattern(const char *pattern)
{
    size_t dir = 0, n = strlen(pattern);
    if (pattern[0] != '/') {
        if (!getcwd(elog.pattern, sizeof elog.pattern - 1))
            return false;
        dir = strlen(elog.pattern);
        elog.pattern[dir++] = '/';
    }
    if (dir + n >= sizeof elog.pattern)
        return false;
    memcpy(elog.pattern + dir, pattern, n + 1);
    return true;
}

bool eventlog_open(struct pool *pool, const char *pattern, const char *options_text)
{
    if (!set_pattern(pattern))
        return false;
    elog.pool = pool;
    elog.options_text = options_text;
    elog.known_modules = pool_alloc(pool, MAX_MODULES * sizeof(uintptr_t));
    if (!open_from_pattern())
        return false;
    eventlog_write_modules();
    return true;
}

bool eventlog_reopen_in_child(void)
{
    if (elog.fd >= 0)
        close(elog.fd);
    elog.fd = -1;
    if (!strstr(elog.pattern, "%p")) {
        size_t n = strlen(elog.pattern);
        if (n + 4 >= sizeof elog.pattern)
            return false;
        memcpy(elog.pattern + n, ".%p", 4);
    }
    elog.known_count = 0;
    elog.ended = false;
    memset(error_contexts, 0, sizeof error_contexts);   /* the parent's errors are its own */
    elog.module_adds = 0;
    stacks_fork_child();
    if (!open_from_pattern())
        return false;
    eventlog_write_modules();
    return true;
}

const char *eventlog_path(void)
{
    return elog.fd >= 0 ? elog.path : NULL;
}

/* ----------------------------------------------------------------------------------
 * Modules
 * -------------------------------------------------------------------------------- */

static void append_build_id(struct line *l, const struct dl_phdr_info *info)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
        const char *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *note = (const ElfW(Nhdr) *)p;
            const char *name = p + sizeof *note;
            const unsigned char *desc = (const unsigned char *)name + ((note->n_namesz + 3) & ~3u);
            if (note->n_type == NT_GNU_BUILD_ID && note->n_namesz == 4 &&
                memcmp(name, "GNU", 4) == 0 && (const char *)desc + note->n_descsz <= end) {
                for (unsigned k = 0; k < note->n_descsz; k++) {
                    line_char(l, "0123456789abcdef"[desc[k] >> 4]);
                    line_char(l, "0123456789abcdef"[desc[k] & 15]);
                }
                return;
            }
            p = (const char *)desc + ((note->n_descsz + 3) & ~3u);
        }
    }
    line_char(l, '-');
}

static bool module_known(uintptr_t lo)
{
    for (size_t i = 0; i < elog.known_count; i++)
        if (elog.known_modules[i] == lo)
            return true;
    return false;
}

static int write_module(struct dl_phdr_info *info, size_t size, void *ctx)
{
    char buf[LINE_SIZE], exe[LINE_SIZE];
    const char *path = info->dlpi_name;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    struct line l;

    (void)size;
    (void)ctx;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (start < lo)
            lo = start;
        if (start + ph->p_memsz > hi)
            hi = start + ph->p_memsz;
    }
    if (hi == 0 || module_known(lo) || elog.known_count >= MAX_MODULES)
        return 0;
    if (!path || !path[0]) {
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0)
            return 0;
        exe[n] = '\0';
        path = exe;
    }
    if (path[0] != '/')
        return 0;                 /* the vDSO: no file to symbolize from */
    elog.known_modules[elog.known_count++] = lo;
    line_init(&l, buf, sizeof buf - 1);
    line_str(&l, "module ");
    line_hex(&l, info->dlpi_addr);
    line_char(&l, ' ');
    line_hex(&l, lo);
    line_char(&l, ' ');
    line_hex(&l, hi);
    line_char(&l, ' ');
    append_build_id(&l, info);
    line_char(&l, ' ');
    line_escaped(&l, path);
    os_lock(&elog.lock);
    write_line(&l);
    os_unlock(&elog.lock);
    return 0;
}

static int count_adds(struct dl_phdr_info *info, size_t size, void *ctx)
{
    (void)size;
    *(unsigned long long *)ctx = info->dlpi_adds;
    return 1;
}

void eventlog_write_modules(void)
{
    unsigned long long adds = 0;
    if (elog.fd < 0 || !elog.known_modules)
        return;
    dl_iterate_phdr(count_adds, &adds);
    os_lock(&elog.modules_lock);
    if (adds != elog.module_adds) {
        elog.module_adds = adds;
        dl_iterate_phdr(write_module, NULL);
    }
    os_unlock(&elog.modules_lock);
}

/* ----------------------------------------------------------------------------------
 * Records (the log lock is held by the callers below)
 * -------------------------------------------------------------------------------- */

static void write_stack_locked(uint32_t id)
{
    char buf[LINE_SIZE];
    struct line l;
    struct stack_record *rec = (struct stack_record *)stacks_get(id);

    if (!rec || rec->logged)
        return;
    line_init(&l, buf, sizeof buf - 1);
    line_str(&l, "stack ");
    line_dec(&l, id);
    line_char(&l, ' ');
    line_dec(&l, rec->depth);
    for (int i = 0; i < rec->depth; i++) {
        line_char(&l, ' ');
        line_hex(&l, stacks_frame(rec, i));
    }
    write_line(&l);
    rec->logged = 1;
}

static void key_dec(struct line *l, const char *key, uint64_t v)
{
    line_char(l, ' ');
    line_str(l, key);
    line_char(l, '=');
    line_dec(l, v);
}

static void key_hex(struct line *l, const char *key, uint64_t v)
{
    line_char(l, ' ');
    line_str(l, key);
    line_char(l, '=');
    line_hex(l, v);
}

static void key_str(struct line *l, const char *key, const char *v)
{
    line_char(l, ' ');
    line_str(l, key);
    line_char(l, '=');
    line_str(l, v);
}

/* Ends l with `stack=ID` and writes it, after the stack's own record (once per log). */
static void write_line_with_stack(struct line *l, uint32_t stack)
{
    key_dec(l, "stack", stack);
    os_lock(&elog.lock);
    write_stack_locked(stack);
    write_line(l);
    os_unlock(&elog.lock);
}

/* e's context's entry, added when new; NULL when the table is full or e has no stack. */
static struct error_context *context_of(const struct error_event *e)
{
    if (e->stack == 0)
        return NULL;
    uint32_t hash = e->stack * 0x9e3779b1u ^ (uint32_t)e->kind << 24 ^ (uint32_t)e->op << 20 ^
                    (uint32_t)e->access_size;
    for (size_t n = 0, i = hash % ERROR_CONTEXTS; n < ERROR_CONTEXTS; n++, i = (i + 1) % ERROR_CONTEXTS) {
        struct error_context *c = &error_contexts[i];
        if (c->stack == 0)
            *c = (struct error_context){.stack = e->stack, .kind = (uint8_t)e->kind,
                                        .op = (uint8_t)e->op, .exact = e->exact,
                                        .access_size = (uint32_t)e->access_size, .repeats = ~0ull};
        if (c->stack == e->stack && c->kind == e->kind && c->op == e->op && c->exact == e->exact &&
            c->access_size == e->access_size) {
            c->repeats++;            /* from ~0: the first one is no repeat */
            return c;
        }
    }
    return NULL;
}

/* The keys that make an error's context, after its kind. */
static void key_context(struct line *l, uint32_t stack, bool exact, enum access_op op, size_t access_size)
{
    key_dec(l, "stack", stack);
    if (exact)
        key_dec(l, "exact", 1);
    if (op != ACCESS_NONE) {
        key_str(l, "op", op == ACCESS_READ ? "read" : "write");
        key_dec(l, "access", access_size);
    }
}

/* Under elog.lock: one `repeats=N` line per context that had repeats. */
static void write_repeats_locked(void)
{
    for (size_t i = 0; i < ERROR_CONTEXTS; i++) {
        const struct error_context *c = &error_contexts[i];
        if (c->stack == 0 || c->repeats == 0)
            continue;
        char buf[256];
        struct line l;
        line_init(&l, buf, sizeof buf - 1);
        line_str(&l, "error kind=");
        line_str(&l, error_kind_names[c->kind]);
        key_context(&l, c->stack, c->exact, (enum access_op)c->op, c->access_size);
        key_dec(&l, "repeats", c->repeats);
        write_line(&l);
    }
    memset(error_contexts, 0, sizeof error_contexts);
}

void eventlog_error(const struct error_event *e)
{
    char buf[LINE_SIZE];
    struct line l;

    if (elog.ended)
        return;                      /* after the exit sequence: the report is written */
    os_lock(&elog.lock);
    const struct error_context *context = context_of(e);
    bool repeat = context && context->repeats > 0;
    os_unlock(&elog.lock);
    if (repeat)
        return;
    eventlog_write_modules();
    line_init(&l, buf, sizeof buf - 1);
    line_str(&l, "error kind=");
    line_str(&l, error_kind_names[e->kind]);
    key_dec(&l, "tid", (uint64_t)e->tid);
    key_hex(&l, "addr", e->addr);
    key_context(&l, e->stack, e->exact, e->op, e->access_size);
    if (e->has_block) {
        key_hex(&l, "block", e->block);
        if (!e->size_unknown)
            key_dec(&l, "size", e->block_size);
        key_dec(&l, "alloc", e->alloc_stack);
        if (e->free_stack)
            key_dec(&l, "free", e->free_stack);
    }
    if (e->alloc_kind >= 0 && e->alloc_kind < ALLOC_KIND_COUNT)
        key_str(&l, "alloc_fn", alloc_kind_names[e->alloc_kind]);
    if (e->free_kind >= 0 && e->free_kind < ALLOC_KIND_COUNT)
        key_str(&l, "free_fn", alloc_kind_names[e->free_kind]);
    if (e->has_requested)
        key_dec(&l, "requested", e->requested);
    if (e->on_stack)
        key_str(&l, "where", "stack");
    if (e->function)
        key_str(&l, "fn", e->function);
    if (e->argument)
        key_str(&l, "arg", e->argument);
    if (e->times)
        key_dec(&l, "times", e->times);
    if (e->source)
        key_hex(&l, "src", e->source);
    os_lock(&elog.lock);
    write_stack_locked(e->stack);
    if (e->has_block) {
        write_stack_locked(e->alloc_stack);
        write_stack_locked(e->free_stack);
    }
    write_line(&l);
    os_unlock(&elog.lock);
}

void eventlog_leak(enum leak_class cls, int alloc_kind, uint64_t bytes, uint64_t blocks,
                   uint64_t indirect_bytes, uint32_t stack)
{
    char buf[LINE_SIZE];
    struct line l;

    line_init(&l, buf, sizeof buf - 1);
    line_str(&l, "leak class=");
    line_str(&l, leak_class_names[cls]);
    key_dec(&l, "bytes", bytes);
    key_dec(&l, "blocks", blocks);
    key_dec(&l, "indirect", indirect_bytes);
    if (alloc_kind >= 0 && alloc_kind < ALLOC_KIND_COUNT)
        key_str(&l, "alloc_fn", alloc_kind_names[alloc_kind]);
    write_line_with_stack(&l, stack);
}

void eventlog_mapping(uintptr_t addr, size_t len, uint32_t stack)
{
    char buf[LINE_SIZE];
    struct line l;

    line_init(&l, buf, sizeof buf - 1);
    line_str(&l, "mapping");
    key_hex(&l, "addr", addr);
    key_dec(&l, "len", len);
    write_line_with_stack(&l, stack);
}

void eventlog_summary(const struct heap_totals *t)
{
    char buf[LINE_SIZE];
    struct line l;

    line_init(&l, buf, sizeof buf - 1);
    line_str(&l, "summary");
    key_dec(&l, "live_bytes", t->live_bytes);
    key_dec(&l, "live_blocks", t->live_blocks);
    key_dec(&l, "allocs", t->allocs);
    key_dec(&l, "frees", t->frees);
    key_dec(&l, "bytes_allocated", t->bytes_allocated);
    key_dec(&l, "guarded", t->guarded);
    for (int h = HEURISTIC_NONE + 1; h < HEURISTIC_COUNT; h++) {
        if (t->heuristic_blocks[h]) {
            key_dec(&l, heuristic_keys[h][0], t->heuristic_bytes[h]);
            key_dec(&l, heuristic_keys[h][1], t->heuristic_blocks[h]);
        }
    }
    os_lock(&elog.lock);
    write_line(&l);
    os_unlock(&elog.lock);
}

void eventlog_exit(bool signaled, int value)
{
    char buf[64];
    struct line l;

    line_init(&l, buf, sizeof buf - 1);
    line_str(&l, "exit");
    key_dec(&l, signaled ? "signal" : "status", (uint64_t)(unsigned)value);
    os_lock(&elog.lock);
    write_line(&l);
    os_unlock(&elog.lock);
}

void eventlog_crash(int sig, int code, uintptr_t addr, uint32_t stack)
{
    char buf[128];
    struct line l;

    line_init(&l, buf, sizeof buf - 1);
    line_str(&l, "crash");
    key_dec(&l, "signal", (uint64_t)(unsigned)sig);
    key_dec(&l, "code", (uint64_t)(unsigned)code);
    key_hex(&l, "addr", addr);
    write_line_with_stack(&l, stack);
}

static void write_word(const char *word)
{
    char buf[16];
    struct line l;

    line_init(&l, buf, sizeof buf - 1);
    line_str(&l, word);
    os_lock(&elog.lock);
    write_line(&l);
    os_unlock(&elog.lock);
}

static void write_repeats(void)
{
    os_lock(&elog.lock);
    write_repeats_locked();
    os_unlock(&elog.lock);
}

void eventlog_end(void)
{
    write_repeats();
    write_word("end");
    elog.ended = true;
}

void eventlog_exec(void)
{
    write_repeats();
    write_word("exec");
}

void eventlog_lock(void)
{
    os_lock(&elog.modules_lock);
    os_lock(&elog.lock);
}

void eventlog_unlock(void)
{
    os_unlock(&elog.lock);
    os_unlock(&elog.modules_lock);
}

void eventlog_reset_lock(void)
{
    os_lock_reset(&elog.lock);
    os_lock_reset(&elog.modules_lock);
}
