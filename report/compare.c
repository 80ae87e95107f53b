/* compare.c — memtrace's JSON report against valgrind's XML.
 *
 * Each side becomes a list of findings: a kind ("leak/definite", "double-free", ...), the
 * bytes of a loss record, and the functions of the frames that lie in the program itself,
 * innermost first, up to main. valgrind's allocator frames (vg_replace_malloc, in
 * vgpreload_*.so) are dropped first; memtrace never shows its own. Two findings match when
 * their kinds are equal and one list of functions starts with the other (a tool that
 * records fewer callers sees a shorter stack), functions compared by their last name
 * component (valgrind names inlined C++ frames by their DWARF names). Loss records that
 * match must also agree on bytes and blocks. Kinds only one tool looks for (valgrind's
 * uninitialised values, memtrace's munmap checks) and leak kinds one side did not list are
 * left out, and said so. */
#include "compare.h"

#include "json_read.h"
#include "xml_read.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_AGREE 0
#define EXIT_DIFFER 1
#define EXIT_BAD_INPUT 2
#define MAX_NAMES 64             /* program frames kept per finding */
#define ROW_NAMES 4              /* of which a table row shows */

static const char *const leak_kinds[] = { "definite", "indirect", "possible", "reachable" };

struct finding {
    char kind[32];               /* "leak/definite", "double-free", ... */
    bool leak;
    uint64_t bytes, blocks, indirect;
    char *names[MAX_NAMES];      /* function names, innermost first (owned) */
    size_t nnames;
    long count;                  /* occurrences folded into this one */
    struct finding *peer;        /* the other tool's finding it matched */
};

struct side {
    const char *tool;            /* "memtrace" or "valgrind" */
    struct finding *f;
    size_t n, cap;
    unsigned listed_leaks;       /* bit per leak kind: the report lists its records */
    char skipped[512];           /* kinds left out, for the note */
    bool oom;
};

/* ------------------------------------------------------------------------------------- */
/* Findings                                                                               */
/* ------------------------------------------------------------------------------------- */

static void free_side(struct side *s)
{
    for (size_t i = 0; i < s->n; i++)
        for (size_t k = 0; k < s->f[i].nnames; k++)
            free(s->f[i].names[k]);
    free(s->f);
}

static struct finding *new_finding(struct side *s, const char *kind)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct finding *f = realloc(s->f, cap * sizeof *f);
        if (!f) {
            s->oom = true;
            return NULL;
        }
        s->f = f;
        s->cap = cap;
    }
    struct finding *f = &s->f[s->n++];
    *f = (struct finding){ .count = 1 };
    snprintf(f->kind, sizeof f->kind, "%s", kind);
    f->leak = strncmp(kind, "leak/", 5) == 0;
    return f;
}

/* The length of FN without a trailing parameter list ("f(int) const" is f): valgrind and
 * the DWARF name of a function do not always agree on having one. */
static size_t without_params(const char *fn, size_t len)
{
    if (len > 6 && strncmp(fn + len - 6, " const", 6) == 0)
        len -= 6;
    if (len == 0 || fn[len - 1] != ')')
        return len;
    int depth = 0;
    for (size_t i = len; i-- > 0;) {
        depth += fn[i] == ')' ? 1 : fn[i] == '(' ? -1 : 0;
        if (depth == 0) /* "(below main)" and "operator()" stay whole */
            return i > 0 && !(i >= 8 && strncmp(fn + i - 8, "operator", 8) == 0) ? i : len;
    }
    return len;
}

/* Where the bracketed group ending at fn[end - 1] (">" or ")") opens; 0 when unbalanced. */
static size_t group_start(const char *fn, size_t end)
{
    int depth = 0;
    for (size_t i = end; i-- > 0;) {
        depth += fn[i] == '>' || fn[i] == ')' ? 1 : fn[i] == '<' || fn[i] == '(' ? -1 : 0;
        if (depth == 0)
            return i;
    }
    return 0;
}

