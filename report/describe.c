/* describe.c — the words and facts the XML, SARIF and Markdown renderers share (see
 * describe.h). The wording follows render_text.c line for line, which follows valgrind. */
#include "describe.h"

#include "eventlog_read.h"
#include "symbolize.h"

#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------- */
/* Numbers and text                                                                       */
/* ------------------------------------------------------------------------------------- */

struct dnum describe_count(uint64_t v)
{
    char digits[24];
    struct dnum n;
    int len = snprintf(digits, sizeof digits, "%" PRIu64, v), o = 0;
    for (int i = 0; i < len; i++) {
        if (i && (len - i) % 3 == 0)
            n.s[o++] = ',';
        n.s[o++] = digits[i];
    }
    n.s[o] = '\0';
    return n;
}

#define N(v) (describe_count(v).s)

size_t describe_utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t n;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

/* A JSON string. Bytes that are not UTF-8 become \u00XX (the byte's value) so any path or
 * argument survives as valid JSON. */
void describe_json_string(FILE *o, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', o);
    while (*s) {
        size_t n = describe_utf8_len(s);
        if (*s == '"' || *s == '\\') {
            fputc('\\', o);
            fputc(*s, o);
        } else if (*s == '\n') {
            fputs("\\n", o);
        } else if (*s == '\t') {
            fputs("\\t", o);
        } else if (*s == '\r') {
            fputs("\\r", o);
        } else if (*s < 0x20 || *s == 0x7f || n == 0) {
            fprintf(o, "\\u%04x", *s);
        } else {
            fwrite(s, 1, n, o);
            s += n;
            continue;
        }
        s++;
    }
    fputc('"', o);
}

/* ------------------------------------------------------------------------------------- */
/* Runtime errors                                                                         */
/* ------------------------------------------------------------------------------------- */

static const char *size_fn_name(enum mt_alloc_fn fn)
{
    switch (fn) {
    case MT_FN_NEW: return "operator new";
    case MT_FN_NEW_ARRAY: return "operator new[]";
    case MT_FN_ALIGNED: return "aligned_alloc";
    default: return "malloc";
    }
}

void describe_headline(const struct mt_error *e, char *buf, size_t size)
{
    const char *op = e->op == MT_OP_READ ? "read" : e->op == MT_OP_WRITE ? "write" : "access";
    switch (e->kind) {
    case MT_ERR_DOUBLE_FREE:
    case MT_ERR_INVALID_FREE:
        snprintf(buf, size, "Invalid free() / delete / delete[] / realloc()");
        break;
    case MT_ERR_MISMATCHED_FREE:
        snprintf(buf, size, "Mismatched free() / delete / delete []");
        break;
    case MT_ERR_INVALID_SIZE:
        if (e->times)
            snprintf(buf, size, "Argument '%s' of function %s overflows: %" PRIu64 " * %" PRIu64,
                     e->size_arg ? e->size_arg : "nmemb*size", e->call_fn ? e->call_fn : "calloc",
                     e->requested, e->times);
        else
            snprintf(buf, size, "Argument '%s' of function %s has a fishy (possibly negative) "
                     "value: %" PRId64, e->size_arg ? e->size_arg : "size",
                     e->call_fn ? e->call_fn : size_fn_name(e->alloc_fn), (int64_t)e->requested);
        break;
    case MT_ERR_INVALID_MUNMAP:
        snprintf(buf, size, "Invalid munmap()");
        break;
    case MT_ERR_OVERLAP:
        if (e->has & MT_HAS_REQUESTED)
            snprintf(buf, size, "Source and destination overlap in %s(0x%" PRIx64 ", 0x%" PRIx64
                     ", %" PRIu64 ")", e->call_fn ? e->call_fn : "strncpy", e->addr, e->source,
                     e->requested);
        else
            snprintf(buf, size, "Source and destination overlap in %s(0x%" PRIx64 ", 0x%" PRIx64
                     ")", e->call_fn ? e->call_fn : "strcpy", e->addr, e->source);
        break;
    default: /* the access errors */
        if (e->has & MT_HAS_ACCESS)
            snprintf(buf, size, "Invalid %s of size %s", op, N(e->access_size));
        else
            snprintf(buf, size, "Invalid %s", op);
        break;
    }
}

/* "Address A is " + RELATION, remembering where the relation starts. */
__attribute__((format(printf, 3, 4)))
static void address_is(struct aux_part *p, uint64_t addr, const char *fmt, ...)
{
    int n = snprintf(p->text, sizeof p->text, "Address 0x%" PRIx64 " is ", addr);
    p->relation = n > 0 && (size_t)n < sizeof p->text ? (size_t)n : 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->text + p->relation, sizeof p->text - p->relation, fmt, ap);
    va_end(ap);
}

