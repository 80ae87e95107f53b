/* render_markdown.c — a report to paste into a bug ticket (GitHub-flavoured Markdown): what
 * ran and where (command, memtrace, kernel and glibc versions, exit), a summary table, then
 * each shown error with its stacks as code blocks and the source lines around its first
 * frame inside --source-root, the faulting line marked. Suppressed errors are left out.
 * Paths inside the source root are written relative to it, so tickets from different
 * checkouts read the same. */
#include "report.h"

#include "describe.h"
#include "eventlog_read.h"
#include "symbolize.h"

#include <fcntl.h>
#include <gnu/libc-version.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#define CONTEXT_LINES 3     /* source lines shown on each side of the faulting one */
#define MAX_SOURCE_LINE 512 /* longer source lines are cut */

struct md {
    FILE *out;
    const struct report_view *v;
    struct source_root root;
    size_t number;          /* of the last error written */
};

/* ------------------------------------------------------------------------------------- */
/* Text                                                                                   */
/* ------------------------------------------------------------------------------------- */

/* Writes S as UTF-8 text: bytes that are not UTF-8 and control characters (tab aside)
 * become \xNN, newlines spaces, and the characters in ESCAPE get a backslash. */
static void md_put(FILE *o, const char *str, const char *escape)
{
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        size_t n = describe_utf8_len(s);
        if (*s == '\n' || *s == '\r') {
            fputc(' ', o);
        } else if (n == 0 || (*s < 0x20 && *s != '\t') || *s == 0x7f) {
            fprintf(o, "\\x%02x", *s);
        } else {
            if (*s < 0x80 && strchr(escape, *s))
                fputc('\\', o);
            fwrite(s, 1, n, o);
            s += n;
            continue;
        }
        s++;
    }
}

/* Prose: Markdown's punctuation is escaped so names like operator new[] or a_b_c stay
 * literal. */
static void md_text(FILE *o, const char *s)
{
    md_put(o, s, "\\`*_[]<>|#~!");
}

/* Length of the longest run of C in S. */
static size_t longest_run(const char *s, char c)
{
    size_t best = 0, run = 0;
    for (; s && *s; s++) {
        run = *s == c ? run + 1 : 0;
        if (run > best)
            best = run;
    }
    return best;
}

/* An inline code span that survives backticks in S, and, in a table cell, '|'. */
static void md_code(FILE *o, const char *s, bool in_table)
{
    size_t ticks = longest_run(s, '`') + 1;
    bool pad = s[0] == '`' || (s[0] && s[strlen(s) - 1] == '`');
    for (size_t i = 0; i < ticks; i++)
        fputc('`', o);
    if (pad)
        fputc(' ', o);
    md_put(o, s, in_table ? "|" : "");
    if (pad)
        fputc(' ', o);
    for (size_t i = 0; i < ticks; i++)
        fputc('`', o);
}

static void md_fence(FILE *o, size_t len, const char *lang)
{
    for (size_t i = 0; i < len; i++)
        fputc('`', o);
    fprintf(o, "%s\n", lang ? lang : "");
}

/* ------------------------------------------------------------------------------------- */
/* Stacks and source                                                                      */
/* ------------------------------------------------------------------------------------- */

/* FILE relative to the source root when inside it, else as the debug info names it. */
static void put_path(const struct md *m, const char *file)
{
    char *rel = source_root_relative(&m->root, file);
    md_put(m->out, rel ? rel : file, "");
    free(rel);
}

/* One line per frame, "function — file:line", in a code block. */
static void md_stack(const struct md *m, const struct sym_stack *s)
{
    FILE *o = m->out;
    size_t ticks = 2;
    for (size_t i = 0; s && i < s->n; i++) {
        size_t f = longest_run(s->frames[i].function, '`'), p = longest_run(s->frames[i].file, '`');
        ticks = f > ticks ? f : ticks;
        ticks = p > ticks ? p : ticks;
    }
    md_fence(o, ticks + 1, NULL);
    for (size_t i = 0; s && i < s->n; i++) {
        const struct sym_frame *f = &s->frames[i];
        md_put(o, f->function ? f->function : "???", "");
        fputs(" — ", o);
        if (f->file) {
            put_path(m, f->file);
            if (f->line)
                fprintf(o, ":%u", f->line);
        } else if (f->module) {
            fputs("(in ", o);
            md_put(o, f->module, "");
            fputc(')', o);
        } else {
            fprintf(o, "0x%" PRIx64, f->pc);
        }
        fputc('\n', o);
    }
    if (!s || !s->n)
        fputs("(no stack recorded)\n", o);
    md_fence(o, ticks + 1, NULL);
}

