/* render_sarif.c — SARIF 2.1.0 for code scanning (GitHub and other SARIF viewers). One run;
 * one rule per error kind, always all of them in the same order so rule ids and indexes are
 * stable; one result per error and listed loss record. A result's location is the first
 * frame inside --source-root (relative to %SRCROOT%), its codeFlow the whole stack, its
 * related locations the free and alloc sites, and its partialFingerprints a hash of the
 * kind and the functions of the top frames — never addresses, which ASLR changes each run.
 * Suppressed errors are included, marked with an external suppression. docs/formats.md. */
#include "report.h"

#include "describe.h"
#include "eventlog_read.h"
#include "symbolize.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef MEMTRACE_HOMEPAGE
#define MEMTRACE_HOMEPAGE "https://github.com/memtrace/memtrace"
#endif

#define SARIF_SCHEMA "https://json.schemastore.org/sarif-2.1.0.json"
#define FINGERPRINT_FRAMES 8   /* top frames whose functions identify a result */

/* ------------------------------------------------------------------------------------- */
/* Rules                                                                                  */
/* ------------------------------------------------------------------------------------- */

struct rule {
    const char *id, *name, *summary, *details, *help, *level, *severity, *cwe;
};

/* Runtime kinds in enum mt_error_kind order, then leak classes in enum mt_leak_class order. */
static const struct rule rules[] = {
    { "memtrace/double-free", "DoubleFree", "A heap block was freed twice.",
      "The program freed a block that was already freed. The second free can corrupt the "
      "allocator's state, and with it any later allocation.",
      "Find the first free (the result's related location) and make sure the block has one "
      "owner that frees it once; set pointers to NULL after freeing them.",
      "error", "8.1", "415" },
    { "memtrace/invalid-free", "InvalidFree", "free() was given a pointer that is not a heap block.",
      "The program freed an address that malloc never returned: a stack or global address, "
      "a pointer into the middle of a block, or memory from another allocator.",
      "Free exactly the pointer the allocation returned, and only heap memory.",
      "error", "7.5", "763" },
    { "memtrace/mismatched-free", "MismatchedFree", "A block was freed with the wrong deallocator.",
      "The block was allocated with one family (malloc, new, new[]) and freed with another "
      "(free, delete, delete[]). This is undefined behaviour and skips destructors.",
      "Pair malloc with free, new with delete and new[] with delete[].",
      "error", "5.5", "762" },
    { "memtrace/invalid-size", "FishyAllocationSize", "An allocation size is negative or overflows.",
      "The program asked an allocator for a size that is negative when read as a signed "
      "value, or whose element count times element size overflows.",
      "Check the size computation for sign errors and overflow before allocating.",
      "warning", "5.3", "687" },
    { "memtrace/heap-overflow", "HeapOverflow", "An access past the end of a heap block.",
      "The program read or wrote memory after the end of a heap block.",
      "Check the index or length used for the access against the block's size.",
      "error", "8.8", "122" },
    { "memtrace/heap-underflow", "HeapUnderflow", "An access before the start of a heap block.",
      "The program read or wrote memory before the start of a heap block.",
      "Check for negative indexes and pointer arithmetic that moves before the block.",
      "error", "8.8", "124" },
    { "memtrace/use-after-free", "UseAfterFree", "An access to a heap block after it was freed.",
      "The program read or wrote a heap block after freeing it (directly, or through realloc "
      "moving it).",
      "Find where the block was freed (the related location) and make sure no pointer to it "
      "is used afterwards.",
      "error", "8.8", "416" },
    { "memtrace/invalid-munmap", "InvalidMunmap", "munmap() of memory the program did not mmap.",
      "The program unmapped a range that no mmap of its own created, such as heap memory: "
      "this tears memory out from under the allocator or another library.",
      "Only munmap ranges returned by your own mmap calls, with their length.",
      "error", "6.5", "763" },
    { "memtrace/overlap", "OverlappingCopy", "The source and destination of a copy overlap.",
      "strcpy, strcat and their kin must not be given overlapping source and "
      "destination: what the copy makes of them depends on the library's copy order.",
      "Use memmove for overlapping ranges, or copy through a separate buffer.",
      "warning", "5.0", "475" },
    { "memtrace/leak-definite", "DefiniteLeak", "Heap memory is lost: no pointer to it remains.",
      "At exit no pointer to these blocks was found anywhere in memory: they can never be "
      "freed.",
      "Free the block on every path once it is no longer needed, or give it an owner.",
      "warning", "5.0", "401" },
    { "memtrace/leak-indirect", "IndirectLeak", "Heap memory lost through another lost block.",
      "These blocks are only pointed to from blocks that are themselves lost; fixing the "
      "leak of their owner usually fixes these.",
      "Fix the definitely lost block that owns these first.",
      "warning", "4.0", "401" },
    { "memtrace/leak-possible", "PossibleLeak", "Heap memory only reachable through interior pointers.",
      "At exit only pointers into the middle of these blocks were found, which may be "
      "chance values rather than real references.",
      "Check whether the program still owns these blocks; free them if not.",
      "note", "3.0", "401" },
    { "memtrace/leak-reachable", "StillReachable", "Heap memory still referenced at exit.",
      "These blocks were never freed but a pointer to them still existed at exit. Usually "
      "harmless (caches, globals), but it hides real leaks in long-running programs.",
      "Free long-lived allocations at shutdown if you want a clean report.",
      "note", "1.0", "401" },
};

