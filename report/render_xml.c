/* render_xml.c — valgrind's XML output, protocol 4, as memcheck writes it, so tools that
 * read memcheck's XML (IDEs, CI plugins, ValgrindCI) read memtrace's unchanged: the same
 * elements in the same order, memcheck's <kind> names and wording. memtrace's own name and
 * version are in the preamble, which the protocol leaves to humans. Suppressed errors are
 * left out and counted in <suppcounts>. Kind mapping and known differences: docs/formats.md. */
#include "report.h"

#include "describe.h"
#include "eventlog_read.h"
#include "symbolize.h"

#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

struct xml {
    FILE *out;
    const struct report_view *v;
    unsigned next_unique;     /* <unique> of the next error written */
    unsigned runtime_shown;   /* runtime errors written: uniques 0 .. runtime_shown-1 */
};

/* ------------------------------------------------------------------------------------- */
/* Text                                                                                   */
/* ------------------------------------------------------------------------------------- */

/* Character data. XML 1.0 cannot carry most control characters at all (not even as
 * references) nor bytes that are not UTF-8: those are written as the text \xNN. */
static void xesc(FILE *o, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        size_t n = describe_utf8_len(s);
        bool nonchar = n == 3 && s[0] == 0xEF && s[1] == 0xBF && s[2] >= 0xBE; /* U+FFFE/F */
        switch (*s) {
        case '&': fputs("&amp;", o); break;
        case '<': fputs("&lt;", o); break;
        case '>': fputs("&gt;", o); break;
        case '"': fputs("&quot;", o); break; /* ' stays: memcheck writes "alloc'd" as is */
        case '\t': case '\n': case '\r': fputc(*s, o); break;
        default:
            if (*s < 0x20 || n == 0 || nonchar) {
                fprintf(o, "\\x%02x", *s);
            } else {
                fwrite(s, 1, n, o);
                s += n;
                continue;
            }
        }
        s++;
    }
}

/* INDENT spaces, <TAG>TEXT</TAG>, newline. */
static void xelem(FILE *o, int indent, const char *tag, const char *text)
{
    fprintf(o, "%*s<%s>", indent, "", tag);
    xesc(o, text);
    fprintf(o, "</%s>\n", tag);
}

/* ------------------------------------------------------------------------------------- */
/* Stacks                                                                                 */
/* ------------------------------------------------------------------------------------- */

/* <ip>, then whatever is known of <obj>, <fn>, <dir>, <file>, <line>, in that order. The
 * file name is split at its last slash into valgrind's dir and file. */
static void xframe(FILE *o, const struct sym_frame *f)
{
    fprintf(o, "    <frame>\n      <ip>0x%" PRIX64 "</ip>\n", f->pc);
    if (f->module)
        xelem(o, 6, "obj", f->module);
    if (f->function)
        xelem(o, 6, "fn", f->function);
    if (f->file) {
        const char *slash = strrchr(f->file, '/');
        if (slash) {
            int dirlen = slash == f->file ? 1 : (int)(slash - f->file);
            char *dir = strndup(f->file, (size_t)dirlen);
            if (dir)
                xelem(o, 6, "dir", dir);
            free(dir);
        }
        xelem(o, 6, "file", slash ? slash + 1 : f->file);
        if (f->line)
            fprintf(o, "      <line>%u</line>\n", f->line);
    }
    fputs("    </frame>\n", o);
}

static void xstack(FILE *o, const struct sym_stack *s)
{
    fputs("  <stack>\n", o);
    for (size_t i = 0; s && i < s->n; i++)
        xframe(o, &s->frames[i]);
    fputs("  </stack>\n", o);
}

/* ------------------------------------------------------------------------------------- */
/* Errors                                                                                 */
/* ------------------------------------------------------------------------------------- */

/* memcheck's <kind> for a runtime error. memcheck has no munmap check: ClientCheck is its
 * generic "a check found a problem" kind, and the <what> says which. */