/* The last component of a C++ name, without scope, return type or template arguments:
 * valgrind names an inlined frame as DWARF does ("__invoke_impl<void, int>"), memtrace
 * by its demangled symbol ("void std::__invoke_impl<void, int>"), and the two spell
 * template arguments differently ("0ul" and "0"). Operators keep their symbol. */
static void last_component(const char *fn, size_t *start, size_t *len)
{
    size_t end = *len;
    if (end > 1 && fn[end - 1] == '>' && fn[end - 2] != '-' &&
        !(end >= 9 && strncmp(fn + end - 9, "operator>", 9) == 0) &&
        !(end >= 10 && strncmp(fn + end - 10, "operator>>", 10) == 0)) {
        size_t open = group_start(fn, end);
        if (open > 0)
            end = open;
    }
    size_t from = 0;
    for (size_t i = end; i-- > 0;) {
        if (fn[i] == '>' || fn[i] == ')') {
            i = group_start(fn, i + 1);
        } else if ((fn[i] == ':' && i > 0 && fn[i - 1] == ':') ||
                   (fn[i] == ' ' && strncmp(fn + i + 1, "operator", 8) != 0 &&
                    !(i >= 8 && strncmp(fn + i - 8, "operator", 8) == 0))) {
            from = i + 1;
            break;
        }
    }
    *start = from;
    *len = end - from;
}

/* "pthread_create@@GLIBC_2.34", "__GI_x" and "f(int)" as plain names. */
static char *normalize(const char *fn)
{
    if (strncmp(fn, "__GI_", 5) == 0)
        fn += 5;
    return strndup(fn, without_params(fn, strcspn(fn, "@")));
}

/* Two normalized names of one function, as each tool spells it. */
static bool same_function(const char *a, const char *b)
{
    size_t a_start = 0, a_len = strlen(a), b_start = 0, b_len = strlen(b);
    if (a[0] != '(' && b[0] != '(') {    /* "(below main)" */
        last_component(a, &a_start, &a_len);
        last_component(b, &b_start, &b_len);
    }
    return a_len == b_len && strncmp(a + a_start, b + b_start, a_len) == 0;
}

static bool add_name(struct finding *f, const char *fn)
{
    if (f->nnames == MAX_NAMES)
        return true;
    char *n = normalize(fn ? fn : "???");
    if (!n)
        return false;
    f->names[f->nnames++] = n;
    return true;
}

static bool is_main(const char *fn)
{
    return fn && strcmp(fn, "main") == 0;
}

static bool is_below_main(const char *fn)
{
    return fn && (strncmp(fn, "__libc_start_main", 17) == 0 ||
                  strcmp(fn, "__libc_start_call_main") == 0 || strcmp(fn, "(below main)") == 0);
}

/* Adds to S one note about a kind it leaves out. */
static void skip_note(struct side *s, const char *what)
{
    if (strstr(s->skipped, what))
        return;
    size_t len = strlen(s->skipped);
    snprintf(s->skipped + len, sizeof s->skipped - len, "%s%s", len ? ", " : "", what);
}

/* The same kind and names as an earlier finding of S (runtime errors repeat). */
static struct finding *same_as(struct side *s, const struct finding *f)
{
    for (size_t i = 0; i + 1 < s->n; i++) {
        struct finding *g = &s->f[i];
        bool same = !g->leak && strcmp(g->kind, f->kind) == 0 && g->nnames == f->nnames;
        for (size_t k = 0; same && k < f->nnames; k++)
            same = strcmp(g->names[k], f->names[k]) == 0;
        if (same)
            return g;
    }
    return NULL;
}

/* Folds the last finding of S into an equal earlier one. */
static void fold_last(struct side *s)
{
    struct finding *last = &s->f[s->n - 1], *g = same_as(s, last);
    if (!g)
        return;
    g->count++;
    for (size_t k = 0; k < last->nnames; k++)
        free(last->names[k]);
    s->n--;
}