_Static_assert(sizeof rules / sizeof rules[0] == MT_ERR_KIND_COUNT + MT_LEAK_CLASS_COUNT,
               "one rule per error kind and leak class");

/* ------------------------------------------------------------------------------------- */
/* A small JSON writer: two-space indents, one member per line                             */
/* ------------------------------------------------------------------------------------- */

#define JW_MAX_DEPTH 24

struct jw {
    FILE *o;
    int depth;
    bool has_item[JW_MAX_DEPTH];  /* per open container: something written already */
};


/* Starts a member (KEY non-NULL) or an array element. */
static void jitem(struct jw *w, const char *key)
{
    fprintf(w->o, "%s\n%*s", w->has_item[w->depth] ? "," : "", 2 * w->depth, "");
    w->has_item[w->depth] = true;
    if (key) {
        describe_json_string(w->o, key);
        fputs(": ", w->o);
    }
}

static void jopen(struct jw *w, const char *key, char bracket)
{
    jitem(w, key);
    fputc(bracket, w->o);
    if (w->depth + 1 < JW_MAX_DEPTH)
        w->has_item[++w->depth] = false;
}

static void jclose(struct jw *w, char bracket)
{
    bool had = w->has_item[w->depth];
    if (w->depth > 0)
        w->depth--;
    if (had)
        fprintf(w->o, "\n%*s", 2 * w->depth, "");
    fputc(bracket, w->o);
}

static void jstr(struct jw *w, const char *key, const char *value)
{
    jitem(w, key);
    describe_json_string(w->o, value);
}

static void jint(struct jw *w, const char *key, long long value)
{
    jitem(w, key);
    fprintf(w->o, "%lld", value);
}

static void jbool(struct jw *w, const char *key, bool value)
{
    jitem(w, key);
    fputs(value ? "true" : "false", w->o);
}

/* {"text": TEXT} under KEY: SARIF's message and multiformatMessageString. */
static void jmessage(struct jw *w, const char *key, const char *text)
{
    jopen(w, key, '{');
    jstr(w, "text", text);
    jclose(w, '}');
}

/* ------------------------------------------------------------------------------------- */
/* Locations                                                                              */
/* ------------------------------------------------------------------------------------- */

/* PATH as a URI path: unreserved characters, sub-delimiters, '@' and '/' stay, every other
 * byte (':' too, so a relative path never looks like a scheme) is percent-encoded. */
static char *uri_path(const char *prefix, const char *path)
{
    static const char keep[] = "-._~!$&'()*+,;=@/";
    size_t plen = strlen(prefix);
    char *out = malloc(plen + 3 * strlen(path) + 1), *o = out;
    if (!out)
        return NULL;
    memcpy(o, prefix, plen);
    o += plen;
    for (const unsigned char *s = (const unsigned char *)path; *s; s++) {
        if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
            strchr(keep, *s))
            *o++ = (char)*s;
        else
            o += sprintf(o, "%%%02X", *s);
    }
    *o = '\0';
    return out;
}