/* The fence's info string for a source file, by its extension. */
static const char *language_of(const char *file)
{
    static const char *const map[][2] = {
        { ".c", "c" }, { ".h", "c" }, { ".cc", "cpp" }, { ".cpp", "cpp" }, { ".cxx", "cpp" },
        { ".C", "cpp" }, { ".hh", "cpp" }, { ".hpp", "cpp" }, { ".hxx", "cpp" },
        { ".S", "asm" }, { ".s", "asm" }, { ".rs", "rust" }, { ".go", "go" },
    };
    const char *dot = strrchr(file, '.');
    for (size_t i = 0; dot && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(dot, map[i][0]) == 0)
            return map[i][1];
    return "";
}

/* PATH opened for reading if it is a regular file (a FIFO named by the debug info must
 * not block the report), else NULL. */
static FILE *open_regular(const char *path)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    FILE *f = NULL;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        f = fdopen(fd, "r");
    if (!f && fd >= 0)
        close(fd);
    return f;
}

/* Reads lines FIRST..LAST of PATH into LINES (each malloc'd, newline stripped); returns how
 * many were read. */
static size_t read_lines(const char *path, unsigned first, unsigned last,
                         char *lines[2 * CONTEXT_LINES + 1])
{
    FILE *f = open_regular(path);
    char buf[MAX_SOURCE_LINE];
    size_t n = 0;
    unsigned no = 1;
    if (!f)
        return 0;
    while (no <= last && fgets(buf, sizeof buf, f)) {
        size_t len = strlen(buf);
        bool whole = len && buf[len - 1] == '\n';
        if (whole)
            buf[--len] = '\0';
        if (no >= first && (lines[n] = strdup(buf)) == NULL)
            break; /* out of memory: the lines so far */
        if (no >= first)
            n++;
        if (!whole) { /* the rest of an overlong line */
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n')
                ;
        }
        no++;
    }
    fclose(f);
    return n;
}

/* The lines around the first frame of S inside the source root, the frame's line marked. */
static void md_source(const struct md *m, const struct sym_stack *s)
{
    FILE *o = m->out;
    char *rel, *lines[2 * CONTEXT_LINES + 1];
    const struct sym_frame *f = source_root_frame(&m->root, s, &rel);
    if (!f || !f->line) {
        free(rel);
        return;
    }
    unsigned first = f->line > CONTEXT_LINES ? f->line - CONTEXT_LINES : 1;
    size_t n = read_lines(f->file, first, f->line + CONTEXT_LINES, lines);
    if (first + n > f->line) { /* the file still has the line */
        size_t ticks = 2;
        for (size_t i = 0; i < n; i++)
            if (longest_run(lines[i], '`') > ticks)
                ticks = longest_run(lines[i], '`');
        fputs("Source, ", o);
        md_code(o, rel, false);
        fprintf(o, " line %u (", f->line);
        md_text(o, f->function ? f->function : "???");
        fputs("):\n\n", o);
        md_fence(o, ticks + 1, language_of(f->file));
        int width = snprintf(NULL, 0, "%u", first + (unsigned)n - 1);
        for (size_t i = 0; i < n; i++) {
            unsigned no = first + (unsigned)i;
            fprintf(o, "%s %*u | ", no == f->line ? ">" : " ", width, no);
            md_put(o, lines[i], "");
            fputc('\n', o);
        }
        md_fence(o, ticks + 1, NULL);
        fputc('\n', o);
    }
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(rel);
}

/* ------------------------------------------------------------------------------------- */
/* Errors                                                                                 */
/* ------------------------------------------------------------------------------------- */

static void md_heading(struct md *m, const char *what, const char *kind, const bool *known)
{
    fprintf(m->out, "### %zu. ", ++m->number);
    md_text(m->out, what);
    fprintf(m->out, " (%s)%s\n\n", kind, !known ? "" : *known ? " — known (in the baseline)"
                                                               : " — new (not in the baseline)");
}