/* ------------------------------------------------------------------------------------- */
/* Stacks: the program's own frames up to main, or all of them when none is the program's   */
/* ------------------------------------------------------------------------------------- */

struct frame_ref {
    const char *fn, *module;
};

static const char *base_name(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    return slash ? slash + 1 : path;
}

static bool in_program(const struct frame_ref *fr, const char *exe)
{
    return fr->module && exe && strcmp(base_name(fr->module), base_name(exe)) == 0;
}

/* The frames up to main (valgrind stops there), without the ones below it. */
static size_t frames_to_main(const struct frame_ref *frames, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (is_below_main(frames[i].fn))
            return i;
        if (is_main(frames[i].fn))
            return i + 1;
    }
    return n;
}

static bool set_names(struct finding *f, const struct frame_ref *frames, size_t n, const char *exe)
{
    size_t end = frames_to_main(frames, n);
    bool any = false;
    for (size_t i = 0; i < end; i++)
        any |= in_program(&frames[i], exe);
    for (size_t i = 0; i < end; i++)
        if ((!any || in_program(&frames[i], exe)) && !add_name(f, frames[i].fn))
            return false;
    return true;
}

/* ------------------------------------------------------------------------------------- */
/* memtrace's JSON                                                                        */
/* ------------------------------------------------------------------------------------- */

static bool json_frames(const struct json *stack, struct frame_ref *out, size_t max, size_t *n)
{
    *n = 0;
    if (!stack || stack->type != JSON_ARRAY)
        return false;
    for (size_t i = 0; i < stack->n && *n < max; i++) {
        if (stack->items[i].type != JSON_OBJECT)
            return false;
        out[(*n)++] = (struct frame_ref){ json_get_str(&stack->items[i], "function"),
                                          json_get_str(&stack->items[i], "module") };
    }
    return true;
}

/* One entry of "errors"; false when it is malformed (WHY set). */
static bool memtrace_error(struct side *s, const struct json *e, const char *exe, const char **why)
{
    static struct frame_ref frames[4096];
    const char *kind = json_get_str(e, "kind");
    const struct json *supp = json_get(e, "suppressed");
    size_t n;
    if (!kind || !json_frames(json_get(e, "stack"), frames, 4096, &n)) {
        *why = "an error without \"kind\" or \"stack\"";
        return false;
    }
    if (supp && supp->type == JSON_TRUE)
        return true; /* valgrind lists no suppressed errors either */
    if (strcmp(kind, "invalid-munmap") == 0) {
        skip_note(s, "invalid-munmap (valgrind does not check munmap)");
        return true;
    }
    char full[32];
    bool leak = strcmp(kind, "leak") == 0;
    const char *lk = leak ? json_get_str(e, "leak_kind") : NULL;
    if (leak && !lk) {
        *why = "a leak without \"leak_kind\"";
        return false;
    }
    snprintf(full, sizeof full, leak ? "leak/%s" : "%s", leak ? lk : kind);
    struct finding *f = new_finding(s, full);
    if (!f || !set_names(f, frames, n, exe)) {
        s->oom = true;
        return true;
    }
    f->bytes = json_get_uint(e, "bytes", 0);
    f->blocks = json_get_uint(e, "blocks", 0);
    f->indirect = json_get_uint(e, "indirect_bytes", 0);
    if (!leak)
        fold_last(s);
    return true;
}

/* Leak kinds the report lists: those with records, and those it has nothing of. */
static void memtrace_listed(struct side *s, const struct json *doc)
{
    const struct json *blocks = json_get(json_get(doc, "summary"), "leaked_blocks");
    for (int k = 0; k < 4; k++) {
        char full[32];
        snprintf(full, sizeof full, "leak/%s", leak_kinds[k]);
        bool has = json_get_uint(blocks, leak_kinds[k], 0) == 0;
        for (size_t i = 0; !has && i < s->n; i++)
            has = strcmp(s->f[i].kind, full) == 0;
        if (has)
            s->listed_leaks |= 1u << k;
    }
}