/* Fingerprints written so far, with how often: the second result with the same one gets
 * ":2" (GitHub's convention for its own line hashes), so two leaks from one function stay
 * two alerts. Open addressing; key 0 is "empty". */
struct seen {
    uint64_t *keys;
    unsigned *counts;
    size_t mask;
};

struct sarif {
    struct jw w;
    const struct report_view *v;
    struct source_root root;
    struct seen seen;
};

/* "physicalLocation" for FILE:LINE: relative to %SRCROOT% when inside the root, otherwise
 * an absolute file: URI. Written only for absolute paths (a relative one from the debug
 * info names no directory we know); returns whether it wrote anything. */
static bool jphysical(struct sarif *s, const char *file, unsigned line)
{
    if (!file || file[0] != '/')
        return false;
    char *rel = source_root_relative(&s->root, file);
    char *uri = rel ? uri_path("", rel) : uri_path("file://", file);
    bool relative = rel != NULL;
    free(rel);
    if (!uri)
        return false;
    jopen(&s->w, "physicalLocation", '{');
    jopen(&s->w, "artifactLocation", '{');
    jstr(&s->w, "uri", uri);
    if (relative)
        jstr(&s->w, "uriBaseId", "%SRCROOT%");
    jclose(&s->w, '}');
    if (line) {
        jopen(&s->w, "region", '{');
        jint(&s->w, "startLine", line);
        jclose(&s->w, '}');
    }
    jclose(&s->w, '}');
    free(uri);
    return true;
}

/* The frame a result points at: the first inside the source root, else the first with an
 * absolute file name; NULL when no frame has one. */
static const struct sym_frame *primary_frame(const struct sarif *s, const struct sym_stack *st)
{
    char *rel;
    const struct sym_frame *f = source_root_frame(&s->root, st, &rel);
    free(rel);
    for (size_t i = 0; !f && st && i < st->n; i++)
        if (st->frames[i].file && st->frames[i].file[0] == '/')
            f = &st->frames[i];
    return f;
}

/* "function (file:line)" for messages; the file as the debug info names it. */
static void frame_label(const struct sym_frame *f, char *buf, size_t size)
{
    const char *fn = f->function ? f->function : "???";
    const char *base = f->file ? strrchr(f->file, '/') : NULL;
    base = base ? base + 1 : f->file;
    if (base && f->line)
        snprintf(buf, size, "%s (%s:%u)", fn, base, f->line);
    else if (base)
        snprintf(buf, size, "%s (%s)", fn, base);
    else
        snprintf(buf, size, "%s", fn);
}

/* A location object: the frame's file and line, and a message naming it. */
static void jframe_location(struct sarif *s, const char *key, const struct sym_frame *f,
                            int id, const char *what)
{
    char label[512];
    frame_label(f, label, sizeof label);
    jopen(&s->w, key, '{');
    if (id > 0)
        jint(&s->w, "id", id);
    jphysical(s, f->file, f->line);
    if (what) {
        char text[640];
        snprintf(text, sizeof text, "%s %s", what, label);
        jmessage(&s->w, "message", text);
    } else {
        jmessage(&s->w, "message", label);
    }
    jclose(&s->w, '}');
}

/* result.locations: the primary frame, or the first frame's module when no frame has a
 * source file (code scanning needs a physical location). */
static void jlocations(struct sarif *s, const struct sym_stack *st)
{
    const struct sym_frame *f = primary_frame(s, st);
    if (!f && (!st || !st->n || !st->frames[0].module))
        return;
    jopen(&s->w, "locations", '[');
    if (f) {
        jframe_location(s, NULL, f, 0, NULL);
    } else {
        jopen(&s->w, NULL, '{');
        jphysical(s, st->frames[0].module, 0);
        jclose(&s->w, '}');
    }
    jclose(&s->w, ']');
}

