/* render_json.c — the machine report. Its shape is a contract read by tests and tools:
 * keys are only added when the log has the data (absent means unknown), runtime errors
 * come first in log order, then the listed loss records biggest first. One error per line
 * so the file also diffs and greps well. */
#include "describe.h"
#include "report.h"

#include "eventlog_read.h"
#include "symbolize.h"

#include <inttypes.h>

/* ------------------------------------------------------------------------------------- */
/* Strings                                                                                */
/* ------------------------------------------------------------------------------------- */

#define jstr describe_json_string

static void jkey(FILE *o, const char *key)
{
    fprintf(o, "\"%s\": ", key); /* keys are literals of this file: nothing to escape */
}

static void jaddr(FILE *o, const char *key, uint64_t a)
{
    fprintf(o, "\"%s\": \"0x%" PRIx64 "\"", key, a);
}

/* ------------------------------------------------------------------------------------- */
/* Stacks                                                                                 */
/* ------------------------------------------------------------------------------------- */

static void jframe(FILE *o, const struct sym_frame *f)
{
    fputc('{', o);
    jaddr(o, "pc", f->pc);
    if (f->function) {
        fputs(", ", o);
        jkey(o, "function");
        jstr(o, f->function);
    }
    if (f->file) {
        fputs(", ", o);
        jkey(o, "file");
        jstr(o, f->file);
    }
    if (f->line)
        fprintf(o, ", \"line\": %u", f->line);
    if (f->module) {
        fputs(", ", o);
        jkey(o, "module");
        jstr(o, f->module);
    }
    if (f->inlined)
        fputs(", \"inlined\": true", o);
    fputc('}', o);
}

/* `, "KEY": [frames]`; an absent stack (NULL) is written as [] when REQUIRED, else omitted. */
static void jstack(FILE *o, const char *key, const struct sym_stack *s, bool required)
{
    if (!s && !required)
        return;
    fputs(", ", o);
    jkey(o, key);
    fputc('[', o);
    for (size_t i = 0; s && i < s->n; i++) {
        if (i)
            fputs(", ", o);
        jframe(o, &s->frames[i]);
    }
    fputc(']', o);
}

/* ------------------------------------------------------------------------------------- */
/* Errors                                                                                 */
/* ------------------------------------------------------------------------------------- */

static void jaccess(FILE *o, const struct mt_error *e)
{
    bool has_size = (e->has & MT_HAS_ACCESS) != 0;
    if (e->op == MT_OP_UNKNOWN && !has_size)
        return;
    fputs(", \"access\": {", o);
    if (e->op != MT_OP_UNKNOWN)
        fprintf(o, "\"op\": \"%s\"%s", e->op == MT_OP_READ ? "read" : "write",
                has_size ? ", " : "");
    if (has_size)
        fprintf(o, "\"size\": %" PRIu64, e->access_size);
    fputc('}', o);
}

static void jblock(FILE *o, const struct mt_error *e)
{
    if (!(e->has & MT_HAS_BLOCK))
        return;
    fputs(", \"block\": {", o);
    jaddr(o, "address", e->block);
    if (e->has & MT_HAS_SIZE)
        fprintf(o, ", \"size\": %" PRIu64, e->size);
    fputc('}', o);
}

/* For a freed address that is no block: the thread's stack, or the variable, holding it. */
static void jaddress_in(FILE *o, const struct report_view *v, const struct mt_error *e)
{
    uint64_t offset;
    const char *object;
    enum freed_address home = describe_freed_address(v, e, &object, &offset);
    if (home == ADDRESS_ON_STACK) {
        fprintf(o, ", \"address_in\": {\"stack_of_thread\": %u}", report_view_thread(v, e));
    } else if (home == ADDRESS_IN_DATA) {
        fputs(", \"address_in\": {", o);
        jkey(o, "data_symbol");
        jstr(o, object);
        fprintf(o, ", \"offset\": %" PRIu64 "}", offset);
    }
}

/* For an invalid size: the call and argument as valgrind names them, and the value (signed,
 * as valgrind prints it); `times`: calloc's size when nmemb * size is what overflowed. */
static void jsize_call(FILE *o, const struct mt_error *e)
{
    if (e->kind != MT_ERR_INVALID_SIZE || !e->call_fn || !e->size_arg)
        return;
    fprintf(o, ", \"call\": {\"function\": \"%s\", \"argument\": \"%s\", \"value\": %" PRId64,
            e->call_fn, e->size_arg, (int64_t)e->requested);
    if (e->times)
        fprintf(o, ", \"times\": %" PRIu64, e->times);
    fputc('}', o);
}