static bool read_memtrace(const char *path, struct side *s)
{
    char err[256];
    const char *why = NULL;
    struct json *doc = json_read_file(path, err, sizeof err);
    const struct json *errors = json_get(doc, "errors"), *command = json_get(doc, "command");
    const char *tool = json_get_str(doc, "tool");
    if (!doc) {
        fprintf(stderr, "memtrace: compare: %s: not a readable JSON report (%s)\n", path, err);
        return false;
    }
    if (!tool || strcmp(tool, "memtrace") != 0 || !errors || errors->type != JSON_ARRAY) {
        fprintf(stderr, "memtrace: compare: %s: not a memtrace JSON report\n", path);
        json_free(doc);
        return false;
    }
    const char *exe = command && command->type == JSON_ARRAY && command->n &&
                      command->items[0].type == JSON_STRING ? command->items[0].string : NULL;
    for (size_t i = 0; !why && i < errors->n; i++)
        if (errors->items[i].type != JSON_OBJECT)
            why = "an error that is not an object";
        else
            memtrace_error(s, &errors->items[i], exe, &why);
    if (why)
        fprintf(stderr, "memtrace: compare: %s: not a memtrace JSON report (%s)\n", path, why);
    memtrace_listed(s, doc);
    json_free(doc);
    return !why;
}

/* ------------------------------------------------------------------------------------- */
/* valgrind's XML                                                                         */
/* ------------------------------------------------------------------------------------- */

static bool is_allocator_frame(const struct xml_node *frame)
{
    const char *obj = base_name(xml_child_text(frame, "obj"));
    const char *file = xml_child_text(frame, "file");
    return (obj && strncmp(obj, "vgpreload_", 10) == 0) ||
           (file && strncmp(file, "vg_replace_", 11) == 0);
}

static size_t xml_frames(const struct xml_node *stack, struct frame_ref *out, size_t max)
{
    size_t n = 0, i = 0;
    while (stack && i < stack->n && strcmp(stack->children[i].name, "frame") == 0 &&
           is_allocator_frame(&stack->children[i]))
        i++;
    for (; stack && i < stack->n && n < max; i++)
        if (strcmp(stack->children[i].name, "frame") == 0)
            out[n++] = (struct frame_ref){ xml_child_text(&stack->children[i], "fn"),
                                           xml_child_text(&stack->children[i], "obj") };
    return n;
}

/* The text of the first <auxwhat> of ERR, or "". */
static const char *auxwhat(const struct xml_node *err)
{
    const char *aux = xml_child_text(err, "auxwhat");
    return aux ? aux : "";
}

/* "Address A is N bytes inside a block of size S free'd": not "... not stack'd, malloc'd
 * or (recently) free'd", which is no block at all. */
static bool names_freed_block(const char *aux)
{
    return strstr(aux, "a block of size") && strstr(aux, " free'd");
}

/* "Address A is N bytes inside a block of size S alloc'd" for an access of the size WHAT
 * gives that runs past the block's end: valgrind names the access's first byte. */
static bool runs_past_block(const char *what, const char *aux)
{
    unsigned long size, offset, block;
    const char *w = what ? strstr(what, "of size ") : NULL, *a = strstr(aux, " is ");
    return w && a && sscanf(w, "of size %lu", &size) == 1 &&
           sscanf(a, " is %lu bytes inside a block of size %lu alloc'd", &offset, &block) == 2 &&
           offset + size > block;
}