/* codeFlows: the stack as one thread flow, outermost call first as SARIF orders it. */
static void jcode_flow(struct sarif *s, const struct sym_stack *st)
{
    if (!st || !st->n)
        return;
    struct jw *w = &s->w;
    jopen(w, "codeFlows", '[');
    jopen(w, NULL, '{');
    jopen(w, "threadFlows", '[');
    jopen(w, NULL, '{');
    jopen(w, "locations", '[');
    for (size_t i = st->n; i-- > 0; ) {
        const struct sym_frame *f = &st->frames[i];
        char *rel = source_root_relative(&s->root, f->file);
        jopen(w, NULL, '{');
        jframe_location(s, "location", f, 0, NULL);
        jint(w, "nestingLevel", (long long)(st->n - 1 - i));
        if (f->module)
            jstr(w, "module", f->module);
        jstr(w, "importance", rel ? "essential" : "unimportant");
        jclose(w, '}');
        free(rel);
    }
    jclose(w, ']');
    jclose(w, '}');
    jclose(w, ']');
    jclose(w, '}');
    jclose(w, ']');
}

/* ------------------------------------------------------------------------------------- */
/* Results                                                                                */
/* ------------------------------------------------------------------------------------- */

/* 64-bit FNV-1a of the rule id and the functions of the top frames (a frame without a
 * function counts as its module's file name): the same bug hashes the same in every run. */
static uint64_t fingerprint(const char *rule_id, const struct sym_stack *st)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i <= FINGERPRINT_FRAMES && (i == 0 || (st && i <= st->n)); i++) {
        const char *name = rule_id;
        if (i > 0) {
            const struct sym_frame *f = &st->frames[i - 1];
            const char *slash = f->module ? strrchr(f->module, '/') : NULL;
            name = f->function ? f->function : slash ? slash + 1 : f->module ? f->module : "???";
        }
        for (const unsigned char *c = (const unsigned char *)name; ; c++) {
            h = (h ^ *c) * 0x100000001b3u; /* the terminating NUL separates the names */
            if (!*c)
                break;
        }
    }
    return h;
}

static bool seen_init(struct seen *s, size_t n)
{
    size_t size = 16;
    while (size < 2 * n + 2)
        size *= 2;
    s->keys = calloc(size, sizeof *s->keys);
    s->counts = calloc(size, sizeof *s->counts);
    s->mask = size - 1;
    return s->keys && s->counts;
}

/* How many results so far (this one included) have fingerprint H. */
static unsigned seen_add(struct seen *s, uint64_t h)
{
    if (!s->keys || !s->counts)
        return 1;
    h = h ? h : 1;
    for (size_t i = (size_t)h & s->mask; ; i = (i + 1) & s->mask) {
        if (s->keys[i] == h)
            return ++s->counts[i];
        if (!s->keys[i]) {
            s->keys[i] = h;
            return s->counts[i] = 1;
        }
    }
}

struct result {
    size_t rule;
    const char *message;
    const struct sym_stack *stack;        /* where it happened (leaks: the allocation) */
    const struct aux_part *aux;           /* related stacks, for runtime errors */
    size_t naux;
    const char *suppressed_by;            /* NULL: not suppressed */
    const bool *known;                    /* NULL: no baseline */
    uint64_t occurrences;                 /* a runtime error's count; 0 for loss records */
};

static void jresult(struct sarif *s, const struct result *r)
{
    struct jw *w = &s->w;
    const struct rule *rule = &rules[r->rule];
    char print[40];
    jopen(w, NULL, '{');
    jstr(w, "ruleId", rule->id);
    jint(w, "ruleIndex", (long long)r->rule);
    jstr(w, "level", rule->level);
    jmessage(w, "message", r->message);
    if (r->occurrences > 1)
        jint(w, "occurrenceCount", (long long)r->occurrences);
    jlocations(s, r->stack);
    int id = 0;
    for (size_t i = 0; i < r->naux; i++) {
        const struct sym_frame *f = primary_frame(s, r->aux[i].stack);
        if (!f)
            continue;
        if (++id == 1)
            jopen(w, "relatedLocations", '[');
        jframe_location(s, NULL, f, id, r->aux[i].role == AUX_FREED ? "freed in" : "allocated in");
    }
    if (id)
        jclose(w, ']');
    jcode_flow(s, r->stack);
    uint64_t hash = fingerprint(rule->id, r->stack);
    snprintf(print, sizeof print, "%016" PRIx64 ":%u", hash, seen_add(&s->seen, hash));
    jopen(w, "partialFingerprints", '{');
    jstr(w, "memtraceStackHash/v1", print);
    jclose(w, '}');
    if (r->suppressed_by) {
        char why[512];
        snprintf(why, sizeof why, "memtrace suppression \"%s\"", r->suppressed_by);
        jopen(w, "suppressions", '[');
        jopen(w, NULL, '{');
        jstr(w, "kind", "external");
        jstr(w, "status", "accepted");
        jstr(w, "justification", why);
        jclose(w, '}');
        jclose(w, ']');
    }
    if (r->known)
        jstr(w, "baselineState", *r->known ? "unchanged" : "new");
    jclose(w, '}');
}