/* "N bytes inside/after/before a block of size S alloc'd|free'd". */
static void block_part(struct aux_part *p, const struct mt_error *e, bool freed)
{
    uint64_t addr = e->has & MT_HAS_ADDR ? e->addr : e->block;
    const char *state = freed ? "free'd" : "alloc'd";
    const char *where = "inside";
    uint64_t dist = addr - e->block;
    if (addr < e->block) {
        where = "before";
        dist = e->block - addr;
    } else if ((e->has & MT_HAS_SIZE) && dist >= e->size) {
        where = "after";
        dist -= e->size;
    }
    p->role = freed ? AUX_FREED : AUX_ALLOCD;
    if (e->has & MT_HAS_SIZE)
        address_is(p, addr, "%s bytes %s a block of size %s %s", N(dist), where, N(e->size),
                   state);
    else
        address_is(p, addr, "%s bytes %s a block %s", N(dist), where, state);
}

enum freed_address describe_freed_address(const struct report_view *v, const struct mt_error *e,
                                          const char **object, uint64_t *offset)
{
    if ((e->has & MT_HAS_BLOCK) || !(e->has & MT_HAS_ADDR) ||
        (e->kind != MT_ERR_INVALID_FREE && e->kind != MT_ERR_DOUBLE_FREE))
        return ADDRESS_NOT_FREED;
    if (e->on_stack)
        return ADDRESS_ON_STACK;
    *object = sym_data_object(v->sym, e->addr, offset);
    return *object ? ADDRESS_IN_DATA : ADDRESS_UNKNOWN;
}

/* Where a freed address that is no block lies, in valgrind's words. */
static void address_relation(struct aux_part *p, const struct report_view *v,
                             const struct mt_error *e)
{
    const char *object;
    uint64_t offset;
    switch (describe_freed_address(v, e, &object, &offset)) {
    case ADDRESS_ON_STACK:
        address_is(p, e->addr, "on thread %u's stack", report_view_thread(v, e));
        break;
    case ADDRESS_IN_DATA:
        address_is(p, e->addr, "%s bytes inside data symbol \"%s\"", N(offset), object);
        break;
    default:
        address_is(p, e->addr, "not stack'd, malloc'd or (recently) free'd");
    }
}

size_t describe_aux(const struct report_view *v, const struct mt_error *e,
                    struct aux_part out[DESCRIBE_MAX_AUX])
{
    const struct sym_stack *alloc = report_view_stack(v, e->alloc_stack, false);
    const struct sym_stack *freed = report_view_stack(v, e->free_stack, false);
    size_t n = 0;
    if (e->has & MT_HAS_BLOCK) {
        bool is_freed = freed || e->kind == MT_ERR_USE_AFTER_FREE || e->kind == MT_ERR_DOUBLE_FREE;
        block_part(&out[n], e, is_freed);
        out[n++].stack = is_freed ? freed : alloc;
        if (!is_freed)
            return n; /* the alloc stack was just shown */
    } else if ((e->kind == MT_ERR_INVALID_FREE || e->kind == MT_ERR_DOUBLE_FREE) &&
               (e->has & MT_HAS_ADDR)) {
        out[n] = (struct aux_part){ .role = AUX_ADDRESS };
        address_relation(&out[n++], v, e);
    } else if (e->kind == MT_ERR_INVALID_MUNMAP && (e->has & MT_HAS_ADDR)) {
        out[n] = (struct aux_part){ .role = AUX_ADDRESS };
        address_is(&out[n++], e->addr, "not in a region the program mmap'd");
    }
    if (alloc && alloc->n) {
        out[n] = (struct aux_part){ .role = AUX_ALLOC_STACK, .stack = alloc };
        snprintf(out[n++].text, sizeof out->text, "Block was alloc'd at");
    }
    return n;
}

const char *describe_late_note(const struct mt_error *e)
{
    bool access = e->kind == MT_ERR_HEAP_OVERFLOW || e->kind == MT_ERR_HEAP_UNDERFLOW ||
                  e->kind == MT_ERR_USE_AFTER_FREE;
    return access && !e->exact ? "found when the block was checked, at its free or at exit; "
                                 "the access was earlier" : NULL;
}

/* ------------------------------------------------------------------------------------- */
/* Loss records                                                                           */
/* ------------------------------------------------------------------------------------- */

const char *describe_leak_phrase(int cls)
{
    static const char *const phrase[MT_LEAK_CLASS_COUNT] = {
        "definitely lost", "indirectly lost", "possibly lost", "still reachable",
    };
    return cls >= 0 && cls < MT_LEAK_CLASS_COUNT ? phrase[cls] : "lost";
}

uint64_t describe_leak_total(const struct mt_leak *l)
{
    return l->bytes > UINT64_MAX - l->indirect ? UINT64_MAX : l->bytes + l->indirect;
}

void describe_leak(const struct report_view *v, const struct mt_leak *l, size_t number,
                   char *buf, size_t size)
{
    const char *phrase = describe_leak_phrase(l->cls);
    size_t total = v->log->nleaks;
    if (l->indirect && (l->cls == MT_LEAK_DEFINITE || l->cls == MT_LEAK_POSSIBLE))
        snprintf(buf, size, "%s (%s direct, %s indirect) bytes in %s blocks are %s in loss "
                 "record %s of %s", N(describe_leak_total(l)), N(l->bytes), N(l->indirect),
                 N(l->blocks), phrase, N(number), N(total));
    else
        snprintf(buf, size, "%s bytes in %s blocks are %s in loss record %s of %s",
                 N(l->bytes), N(l->blocks), phrase, N(number), N(total));
}