/* memtrace's kind for a valgrind error, NULL for one memtrace does not look for. */
static const char *memtrace_kind(const char *vg, const char *what, const char *aux)
{
    static const char *const leaks[][2] = {
        { "Leak_DefinitelyLost", "leak/definite" }, { "Leak_IndirectlyLost", "leak/indirect" },
        { "Leak_PossiblyLost", "leak/possible" }, { "Leak_StillReachable", "leak/reachable" },
    };
    for (size_t i = 0; i < 4; i++)
        if (strcmp(vg, leaks[i][0]) == 0)
            return leaks[i][1];
    if (strcmp(vg, "InvalidFree") == 0)
        return names_freed_block(aux) ? "double-free" : "invalid-free";
    if (strcmp(vg, "MismatchedFree") == 0)
        return "mismatched-free";
    if (strcmp(vg, "FishyValue") == 0)
        return "invalid-size";
    if (strcmp(vg, "Overlap") == 0)
        return "overlap";
    if (strcmp(vg, "InvalidRead") != 0 && strcmp(vg, "InvalidWrite") != 0)
        return NULL;
    if (names_freed_block(aux))
        return "use-after-free";
    if (strstr(aux, "bytes after a block") || runs_past_block(what, aux))
        return "heap-overflow";
    if (strstr(aux, "bytes before a block"))
        return "heap-underflow";
    return NULL; /* outside the heap: memtrace guards heap blocks only */
}

/* "145 (64 direct, 81 indirect) bytes ..." gives 64 and 81; "40 bytes ..." 40 and 0. */
static void leak_bytes(const struct xml_node *err, struct finding *f)
{
    const struct xml_node *x = xml_child(err, "xwhat");
    const char *text = xml_child_text(x, "text");
    const char *bytes = xml_child_text(x, "leakedbytes"), *blocks = xml_child_text(x, "leakedblocks");
    uint64_t total = bytes ? strtoull(bytes, NULL, 10) : 0, direct = total, indirect = 0;
    const char *paren = text ? strchr(text, '(') : NULL;
    char num1[32], num2[32];
    if (paren && sscanf(paren, "(%31[0-9,] direct, %31[0-9,] indirect)", num1, num2) == 2) {
        char *o = num1;
        for (char *c = num1; *c; c++)
            if (*c != ',')
                *o++ = *c;
        *o = '\0';
        direct = strtoull(num1, NULL, 10);
        indirect = total >= direct ? total - direct : 0;
    }
    f->bytes = direct;
    f->indirect = indirect;
    f->blocks = blocks ? strtoull(blocks, NULL, 10) : 0;
}

static void valgrind_error(struct side *s, const struct xml_node *err, const char *exe)
{
    static struct frame_ref frames[4096];
    const char *vg = xml_child_text(err, "kind");
    if (!vg)
        return;
    const char *kind = memtrace_kind(vg, xml_child_text(err, "what"), auxwhat(err));
    if (!kind) {
        char note[96];
        snprintf(note, sizeof note, "%.40s (memtrace does not look for these)", vg);
        skip_note(s, note);
        return;
    }
    size_t n = xml_frames(xml_child(err, "stack"), frames, 4096);
    struct finding *f = new_finding(s, kind);
    if (!f || !set_names(f, frames, n, exe)) {
        s->oom = true;
        return;
    }
    if (f->leak)
        leak_bytes(err, f);
    else
        fold_last(s);
}

/* The leak kinds valgrind listed, from its own command line (default definite,possible;
 * nothing unless --leak-check=full). */
static void valgrind_listed(struct side *s, const struct xml_node *root)
{
    const struct xml_node *vargv = xml_child(xml_child(root, "args"), "vargv");
    const char *show = "definite,possible";
    bool full = false;
    for (size_t i = 0; vargv && i < vargv->n; i++) {
        const char *a = vargv->children[i].text;
        if (strcmp(vargv->children[i].name, "arg") != 0)
            continue;
        if (strncmp(a, "--show-leak-kinds=", 18) == 0)
            show = a + 18;
        if (strncmp(a, "--leak-check=", 13) == 0)
            full = strcmp(a + 13, "full") == 0 || strcmp(a + 13, "yes") == 0;
    }
    for (int k = 0; full && k < 4; k++)
        if (strstr(show, leak_kinds[k]) || strcmp(show, "all") == 0)
            s->listed_leaks |= 1u << k;
}

