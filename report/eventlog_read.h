/* eventlog_read.h — parses one memtrace event log (docs/event-log.md) into memory.
 * Owns the parsed records and nothing else: it never symbolizes or renders. It trusts no
 * byte of the file: every number, length and count is bounded, stack ids go through a hash
 * map, and the first malformed line ends parsing with one warning while everything read
 * before it is kept. Single-threaded; one struct mt_log per log. */
#ifndef MEMTRACE_EVENTLOG_READ_H
#define MEMTRACE_EVENTLOG_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MT_LOG_MAX_LINE   (1u << 20) /* bytes per line, '\n' excluded */
#define MT_LOG_MAX_FRAMES 4096u      /* PCs per `stack` record */

enum mt_error_kind {
    MT_ERR_DOUBLE_FREE,
    MT_ERR_INVALID_FREE,
    MT_ERR_MISMATCHED_FREE,
    MT_ERR_INVALID_SIZE,
    MT_ERR_HEAP_OVERFLOW,
    MT_ERR_HEAP_UNDERFLOW,
    MT_ERR_USE_AFTER_FREE,
    MT_ERR_INVALID_MUNMAP,
    MT_ERR_OVERLAP,
    MT_ERR_KIND_COUNT
};

enum mt_leak_class { MT_LEAK_DEFINITE, MT_LEAK_INDIRECT, MT_LEAK_POSSIBLE, MT_LEAK_REACHABLE,
                     MT_LEAK_CLASS_COUNT };

enum mt_access_op { MT_OP_UNKNOWN, MT_OP_READ, MT_OP_WRITE };

enum mt_alloc_fn { MT_FN_UNKNOWN, MT_FN_MALLOC, MT_FN_NEW, MT_FN_NEW_ARRAY, MT_FN_ALIGNED };

/* Which optional keys of an `error` record were present. */
enum mt_error_has {
    MT_HAS_TID       = 1u << 0,
    MT_HAS_ADDR      = 1u << 1,
    MT_HAS_ACCESS    = 1u << 2, /* access size */
    MT_HAS_BLOCK     = 1u << 3,
    MT_HAS_SIZE      = 1u << 4,
    MT_HAS_REQUESTED = 1u << 5,
    MT_HAS_SOURCE    = 1u << 6,
};

struct mt_module {
    uint64_t base;    /* load bias (dlpi_addr) */
    uint64_t lo, hi;  /* PT_LOAD span, half-open */
    char *build_id;   /* lowercase hex; NULL when logged as `-` */
    char *path;
};

struct mt_stack {
    uint32_t id;
    uint32_t depth;   /* number of PCs */
    size_t first;     /* index of the innermost PC in mt_log.pcs */
};

struct mt_error {
    enum mt_error_kind kind;
    unsigned has;                   /* enum mt_error_has bits */
    uint32_t tid;
    uint64_t addr;
    uint32_t stack, alloc_stack, free_stack; /* 0: none */
    bool exact;                     /* frame 0 of `stack` is the faulting instruction */
    enum mt_access_op op;
    uint64_t access_size;
    uint64_t block, size;
    enum mt_alloc_fn alloc_fn, free_fn;
    uint64_t requested;
    bool on_stack;                  /* addr is in the erring thread's own stack */
    /* invalid-size and overlap: valgrind's name of the call ("calloc", "strcpy"); invalid-size
     * also the argument ("nmemb"). NULL when not logged. `times` is calloc's size when their
     * product is what overflowed (argument "nmemb*size", `requested` being nmemb). */
    const char *call_fn, *size_arg;
    uint64_t times;
    uint64_t source;                /* overlap: the source (addr: the destination; requested:
                                     * the length, for the calls that have one) */
    /* Times it happened: later errors of one context (kind, access, stack) are folded into
     * the first, as valgrind does ("200 errors from 1 contexts"); the rest of the record is
     * the first one's. */
    uint64_t count;
};