/* For an overlapping copy: the call, its source (the destination is "address") and its
 * length argument when it has one. */
static void joverlap(FILE *o, const struct mt_error *e)
{
    if (e->kind != MT_ERR_OVERLAP || !e->call_fn || !(e->has & MT_HAS_SOURCE))
        return;
    fprintf(o, ", \"overlap\": {\"function\": \"%s\", ", e->call_fn);
    jaddr(o, "source", e->source);
    if (e->has & MT_HAS_REQUESTED)
        fprintf(o, ", \"size\": %" PRIu64, e->requested);
    fputc('}', o);
}

/* `, "suppressed": ...` and, with a baseline, `, "baseline": "new"|"known"`. */
static void jstatus(FILE *o, const struct report_view *v, const char *suppressed_by, bool known)
{
    fprintf(o, ", \"suppressed\": %s", suppressed_by ? "true" : "false");
    if (suppressed_by) {
        fputs(", ", o);
        jkey(o, "suppression");
        jstr(o, suppressed_by);
    }
    if (v->opts->baseline_path)
        fprintf(o, ", \"baseline\": \"%s\"", known ? "known" : "new");
}

static void jerror(FILE *o, const struct report_view *v, size_t i)
{
    const struct mt_error *e = &v->log->errors[i];
    fputs("{\"kind\": ", o);
    jstr(o, mt_error_kind_name(e->kind));
    fprintf(o, ", \"count\": %" PRIu64 ", \"thread\": %u, ", e->count, report_view_thread(v, e));
    if (e->has & MT_HAS_TID)
        fprintf(o, "\"tid\": %" PRIu32 ", ", e->tid);
    jaddr(o, "address", e->has & MT_HAS_ADDR ? e->addr : 0);
    jaccess(o, e);
    jstack(o, "stack", report_view_stack(v, e->stack, e->exact), true);
    jstack(o, "alloc_stack", report_view_stack(v, e->alloc_stack, false), false);
    jstack(o, "free_stack", report_view_stack(v, e->free_stack, false), false);
    jblock(o, e);
    jaddress_in(o, v, e);
    jsize_call(o, e);
    joverlap(o, e);
    jstatus(o, v, v->error_suppressed_by ? v->error_suppressed_by[i] : NULL,
            v->error_known && v->error_known[i]);
    fputc('}', o);
}

static void jleak(FILE *o, const struct report_view *v, size_t i)
{
    const struct mt_leak *l = &v->log->leaks[i];
    fputs("{\"kind\": \"leak\", \"leak_kind\": ", o);
    jstr(o, mt_leak_class_name(l->cls));
    fprintf(o, ", \"bytes\": %" PRIu64 ", \"blocks\": %" PRIu64 ", \"indirect_bytes\": %" PRIu64,
            l->bytes, l->blocks, l->indirect);
    jstack(o, "stack", report_view_stack(v, l->stack, false), true);
    jstatus(o, v, v->leak_suppressed_by ? v->leak_suppressed_by[i] : NULL,
            v->leak_known && v->leak_known[i]);
    fputc('}', o);
}

static void jerrors(FILE *o, const struct report_view *v)
{
    const struct mt_log *log = v->log;
    const char *sep = "\n    ";
    fputs("  \"errors\": [", o);
    for (size_t i = 0; i < log->nerrors; i++, sep = ",\n    ") {
        fputs(sep, o);
        jerror(o, v, i);
    }
    for (size_t i = 0; i < log->nleaks; i++) {
        if (!report_view_lists_leak(v, &log->leaks[v->leak_order[i]]))
            continue;
        fputs(sep, o);
        jleak(o, v, v->leak_order[i]);
        sep = ",\n    ";
    }
    fputs(*sep == ',' ? "\n  ],\n" : "],\n", o);
}

/* ------------------------------------------------------------------------------------- */
/* Header and summary                                                                     */
/* ------------------------------------------------------------------------------------- */

static void jheader(FILE *o, const struct report_view *v)
{
    const struct mt_log *log = v->log;
    const struct report_options *opts = v->opts;
    fputs("{\n  \"tool\": \"memtrace\",\n  \"version\": ", o);
    jstr(o, REPORT_VERSION);
    fputs(",\n  \"command\": [", o);
    for (size_t i = 0; i < log->argc; i++) {
        if (i)
            fputs(", ", o);
        jstr(o, log->argv[i]);
    }
    if (log->argc == 0 && log->exe)
        jstr(o, log->exe);
    fprintf(o, "],\n  \"pid\": %ld,\n", log->pid);
    /* What the launcher saw wins; the log's own `exit` record covers processes it did not
     * wait for (forked or exec'd children, a bare LD_PRELOAD run). */
    bool known = opts->exit_known || log->has_exit;
    bool signaled = opts->exit_known ? opts->exit_signaled : log->exit_signaled;
    int value = opts->exit_known ? opts->exit_value : log->exit_value;
    if (known)
        fprintf(o, "  \"exit\": {\"%s\": %d},\n", signaled ? "signal" : "status", value);
}