static bool read_valgrind(const char *path, struct side *s)
{
    char err[256];
    struct xml_node *root = xml_read_file(path, err, sizeof err);
    if (!root) {
        fprintf(stderr, "memtrace: compare: %s: not readable valgrind XML (%s)\n", path, err);
        return false;
    }
    const char *tool = xml_child_text(root, "protocoltool");
    if (strcmp(root->name, "valgrindoutput") != 0 || !tool || strcmp(tool, "memcheck") != 0) {
        fprintf(stderr, "memtrace: compare: %s: not valgrind memcheck XML (--xml=yes, "
                "<valgrindoutput> with <protocoltool>memcheck)\n", path);
        xml_free(root);
        return false;
    }
    const char *exe = xml_child_text(xml_child(xml_child(root, "args"), "argv"), "exe");
    for (size_t i = 0; i < root->n && !s->oom; i++)
        if (strcmp(root->children[i].name, "error") == 0)
            valgrind_error(s, &root->children[i], exe);
    valgrind_listed(s, root);
    xml_free(root);
    return true;
}

/* ------------------------------------------------------------------------------------- */
/* Matching and the table                                                                 */
/* ------------------------------------------------------------------------------------- */

/* One list of names starts with the other (EXACT: they are equal). */
static bool names_match(const struct finding *a, const struct finding *b, bool exact)
{
    size_t n = a->nnames < b->nnames ? a->nnames : b->nnames;
    if (exact && a->nnames != b->nnames)
        return false;
    if (n == 0 && a->nnames != b->nnames) /* no frames is no prefix of some frames */
        return false;
    for (size_t i = 0; i < n; i++)
        if (!same_function(a->names[i], b->names[i]))
            return false;
    return true;
}

static bool same_bytes(const struct finding *a, const struct finding *b)
{
    return !a->leak || (a->bytes == b->bytes && a->blocks == b->blocks &&
                        a->indirect == b->indirect);
}

/* Pairs findings, exact stacks first, then prefixes; equal bytes preferred. */
static void match(struct side *m, struct side *v)
{
    for (int pass = 0; pass < 3; pass++)
        for (size_t i = 0; i < m->n; i++)
            for (size_t j = 0; !m->f[i].peer && j < v->n; j++) {
                struct finding *a = &m->f[i], *b = &v->f[j];
                if (b->peer || strcmp(a->kind, b->kind) != 0 || !names_match(a, b, pass == 0) ||
                    (pass < 2 && !same_bytes(a, b)))
                    continue;
                a->peer = b;
                b->peer = a;
            }
}

static bool compared(const struct finding *f, unsigned listed)
{
    if (!f->leak)
        return true;
    for (int k = 0; k < 4; k++)
        if (strcmp(f->kind + 5, leak_kinds[k]) == 0)
            return (listed & (1u << k)) != 0;
    return false;
}

static void bytes_text(const struct finding *f, char *out, size_t size)
{
    if (!f->leak)
        snprintf(out, size, "-");
    else if (f->indirect)
        snprintf(out, size, "%" PRIu64 "+%" PRIu64 " in %" PRIu64, f->bytes, f->indirect, f->blocks);
    else
        snprintf(out, size, "%" PRIu64 " in %" PRIu64, f->bytes, f->blocks);
}