struct mt_leak {
    enum mt_leak_class cls;
    uint64_t bytes, blocks;
    uint64_t indirect;              /* bytes lost only through this record's blocks */
    uint32_t stack;
    enum mt_alloc_fn alloc_fn;      /* the blocks' allocator family; MT_FN_UNKNOWN: not logged */
};

/* The program's own fatal fault (a `crash` record). */
struct mt_crash {
    bool present;
    int signal, code;                /* si_signo, si_code */
    uint64_t addr;
    uint32_t stack;                  /* frame 0 is the faulting instruction */
};

struct mt_mapping {
    uint64_t addr, len;
    uint32_t stack;
};

/* valgrind's leak-check heuristics, in its order (see src/leak_heuristics.h). */
#define MT_HEURISTIC_COUNT 4

struct mt_summary {
    bool present;
    uint64_t live_bytes, live_blocks, allocs, frees, bytes_allocated;
    uint64_t guarded;               /* allocations placed in the guarded pool */
    /* still reachable only through a heuristic's interior pointer, per heuristic */
    uint64_t heuristic_bytes[MT_HEURISTIC_COUNT], heuristic_blocks[MT_HEURISTIC_COUNT];
};

struct mt_log {
    char *path;                     /* as given to mt_log_read, for messages */
    bool has_process;
    long pid, ppid;
    char *exe, *options;            /* NULL when not logged */
    char **argv;
    size_t argc;
    struct mt_module *modules;
    size_t nmodules;
    struct mt_stack *stacks;
    size_t nstacks;
    uint64_t *pcs;                  /* all stacks' PCs, back to back */
    size_t npcs;
    struct mt_error *errors;
    size_t nerrors;
    struct mt_leak *leaks;
    size_t nleaks;
    struct mt_mapping *mappings;
    size_t nmappings;
    struct mt_summary summary;
    struct mt_crash crash;
    bool has_exit;                  /* an `exit` record: how the process ended, as it saw it */
    bool exit_signaled;             /* exit_value is a signal number */
    int exit_value;
    bool ended;                     /* `end` seen: the runtime finished writing */
    bool replaced_by_exec;          /* last word was `exec`: the process became another
                                     * program, which was not traced: no report */
    bool damaged;                   /* parsing stopped early at a malformed line */

    /* private to eventlog_read.c */
    size_t cap_argv, cap_modules, cap_stacks, cap_pcs, cap_errors, cap_leaks, cap_mappings;
    uint32_t *stack_slots;          /* open-addressing map id -> stack index + 1 */
    size_t stack_slot_mask;
    uint32_t *error_slots;          /* open-addressing map context -> error index + 1 */
    size_t error_slot_mask;
};

enum mt_log_status {
    MT_LOG_OK = 0,
    MT_LOG_CANNOT_OPEN = -1,        /* errno tells why */
    MT_LOG_NOT_A_LOG = -2,
    MT_LOG_BAD_VERSION = -3,
};

/* Reads PATH into LOG (which needs no initialisation). Prints its own one-line messages on
 * stderr: the reason for a negative status, or a warning naming the line where parsing
 * stopped. On MT_LOG_OK the log may still be truncated (!ended); free it with mt_log_free. */
enum mt_log_status mt_log_read(const char *path, struct mt_log *log);
void mt_log_free(struct mt_log *log);

/* The stack logged under ID, or NULL (id 0, or never logged). */
const struct mt_stack *mt_log_find_stack(const struct mt_log *log, uint32_t id);

static inline const uint64_t *mt_stack_pcs(const struct mt_log *log, const struct mt_stack *s)
{
    return log->pcs + s->first;
}

const char *mt_error_kind_name(enum mt_error_kind kind);   /* "double-free", ... */
const char *mt_leak_class_name(enum mt_leak_class cls);    /* "definite", ... */
extern const char *const mt_heuristic_names[MT_HEURISTIC_COUNT]; /* "stdstring", ... */

#endif