static const char *xml_kind(const struct mt_error *e)
{
    switch (e->kind) {
    case MT_ERR_DOUBLE_FREE:
    case MT_ERR_INVALID_FREE: return "InvalidFree";
    case MT_ERR_MISMATCHED_FREE: return "MismatchedFree";
    case MT_ERR_INVALID_SIZE: return "FishyValue";
    case MT_ERR_INVALID_MUNMAP: return "ClientCheck";
    case MT_ERR_OVERLAP: return "Overlap";
    default: /* a guard or canary found it later than the access: a write changed memory */
        return e->op == MT_OP_READ ? "InvalidRead" : "InvalidWrite";
    }
}

static void xerror_start(struct xml *x, unsigned tid, const char *kind)
{
    fprintf(x->out, "<error>\n  <unique>0x%x</unique>\n  <tid>%u</tid>\n", x->next_unique++, tid);
    xelem(x->out, 2, "kind", kind);
}

static void xruntime_error(struct xml *x, const struct mt_error *e)
{
    FILE *o = x->out;
    char what[256];
    struct aux_part aux[DESCRIBE_MAX_AUX];
    xerror_start(x, report_view_thread(x->v, e), xml_kind(e));
    describe_headline(e, what, sizeof what);
    xelem(o, 2, "what", what);
    xstack(o, report_view_stack(x->v, e->stack, e->exact));
    size_t naux = describe_aux(x->v, e, aux);
    for (size_t i = 0; i < naux; i++) {
        xelem(o, 2, "auxwhat", aux[i].text);
        if (aux[i].stack)
            xstack(o, aux[i].stack);
    }
    const char *late = describe_late_note(e);
    if (late) {
        fprintf(o, "  <auxwhat>(");
        xesc(o, late);
        fprintf(o, ")</auxwhat>\n");
    }
    fputs("</error>\n\n", o);
}

static void xleak(struct xml *x, const struct mt_leak *l, size_t number)
{
    static const char *const kind[MT_LEAK_CLASS_COUNT] = {
        "Leak_DefinitelyLost", "Leak_IndirectlyLost", "Leak_PossiblyLost", "Leak_StillReachable",
    };
    FILE *o = x->out;
    char text[256];
    xerror_start(x, 1, kind[l->cls]);
    describe_leak(x->v, l, number, text, sizeof text);
    fputs("  <xwhat>\n", o);
    xelem(o, 4, "text", text);
    fprintf(o, "    <leakedbytes>%" PRIu64 "</leakedbytes>\n"
            "    <leakedblocks>%" PRIu64 "</leakedblocks>\n  </xwhat>\n",
            describe_leak_total(l), l->blocks);
    xstack(o, report_view_stack(x->v, l->stack, false));
    fputs("</error>\n\n", o);
}

/* ------------------------------------------------------------------------------------- */
/* Document                                                                               */
/* ------------------------------------------------------------------------------------- */

static void xcommand_line(FILE *o, const struct mt_log *log)
{
    fputs("  <line>Command:", o);
    for (size_t i = 0; i < log->argc; i++) {
        fputc(' ', o);
        xesc(o, log->argv[i]);
    }
    if (log->argc == 0 && log->exe) {
        fputc(' ', o);
        xesc(o, log->exe);
    }
    fputs("</line>\n", o);
}

