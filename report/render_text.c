/* render_text.c — the human report, in valgrind's shape and wording so people (and their
 * scripts) can read it like memcheck's: every line starts with ==PID==, runtime errors
 * first, then the heap summary, the loss records and the leak and error summaries. */
#include "report.h"

#include "describe.h"
#include "eventlog_read.h"
#include "suppress.h"
#include "symbolize.h"

#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>

struct text {
    FILE *out;
    long pid;
};

__attribute__((format(printf, 2, 3)))
static void say(const struct text *t, const char *fmt, ...)
{
    va_list ap;
    fprintf(t->out, "==%ld== ", t->pid);
    va_start(ap, fmt);
    vfprintf(t->out, fmt, ap);
    va_end(ap);
    fputc('\n', t->out);
}

static void blank(const struct text *t)
{
    fprintf(t->out, "==%ld== \n", t->pid);
}

/* Valgrind prints counts with thousands separators: 1,088 bytes. */
#define N(v) (describe_count(v).s)

/* ------------------------------------------------------------------------------------- */
/* Stacks                                                                                 */
/* ------------------------------------------------------------------------------------- */

static void print_frame(const struct text *t, const struct sym_frame *f, bool first)
{
    const char *verb = first ? "at" : "by";
    const char *fn = f->function ? f->function : "???";
    if (f->file && f->line)
        say(t, "   %s 0x%" PRIX64 ": %s (%s:%u)", verb, f->pc, fn, f->file, f->line);
    else if (f->file)
        say(t, "   %s 0x%" PRIX64 ": %s (%s)", verb, f->pc, fn, f->file);
    else if (f->module)
        say(t, "   %s 0x%" PRIX64 ": %s (in %s)", verb, f->pc, fn, f->module);
    else
        say(t, "   %s 0x%" PRIX64 ": %s", verb, f->pc, fn);
}

static void print_stack(const struct text *t, const struct sym_stack *s)
{
    for (size_t i = 0; s && i < s->n; i++)
        print_frame(t, &s->frames[i], i == 0);
}

/* ------------------------------------------------------------------------------------- */
/* Runtime errors                                                                         */
/* ------------------------------------------------------------------------------------- */

static void print_headline(const struct text *t, const struct mt_error *e)
{
    char headline[256];
    describe_headline(e, headline, sizeof headline);
    say(t, "%s", headline);
}

/* What valgrind calls the auxiliary description: the block, with its free and alloc stacks
 * (the lines are describe.c's, shared with the XML, SARIF and Markdown reports). */
static void print_aux(const struct text *t, const struct report_view *v, const struct mt_error *e)
{
    struct aux_part parts[DESCRIBE_MAX_AUX];
    size_t n = describe_aux(v, e, parts);
    for (size_t i = 0; i < n; i++) {
        say(t, " %s", parts[i].text);
        if (parts[i].role != AUX_ADDRESS)
            print_stack(t, parts[i].stack);
    }
}

static bool is_access_error(enum mt_error_kind kind)
{
    return kind == MT_ERR_HEAP_OVERFLOW || kind == MT_ERR_HEAP_UNDERFLOW ||
           kind == MT_ERR_USE_AFTER_FREE;
}

static void print_known(const struct text *t, bool known)
{
    if (known)
        say(t, "   (known: in the baseline)");
}

static void print_error(const struct text *t, const struct report_view *v, size_t i)
{
    const struct mt_error *e = &v->log->errors[i];
    print_headline(t, e);
    print_known(t, v->error_known && v->error_known[i]);
    if (is_access_error(e->kind) && !e->exact)
        say(t, "   (found when the block was checked, at its free or at exit; the access was earlier)");
    print_stack(t, report_view_stack(v, e->stack, e->exact));
    print_aux(t, v, e);
    blank(t);
    if (v->opts->gen_suppressions)
        supp_print_error(t->out, v, e);
}

/* The program's own fatal fault, as valgrind prints it. */
static void print_crash(const struct text *t, const struct report_view *v)
{
    char headline[128], what[128];
    describe_crash(&v->log->crash, headline, sizeof headline, what, sizeof what);
    say(t, "%s", headline);
    if (what[0])
        say(t, " %s", what);
    print_stack(t, report_view_stack(v, v->log->crash.stack, true));
    blank(t);
}

/* A guard-page fault that ended the program (--continue-after-fault=no): the program died
 * of memtrace's report, which the user should not have to guess. */
