/* options.h — every memtrace option, declared once in MEMTRACE_OPTION_TABLE with its
 * type, default and help. The same table drives the runtime's MEMTRACE_OPTIONS parser,
 * the launcher's command line, `--help` and docs/options.md. No option is read anywhere
 * else. The parser never allocates (it runs inside malloc during bootstrap). */
#ifndef MEMTRACE_OPTIONS_H
#define MEMTRACE_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#define OPTION_PATH_MAX 512

enum option_type { OPT_BOOL, OPT_INT, OPT_CHOICE, OPT_KINDS, OPT_PATH, OPT_PATHS, OPT_GUARD, OPT_BYTE };

/* An option that may be given several times (OPT_PATHS): each use adds a path. */
#define OPTION_PATHS_MAX 16
struct option_paths {
    int count;
    char path[OPTION_PATHS_MAX][OPTION_PATH_MAX];
};

/* --guard values (OPT_GUARD): sample:N is stored as N (so all = 1). */
#define GUARD_AUTO (-1)
#define GUARD_NONE 0
#define GUARD_ALL 1
/* --allocator values. */
#define ALLOCATOR_MEMTRACE 0
#define ALLOCATOR_GLIBC 1
/* --malloc-fill / --free-fill (OPT_BYTE) when not given. */
#define FILL_OFF (-1)

/* Who reads an option: the runtime inside the target, the reporter, or the launcher. */
enum option_scope { SCOPE_RUNTIME = 1, SCOPE_REPORT = 2, SCOPE_LAUNCHER = 4 };

/* Leak-kind sets, as bits (also the reporter's LEAK_BIT_* values). */
#define KIND_DEFINITE  1u
#define KIND_INDIRECT  2u
#define KIND_POSSIBLE  4u
#define KIND_REACHABLE 8u