/* Appends to a fixed buffer, cutting what does not fit. */
struct text {
    char *buf;
    size_t size, len;
};

__attribute__((format(printf, 2, 3)))
static void add(struct text *t, const char *fmt, ...)
{
    if (t->len + 1 >= t->size)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, t->size - t->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        t->len = t->len + (size_t)n < t->size ? t->len + (size_t)n : t->size - 1;
}

/* "Invalid read of size 1 in f: the address is 5 bytes inside a block of size 40 free'd.
 * See where the block was [freed](1) and [allocated](2)." — [text](id) is SARIF's link to
 * a related location. */
static void error_message(const struct sarif *s, const struct mt_error *e,
                          const struct aux_part *aux, size_t naux, char *buf, size_t size)
{
    struct text t = { buf, size, 0 };
    char head[256];
    const struct sym_stack *st = report_view_stack(s->v, e->stack, e->exact);
    const char *late = describe_late_note(e);
    buf[0] = '\0';
    describe_headline(e, head, sizeof head);
    add(&t, "%s", head);
    if (st && st->n && st->frames[0].function)
        add(&t, " in %s", st->frames[0].function);
    if (naux && aux[0].role != AUX_ALLOC_STACK)
        add(&t, ": the address is %s", aux[0].text + aux[0].relation);
    if (late)
        add(&t, " (%s)", late);
    add(&t, ".");
    int id = 0;
    for (size_t i = 0; i < naux; i++) {
        if (!primary_frame(s, aux[i].stack))
            continue;
        id++;
        add(&t, "%s[%s](%d)", id == 1 ? " See where the block was " : " and ",
            aux[i].role == AUX_FREED ? "freed" : "allocated", id);
    }
    if (id)
        add(&t, ".");
}

static void jresults(struct sarif *s)
{
    const struct report_view *v = s->v;
    const struct mt_log *log = v->log;
    char message[1024];
    jopen(&s->w, "results", '[');
    for (size_t i = 0; i < log->nerrors; i++) {
        const struct mt_error *e = &log->errors[i];
        struct aux_part aux[DESCRIBE_MAX_AUX];
        size_t naux = describe_aux(v, e, aux);
        error_message(s, e, aux, naux, message, sizeof message);
        struct result r = {
            .rule = (size_t)e->kind, .message = message,
            .stack = report_view_stack(v, e->stack, e->exact), .aux = aux, .naux = naux,
            .suppressed_by = v->error_suppressed_by ? v->error_suppressed_by[i] : NULL,
            .known = v->error_known ? &v->error_known[i] : NULL, .occurrences = e->count,
        };
        jresult(s, &r);
    }
    for (size_t i = 0; i < log->nleaks; i++) {
        size_t k = v->leak_order[i];
        const struct mt_leak *l = &log->leaks[k];
        if (!report_view_lists_leak(v, l))
            continue;
        describe_leak(v, l, i + 1, message, sizeof message);
        struct result r = {
            .rule = MT_ERR_KIND_COUNT + (size_t)l->cls, .message = message,
            .stack = report_view_stack(v, l->stack, false),
            .suppressed_by = v->leak_suppressed_by ? v->leak_suppressed_by[k] : NULL,
            .known = v->leak_known ? &v->leak_known[k] : NULL,
        };
        jresult(s, &r);
    }
    jclose(&s->w, ']');
}