static void print_guard_stop(const struct text *t, const struct report_view *v)
{
    const struct mt_log *log = v->log;
    bool signaled;
    int sig;
    if (log->crash.present || !log->nerrors || !log->errors[log->nerrors - 1].exact ||
        !describe_exit(v, &signaled, &sig) || !signaled || (sig != SIGSEGV && sig != SIGBUS))
        return;
    char headline[128];
    describe_terminating(sig, headline, sizeof headline);
    say(t, "%s", headline);
    say(t, " memtrace ended the program at the guard-page access above "
        "(--continue-after-fault=yes lets it run on)");
    blank(t);
}

/* ------------------------------------------------------------------------------------- */
/* Banner and summaries                                                                   */
/* ------------------------------------------------------------------------------------- */

/* Arguments may hold newlines; they must not break the ==PID== prefix. */
static void put_arg(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\n')
            fputs("\\n", out);
        else
            fputc(*s, out);
    }
}

static void print_banner(const struct text *t, const struct mt_log *log)
{
    say(t, "memtrace-%s, a memory error detector", REPORT_VERSION);
    fprintf(t->out, "==%ld== Command:", t->pid);
    for (size_t i = 0; i < log->argc; i++) {
        fputc(' ', t->out);
        put_arg(t->out, log->argv[i]);
    }
    if (log->argc == 0 && log->exe) {
        fputc(' ', t->out);
        put_arg(t->out, log->exe);
    }
    fputc('\n', t->out);
    blank(t);
}

static void print_heap_summary(const struct text *t, const struct report_view *v)
{
    const struct mt_summary *s = &v->log->summary;
    say(t, "HEAP SUMMARY:");
    if (v->totals_unknown)
        say(t, "    in use at exit: unknown (the process ended before memtrace's exit sequence)");
    else
        say(t, "    in use at exit: %s bytes in %s blocks", N(v->in_use_bytes), N(v->in_use_blocks));
    if (s->present)
        say(t, "  total heap usage: %s allocs, %s frees, %s bytes allocated", N(s->allocs),
            N(s->frees), N(s->bytes_allocated));
    else
        say(t, "  total heap usage: unknown (the log has no summary record)");
    if (s->present)
        say(t, "       guard pages: %s allocations guarded (--guard=%s)", N(s->guarded), v->guard_mode);
    if (v->log->nmappings)
        say(t, "   still mmap'd at exit: %s bytes in %s regions (information, not an error)",
            N(v->mapped_bytes), N(v->log->nmappings));
    blank(t);
}

static const char *const leak_phrase[MT_LEAK_CLASS_COUNT] = {
    "definitely lost", "indirectly lost", "possibly lost", "still reachable",
};

static void print_leak(const struct text *t, const struct report_view *v, size_t index,
                       size_t number)
{
    const struct mt_leak *l = &v->log->leaks[index];
    const char *phrase = leak_phrase[l->cls];
    size_t total = v->log->nleaks;
    uint64_t sum = l->bytes > UINT64_MAX - l->indirect ? UINT64_MAX : l->bytes + l->indirect;
    if (l->indirect && (l->cls == MT_LEAK_DEFINITE || l->cls == MT_LEAK_POSSIBLE))
        say(t, "%s (%s direct, %s indirect) bytes in %s blocks are %s in loss record %s of %s",
            N(sum), N(l->bytes), N(l->indirect), N(l->blocks), phrase, N(number), N(total));
    else
        say(t, "%s bytes in %s blocks are %s in loss record %s of %s", N(l->bytes),
            N(l->blocks), phrase, N(number), N(total));
    print_known(t, v->leak_known && v->leak_known[index]);
    print_stack(t, report_view_stack(v, l->stack, false));
    blank(t);
    if (v->opts->gen_suppressions)
        supp_print_leak(t->out, v, l);
}

/* Loss records are numbered among all records, biggest first, even those not shown (and
 * the suppressed ones, as valgrind numbers them). */
static void print_leaks(const struct text *t, const struct report_view *v)
{
    for (size_t i = 0; i < v->log->nleaks; i++) {
        size_t index = v->leak_order[i];
        bool suppressed = v->leak_suppressed_by && v->leak_suppressed_by[index];
        if (report_view_lists_leak(v, &v->log->leaks[index]) && !suppressed)
            print_leak(t, v, index, i + 1);
    }
}

/* valgrind's breakdown of "still reachable" by the heuristic that reached the blocks. */
static void print_heuristic_reachable(const struct text *t, const struct mt_summary *s)
{
    bool header = false;
    for (int h = 0; h < MT_HEURISTIC_COUNT; h++) {
        if (!s->heuristic_blocks[h])
            continue;
        if (!header)
            say(t, "                      of which reachable via heuristic:");
        header = true;
        say(t, "                        %-19s: %s bytes in %s blocks", mt_heuristic_names[h],
            N(s->heuristic_bytes[h]), N(s->heuristic_blocks[h]));
    }
}

