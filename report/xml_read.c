/* xml_read.c — recursive descent over a bounded text; the first error wins and unwinds. */
#include "xml_read.h"
#include "textfile.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
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

static bool starts(const struct parser *ps, const char *s)
{
    size_t n = strlen(s);
    return (size_t)(ps->end - ps->p) >= n && memcmp(ps->p, s, n) == 0;
}

/* Moves past the next TERM; false at the end of input. */
static bool skip_past(struct parser *ps, const char *term)
{
    size_t n = strlen(term);
    for (; ps->p + n <= ps->end; ps->p++)
        if (memcmp(ps->p, term, n) == 0) {
            ps->p += n;
            return true;
        }
    ps->p = ps->end;
    return false;
}

static void skip_blanks(struct parser *ps)
{
    while (ps->p < ps->end && isspace((unsigned char)*ps->p))
        ps->p++;
}

/* Comments, processing instructions and the DOCTYPE; true when one was skipped. */
static bool skip_markup(struct parser *ps)
{
    if (starts(ps, "<!--"))
        return skip_past(ps, "-->") || fail(ps, "unterminated comment");
    if (starts(ps, "<?"))
        return skip_past(ps, "?>") || fail(ps, "unterminated processing instruction");
    if (starts(ps, "<!DOCTYPE"))
        return skip_past(ps, ">") || fail(ps, "unterminated DOCTYPE");
    return false;
}

/* ------------------------------------------------------------------------------------- */
/* Text                                                                                   */
/* ------------------------------------------------------------------------------------- */

/* An entity at ps->p (its `&`). */
static bool entity(struct parser *ps, struct textbuf *b)
{
    static const struct { const char *name; char c; } named[] = {
        { "lt", '<' }, { "gt", '>' }, { "amp", '&' }, { "quot", '"' }, { "apos", '\'' },
    };
    const char *semi = memchr(ps->p, ';', (size_t)(ps->end - ps->p) < 16 ? (size_t)(ps->end - ps->p) : 16);
    if (!semi)
        return fail(ps, "bad entity (no ';')");
    const char *name = ps->p + 1;
    size_t len = (size_t)(semi - name);
    ps->p = semi + 1;
    for (size_t i = 0; i < sizeof named / sizeof *named; i++)
        if (strlen(named[i].name) == len && memcmp(named[i].name, name, len) == 0)
            return textbuf_put(b, &named[i].c, 1) || fail(ps, "out of memory");
    if (len < 2 || name[0] != '#')
        return fail(ps, "unknown entity '&%.*s;'", (int)len, name);
    bool hex = name[1] == 'x';
    char digits[16];
    snprintf(digits, sizeof digits, "%.*s", (int)(len - 1 - hex), name + 1 + hex);
    char *endp;
    unsigned long cp = strtoul(digits, &endp, hex ? 16 : 10);
    if (!digits[0] || *endp || cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return fail(ps, "bad character reference '&%.*s;'", (int)len, name);
    char out[4];
    return textbuf_put(b, out, textbuf_utf8(cp, out)) || fail(ps, "out of memory");
}

/* Character data up to the next `<` (a CDATA section is text too). */
static bool text(struct parser *ps, struct textbuf *b)
{
    while (ps->p < ps->end) {
        if (starts(ps, "<![CDATA[")) {
            const char *s = ps->p + 9;
            ps->p = s;
            if (!skip_past(ps, "]]>"))
                return fail(ps, "unterminated CDATA section");
            if (!textbuf_put(b, s, (size_t)(ps->p - 3 - s)))
                return fail(ps, "out of memory");
            continue;
        }
        if (*ps->p == '<')
            return true;
        if (*ps->p == '&') {
            if (!entity(ps, b))
                return false;
            continue;
        }
        const char *run = ps->p;
        while (ps->p < ps->end && *ps->p != '<' && *ps->p != '&')
            ps->p++;
        if (!textbuf_put(b, run, (size_t)(ps->p - run)))
            return fail(ps, "out of memory");
    }
    return true;
}

/* ------------------------------------------------------------------------------------- */
/* Elements                                                                               */
/* ------------------------------------------------------------------------------------- */

static bool name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.' || c == ':' ||
           (unsigned char)c >= 0x80;
}

static bool read_name(struct parser *ps, char **out)
{
    const char *s = ps->p;
    while (ps->p < ps->end && name_char(*ps->p))
        ps->p++;
    if (ps->p == s)
        return fail(ps, "expected a name");
    if (!(*out = strndup(s, (size_t)(ps->p - s))))
        return fail(ps, "out of memory");
    return true;
}

