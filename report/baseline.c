/* baseline.c — an earlier report's errors as a sorted set of keys, looked up by this run's. */
#include "baseline.h"

#include "eventlog_read.h"
#include "json_read.h"
#include "report.h"
#include "symbolize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct baseline {
    char **keys;            /* sorted */
    size_t n;
    bool lists_indirect;    /* OLD lists indirect loss records */
};

/* ------------------------------------------------------------------------------------- */
/* Keys: kind, leak kind, then per frame function, file base name and (for a frame with     */
/* neither) module base name, separated by bytes that names never hold                    */
/* ------------------------------------------------------------------------------------- */

struct key {
    char *s;
    size_t n, cap;
    bool oom;
};

static void key_put(struct key *k, const char *str, char sep)
{
    size_t len = str ? strlen(str) : 0;
    if (k->oom)
        return;
    if (k->n + len + 2 > k->cap) {
        size_t cap = k->cap ? k->cap : 256;
        while (cap < k->n + len + 2)
            cap *= 2;
        char *s = realloc(k->s, cap);
        if (!s) {
            k->oom = true;
            return;
        }
        k->s = s;
        k->cap = cap;
    }
    memcpy(k->s + k->n, str ? str : "", len);
    k->n += len;
    k->s[k->n++] = sep;
    k->s[k->n] = '\0';
}

static const char *base_name(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    return slash ? slash + 1 : path;
}

static void key_frame(struct key *k, const char *function, const char *file, const char *module)
{
    key_put(k, function, '\x1f');
    key_put(k, base_name(file), '\x1f');
    key_put(k, function || file ? NULL : base_name(module), '\x1e');
}

static char *key_done(struct key *k)
{
    if (k->oom) {
        free(k->s);
        return NULL;
    }
    return k->s;
}

char *baseline_key_sym(const char *kind, const char *leak_kind, const struct sym_stack *s)
{
    struct key k = { 0 };
    key_put(&k, kind, '\x1f');
    key_put(&k, leak_kind, '\x1e');
    for (size_t i = 0; s && i < s->n; i++)
        key_frame(&k, s->frames[i].function, s->frames[i].file, s->frames[i].module);
    return key_done(&k);
}

char *baseline_key_json(const char *kind, const char *leak_kind, const struct json *stack)
{
    struct key k = { 0 };
    key_put(&k, kind, '\x1f');
    key_put(&k, leak_kind, '\x1e');
    for (size_t i = 0; stack && stack->type == JSON_ARRAY && i < stack->n; i++) {
        const struct json *f = &stack->items[i];
        key_frame(&k, json_get_str(f, "function"), json_get_str(f, "file"),
                  json_get_str(f, "module"));
    }
    return key_done(&k);
}

/* ------------------------------------------------------------------------------------- */
/* Reading OLD.json                                                                       */
/* ------------------------------------------------------------------------------------- */

