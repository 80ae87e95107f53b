/* report.c — report_log: read the log, symbolize every stack the report will show once,
 * then render the text report and (optionally) the JSON report from the same view. */
#include "report.h"

#include "baseline.h"
#include "describe.h"
#include "eventlog_read.h"
#include "suppress.h"
#include "symbolize.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The leak kind bits are the leak classes as bits; the view relies on it. */
_Static_assert(LEAK_BIT_DEFINITE == 1u << MT_LEAK_DEFINITE &&
               LEAK_BIT_INDIRECT == 1u << MT_LEAK_INDIRECT &&
               LEAK_BIT_POSSIBLE == 1u << MT_LEAK_POSSIBLE &&
               LEAK_BIT_REACHABLE == 1u << MT_LEAK_REACHABLE, "leak bits follow classes");

#define MAX_CALLERS 4096 /* a sanity bound on --num-callers */

void report_options_init(struct report_options *opts)
{
    *opts = (struct report_options){
        .leak_check = LEAK_CHECK_FULL,
        .show_leak_kinds = LEAK_BIT_DEFINITE | LEAK_BIT_POSSIBLE,
        .errors_for_leak_kinds = LEAK_BIT_DEFINITE | LEAK_BIT_POSSIBLE,
        .num_callers = 24,
        .default_suppressions = true,
    };
}

/* ------------------------------------------------------------------------------------- */
/* The view                                                                               */
/* ------------------------------------------------------------------------------------- */

const struct sym_stack *report_view_stack(const struct report_view *v, uint32_t id, bool exact)
{
    const struct mt_stack *s = mt_log_find_stack(v->log, id);
    if (!s)
        return NULL;
    size_t i = (size_t)(s - v->log->stacks);
    return exact ? &v->exact[i] : &v->plain[i];
}

bool report_view_lists_leak(const struct report_view *v, const struct mt_leak *leak)
{
    return v->opts->leak_check == LEAK_CHECK_FULL &&
           (v->opts->show_leak_kinds & (1u << leak->cls)) != 0;
}

