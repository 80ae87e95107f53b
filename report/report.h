/* report.h — the out-of-process reporter: reads one event log written by libmemtrace.so,
 * symbolizes its stacks with libdw and renders the text report (valgrind's shape) and the
 * JSON report. Runs after the target is gone, so a corrupted target cannot break it; a
 * truncated or corrupt log yields a clear message and whatever could be read. */
#ifndef MEMTRACE_REPORT_H
#define MEMTRACE_REPORT_H

#include <stdbool.h>
#include <stddef.h>

enum leak_kind_bit {
    LEAK_BIT_DEFINITE  = 1u << 0,
    LEAK_BIT_INDIRECT  = 1u << 1,
    LEAK_BIT_POSSIBLE  = 1u << 2,
    LEAK_BIT_REACHABLE = 1u << 3,
};

enum leak_check_mode { LEAK_CHECK_NO, LEAK_CHECK_SUMMARY, LEAK_CHECK_FULL };

struct report_options {
    enum leak_check_mode leak_check; /* default full (valgrind's default is summary; the brief wants full) */
    unsigned show_leak_kinds;        /* LEAK_BIT_*; default definite|possible */
    unsigned errors_for_leak_kinds;  /* default definite|indirect */
    int num_callers;                 /* frames shown per stack, default 24 */
    bool quiet;                      /* -q: errors only, no banner or summaries */
    const char *text_path;           /* NULL: stderr; may contain %p (pid of the log) */
    const char *json_path;           /* NULL: no JSON; may contain %p */
    const char *xml_path;            /* valgrind XML, protocol 4 (--xml=yes --xml-file); %p */
    const char *sarif_path;          /* SARIF 2.1.0; %p */
    const char *markdown_path;       /* Markdown for a bug ticket; %p */
    const char *source_root;         /* SARIF/Markdown paths relative to it; NULL: cwd */
    const char *const *suppression_files; /* valgrind-format .supp files, in order */
    size_t nsuppression_files;
    bool default_suppressions;       /* also the file shipped with memtrace */
    bool gen_suppressions;           /* print a suppression entry after each error */
    const char *baseline_path;       /* JSON report of an earlier run; NULL: none */
    const char *debug_cache;         /* --debug-cache: a directory, "no", or NULL: the default */
    /* The command as the user gave it, for the program's own log (a script's log names
     * its interpreter first, as the kernel ran it); NULL: the log's own argv. */
    char *const *command;
    size_t ncommand;
    bool hide_event_log;             /* the launcher chose the event log: not the user's option */
    bool exit_known;                 /* false when the launcher did not see the exit */
    bool exit_signaled;              /* true: exit_value is a signal number */
    int exit_value;                  /* exit status or signal */
};

struct report_result {
    long errors;          /* contexts counted for --error-exitcode */
    bool log_truncated;   /* no `end` record */
    bool output_failed;   /* a report file could not be opened or written (said on stderr) */
};

void report_options_init(struct report_options *opts);

/* Before a run: whether PATH (a report file, or with READ_BACK the event log) can be
 * written safely, as report_log will open it: not a symbolic link, not another user's file,
 * not a directory, in a directory that exists (only the directory is checked when PATH has
 * %p). /dev/stdout, /dev/stderr and /dev/fd/N name memtrace's own descriptors. False after
 * one line on stderr. */
bool report_check_output(const char *path, bool read_back);

/* Renders the report of one log. Returns 0, or 2 after printing one line on stderr when
 * the log cannot be opened or is not a memtrace log at all, or when a suppressions file or
 * the baseline cannot be read or is malformed (docs/suppressions.md, docs/ci.md). A truncated log is rendered
 * (returns 0, result->log_truncated set, a warning line printed). */
int report_log(const char *log_path, const struct report_options *opts,
               struct report_result *result);

