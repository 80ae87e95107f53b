/* json_read.c — recursive descent over a bounded text; the first error wins and unwinds. */
#include "json_read.h"
#include "textfile.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parser {
    const char *p, *end, *start;
    char *err;
    size_t errsize;
    bool failed;
};

__attribute__((format(printf, 2, 3)))
static bool fail(struct parser *ps, const char *fmt, ...)
{
    if (ps->failed)
        return false;
    ps->failed = true;
    int line = 1;
    for (const char *c = ps->start; c < ps->p && c < ps->end; c++)
        line += *c == '\n';
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(ps->err, ps->errsize, "line %d: %s", line, what);
    return false;
}

static void skip_blanks(struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static bool literal(struct parser *ps, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return fail(ps, "unexpected character '%c'", *ps->p);
    ps->p += n;
    return true;
}

/* ------------------------------------------------------------------------------------- */
/* Strings                                                                                */
/* ------------------------------------------------------------------------------------- */

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* A \u escape at ps->p (just after the `u`), with its low surrogate if it has one. */
static bool unicode_escape(struct parser *ps, struct textbuf *b)
{
    if (ps->end - ps->p < 4 || hex4(ps->p) < 0)
        return fail(ps, "bad \\u escape");
    unsigned cp = (unsigned)hex4(ps->p);
    ps->p += 4;
    if (cp == 0)
        return fail(ps, "\\u0000 in a string");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        int lo = ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u' ? hex4(ps->p + 2) : -1;
        if (lo < 0xDC00 || lo > 0xDFFF)
            return fail(ps, "unpaired surrogate in a \\u escape");
        cp = 0x10000 + ((cp - 0xD800) << 10) + ((unsigned)lo - 0xDC00);
        ps->p += 6;
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        return fail(ps, "unpaired surrogate in a \\u escape");
    }
    char out[4];
    if (cp >= 0x80 && cp <= 0xFF) { /* render_json's spelling of a raw byte */
        out[0] = (char)cp;
        return textbuf_put(b, out, 1) || fail(ps, "out of memory");
    }
    return textbuf_put(b, out, textbuf_utf8(cp, out)) || fail(ps, "out of memory");
}

static bool escape(struct parser *ps, struct textbuf *b)
{
    if (ps->p >= ps->end)
        return fail(ps, "unterminated string");
    char c = *ps->p++;
    const char *simple = strchr("\"\\/bfnrt", c);
    if (c && simple) {
        static const char decoded[] = "\"\\/\b\f\n\r\t";
        return textbuf_put(b, &decoded[simple - "\"\\/bfnrt"], 1) || fail(ps, "out of memory");
    }
    if (c == 'u')
        return unicode_escape(ps, b);
    return fail(ps, "bad escape \\%c", c);
}

/* The string at ps->p (its opening quote), malloc'd into *out. */
static bool string(struct parser *ps, char **out)
{
    struct textbuf b = { 0 };
    ps->p++;
    bool ok = textbuf_put(&b, "", 0) || fail(ps, "out of memory");
    while (ok) {
        const char *run = ps->p;
        while (ps->p < ps->end && *ps->p != '"' && *ps->p != '\\' && (unsigned char)*ps->p >= 0x20)
            ps->p++;
        if (!textbuf_put(&b, run, (size_t)(ps->p - run))) {
            ok = fail(ps, "out of memory");
        } else if (ps->p >= ps->end) {
            ok = fail(ps, "unterminated string");
        } else if (*ps->p == '"') {
            ps->p++;
            break;
        } else if (*ps->p == '\\') {
            ps->p++;
            ok = escape(ps, &b);
        } else {
            ok = fail(ps, "control character in a string");
        }
    }
    if (!ok) {
        free(b.s);
        return false;
    }
    *out = b.s;
    return true;
}

/* ------------------------------------------------------------------------------------- */
/* Values                                                                                 */
/* ------------------------------------------------------------------------------------- */

static bool number(struct parser *ps, struct json *v)
{
    const char *s = ps->p;
    const char *q = s;
    if (q < ps->end && *q == '-')
        q++;
    if (q >= ps->end || *q < '0' || *q > '9')
        return fail(ps, "unexpected character '%c'", *s);
    bool integer = true;
    while (q < ps->end && ((*q >= '0' && *q <= '9') || strchr(".eE+-", *q))) {
        integer &= *q >= '0' && *q <= '9';
        q++;
    }
    char tmp[64];
    if (q - s >= (long)sizeof tmp)
        return fail(ps, "number too long");
    memcpy(tmp, s, (size_t)(q - s));
    tmp[q - s] = '\0';
    char *endp;
    errno = 0;
    v->type = JSON_NUMBER;
    v->number = strtod(tmp, &endp);
    if (*endp != '\0')
        return fail(ps, "bad number '%s'", tmp);
    if (integer && *s != '-') {
        errno = 0;
        v->uint = strtoull(tmp, NULL, 10);
        v->is_uint = errno == 0;
    }
    ps->p = q;
    return true;
}