static void print_leak_summary(const struct text *t, const struct report_view *v)
{
    static const char *const label[MT_LEAK_CLASS_COUNT] = {
        "   definitely lost", "   indirectly lost", "     possibly lost", "   still reachable",
    };
    const struct report_options *o = v->opts;
    uint64_t any = 0;
    if (v->leaks_unknown) {
        say(t, "LEAK SUMMARY: unknown (the process ended before the leak check could run)");
        blank(t);
        return;
    }
    if (v->in_use_blocks == 0) {         /* valgrind's words when nothing is left to check */
        say(t, "All heap blocks were freed -- no leaks are possible");
        blank(t);
        return;
    }
    say(t, "LEAK SUMMARY:");
    for (int c = 0; c < MT_LEAK_CLASS_COUNT; c++) {
        say(t, "%s: %s bytes in %s blocks", label[c], N(v->leak_bytes[c]), N(v->leak_blocks[c]));
        any |= v->leak_blocks[c];
    }
    print_heuristic_reachable(t, &v->log->summary);
    say(t, "        suppressed: %s bytes in %s blocks", N(v->suppressed_bytes),
        N(v->suppressed_blocks));
    if (o->leak_check == LEAK_CHECK_SUMMARY && any)
        say(t, "Rerun with --leak-check=full to see details of leaked memory");
    if (o->leak_check == LEAK_CHECK_FULL && v->leak_blocks[MT_LEAK_REACHABLE] &&
        !(o->show_leak_kinds & LEAK_BIT_REACHABLE)) {
        say(t, "Reachable blocks (those to which a pointer was found) are not shown.");
        say(t, "To see them, rerun with: --leak-check=full --show-leak-kinds=all");
    }
    blank(t);
}

/* valgrind -v's list of the suppressions used, before the ERROR SUMMARY. valgrind prefixes
 * these with --PID--; here they keep the ==PID== of every report line, so whatever strips
 * the report from a program's stderr strips them too. */
static void print_used_suppressions(const struct text *t, const struct report_view *v)
{
    for (size_t i = 0; i < v->nused; i++) {
        const struct suppression_use *u = &v->used[i];
        fprintf(t->out, "==%ld== used_suppression: %6ld %s %s:%d", t->pid, u->count, u->name,
                u->file, u->line);
        if (u->blocks)
            fprintf(t->out, " suppressed: %s bytes in %s blocks", N(u->bytes), N(u->blocks));
        fputc('\n', t->out);
    }
}

static void print_error_summary(const struct text *t, const struct report_view *v)
{
    print_used_suppressions(t, v);
    say(t, "ERROR SUMMARY: %s errors from %s contexts (suppressed: %s from %s)",
        N((uint64_t)v->errors + v->error_repeats), N((uint64_t)v->errors),
        N((uint64_t)v->suppressed_errors + v->suppressed_repeats), N((uint64_t)v->suppressed_errors));
    if (v->opts->baseline_path)
        say(t, "BASELINE: %s errors known from %s (not counted), %s new", N((uint64_t)v->known_errors),
            v->opts->baseline_path, N((uint64_t)v->errors));
}

/* ------------------------------------------------------------------------------------- */
/* Public interface                                                                       */
/* ------------------------------------------------------------------------------------- */

void render_text(FILE *out, const struct report_view *v)
{
    const struct mt_log *log = v->log;
    const struct report_options *o = v->opts;
    struct text t = { out, log->pid };
    if (!o->quiet)
        print_banner(&t, log);
    unsigned thread_shown = 1;           /* valgrind names a thread when it changes */
    for (size_t i = 0; i < log->nerrors; i++) {
        if (v->error_suppressed_by && v->error_suppressed_by[i])
            continue;
        unsigned thread = report_view_thread(v, &log->errors[i]);
        if (thread != thread_shown)
            say(&t, "Thread %u:", thread);
        thread_shown = thread;
        print_error(&t, v, i);
    }
    if (log->crash.present)
        print_crash(&t, v);
    print_guard_stop(&t, v);
    if (v->truncated) {
        char death[96];
        describe_death(v, death, sizeof death);
        say(&t, "warning: event log truncated (%s before memtrace finished writing it); "
            "showing what was recorded", death);
        blank(&t);
    }
    if (!o->quiet)
        print_heap_summary(&t, v);
    if (o->leak_check == LEAK_CHECK_FULL)
        print_leaks(&t, v);
    if (!o->quiet && o->leak_check != LEAK_CHECK_NO)
        print_leak_summary(&t, v);
    if (!o->quiet && o->leak_check == LEAK_CHECK_NO) {
        say(&t, "For a detailed leak analysis, rerun with: --leak-check=full");
        blank(&t);
    }
    if (!o->quiet)
        print_error_summary(&t, v);
}