static void print_row(FILE *out, const char *who, const struct finding *f)
{
    char bytes[96], theirs[48];
    bytes_text(f, bytes, sizeof bytes);
    if (f->peer && !same_bytes(f, f->peer)) {
        bytes_text(f->peer, theirs, sizeof theirs);
        size_t len = strlen(bytes);
        snprintf(bytes + len, sizeof bytes - len, " vs %s", theirs);
    }
    fprintf(out, "%-9s %-17s %20s  ", who, f->kind, bytes);
    size_t shown = f->nnames > ROW_NAMES ? ROW_NAMES : f->nnames;
    for (size_t i = 0; i < shown; i++)
        fprintf(out, "%s%s", i ? " < " : "", f->names[i]);
    if (shown < f->nnames)
        fprintf(out, " < ... (%zu more)", f->nnames - shown);
    if (!f->nnames)
        fputs("(no frames)", out);
    if (f->count > 1)
        fprintf(out, " (x%ld)", f->count);
    if (f->peer && !same_bytes(f, f->peer))
        fputs("  <- bytes differ", out);
    fputc('\n', out);
}

struct tally {
    long both, only_m, only_v, differ;
};

static struct tally print_table(FILE *out, const struct side *m, const struct side *v,
                                unsigned listed)
{
    struct tally t = { 0 };
    fprintf(out, "%-9s %-17s %20s  %s\n", "FOUND BY", "KIND", "BYTES", "STACK (program frames, innermost first)");
    for (size_t i = 0; i < m->n; i++)
        if (m->f[i].peer && compared(&m->f[i], listed)) {
            print_row(out, "both", &m->f[i]);
            t.both++;
            t.differ += !same_bytes(&m->f[i], m->f[i].peer);
        }
    for (size_t i = 0; i < m->n; i++)
        if (!m->f[i].peer && compared(&m->f[i], listed)) {
            print_row(out, "memtrace", &m->f[i]);
            t.only_m++;
        }
    for (size_t i = 0; i < v->n; i++)
        if (!v->f[i].peer && compared(&v->f[i], listed)) {
            print_row(out, "valgrind", &v->f[i]);
            t.only_v++;
        }
    return t;
}

static void print_notes(FILE *out, const struct side *m, const struct side *v, unsigned listed)
{
    char kinds[64] = "";
    for (int k = 0; k < 4; k++)
        if (!(listed & (1u << k)))
            snprintf(kinds + strlen(kinds), sizeof kinds - strlen(kinds), "%s%s",
                     kinds[0] ? "," : "", leak_kinds[k]);
    if (kinds[0])
        fprintf(out, "not compared: %s loss records (not listed by both; run both with "
                "--leak-check=full --show-leak-kinds=all)\n", kinds);
    if (v->skipped[0])
        fprintf(out, "not compared (valgrind): %s\n", v->skipped);
    if (m->skipped[0])
        fprintf(out, "not compared (memtrace): %s\n", m->skipped);
}

int compare_main(int argc, char **argv, FILE *out)
{
    if (argc != 3) {
        fprintf(stderr, "memtrace: usage: memtrace compare MEMTRACE.json VALGRIND.xml\n");
        return EXIT_BAD_INPUT;
    }
    struct side m = { .tool = "memtrace" }, v = { .tool = "valgrind" };
    int rc = EXIT_BAD_INPUT;
    if (read_memtrace(argv[1], &m) && read_valgrind(argv[2], &v)) {
        if (m.oom || v.oom) {
            fprintf(stderr, "memtrace: compare: out of memory\n");
        } else {
            unsigned listed = m.listed_leaks & v.listed_leaks;
            match(&m, &v);
            fprintf(out, "memtrace compare: %s (memtrace) vs %s (valgrind)\n\n", argv[1], argv[2]);
            struct tally t = print_table(out, &m, &v, listed);
            fputc('\n', out);
            print_notes(out, &m, &v, listed);
            bool agree = !t.only_m && !t.only_v && !t.differ;
            fprintf(out, "%ld found by both (%ld with different bytes), %ld only by memtrace, "
                    "%ld only by valgrind: %s\n", t.both, t.differ, t.only_m, t.only_v,
                    agree ? "they agree" : "they differ");
            rc = agree ? EXIT_AGREE : EXIT_DIFFER;
        }
    }
    free_side(&m);
    free_side(&v);
    return rc;
}