static bool value(struct parser *ps, struct json *v, int depth);

static bool push_item(struct parser *ps, struct json *v, char *key, size_t *cap)
{
    if (v->n == *cap) {
        size_t n = *cap ? *cap * 2 : 4;
        struct json *items = realloc(v->items, n * sizeof *items);
        if (items)
            v->items = items;
        char **keys = v->type == JSON_OBJECT && items ? realloc(v->keys, n * sizeof *keys) : NULL;
        if (keys)
            v->keys = keys;
        if (!items || (v->type == JSON_OBJECT && !keys)) {
            free(key);
            return fail(ps, "out of memory");
        }
        *cap = n;
    }
    v->items[v->n] = (struct json){ .type = JSON_NULL };
    if (v->type == JSON_OBJECT)
        v->keys[v->n] = key;
    v->n++;
    return true;
}

/* An array or object, ps->p at its opening bracket. */
static bool container(struct parser *ps, struct json *v, int depth)
{
    bool object = *ps->p == '{';
    char close = object ? '}' : ']';
    size_t cap = 0;
    v->type = object ? JSON_OBJECT : JSON_ARRAY;
    if (depth >= JSON_MAX_DEPTH)
        return fail(ps, "nested more than %d deep", JSON_MAX_DEPTH);
    ps->p++;
    skip_blanks(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        return true;
    }
    for (;;) {
        char *key = NULL;
        skip_blanks(ps);
        if (object) {
            if (ps->p >= ps->end || *ps->p != '"')
                return fail(ps, "expected a key");
            if (!string(ps, &key))
                return false;
            skip_blanks(ps);
            if (ps->p >= ps->end || *ps->p++ != ':') {
                free(key);
                return fail(ps, "expected ':'");
            }
        }
        if (!push_item(ps, v, key, &cap) || !value(ps, &v->items[v->n - 1], depth + 1))
            return false;
        skip_blanks(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            return true;
        }
        return fail(ps, "expected ',' or '%c'", close);
    }
}

static bool value(struct parser *ps, struct json *v, int depth)
{
    skip_blanks(ps);
    if (ps->p >= ps->end)
        return fail(ps, "unexpected end of input");
    switch (*ps->p) {
    case '{':
    case '[':
        return container(ps, v, depth);
    case '"':
        v->type = JSON_STRING;
        return string(ps, &v->string);
    case 't':
        v->type = JSON_TRUE;
        return literal(ps, "true");
    case 'f':
        v->type = JSON_FALSE;
        return literal(ps, "false");
    case 'n':
        v->type = JSON_NULL;
        return literal(ps, "null");
    default:
        return number(ps, v);
    }
}

static void free_value(struct json *v)
{
    for (size_t i = 0; i < v->n; i++) {
        free_value(&v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->string);
}

void json_free(struct json *value)
{
    if (!value)
        return;
    free_value(value);
    free(value);
}

struct json *json_parse(const char *text, size_t len, char *err, size_t errsize)
{
    struct parser ps = { .p = text, .end = text + len, .start = text, .err = err,
                         .errsize = errsize };
    struct json *v = calloc(1, sizeof *v);
    if (!v) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    bool ok = value(&ps, v, 0);
    skip_blanks(&ps);
    if (ok && ps.p != ps.end)
        ok = fail(&ps, "text after the end of the value");
    if (!ok) {
        json_free(v);
        return NULL;
    }
    return v;
}

struct json *json_read_file(const char *path, char *err, size_t errsize)
{
    size_t len;
    char *text = textfile_read(path, JSON_MAX_BYTES, &len, err, errsize);
    struct json *v = text ? json_parse(text, len, err, errsize) : NULL;
    free(text);
    return v;
}

const struct json *json_get(const struct json *obj, const char *key)
{
    if (!obj || obj->type != JSON_OBJECT)
        return NULL;
    for (size_t i = obj->n; i-- > 0;)
        if (strcmp(obj->keys[i], key) == 0)
            return &obj->items[i];
    return NULL;
}

const char *json_get_str(const struct json *obj, const char *key)
{
    const struct json *v = json_get(obj, key);
    return v && v->type == JSON_STRING ? v->string : NULL;
}

uint64_t json_get_uint(const struct json *obj, const char *key, uint64_t dflt)
{
    const struct json *v = json_get(obj, key);
    return v && v->type == JSON_NUMBER && v->is_uint ? v->uint : dflt;
}