/* ------------------------------------------------------------------------------------- */
/* The run                                                                                */
/* ------------------------------------------------------------------------------------- */

static void jrules(struct jw *w)
{
    jopen(w, "rules", '[');
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        const struct rule *r = &rules[i];
        char cwe[32];
        jopen(w, NULL, '{');
        jstr(w, "id", r->id);
        jstr(w, "name", r->name);
        jmessage(w, "shortDescription", r->summary);
        jmessage(w, "fullDescription", r->details);
        jmessage(w, "help", r->help);
        jopen(w, "defaultConfiguration", '{');
        jstr(w, "level", r->level);
        jclose(w, '}');
        jopen(w, "properties", '{');
        jopen(w, "tags", '[');
        jstr(w, NULL, i < MT_ERR_KIND_COUNT ? "security" : "reliability");
        jstr(w, NULL, "memory");
        snprintf(cwe, sizeof cwe, "external/cwe/cwe-%s", r->cwe);
        jstr(w, NULL, cwe);
        jclose(w, ']');
        jstr(w, "security-severity", r->severity);
        jclose(w, '}');
        jclose(w, '}');
    }
    jclose(w, ']');
}

static void jinvocation(struct sarif *s)
{
    struct jw *w = &s->w;
    const struct mt_log *log = s->v->log;
    bool signaled;
    int value;
    jopen(w, "invocations", '[');
    jopen(w, NULL, '{');
    if (log->argc) {
        jopen(w, "arguments", '[');
        for (size_t i = 0; i < log->argc; i++)
            jstr(w, NULL, log->argv[i]);
        jclose(w, ']');
    }
    if (describe_exit(s->v, &signaled, &value) && signaled) {
        const char *abbrev = sigabbrev_np(value);
        char name[32];
        snprintf(name, sizeof name, "SIG%s", abbrev ? abbrev : "UNKNOWN");
        jint(w, "exitSignalNumber", value);
        jstr(w, "exitSignalName", name);
    } else if (describe_exit(s->v, &signaled, &value)) {
        jint(w, "exitCode", value);
    }
    /* memtrace itself succeeded unless the log stops short */
    jbool(w, "executionSuccessful", !s->v->truncated);
    jclose(w, '}');
    jclose(w, ']');
}

/* ------------------------------------------------------------------------------------- */
/* Public interface                                                                       */
/* ------------------------------------------------------------------------------------- */

void render_sarif(FILE *out, const struct report_view *v)
{
    struct sarif s = { .w = { .o = out, .depth = 1 }, .v = v };
    struct jw *w = &s.w;
    source_root_init(&s.root, v->opts->source_root);
    seen_init(&s.seen, v->log->nerrors + v->log->nleaks); /* without it: all ":1" */
    fputc('{', out);
    jstr(w, "$schema", SARIF_SCHEMA);
    jstr(w, "version", "2.1.0");
    jopen(w, "runs", '[');
    jopen(w, NULL, '{');
    jopen(w, "tool", '{');
    jopen(w, "driver", '{');
    jstr(w, "name", "memtrace");
    jstr(w, "version", REPORT_VERSION);
    jstr(w, "semanticVersion", REPORT_VERSION);
    jstr(w, "informationUri", MEMTRACE_HOMEPAGE);
    jrules(w);
    jclose(w, '}');
    jclose(w, '}');
    if (s.root.path) {
        jopen(w, "originalUriBaseIds", '{');
        jopen(w, "%SRCROOT%", '{');
        char *dir = malloc(s.root.len + 2), *uri = NULL; /* a base URI ends in a slash */
        if (dir) {
            snprintf(dir, s.root.len + 2, "%s%s", s.root.path, s.root.len > 1 ? "/" : "");
            if ((uri = uri_path("file://", dir)) != NULL)
                jstr(w, "uri", uri);
        }
        free(uri);
        free(dir);
        jclose(w, '}');
        jclose(w, '}');
    }
    jinvocation(&s);
    jresults(&s);
    jclose(w, '}');
    jclose(w, ']');
    jclose(w, '}');
    fputc('\n', out);
    source_root_free(&s.root);
    free(s.seen.keys);
    free(s.seen.counts);
}