static void xheader(FILE *o, const struct report_view *v)
{
    const struct mt_log *log = v->log;
    fputs("<?xml version=\"1.0\"?>\n\n<valgrindoutput>\n\n"
          "<protocolversion>4</protocolversion>\n<protocoltool>memcheck</protocoltool>\n\n"
          "<preamble>\n", o);
    fprintf(o, "  <line>memtrace-%s, a memory error detector</line>\n", REPORT_VERSION);
    fprintf(o, "  <line>Using memtrace-%s; valgrind XML protocol 4, memcheck's error kinds"
            "</line>\n", REPORT_VERSION);
    xcommand_line(o, log);
    fprintf(o, "</preamble>\n\n<pid>%ld</pid>\n<ppid>%ld</ppid>\n<tool>memcheck</tool>\n\n",
            log->pid, log->ppid);

    /* vargv: memtrace and the options the runtime ran with (`key=value` words), but the
     * event log the launcher chose itself (a temporary file, gone after the report) */
    fputs("<args>\n  <vargv>\n    <exe>memtrace</exe>\n", o);
    for (const char *w = log->options ? log->options : ""; *w; ) {
        size_t len = strcspn(w, " ");
        if (len && !(v->opts->hide_event_log && strncmp(w, "event-log=", 10) == 0)) {
            char *word = strndup(w, len);
            if (word) {
                fputs("    <arg>--", o);
                xesc(o, word);
                fputs("</arg>\n", o);
            }
            free(word);
        }
        w += len + (w[len] == ' ');
    }
    fputs("  </vargv>\n  <argv>\n", o);
    const char *exe = log->argc ? log->argv[0] : log->exe;
    if (exe)
        xelem(o, 4, "exe", exe);
    for (size_t i = 1; i < log->argc; i++)
        xelem(o, 4, "arg", log->argv[i]);
    fputs("  </argv>\n</args>\n\n", o);
}

/* The program's own fatal signal, as memcheck writes it (the log names no thread). */
static void xfatal_signal(FILE *o, const struct report_view *v)
{
    const struct mt_crash *c = &v->log->crash;
    if (!c->present)
        return;
    const char *name = sigabbrev_np(c->signal);
    fprintf(o, "<fatal_signal>\n  <tid>1</tid>\n  <signo>%d</signo>\n  <signame>SIG%s</signame>\n"
            "  <sicode>%d</sicode>\n", c->signal, name ? name : "?", c->code);
    const char *event = describe_crash_event(c);
    if (event) {
        xelem(o, 2, "event", event);
        fprintf(o, "  <siaddr>0x%" PRIx64 "</siaddr>\n", c->addr);
    }
    xstack(o, report_view_stack(v, c->stack, true));
    fputs("</fatal_signal>\n\n", o);
}

static void xstatus(FILE *o, const char *state)
{
    /* memtrace renders after the fact: the run's timing is not in the log */
    fprintf(o, "<status>\n  <state>%s</state>\n  <time>00:00:00:00.000 </time>\n</status>\n\n",
            state);
}

static void xcounts(const struct xml *x)
{
    FILE *o = x->out;
    const struct report_view *v = x->v;
    /* Like memcheck: the runtime errors with the times each happened, most recent first;
     * loss records are not counted. Uniques went to the shown errors in log order. */
    fputs("<errorcounts>\n", o);
    unsigned u = x->runtime_shown;
    for (size_t i = v->log->nerrors; i-- > 0;)
        if (describe_error_shown(v, i))
            fprintf(o, "  <pair>\n    <count>%" PRIu64 "</count>\n    <unique>0x%x</unique>\n  </pair>\n",
                    v->log->errors[i].count, --u);
    fputs("</errorcounts>\n\n<suppcounts>\n", o);
    for (size_t i = 0; v->used && i < v->nused; i++) {
        fprintf(o, "  <pair>\n    <count>%ld</count>\n", v->used[i].count);
        xelem(o, 4, "name", v->used[i].name ? v->used[i].name : "");
        fputs("  </pair>\n", o);
    }
    fputs("</suppcounts>\n\n", o);
}

/* ------------------------------------------------------------------------------------- */
/* Public interface                                                                       */
/* ------------------------------------------------------------------------------------- */

void render_xml(FILE *out, const struct report_view *v)
{
    const struct mt_log *log = v->log;
    struct xml x = { .out = out, .v = v };
    xheader(out, v);
    xstatus(out, "RUNNING");
    for (size_t i = 0; i < log->nerrors; i++)
        if (describe_error_shown(v, i))
            xruntime_error(&x, &log->errors[i]);
    x.runtime_shown = x.next_unique;
    xfatal_signal(out, v);
    xstatus(out, "FINISHED");
    for (size_t i = 0; i < log->nleaks; i++)
        if (describe_leak_shown(v, v->leak_order[i]))
            xleak(&x, &log->leaks[v->leak_order[i]], i + 1);
    xcounts(&x);
    fputs("</valgrindoutput>\n\n", out);
}