static void md_error(struct md *m, size_t i)
{
    const struct report_view *v = m->v;
    const struct mt_error *e = &v->log->errors[i];
    const struct sym_stack *stack = report_view_stack(v, e->stack, e->exact);
    struct aux_part aux[DESCRIBE_MAX_AUX];
    char what[256];
    describe_headline(e, what, sizeof what);
    md_heading(m, what, mt_error_kind_name(e->kind), v->error_known ? &v->error_known[i] : NULL);
    const char *late = describe_late_note(e);
    if (late) {
        fputc('(', m->out);
        md_text(m->out, late);
        fputs(")\n\n", m->out);
    }
    md_stack(m, stack);
    fputc('\n', m->out);
    size_t naux = describe_aux(v, e, aux);
    for (size_t k = 0; k < naux; k++) {
        md_text(m->out, aux[k].text);
        fputs(aux[k].stack ? ":\n\n" : "\n\n", m->out);
        if (aux[k].stack) {
            md_stack(m, aux[k].stack);
            fputc('\n', m->out);
        }
    }
    md_source(m, stack);
}

/* The program's own fatal fault, before the errors: it is what the ticket is about. */
static void md_crash(const struct md *m)
{
    const struct mt_crash *c = &m->v->log->crash;
    const struct sym_stack *stack = report_view_stack(m->v, c->stack, true);
    char headline[128], what[128];
    describe_crash(c, headline, sizeof headline, what, sizeof what);
    fputs("## Crash\n\n", m->out);
    md_text(m->out, headline);
    if (what[0]) {
        fputs(": ", m->out);
        md_text(m->out, what);
    }
    fputs(".\n\n", m->out);
    md_stack(m, stack);
    fputc('\n', m->out);
    md_source(m, stack);
}

static void md_leak(struct md *m, size_t k, size_t number)
{
    const struct report_view *v = m->v;
    const struct mt_leak *l = &v->log->leaks[k];
    const struct sym_stack *stack = report_view_stack(v, l->stack, false);
    char what[256];
    describe_leak(v, l, number, what, sizeof what);
    md_heading(m, what, "leak", v->leak_known ? &v->leak_known[k] : NULL);
    fputs("Allocated at:\n\n", m->out);
    md_stack(m, stack);
    fputc('\n', m->out);
    md_source(m, stack);
}

/* ------------------------------------------------------------------------------------- */
/* Header and summary                                                                     */
/* ------------------------------------------------------------------------------------- */

static void md_command(FILE *o, const struct mt_log *log)
{
    size_t len = 1;
    for (size_t i = 0; i < log->argc; i++)
        len += strlen(log->argv[i]) + 1;
    char *cmd = malloc(len);
    if (!cmd)
        return;
    cmd[0] = '\0';
    for (size_t i = 0; i < log->argc; i++) {
        if (i)
            strcat(cmd, " ");
        strcat(cmd, log->argv[i]);
    }
    md_code(o, log->argc ? cmd : log->exe ? log->exe : "?", true);
    free(cmd);
}

static void md_header(const struct md *m)
{
    FILE *o = m->out;
    const struct mt_log *log = m->v->log;
    const char *prog = log->argc ? log->argv[0] : log->exe ? log->exe : "?";
    const char *base = strrchr(prog, '/') ? strrchr(prog, '/') + 1 : prog;
    struct utsname uts;
    bool signaled;
    int value;

    fputs("# memtrace report: ", o);
    md_code(o, base, false);
    fprintf(o, " — %ld %serror%s", m->v->errors, m->v->error_known || m->v->leak_known ?
            "new " : "", m->v->errors == 1 ? "" : "s");
    if (m->v->known_errors)
        fprintf(o, " (%ld known from the baseline)", m->v->known_errors);
    fputs("\n\n| | |\n|---|---|\n| Command | ", o);
    md_command(o, log);
    fprintf(o, " |\n| memtrace | %s |\n", REPORT_VERSION);
    if (uname(&uts) == 0) { /* where the report is rendered: normally where it ran */
        char kernel[2 * sizeof uts.release + 2];
        snprintf(kernel, sizeof kernel, "%s %s", uts.sysname, uts.release);
        fputs("| Kernel | ", o);
        md_code(o, kernel, true);
        fputs(" |\n", o);
    }
    fprintf(o, "| glibc | %s |\n| Exit | ", gnu_get_libc_version());
    if (!describe_exit(m->v, &signaled, &value))
        fputs("unknown", o);
    else if (signaled)
        fprintf(o, "killed by signal %d (SIG%s)", value,
                sigabbrev_np(value) ? sigabbrev_np(value) : "?");
    else
        fprintf(o, "status %d", value);
    fprintf(o, " |\n| Process | pid %ld |\n", log->pid);
    if (m->v->truncated) {
        char death[96];
        describe_death(m->v, death, sizeof death);
        fprintf(o, "| Event log | truncated: %s before memtrace finished writing it; this is "
                "what was recorded |\n", death);
    }
    fputc('\n', o);
}