/* ---- Internal to report/: what report.c hands the two renderers. Not for the front end.
 * The view is read-only for the renderers: every stack they may print was symbolized once
 * by report.c, capped at num_callers frames after inline expansion. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef MEMTRACE_VERSION
#define REPORT_VERSION MEMTRACE_VERSION
#else
#define REPORT_VERSION "0.1.0"
#endif

struct mt_error;
struct mt_log;
struct mt_leak;
struct sym_stack;
struct symbolizer;
struct supp_set;

/* One suppression that matched something in this log: valgrind's suppcounts. */
struct suppression_use {
    const char *name;
    const char *file;              /* where it was read */
    int line;
    long count;                    /* errors and loss records it suppressed */
    uint64_t bytes, blocks;        /* of the loss records it suppressed */
};

struct report_view {
    const struct mt_log *log;
    const struct report_options *opts;
    struct sym_stack *plain;      /* per log stack index: every pc looked up at pc-1 */
    struct sym_stack *exact;      /* per log stack index: frame 0 looked up at its own pc */
    size_t *leak_order;           /* indices of log->leaks, biggest total first */
    long errors;                  /* runtime errors + counted loss records, less the
                                   * suppressed and (with a baseline) the known ones */
    uint64_t leak_bytes[4];       /* per enum mt_leak_class */
    uint64_t leak_blocks[4];
    uint64_t in_use_bytes, in_use_blocks;
    bool truncated;
    char guard_mode[32];          /* --guard in force, from the log's options */
    /* Suppressions and the baseline (report/suppress.c, report/baseline.c). Each array is
     * indexed like log->errors / log->leaks; NULL means "none suppressed" / "no baseline". */
    const char **error_suppressed_by;  /* name of the matching suppression, or NULL */
    const char **leak_suppressed_by;
    bool *error_known;                 /* true: also in the baseline (not a new error) */
    bool *leak_known;
    struct suppression_use *used;      /* suppressions that matched, with counts, in file order */
    size_t nused;
    uint64_t suppressed_bytes, suppressed_blocks;
    long suppressed_errors;            /* would have counted in `errors`, but suppressed */
    uint64_t error_repeats;            /* later errors folded into counted ones (mt_error.count) */
    uint64_t suppressed_repeats;       /* the same, into suppressed ones */
    long known_errors;                 /* would have counted in `errors`, but in the baseline */
    struct supp_set *supps;            /* owns the names in used[] and *_suppressed_by */
    uint64_t mapped_bytes;        /* regions the program mmap'd and never unmapped */
    struct symbolizer *sym;       /* owns the strings of the symbolized frames */
    unsigned *error_thread;       /* per log error: valgrind's thread number (see below) */
    /* The log ended before the exit sequence's summary (SIGKILL, a crash of memtrace
     * itself): heap totals unknown; the leak check unknown too when it left no record. */
    bool totals_unknown, leaks_unknown;
};

/* The symbolized stack logged as ID (exact: for an error whose frame 0 is exact), or NULL
 * when the log has no such stack. */
const struct sym_stack *report_view_stack(const struct report_view *v, uint32_t id, bool exact);
/* valgrind's number of the thread an error happened on: 1 for the main thread (and for an
 * error without a tid), then 2, 3, ... in the order of each thread's first error (the log
 * records no thread creations, which valgrind numbers by). */
unsigned report_view_thread(const struct report_view *v, const struct mt_error *e);
/* Whether a loss record is printed (and put in the JSON) one by one. */
bool report_view_lists_leak(const struct report_view *v, const struct mt_leak *leak);

void render_text(FILE *out, const struct report_view *v);
void render_json(FILE *out, const struct report_view *v);
void render_xml(FILE *out, const struct report_view *v);      /* valgrind XML, protocol 4 */
void render_sarif(FILE *out, const struct report_view *v);    /* SARIF 2.1.0 */
void render_markdown(FILE *out, const struct report_view *v); /* for a bug ticket */

#endif