static void jper_class(FILE *o, const char *key, const uint64_t *per_class, bool unknown)
{
    fprintf(o, "    \"%s\": ", key);
    if (unknown) {
        fputs("null,\n", o);
        return;
    }
    fputc('{', o);
    for (int c = 0; c < MT_LEAK_CLASS_COUNT; c++)
        fprintf(o, "%s\"%s\": %" PRIu64, c ? ", " : "", mt_leak_class_name(c), per_class[c]);
    fputs("},\n", o);
}

static void jcrash(FILE *o, const struct report_view *v)
{
    const struct mt_crash *c = &v->log->crash;
    char headline[128], what[128];
    if (!c->present)
        return;
    describe_crash(c, headline, sizeof headline, what, sizeof what);
    fprintf(o, "  \"crash\": {\"signal\": %d, \"code\": %d, ", c->signal, c->code);
    jaddr(o, "address", c->addr);
    fputs(", \"what\": ", o);
    jstr(o, what);
    jstack(o, "stack", report_view_stack(v, c->stack, true), true);
    fputs("},\n", o);
}

/* Of the reachable blocks, those reached only through a heuristic's interior pointer. */
static void jheuristics(FILE *o, const struct mt_summary *s)
{
    fputs("    \"reachable_via_heuristic\": {", o);
    for (int h = 0; h < MT_HEURISTIC_COUNT; h++)
        fprintf(o, "%s\"%s\": {\"bytes\": %" PRIu64 ", \"blocks\": %" PRIu64 "}", h ? ", " : "",
                mt_heuristic_names[h], s->heuristic_bytes[h], s->heuristic_blocks[h]);
    fputs("},\n", o);
}

static void jsummary(FILE *o, const struct report_view *v)
{
    const struct mt_summary *s = &v->log->summary;
    fprintf(o, "  \"summary\": {\n    \"errors\": %ld,\n    \"occurrences\": %" PRIu64 ",\n",
            v->errors, (uint64_t)v->errors + v->error_repeats);
    jper_class(o, "leaked_bytes", v->leak_bytes, v->leaks_unknown);
    jper_class(o, "leaked_blocks", v->leak_blocks, v->leaks_unknown);
    jheuristics(o, s);
    if (v->totals_unknown)
        fputs("    \"in_use_at_exit\": null,\n    \"total_heap_usage\": null,\n", o);
    else
        fprintf(o, "    \"in_use_at_exit\": {\"bytes\": %" PRIu64 ", \"blocks\": %" PRIu64 "},\n"
                "    \"total_heap_usage\": {\"allocs\": %" PRIu64 ", \"frees\": %" PRIu64
                ", \"bytes\": %" PRIu64 "},\n", v->in_use_bytes, v->in_use_blocks, s->allocs,
                s->frees, s->bytes_allocated);
    fprintf(o, "    \"guard\": {\"mode\": ");
    jstr(o, v->guard_mode);
    fprintf(o, ", \"guarded_allocations\": %" PRIu64 "},\n", s->guarded);
    fprintf(o, "    \"suppressed\": {\"errors\": %ld, \"bytes\": %" PRIu64 ", \"blocks\": %"
            PRIu64 "},\n", v->suppressed_errors, v->suppressed_bytes, v->suppressed_blocks);
    if (v->opts->baseline_path)
        fprintf(o, "    \"baseline\": {\"known\": %ld, \"new\": %ld},\n", v->known_errors,
                v->errors);
    fprintf(o, "    \"still_mapped\": {\"bytes\": %" PRIu64 ", \"regions\": %zu},\n",
            v->mapped_bytes, v->log->nmappings);
    fprintf(o, "    \"log_truncated\": %s\n  }\n}\n", v->truncated ? "true" : "false");
}

/* ------------------------------------------------------------------------------------- */
/* Public interface                                                                       */
/* ------------------------------------------------------------------------------------- */

void render_json(FILE *out, const struct report_view *v)
{
    jheader(out, v);
    jcrash(out, v);
    jerrors(out, v);
    jsummary(out, v);
}