/*  X(type,       field,                 name,                    default,  min, max,  scope,                          choices,             help) */
#define MEMTRACE_OPTION_TABLE(X) \
    X(OPT_CHOICE, leak_check,            "leak-check",            2,        0, 2,      SCOPE_RUNTIME | SCOPE_REPORT,   "no|summary|full",   "search for leaks at exit; summary prints totals only") \
    X(OPT_KINDS,  show_leak_kinds,       "show-leak-kinds",       5,        0, 15,     SCOPE_REPORT,                   NULL,                "leak kinds shown one by one: definite,indirect,possible,reachable|all|none") \
    X(OPT_KINDS,  errors_for_leak_kinds, "errors-for-leak-kinds", 5,        0, 15,     SCOPE_REPORT,                   NULL,                "leak kinds counted as errors (for --error-exitcode)") \
    X(OPT_KINDS,  leak_check_heuristics, "leak-check-heuristics", 15,       0, 15,     SCOPE_RUNTIME,                  "stdstring|length64|newarray|multipleinheritance", "interior pointers that still make a block reachable, as valgrind's: stdstring,length64,newarray,multipleinheritance|all|none") \
    X(OPT_INT,    error_exitcode,        "error-exitcode",        0,        0, 255,    SCOPE_LAUNCHER,                 NULL,                "exit with this code when errors were found (0: keep the program's own status)") \
    X(OPT_INT,    num_callers,           "num-callers",           24,       1, 64,     SCOPE_RUNTIME | SCOPE_REPORT,   NULL,                "frames recorded and shown per stack") \
    X(OPT_BOOL,   trace_children,        "trace-children",        0,        0, 1,      SCOPE_RUNTIME,                  NULL,                "keep tracing programs started with exec") \
    X(OPT_PATH,   log_file,              "log-file",              0,        0, 0,      SCOPE_REPORT,                   NULL,                "write the text report to FILE instead of stderr (%p: pid)") \
    X(OPT_PATH,   json,                  "json",                  0,        0, 0,      SCOPE_REPORT,                   NULL,                "write the JSON report to FILE (%p: pid)") \
    X(OPT_PATH,   event_log,             "event-log",             0,        0, 0,      SCOPE_RUNTIME,                  NULL,                "keep the raw event log in FILE (%p: pid); `memtrace report FILE` renders it again") \
    X(OPT_BOOL,   quiet,                 "quiet",                 0,        0, 1,      SCOPE_REPORT,                   NULL,                "print errors only (also -q)") \
    X(OPT_GUARD,  guard,                 "guard",                 GUARD_AUTO, 0, 1 << 30, SCOPE_RUNTIME,               NULL,                "which blocks get a guard page: all|sample:N|none|auto (the first 128 allocations, then each call site's first ones, then fewer)") \
    X(OPT_CHOICE, guard_side,            "guard-side",            0,        0, 1,      SCOPE_RUNTIME,                  "overflow|underflow", "guard page after the block (overflows fault) or before it (underflows fault)") \
    X(OPT_CHOICE, guard_align,           "guard-align",           0,        0, 1,      SCOPE_RUNTIME,                  "natural|16",        "guarded block alignment: natural for its size (odd sizes end at the guard) or malloc's 16") \
    X(OPT_INT,    quarantine_size,       "quarantine-size",       32,       0, 65536,  SCOPE_RUNTIME,                  NULL,                "MB of memory of freed blocks (with their redzones) held back from reuse, to catch use-after-free and double free") \
    X(OPT_CHOICE, allocator,             "allocator",             0,        0, 1,      SCOPE_RUNTIME,                  "memtrace|glibc",    "memory under blocks of up to 1 KB with their redzones: memtrace's size classes, or glibc's malloc (slower to reuse what the quarantine hands back)") \
    X(OPT_BYTE,   malloc_fill,           "malloc-fill",           FILL_OFF, 0, 255,    SCOPE_RUNTIME,                  NULL,                "fill new blocks with this byte (0xNN)") \
    X(OPT_BYTE,   free_fill,             "free-fill",             FILL_OFF, 0, 255,    SCOPE_RUNTIME,                  NULL,                "fill freed blocks with this byte (0xNN); by default they keep their contents, their first words checked by hash") \
    X(OPT_BOOL,   run_libc_freeres,      "run-libc-freeres",      1,        0, 1,      SCOPE_RUNTIME,                  NULL,                "free glibc's caches (locale, time zone, stdio buffers) before the leak check, as valgrind does") \
    X(OPT_BOOL,   run_cxx_freeres,       "run-cxx-freeres",       1,        0, 1,      SCOPE_RUNTIME,                  NULL,                "free libstdc++'s emergency exception pool before the leak check, as valgrind does") \
    X(OPT_BOOL,   continue_after_fault,  "continue-after-fault",  0,        0, 1,      SCOPE_RUNTIME,                  NULL,                "after reporting a bad access to a guard page, open the page and let the program go on") \
    X(OPT_BOOL,   xml,                   "xml",                   0,        0, 1,      SCOPE_REPORT,                   NULL,                "write valgrind's XML (protocol 4) to --xml-file") \
    X(OPT_PATH,   xml_file,              "xml-file",              0,        0, 0,      SCOPE_REPORT,                   NULL,                "where --xml=yes writes (%p: pid)") \
    X(OPT_PATH,   sarif,                 "sarif",                 0,        0, 0,      SCOPE_REPORT,                   NULL,                "write SARIF 2.1.0 for code scanning to FILE (%p: pid)") \
    X(OPT_PATH,   markdown,              "markdown",              0,        0, 0,      SCOPE_REPORT,                   NULL,                "write a Markdown report for a bug ticket to FILE (%p: pid)") \
    X(OPT_PATH,   source_root,           "source-root",           0,        0, 0,      SCOPE_REPORT,                   NULL,                "paths in SARIF and Markdown are relative to this directory (default: the current one)") \
    X(OPT_PATHS,  suppressions,          "suppressions",          0,        0, 0,      SCOPE_REPORT,                   NULL,                "read valgrind-format suppressions from FILE (may be given several times)") \
    X(OPT_CHOICE, gen_suppressions,      "gen-suppressions",      0,        0, 2,      SCOPE_REPORT,                   "no|yes|all",        "print a ready suppression entry after each error (yes and all: every error)") \
    X(OPT_BOOL,   default_suppressions,  "default-suppressions",  1,        0, 1,      SCOPE_REPORT,                   NULL,                "also apply the suppressions shipped with memtrace (glibc, ld.so, libstdc++)") \
    X(OPT_PATH,   baseline,              "baseline",              0,        0, 0,      SCOPE_REPORT,                   NULL,                "a JSON report of an earlier run: only errors not in it count toward --error-exitcode") \
    X(OPT_PATH,   debug_cache,           "debug-cache",           0,        0, 0,      SCOPE_REPORT,                   NULL,                "directory for inflated copies of compressed debug files, or no (default: $XDG_CACHE_HOME/memtrace/debug)")

struct options {
#define OPTION_FIELD_OPT_BOOL(field) bool field;
#define OPTION_FIELD_OPT_INT(field) int field;
#define OPTION_FIELD_OPT_CHOICE(field) int field;
#define OPTION_FIELD_OPT_KINDS(field) unsigned field;
#define OPTION_FIELD_OPT_PATH(field) char field[OPTION_PATH_MAX];
#define OPTION_FIELD_OPT_PATHS(field) struct option_paths field;
#define OPTION_FIELD_OPT_GUARD(field) int field;
#define OPTION_FIELD_OPT_BYTE(field) int field;
#define OPTION_DECLARE(type, field, ...) OPTION_FIELD_##type(field)
    MEMTRACE_OPTION_TABLE(OPTION_DECLARE)
};

struct option_info {
    enum option_type type;
    const char *name;
    long default_value;
    long min, max;
    unsigned scope;
    const char *choices;
    const char *help;
};

extern const struct option_info option_infos[];
extern const size_t option_count;

void options_init(struct options *opts);
/* Sets one option from `name` and `value` (not NUL-terminated). Returns 0, or -1 with a
 * one-line reason in err (e.g. "unknown option 'foo'"). */
int options_set(struct options *opts, const char *name, size_t name_len,
                const char *value, size_t value_len, char *err, size_t err_size);
/* Parses "key=value key=value" (words separated by blanks; `--key=value` also accepted).
 * Stops at the first bad word; returns 0 or -1 with the reason in err. */
int options_parse_string(struct options *opts, const char *text, char *err, size_t err_size);
/* The scope of a named option, or 0 when there is no such option. */
unsigned options_scope(const char *name, size_t name_len);

#endif