static void md_summary(const struct md *m)
{
    FILE *o = m->out;
    const struct report_view *v = m->v;
    const struct mt_log *log = v->log;
    size_t per_kind[MT_ERR_KIND_COUNT] = { 0 }, any = 0;
    uint64_t times[MT_ERR_KIND_COUNT] = { 0 };
    for (size_t i = 0; i < log->nerrors; i++) {
        if (describe_error_shown(v, i)) {
            per_kind[log->errors[i].kind]++, any++;
            times[log->errors[i].kind] += log->errors[i].count;
        }
    }
    fputs("## Summary\n\n| Error | Contexts | Times |\n|---|---:|---:|\n", o);
    for (int k = 0; k < MT_ERR_KIND_COUNT; k++)
        if (per_kind[k])
            fprintf(o, "| %s | %zu | %s |\n", mt_error_kind_name((enum mt_error_kind)k), per_kind[k],
                    describe_count(times[k]).s);
    if (!any)
        fputs("| (no runtime errors) | 0 | 0 |\n", o);
    if (v->leaks_unknown) {
        fputs("\nLeaks: unknown (the process ended before the leak check could run).\n", o);
    } else {
        fputs("\n| Leak kind | Bytes | Blocks |\n|---|---:|---:|\n", o);
        for (int c = 0; c < MT_LEAK_CLASS_COUNT; c++)
            fprintf(o, "| %s | %s | %s |\n", describe_leak_phrase(c),
                    describe_count(v->leak_bytes[c]).s, describe_count(v->leak_blocks[c]).s);
    }
    if (v->totals_unknown)
        fputs("\nIn use at exit: unknown.", o);
    else
        fprintf(o, "\nIn use at exit: %s bytes in %s blocks.", describe_count(v->in_use_bytes).s,
                describe_count(v->in_use_blocks).s);
    if (log->summary.present)
        fprintf(o, " Total heap usage: %s allocs, %s frees, %s bytes allocated.",
                describe_count(log->summary.allocs).s, describe_count(log->summary.frees).s,
                describe_count(log->summary.bytes_allocated).s);
    fprintf(o, " Errors counted: %ld.", v->errors);
    /* the suppressed errors that would have counted, loss records among them, as the
     * text's ERROR SUMMARY and the JSON's summary.suppressed count them */
    if (v->suppressed_errors || v->suppressed_blocks)
        fprintf(o, " Suppressed: %ld errors, %s bytes in %s blocks.", v->suppressed_errors,
                describe_count(v->suppressed_bytes).s, describe_count(v->suppressed_blocks).s);
    fputs("\n\n", o);
}

/* ------------------------------------------------------------------------------------- */
/* Public interface                                                                       */
/* ------------------------------------------------------------------------------------- */

void render_markdown(FILE *out, const struct report_view *v)
{
    const struct mt_log *log = v->log;
    struct md m = { .out = out, .v = v };
    size_t shown = 0;
    source_root_init(&m.root, v->opts->source_root);
    for (size_t i = 0; i < log->nerrors; i++)
        shown += describe_error_shown(v, i);
    for (size_t i = 0; i < log->nleaks; i++)
        shown += describe_leak_shown(v, i);
    md_header(&m);
    md_summary(&m);
    if (log->crash.present)
        md_crash(&m);
    if (shown)
        fputs("## Errors\n\n", out);
    for (size_t i = 0; i < log->nerrors; i++)
        if (describe_error_shown(v, i))
            md_error(&m, i);
    for (size_t i = 0; i < log->nleaks; i++)
        if (describe_leak_shown(v, v->leak_order[i]))
            md_leak(&m, v->leak_order[i], i + 1);
    fprintf(out, "<sub>memtrace %s</sub>\n", REPORT_VERSION);
    source_root_free(&m.root);
}