/* ------------------------------------------------------------------------------------- */
/* What the view shows                                                                    */
/* ------------------------------------------------------------------------------------- */

bool describe_error_shown(const struct report_view *v, size_t i)
{
    return !(v->error_suppressed_by && v->error_suppressed_by[i]);
}

bool describe_leak_shown(const struct report_view *v, size_t i)
{
    return report_view_lists_leak(v, &v->log->leaks[i]) &&
           !(v->leak_suppressed_by && v->leak_suppressed_by[i]);
}

bool describe_exit(const struct report_view *v, bool *signaled, int *value)
{
    const struct report_options *o = v->opts;
    *signaled = o->exit_known ? o->exit_signaled : v->log->exit_signaled;
    *value = o->exit_known ? o->exit_value : v->log->exit_value;
    return o->exit_known || v->log->has_exit;
}

void describe_death(const struct report_view *v, char *buf, size_t size)
{
    bool signaled;
    int value;
    if (describe_exit(v, &signaled, &value) && signaled)
        snprintf(buf, size, "the process was killed by signal %d (SIG%s)", value,
                 sigabbrev_np(value) ? sigabbrev_np(value) : "?");
    else
        snprintf(buf, size, "the process died");
}

/* si_code's meaning, in valgrind's words (siginfo.h's SEGV_*, BUS_*, FPE_*, ILL_*). */
static const char *crash_cause(int sig, int code)
{
    static const char *const fpe[] = {"Integer divide by zero", "Integer overflow",
                                      "FP divide by zero", "FP overflow", "FP underflow",
                                      "FP inexact", "FP invalid operation", "FP subscript out of range"};
    static const char *const ill[] = {"Illegal opcode", "Illegal operand", "Illegal addressing mode",
                                      "Illegal trap", "Privileged opcode", "Privileged register",
                                      "Coprocessor error", "Internal stack error"};
    if (sig == SIGSEGV)
        return code == 2 ? "Bad permissions for mapped region" : "Access not within mapped region";
    if (sig == SIGBUS)
        return code == 1 ? "Invalid address alignment" : code == 2 ? "Non-existent physical address"
                                                                   : "Hardware error";
    if (sig == SIGFPE && code >= 1 && code <= 8)
        return fpe[code - 1];
    if (sig == SIGILL && code >= 1 && code <= 8)
        return ill[code - 1];
    return "Fault";
}

const char *describe_crash_event(const struct mt_crash *c)
{
    bool fault = c->code > 0 && c->code < 0x80 &&   /* 0 and below, or SI_KERNEL: sent */
                 (c->signal == SIGSEGV || c->signal == SIGBUS || c->signal == SIGFPE || c->signal == SIGILL);
    return fault ? crash_cause(c->signal, c->code) : NULL;
}

void describe_terminating(int sig, char *buf, size_t size)
{
    snprintf(buf, size, "Process terminating with default action of signal %d (SIG%s)", sig,
             sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
}

void describe_crash(const struct mt_crash *c, char *headline, size_t headline_size, char *what,
                    size_t what_size)
{
    describe_terminating(c->signal, headline, headline_size);
    const char *event = describe_crash_event(c);
    if (event)
        snprintf(what, what_size, "%s at address 0x%" PRIx64, event, c->addr);
    else if (what_size)
        what[0] = '\0';
}

/* ------------------------------------------------------------------------------------- */
/* The source root                                                                        */
/* ------------------------------------------------------------------------------------- */

bool source_root_init(struct source_root *r, const char *dir)
{
    *r = (struct source_root){ 0 };
    char *canon = realpath(dir ? dir : ".", NULL);
    if (!canon)
        return false;
    r->path = canon;
    r->len = strlen(canon);
    if (r->len > 1 && canon[r->len - 1] == '/')
        canon[--r->len] = '\0';
    return true;
}

void source_root_free(struct source_root *r)
{
    free(r->path);
    *r = (struct source_root){ 0 };
}

char *source_root_relative(const struct source_root *r, const char *file)
{
    if (!r->path || !file || file[0] != '/')
        return NULL;
    char *canon = realpath(file, NULL); /* the debug info may name it through a link */
    const char *path = canon ? canon : file;
    char *rel = NULL;
    size_t skip = r->len == 1 ? 1 : r->len + 1; /* the root and its slash */
    if (strncmp(path, r->path, r->len) == 0 && (r->len == 1 || path[r->len] == '/') &&
        path[skip - 1] == '/' && path[skip] != '\0')
        rel = strdup(path + skip);
    free(canon);
    return rel;
}

const struct sym_frame *source_root_frame(const struct source_root *r,
                                          const struct sym_stack *s, char **rel)
{
    *rel = NULL;
    for (size_t i = 0; s && i < s->n; i++)
        if ((*rel = source_root_relative(r, s->frames[i].file)) != NULL)
            return &s->frames[i];
    return NULL;
}