/* What is wrong with one entry of "errors", or NULL. */
static const char *check_error(const struct json *e)
{
    if (!e || e->type != JSON_OBJECT)
        return "is not an object";
    const char *kind = json_get_str(e, "kind");
    if (!kind)
        return "has no \"kind\"";
    if (strcmp(kind, "leak") == 0 && !json_get_str(e, "leak_kind"))
        return "is a leak without \"leak_kind\"";
    const struct json *stack = json_get(e, "stack");
    if (!stack || stack->type != JSON_ARRAY)
        return "has no \"stack\" array";
    for (size_t i = 0; i < stack->n; i++)
        if (stack->items[i].type != JSON_OBJECT)
            return "has a frame that is not an object";
    return NULL;
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool collect_keys(struct baseline *base, const struct json *errors, const char *path)
{
    base->keys = calloc(errors->n + 1, sizeof *base->keys);
    if (!base->keys)
        return false;
    for (size_t i = 0; i < errors->n; i++) {
        const struct json *e = &errors->items[i];
        const char *why = check_error(e);
        if (why) {
            fprintf(stderr, "memtrace: --baseline=%s: errors[%zu] %s\n", path, i, why);
            return false;
        }
        const char *kind = json_get_str(e, "kind");
        bool leak = strcmp(kind, "leak") == 0;
        const char *leak_kind = leak ? json_get_str(e, "leak_kind") : NULL;
        base->lists_indirect |= leak && strcmp(leak_kind, "indirect") == 0;
        if (!(base->keys[base->n] = baseline_key_json(kind, leak_kind, json_get(e, "stack")))) {
            fprintf(stderr, "memtrace: --baseline=%s: out of memory\n", path);
            return false;
        }
        base->n++;
    }
    qsort(base->keys, base->n, sizeof *base->keys, cmp_key);
    return true;
}

struct baseline *baseline_load(const char *path)
{
    char err[256];
    struct json *doc = json_read_file(path, err, sizeof err);
    if (!doc) {
        fprintf(stderr, "memtrace: --baseline=%s: not a readable JSON report (%s)\n", path, err);
        return NULL;
    }
    const struct json *errors = json_get(doc, "errors");
    const char *tool = json_get_str(doc, "tool");
    struct baseline *base = NULL;
    if (!tool || strcmp(tool, "memtrace") != 0 || !errors || errors->type != JSON_ARRAY) {
        fprintf(stderr, "memtrace: --baseline=%s: not a memtrace JSON report (no \"tool\": "
                "\"memtrace\" or no \"errors\" array)\n", path);
    } else if (!(base = calloc(1, sizeof *base))) {
        fprintf(stderr, "memtrace: --baseline=%s: out of memory\n", path);
    } else if (!collect_keys(base, errors, path)) {
        baseline_free(base);
        base = NULL;
    }
    json_free(doc);
    return base;
}

void baseline_free(struct baseline *base)
{
    if (!base)
        return;
    for (size_t i = 0; i < base->n; i++)
        free(base->keys[i]);
    free(base->keys);
    free(base);
}

/* ------------------------------------------------------------------------------------- */
/* This run against it                                                                    */
/* ------------------------------------------------------------------------------------- */

static bool has_key(const struct baseline *base, const char *key)
{
    return bsearch(&key, base->keys, base->n, sizeof *base->keys, cmp_key) != NULL;
}

/* Sets *known; false when out of memory. */
static bool lookup(const struct baseline *base, const char *kind, const char *leak_kind,
                   const struct sym_stack *s, bool *known)
{
    char *key = baseline_key_sym(kind, leak_kind, s);
    if (!key)
        return false;
    *known = has_key(base, key);
    free(key);
    return true;
}

/* Every unsuppressed record that owns indirect blocks is known. */
static bool owners_known(const struct report_view *v)
{
    const struct mt_log *log = v->log;
    for (size_t i = 0; i < log->nleaks; i++) {
        const struct mt_leak *l = &log->leaks[i];
        bool owner = (l->cls == MT_LEAK_DEFINITE || l->cls == MT_LEAK_POSSIBLE) && l->indirect;
        bool suppressed = v->leak_suppressed_by && v->leak_suppressed_by[i];
        if (owner && !suppressed && !v->leak_known[i])
            return false;
    }
    return true;
}

bool baseline_apply(const struct baseline *base, struct report_view *v)
{
    const struct mt_log *log = v->log;
    v->error_known = calloc(log->nerrors + 1, sizeof *v->error_known);
    v->leak_known = calloc(log->nleaks + 1, sizeof *v->leak_known);
    if (!v->error_known || !v->leak_known)
        return false;
    for (size_t i = 0; i < log->nerrors; i++) {
        const struct mt_error *e = &log->errors[i];
        if (!lookup(base, mt_error_kind_name(e->kind), NULL,
                    report_view_stack(v, e->stack, e->exact), &v->error_known[i]))
            return false;
    }
    for (size_t i = 0; i < log->nleaks; i++) {
        const struct mt_leak *l = &log->leaks[i];
        if (!lookup(base, "leak", mt_leak_class_name(l->cls), report_view_stack(v, l->stack, false),
                    &v->leak_known[i]))
            return false;
    }
    if (base->lists_indirect || !owners_known(v))
        return true;
    for (size_t i = 0; i < log->nleaks; i++)
        if (log->leaks[i].cls == MT_LEAK_INDIRECT)
            v->leak_known[i] = true;
    return true;
}