/* Attributes up to `>` or `/>`, dropped. *empty: the tag was `<x/>`. */
static bool attributes(struct parser *ps, bool *empty)
{
    for (;;) {
        skip_blanks(ps);
        if (starts(ps, "/>")) {
            ps->p += 2;
            *empty = true;
            return true;
        }
        if (starts(ps, ">")) {
            ps->p++;
            return true;
        }
        char *name = NULL;
        if (!read_name(ps, &name))
            return false;
        free(name);
        skip_blanks(ps);
        if (ps->p >= ps->end || *ps->p++ != '=')
            return fail(ps, "expected '=' after an attribute name");
        skip_blanks(ps);
        char quote = ps->p < ps->end ? *ps->p++ : 0;
        char term[2] = { quote, 0 };
        if ((quote != '"' && quote != '\'') || !skip_past(ps, term))
            return fail(ps, "bad attribute value");
    }
}

static void free_node(struct xml_node *n)
{
    for (size_t i = 0; i < n->n; i++)
        free_node(&n->children[i]);
    free(n->children);
    free(n->name);
    free(n->text);
}

static bool element(struct parser *ps, struct xml_node *node, int depth);

static bool add_child(struct parser *ps, struct xml_node *node, size_t *cap, int depth)
{
    if (node->n == *cap) {
        size_t n = *cap ? *cap * 2 : 4;
        struct xml_node *c = realloc(node->children, n * sizeof *c);
        if (!c)
            return fail(ps, "out of memory");
        node->children = c;
        *cap = n;
    }
    node->children[node->n] = (struct xml_node){ 0 };
    node->n++;
    return element(ps, &node->children[node->n - 1], depth + 1);
}

/* Trims blanks around S in place. */
static void trim(char *s)
{
    size_t n = strlen(s), start = 0;
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    while (start < n && isspace((unsigned char)s[start]))
        start++;
    memmove(s, s + start, n - start + 1);
}

/* The content of NODE after its start tag, through its end tag. */
static bool content(struct parser *ps, struct xml_node *node, int depth)
{
    struct textbuf b = { 0 };
    size_t cap = 0;
    bool ok = textbuf_put(&b, "", 0) || fail(ps, "out of memory");
    while (ok) {
        ok = text(ps, &b);
        if (!ok)
            break;
        if (ps->p >= ps->end) {
            ok = fail(ps, "unexpected end of input inside <%s>", node->name);
        } else if (starts(ps, "</")) {
            ps->p += 2;
            char *name = NULL;
            ok = read_name(ps, &name);
            if (ok && strcmp(name, node->name) != 0)
                ok = fail(ps, "</%s> closes <%s>", name, node->name);
            free(name);
            skip_blanks(ps);
            if (ok && (ps->p >= ps->end || *ps->p++ != '>'))
                ok = fail(ps, "expected '>'");
            break;
        } else if (!skip_markup(ps) && !ps->failed) {
            ok = add_child(ps, node, &cap, depth);
        }
        ok = ok && !ps->failed;
    }
    if (ok)
        trim(b.s);
    node->text = b.s;
    return ok;
}

static bool element(struct parser *ps, struct xml_node *node, int depth)
{
    bool empty = false;
    if (depth >= XML_MAX_DEPTH)
        return fail(ps, "nested more than %d deep", XML_MAX_DEPTH);
    if (ps->p >= ps->end || *ps->p != '<')
        return fail(ps, "expected an element");
    ps->p++;
    if (!read_name(ps, &node->name) || !attributes(ps, &empty))
        return false;
    if (!empty)
        return content(ps, node, depth);
    node->text = strdup("");
    return node->text || fail(ps, "out of memory");
}

/* Blanks, comments and processing instructions around the root element. */
static bool misc(struct parser *ps)
{
    for (;;) {
        skip_blanks(ps);
        if (ps->p >= ps->end || !skip_markup(ps))
            return !ps->failed;
    }
}

struct xml_node *xml_parse(const char *text, size_t len, char *err, size_t errsize)
{
    struct parser ps = { .p = text, .end = text + len, .start = text, .err = err,
                         .errsize = errsize };
    struct xml_node *root = calloc(1, sizeof *root);
    if (!root) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    bool ok = misc(&ps) && element(&ps, root, 0) && misc(&ps);
    if (ok && ps.p != ps.end)
        ok = fail(&ps, "text after the root element");
    if (!ok) {
        xml_free(root);
        return NULL;
    }
    return root;
}

struct xml_node *xml_read_file(const char *path, char *err, size_t errsize)
{
    size_t len;
    char *text = textfile_read(path, XML_MAX_BYTES, &len, err, errsize);
    struct xml_node *root = text ? xml_parse(text, len, err, errsize) : NULL;
    free(text);
    return root;
}

void xml_free(struct xml_node *root)
{
    if (!root)
        return;
    free_node(root);
    free(root);
}

const struct xml_node *xml_child(const struct xml_node *node, const char *name)
{
    for (size_t i = 0; node && i < node->n; i++)
        if (strcmp(node->children[i].name, name) == 0)
            return &node->children[i];
    return NULL;
}

const char *xml_child_text(const struct xml_node *node, const char *name)
{
    const struct xml_node *c = xml_child(node, name);
    return c ? c->text : NULL;
}