unsigned report_view_thread(const struct report_view *v, const struct mt_error *e)
{
    return v->error_thread ? v->error_thread[e - v->log->errors] : 1;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static int cmp_leak(const void *a, const void *b, void *arg)
{
    const struct mt_leak *leaks = arg;
    const struct mt_leak *x = &leaks[*(const size_t *)a], *y = &leaks[*(const size_t *)b];
    uint64_t tx = sat_add(x->bytes, x->indirect), ty = sat_add(y->bytes, y->indirect);
    if (tx != ty)
        return tx > ty ? -1 : 1;
    if (x->cls != y->cls)
        return x->cls < y->cls ? -1 : 1;
    /* equal: keep log order, so the numbering is stable from run to run */
    return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

/* One error that would count: it does unless suppressed or known from the baseline. */
static void count_error(struct report_view *v, const char *suppressed_by, bool known)
{
    if (suppressed_by)
        v->suppressed_errors++;
    else if (known)
        v->known_errors++;
    else
        v->errors++;
}

static void count_runtime_errors(struct report_view *v)
{
    for (size_t i = 0; i < v->log->nerrors; i++) {
        const char *suppressed_by = v->error_suppressed_by ? v->error_suppressed_by[i] : NULL;
        bool known = v->error_known && v->error_known[i];
        uint64_t repeats = v->log->errors[i].count - 1;
        count_error(v, suppressed_by, known);
        if (suppressed_by)
            v->suppressed_repeats += repeats;
        else if (!known)
            v->error_repeats += repeats;
    }
}

/* Suppressed loss records leave the leak classes for "suppressed", as in valgrind's LEAK
 * SUMMARY; in use at exit still holds them. */
static void count_leaks(struct report_view *v)
{
    const struct mt_log *log = v->log;
    uint64_t bytes = 0, blocks = 0;
    for (size_t i = 0; i < log->nleaks; i++) {
        const struct mt_leak *l = &log->leaks[i];
        const char *supp = v->leak_suppressed_by ? v->leak_suppressed_by[i] : NULL;
        bytes = sat_add(bytes, l->bytes);
        blocks = sat_add(blocks, l->blocks);
        if (supp) {
            v->suppressed_bytes = sat_add(v->suppressed_bytes, l->bytes);
            v->suppressed_blocks = sat_add(v->suppressed_blocks, l->blocks);
        } else {
            v->leak_bytes[l->cls] = sat_add(v->leak_bytes[l->cls], l->bytes);
            v->leak_blocks[l->cls] = sat_add(v->leak_blocks[l->cls], l->blocks);
        }
        if (v->opts->leak_check == LEAK_CHECK_FULL &&
            (v->opts->errors_for_leak_kinds & (1u << l->cls)))
            count_error(v, supp, v->leak_known && v->leak_known[i]);
    }
    /* Without a summary record (a truncated log), the loss records are all we know. */
    v->in_use_bytes = log->summary.present ? log->summary.live_bytes : bytes;
    v->in_use_blocks = log->summary.present ? log->summary.live_blocks : blocks;
}

struct resolver {
    struct report_view *v;
    struct symbolizer *sym;
    unsigned char *done;      /* per stack index: bit 0 plain resolved, bit 1 exact */
    size_t max_frames;
};

static bool resolve(struct resolver *r, uint32_t id, bool exact)
{
    const struct mt_log *log = r->v->log;
    const struct mt_stack *s = mt_log_find_stack(log, id);
    if (!s)
        return true;
    size_t i = (size_t)(s - log->stacks);
    unsigned bit = exact ? 2 : 1;
    if (r->done[i] & bit)
        return true;
    r->done[i] |= bit;
    return sym_resolve(r->sym, mt_stack_pcs(log, s), s->depth, exact, r->max_frames,
                       exact ? &r->v->exact[i] : &r->v->plain[i]);
}

/* Symbolizes the stacks the renderers can print, and every loss record's: suppressions and
 * the baseline match records that are not listed too. */
static bool resolve_stacks(struct resolver *r)
{
    const struct mt_log *log = r->v->log;
    for (size_t i = 0; i < log->nerrors; i++) {
        const struct mt_error *e = &log->errors[i];
        if (!resolve(r, e->stack, e->exact) || !resolve(r, e->alloc_stack, false) ||
            !resolve(r, e->free_stack, false))
            return false;
    }
    for (size_t i = 0; i < log->nleaks; i++)
        if (!resolve(r, log->leaks[i].stack, false))
            return false;
    return !log->crash.present || resolve(r, log->crash.stack, true);
}

static void free_view(struct report_view *v)
{
    for (size_t i = 0; v->plain && v->exact && i < v->log->nstacks; i++) {
        sym_stack_free(&v->plain[i]);
        sym_stack_free(&v->exact[i]);
    }
    free(v->plain);
    free(v->exact);
    free(v->leak_order);
    free(v->error_suppressed_by);
    free(v->leak_suppressed_by);
    free(v->error_known);
    free(v->leak_known);
    free(v->used);
    free(v->error_thread);
    supp_set_free(v->supps);
    sym_free(v->sym);
}

/* The value of `guard=` among the runtime's options words; the default otherwise. */
static void find_guard_mode(const struct mt_log *log, char *out, size_t size)
{
    const char *opts = log->options ? log->options : "";
    const char *found = NULL;
    for (const char *w = opts; (w = strstr(w, "guard=")) != NULL; w++)
        if (w == opts || w[-1] == ' ' || w[-1] == '-')
            found = w + 6;
    snprintf(out, size, "%.*s", found ? (int)strcspn(found, " ") : 4, found ? found : "auto");
}

static bool number_threads(struct report_view *v)
{
    const struct mt_log *log = v->log;
    uint32_t *tids = calloc(log->nerrors + 1, sizeof *tids); /* by number - 2 */
    size_t ntids = 0;
    v->error_thread = calloc(log->nerrors + 1, sizeof *v->error_thread);
    if (!tids || !v->error_thread) {
        free(tids);
        return false;
    }
    for (size_t i = 0; i < log->nerrors; i++) {
        const struct mt_error *e = &log->errors[i];
        size_t k = 0;
        if (!(e->has & MT_HAS_TID) || (long)e->tid == log->pid) {
            v->error_thread[i] = 1;
            continue;
        }
        while (k < ntids && tids[k] != e->tid)
            k++;
        if (k == ntids)
            tids[ntids++] = e->tid;
        v->error_thread[i] = (unsigned)k + 2;
    }
    free(tids);
    return true;
}

/* Suppressions and baseline, read before anything is symbolized. False after the line
 * saying which file is broken. */
static bool read_inputs(struct report_view *v, struct baseline **base)
{
    *base = NULL;
    if (!(v->supps = supp_load(v->opts)))
        return false;
    if (v->opts->baseline_path && !(*base = baseline_load(v->opts->baseline_path))) {
        supp_set_free(v->supps);
        return false;
    }
    return true;
}

/* Marks suppressed and known errors, then counts. */
static bool classify(struct report_view *v, const struct baseline *base)
{
    if (!supp_apply(v->supps, v) || (base && !baseline_apply(base, v)))
        return false;
    count_runtime_errors(v);
    count_leaks(v);
    return true;
}

/* False after one line on stderr: a broken suppressions file or baseline, or no memory. */
static bool build_view(struct report_view *v, const struct mt_log *log,
                       const struct report_options *opts)
{
    struct baseline *base;
    *v = (struct report_view){ .log = log, .opts = opts, .truncated = !log->ended,
                               .totals_unknown = !log->summary.present,
                               .leaks_unknown = !log->summary.present && log->nleaks == 0 };
    if (!read_inputs(v, &base))
        return false;
    size_t ns = log->nstacks + 1;
    v->plain = calloc(ns, sizeof *v->plain);
    v->exact = calloc(ns, sizeof *v->exact);
    v->leak_order = calloc(log->nleaks + 1, sizeof *v->leak_order);
    struct resolver r = { .v = v, .sym = sym_new(log, v->opts->debug_cache), .done = calloc(ns, 1) };
    int callers = opts->num_callers < 1 ? 1 : opts->num_callers;
    r.max_frames = callers > MAX_CALLERS ? MAX_CALLERS : (size_t)callers;
    bool ok = v->plain && v->exact && v->leak_order && r.sym && r.done && number_threads(v) &&
              resolve_stacks(&r);
    v->sym = r.sym; /* owns the frames' strings: freed with the view */
    free(r.done);
    if (ok) {
        find_guard_mode(log, v->guard_mode, sizeof v->guard_mode);
        for (size_t i = 0; i < log->nmappings; i++)
            v->mapped_bytes += log->mappings[i].len;
        for (size_t i = 0; i < log->nleaks; i++)
            v->leak_order[i] = i;
        qsort_r(v->leak_order, log->nleaks, sizeof *v->leak_order, cmp_leak, log->leaks);
        ok = classify(v, base);
    }
    baseline_free(base);
    if (!ok) {
        fprintf(stderr, "memtrace: %s: out of memory while symbolizing\n", log->path);
        free_view(v);
    }
    return ok;
}

/* ------------------------------------------------------------------------------------- */
/* Output files                                                                           */
/* ------------------------------------------------------------------------------------- */

/* PATH with each %p replaced by PID (like valgrind's --log-file), malloc'd. */
static char *expand_pid(const char *path, long pid)
{
    char pidbuf[24];
    int plen = snprintf(pidbuf, sizeof pidbuf, "%ld", pid);
    size_t n = strlen(path) + 1;
    for (const char *c = strstr(path, "%p"); c; c = strstr(c + 2, "%p"))
        n += (size_t)plen; /* an upper bound is enough */
    char *out = malloc(n), *o = out;
    if (!out)
        return NULL;
    for (const char *c = path; *c; c++) {
        if (c[0] == '%' && c[1] == 'p') {
            memcpy(o, pidbuf, (size_t)plen);
            o += plen;
            c++;
        } else {
            *o++ = *c;
        }
    }
    *o = '\0';
    return out;
}

struct output {
    FILE *f;
    char *name;               /* NULL: stderr */
};

/* A path that names one of memtrace's own descriptors: written through a copy of it (not
 * reopened, so a redirected stdout is neither truncated nor followed as a link). -1 if not. */
static int own_descriptor(const char *path)
{
    static const char *const prefixes[] = {"/dev/fd/", "/proc/self/fd/"};
    if (strcmp(path, "/dev/stdout") == 0)
        return STDOUT_FILENO;
    if (strcmp(path, "/dev/stderr") == 0)
        return STDERR_FILENO;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t n = strlen(prefixes[i]);
        if (strncmp(path, prefixes[i], n) == 0 && path[n] >= '0' && path[n] <= '9' &&
            strspn(path + n, "0123456789") == strlen(path + n) && strlen(path + n) < 6)
            return atoi(path + n);
    }
    return -1;
}

/* Why an existing file at PATH (st from lstat/fstat) must not be written, or NULL. */
static const char *refusal(const struct stat *st)
{
    if (S_ISLNK(st->st_mode))
        return "it is a symbolic link (not followed)";
    if (S_ISREG(st->st_mode))
        return st->st_uid == geteuid() ? NULL : "the file belongs to another user";
    if (S_ISCHR(st->st_mode) || S_ISFIFO(st->st_mode))
        return NULL;
    return S_ISDIR(st->st_mode) ? "it is a directory" : "not a regular file";
}

/* Opens an output file without following a link planted at its name, never clobbering
 * another user's file (created 0644, truncated only once known to be ours). */
static FILE *open_safely(const char *path)
{
    int own = own_descriptor(path);
    int fd = own >= 0 ? fcntl(own, F_DUPFD_CLOEXEC, 3)
                      : open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    struct stat st;
    const char *why = NULL;
    if (fd < 0) {
        why = errno == ELOOP ? "it is a symbolic link (not followed)" : strerror(errno);
    } else if (own < 0) {
        if (fstat(fd, &st) != 0)
            why = strerror(errno);
        else if ((why = refusal(&st)) == NULL && S_ISREG(st.st_mode) && ftruncate(fd, 0) != 0)
            why = strerror(errno);
    }
    FILE *f = why ? NULL : fdopen(fd, "w");
    if (!f) {
        fprintf(stderr, "memtrace: cannot write %s: %s\n", path, why ? why : strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    return f;
}

bool report_check_output(const char *path, bool read_back)
{
    struct stat st;
    const char *why = NULL;
    if (own_descriptor(path) >= 0) {
        why = read_back ? "not a regular file (memtrace reads the event log back)" : NULL;
    } else if (!strstr(path, "%p") && lstat(path, &st) == 0) {
        why = refusal(&st);
        if (!why && read_back && !S_ISREG(st.st_mode))
            why = "not a regular file (memtrace reads the event log back)";
    } else {
        /* Not there yet (or one per process): its directory must be. */
        const char *slash = strrchr(path, '/');
        char dir[4096];
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) + (slash == path) : 1,
                 slash ? path : ".");
        if (!strstr(dir, "%p") && stat(dir, &st) != 0)
            why = strerror(errno);
        else if (!strstr(dir, "%p") && !S_ISDIR(st.st_mode))
            why = strerror(ENOTDIR);
    }
    if (why)
        fprintf(stderr, "memtrace: cannot write %s: %s\n", path, why);
    return why == NULL;
}

static bool open_output(struct output *o, const char *tmpl, long pid)
{
    *o = (struct output){ .f = stderr };
    if (!tmpl)
        return true;
    o->f = NULL;
    if (!(o->name = expand_pid(tmpl, pid))) {
        fprintf(stderr, "memtrace: cannot write %s: %s\n", tmpl, strerror(ENOMEM));
        return false;
    }
    return (o->f = open_safely(o->name)) != NULL;
}

/* Closes O (unless it is stderr); false, after saying so, when anything failed to write. */
static bool close_output(struct output *o)
{
    bool ok = true;
    if (o->f && o->name) {
        errno = 0;
        bool err = ferror(o->f) != 0;
        if (fclose(o->f) != 0 || err) {
            fprintf(stderr, "memtrace: cannot write %s: %s\n", o->name,
                    strerror(errno ? errno : EIO));
            ok = false;
        }
    } else if (o->f) {
        fflush(o->f);
    }
    free(o->name);
    *o = (struct output){ 0 };
    return ok;
}

/* ------------------------------------------------------------------------------------- */
/* Public interface                                                                       */
/* ------------------------------------------------------------------------------------- */

/* The formats beside text and JSON, each written when its path is set (report_options). */
enum { FMT_XML, FMT_SARIF, FMT_MARKDOWN, FMT_COUNT };
static void (*const format_renderer[FMT_COUNT])(FILE *, const struct report_view *) = {
    render_xml, render_sarif, render_markdown,
};

static int render(const struct mt_log *log, const struct report_options *opts,
                  struct output *text, struct output *json, struct output *formats,
                  struct report_result *result)
{
    struct report_view v;
    if (!build_view(&v, log, opts))
        return 2; /* it said why */
    render_text(text->f, &v);
    if (json->f)
        render_json(json->f, &v);
    for (int i = 0; i < FMT_COUNT; i++)
        if (formats[i].f)
            format_renderer[i](formats[i].f, &v);
    if (v.truncated && text->name) { /* the warning in the report file is easy to miss */
        char death[96];
        describe_death(&v, death, sizeof death);
        fprintf(stderr, "memtrace: warning: %s: event log truncated (%s before memtrace "
                "finished writing it); showing what was recorded\n", log->path, death);
    }
    result->errors = v.errors;
    result->log_truncated = v.truncated;
    free_view(&v);
    return 0;
}

/* The log's argv replaced by the command the user gave. */
static bool use_command(struct mt_log *log, char *const *command, size_t n)
{
    char **argv = calloc(n + 1, sizeof *argv);
    for (size_t i = 0; argv && i < n; i++)
        if (!(argv[i] = strdup(command[i]))) {
            while (i--)
                free(argv[i]);
            free(argv);
            return false;
        }
    if (!argv)
        return false;
    for (size_t i = 0; i < log->argc; i++)
        free(log->argv[i]);
    free(log->argv);
    log->argv = argv;
    log->argc = log->cap_argv = n;
    return true;
}

int report_log(const char *log_path, const struct report_options *opts,
               struct report_result *result)
{
    struct report_options defaults;
    struct report_result ignored;
    if (!opts) {
        report_options_init(&defaults);
        opts = &defaults;
    }
    if (!result)
        result = &ignored;
    *result = (struct report_result){ 0 };

    struct mt_log log;
    if (mt_log_read(log_path, &log) != MT_LOG_OK)
        return 2; /* the reader said why */
    if (opts->command && !use_command(&log, opts->command, opts->ncommand)) {
        fprintf(stderr, "memtrace: %s: out of memory\n", log_path);
        mt_log_free(&log);
        return 2;
    }
    if (log.replaced_by_exec && !log.ended) {
        mt_log_free(&log);
        return 0;
    }
    struct output text = { 0 }, json = { 0 }, formats[FMT_COUNT] = { { 0 } };
    const char *format_path[FMT_COUNT] = { opts->xml_path, opts->sarif_path, opts->markdown_path };
    bool opened = open_output(&text, opts->text_path, log.pid) &&
                  (!opts->json_path || open_output(&json, opts->json_path, log.pid));
    for (int i = 0; opened && i < FMT_COUNT; i++)
        opened = !format_path[i] || open_output(&formats[i], format_path[i], log.pid);
    int rc = opened ? render(&log, opts, &text, &json, formats, result) : 2;
    bool written = opened;
    if (!close_output(&text))
        written = false;
    if (json.f && !close_output(&json))
        written = false;
    free(json.name);
    for (int i = 0; i < FMT_COUNT; i++) {
        if (formats[i].f && !close_output(&formats[i]))
            written = false;
        free(formats[i].name);
    }
    if (!written) {
        rc = 2;
        result->output_failed = true;
    }
    mt_log_free(&log);
    return rc;
}
