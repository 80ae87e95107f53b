/* suppress.c — valgrind suppression files: the reader, the matcher and the generator.
 *
 * The reader follows valgrind's load_one_suppressions_file: blank lines and `#` lines are
 * skipped everywhere, blanks around a line are trimmed, and the first thing wrong ends the
 * read with FILE:LINE and what is wrong. Entries for other tools are skipped whole, as
 * valgrind does. The matcher follows VG_(generic_match): the frame lines must match a
 * prefix of the stack, `...` standing for any number of frames. */
#include "suppress.h"

#include "eventlog_read.h"
#include "report.h"
#include "symbolize.h"
#include "textfile.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LINE 100000 /* valgrind gives up on longer lines too */

/* ------------------------------------------------------------------------------------- */
/* Data                                                                                   */
/* ------------------------------------------------------------------------------------- */

enum supp_kind {
    SK_NEVER,     /* a memcheck kind memtrace never reports (Cond, Value8, Param, ...) */
    SK_LEAK,
    SK_FREE,
    SK_ADDR,
    SK_FISHY,
    SK_MUNMAP,    /* memtrace's own: memtrace:Munmap */
    SK_OVERLAP,
};

enum frame_type { SF_FUN, SF_OBJ, SF_SRC, SF_ANY };

struct supp_frame {
    enum frame_type type;
    char *pattern;          /* NULL for `...` */
    unsigned line;          /* src:FILE:LINE; 0 when not given */
};

struct supp_entry {
    char *name;
    const char *file;       /* one of supp_set.files */
    int line;               /* of the name, as valgrind reports it */
    enum supp_kind kind;
    unsigned size;          /* SK_ADDR: the access size */
    unsigned leak_kinds;    /* SK_LEAK: LEAK_BIT_* */
    char *fishy_fn;         /* SK_FISHY: the function of `fn(arg)`, NULL when absent */
    struct supp_frame *frames;
    size_t nframes;
    /* per report */
    long count;
    uint64_t bytes, blocks;
};

struct real_path {           /* realpath cache for obj: lines, keyed by the module string */
    const char *module;
    char *real;             /* NULL when it cannot be resolved */
};

struct supp_set {
    struct supp_entry *entries;
    size_t n, cap;
    char **files;
    size_t nfiles;
    struct real_path *reals;
    size_t nreals, cap_reals;
};

/* ------------------------------------------------------------------------------------- */
/* The set                                                                                */
/* ------------------------------------------------------------------------------------- */

struct supp_set *supp_set_new(void)
{
    return calloc(1, sizeof(struct supp_set));
}

static void free_entry(struct supp_entry *e)
{
    for (size_t i = 0; i < e->nframes; i++)
        free(e->frames[i].pattern);
    free(e->frames);
    free(e->name);
    free(e->fishy_fn);
}

void supp_set_free(struct supp_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        free_entry(&set->entries[i]);
    for (size_t i = 0; i < set->nfiles; i++)
        free(set->files[i]);
    for (size_t i = 0; i < set->nreals; i++)
        free(set->reals[i].real);
    free(set->entries);
    free(set->files);
    free(set->reals);
    free(set);
}

static bool grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap * 2 : 16;
    while (n < need)
        n *= 2;
    void *p = realloc(*arr, n * elem);
    if (!p)
        return false;
    *arr = p;
    *cap = n;
    return true;
}

/* ------------------------------------------------------------------------------------- */
/* Reading                                                                                */
/* ------------------------------------------------------------------------------------- */

struct reader {
    const char *name;       /* file name, for messages */
    const char *p, *end;
    int lineno;             /* of the line last returned */
    char buf[MAX_LINE + 1];
    const char *error;      /* set when reading itself failed */
};

/* The next line that is neither blank nor a comment, trimmed, in r->buf; false at the end
 * of the text (or on an unreadable line: r->error says so). */
static bool next_line(struct reader *r)
{
    while (r->p < r->end) {
        const char *nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
        const char *stop = nl ? nl : r->end;
        const char *s = r->p;
        r->p = nl ? nl + 1 : r->end;
        r->lineno++;
        while (s < stop && isspace((unsigned char)*s))
            s++;
        while (stop > s && isspace((unsigned char)stop[-1]))
            stop--;
        if (s == stop || *s == '#')
            continue;
        if (stop - s > MAX_LINE) {
            r->error = "line too long";
            return false;
        }
        if (memchr(s, '\0', (size_t)(stop - s))) {
            r->error = "NUL byte in the line (not a text file?)";
            return false;
        }
        memcpy(r->buf, s, (size_t)(stop - s));
        r->buf[stop - s] = '\0';
        return true;
    }
    return false;
}

static bool fail(const struct reader *r, const char *what)
{
    fprintf(stderr, "memtrace: %s:%d: %s\n", r->name, r->lineno, r->error ? r->error : what);
    return false;
}

/* Whether TOOLS ("memcheck,exp-foo") names a tool whose entries memtrace applies. */
static bool tool_is_ours(const char *tools, size_t len)
{
    const char *end = tools + len;
    while (tools < end) {
        const char *comma = memchr(tools, ',', (size_t)(end - tools));
        size_t n = (size_t)((comma ? comma : end) - tools);
        if ((n == 8 && strncasecmp(tools, "memcheck", 8) == 0) ||
            (n == 8 && strncasecmp(tools, "memtrace", 8) == 0))
            return true;
        tools += n + (comma ? 1 : 0);
    }
    return false;
}

struct kind_name {
    const char *name;
    enum supp_kind kind;
    unsigned size;
};

/* memcheck's suppression kinds (mc_errors.c), plus memtrace's own Munmap. */
static const struct kind_name kind_names[] = {
    { "Leak", SK_LEAK, 0 }, { "Free", SK_FREE, 0 }, { "FishyValue", SK_FISHY, 0 },
    { "Addr1", SK_ADDR, 1 }, { "Addr2", SK_ADDR, 2 }, { "Addr4", SK_ADDR, 4 },
    { "Addr8", SK_ADDR, 8 }, { "Addr16", SK_ADDR, 16 }, { "Addr32", SK_ADDR, 32 },
    { "Addr64", SK_ADDR, 64 }, { "Munmap", SK_MUNMAP, 0 },
    { "Param", SK_NEVER, 0 }, { "User", SK_NEVER, 0 }, { "CoreMem", SK_NEVER, 0 },
    { "Jump", SK_NEVER, 0 }, { "Overlap", SK_OVERLAP, 0 }, { "Mempool", SK_NEVER, 0 },
    { "Cond", SK_NEVER, 0 }, { "Value0", SK_NEVER, 0 }, { "Value1", SK_NEVER, 0 },
    { "Value2", SK_NEVER, 0 }, { "Value4", SK_NEVER, 0 }, { "Value8", SK_NEVER, 0 },
    { "Value16", SK_NEVER, 0 }, { "Value32", SK_NEVER, 0 }, { "ReallocZero", SK_NEVER, 0 },
    { "BadAlign", SK_NEVER, 0 }, { "BadSize", SK_NEVER, 0 }, { "SizeMismatch", SK_NEVER, 0 },
    { "AlignMismatch", SK_NEVER, 0 },
};

static const struct kind_name *find_kind(const char *name)
{
    for (size_t i = 0; i < sizeof kind_names / sizeof *kind_names; i++)
        if (strcmp(kind_names[i].name, name) == 0)
            return &kind_names[i];
    return NULL;
}

static bool is_location(const char *line)
{
    return strncmp(line, "fun:", 4) == 0 || strncmp(line, "obj:", 4) == 0 ||
           strncmp(line, "src:", 4) == 0 || strcmp(line, "...") == 0;
}

/* "definite,indirect,possible,reachable", "all" or "none" into LEAK_BIT_*. */
static bool parse_leak_kinds(const char *s, unsigned *out)
{
    static const char *const names[] = { "definite", "indirect", "possible", "reachable" };
    while (isspace((unsigned char)*s))
        s++;
    *out = 0;
    if (strcmp(s, "all") == 0) {
        *out = LEAK_BIT_DEFINITE | LEAK_BIT_INDIRECT | LEAK_BIT_POSSIBLE | LEAK_BIT_REACHABLE;
        return true;
    }
    if (strcmp(s, "none") == 0)
        return true;
    while (*s) {
        size_t n = strcspn(s, ",");
        size_t k = 0;
        while (k < 4 && !(strlen(names[k]) == n && strncmp(s, names[k], n) == 0))
            k++;
        if (k == 4)
            return false;
        *out |= 1u << k;
        s += n;
        if (*s == ',' && *++s == '\0')
            return false;
    }
    return *out != 0;
}

/* `fn(arg)` of a FishyValue entry: keeps fn. */
static bool parse_fishy(const char *s, char **fn)
{
    const char *open = strchr(s, '(');
    if (!open || open == s || !strchr(open, ')'))
        return false;
    *fn = strndup(s, (size_t)(open - s));
    return *fn != NULL;
}

/* The kind's optional extra line (Leak, FishyValue) or mandatory one (Param). On return
 * r->buf holds the first line that is not extra info; *have says whether there is one. */
static bool read_extra(struct reader *r, struct supp_entry *e, bool is_param, bool *have)
{
    *have = next_line(r);
    if (!*have)
        return r->error ? false : true;
    if (is_param) {                /* the syscall parameter: any text */
        *have = next_line(r);
        return !r->error;
    }
    if (e->kind == SK_LEAK && strncmp(r->buf, "match-leak-kinds:", 17) == 0) {
        if (!parse_leak_kinds(r->buf + 17, &e->leak_kinds)) {
            r->error = "bad match-leak-kinds: (want definite,indirect,possible,reachable, "
                       "all or none)";
            return false;
        }
        *have = next_line(r);
        return !r->error;
    }
    if (e->kind == SK_FISHY && !is_location(r->buf) && strcmp(r->buf, "}") != 0) {
        if (!parse_fishy(r->buf, &e->fishy_fn)) {
            r->error = "bad FishyValue line (want function(argument), e.g. malloc(size))";
            return false;
        }
        *have = next_line(r);
        return !r->error;
    }
    return true;
}

static bool parse_frame(const char *line, struct supp_frame *f)
{
    *f = (struct supp_frame){ .type = SF_ANY };
    if (strcmp(line, "...") == 0)
        return true;
    if (strncmp(line, "fun:", 4) == 0)
        f->type = SF_FUN;
    else if (strncmp(line, "obj:", 4) == 0)
        f->type = SF_OBJ;
    else if (strncmp(line, "src:", 4) == 0)
        f->type = SF_SRC;
    else
        return false;
    if (!(f->pattern = strdup(line + 4)))
        return false;
    char *colon = f->type == SF_SRC ? strrchr(f->pattern, ':') : NULL;
    if (colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1)) {
        unsigned long v = strtoul(colon + 1, NULL, 10);
        f->line = v > UINT_MAX ? UINT_MAX : (unsigned)v;
        *colon = '\0';
    }
    return true;
}

/* The frame lines up to `}`; r->buf holds the first one when HAVE. */
static bool read_frames(struct reader *r, struct supp_entry *e, bool have)
{
    size_t cap = 0;
    bool any_real = false;
    for (;; have = next_line(r)) {
        if (!have)
            return fail(r, "unexpected end of file (expecting frame lines or '}')");
        if (strcmp(r->buf, "}") == 0)
            break;
        if (e->nframes == SUPP_MAX_FRAMES)
            return fail(r, "too many frame lines (at most 500)");
        if (!grow((void **)&e->frames, &cap, e->nframes + 1, sizeof *e->frames))
            return fail(r, "out of memory");
        struct supp_frame *f = &e->frames[e->nframes];
        if (!parse_frame(r->buf, f))
            return fail(r, "a frame line is '...' or starts with fun:, obj: or src:");
        e->nframes++;
        any_real |= f->type != SF_ANY;
    }
    if (e->nframes == 0)
        return fail(r, "missing stack trace (an entry needs at least one frame line)");
    if (!any_real)
        return fail(r, "an entry needs at least one frame line that is not '...'");
    return true;
}

/* Skips an entry for another tool up to its `}`. */
static bool skip_entry(struct reader *r)
{
    while (next_line(r))
        if (strcmp(r->buf, "}") == 0)
            return true;
    return fail(r, "unexpected end of file (skipping an entry for another tool)");
}

/* The `tool:Kind` line of E. *ours is false for an entry of another tool. */
static bool read_kind(struct reader *r, struct supp_entry *e, bool *ours, bool *is_param)
{
    if (!next_line(r))
        return fail(r, "unexpected end of file (expecting tool:kind)");
    char *colon = strchr(r->buf, ':');
    if (!colon)
        return fail(r, "malformed 'tool1,tool2,...:kind' line");
    *ours = tool_is_ours(r->buf, (size_t)(colon - r->buf));
    if (!*ours)
        return true;
    const struct kind_name *k = find_kind(colon + 1);
    if (!k) {
        fprintf(stderr, "memtrace: %s:%d: unknown memcheck suppression kind '%s'\n", r->name,
                r->lineno, colon + 1);
        return false;
    }
    e->kind = k->kind;
    e->size = k->size;
    e->leak_kinds = LEAK_BIT_DEFINITE | LEAK_BIT_INDIRECT | LEAK_BIT_POSSIBLE | LEAK_BIT_REACHABLE;
    *is_param = strcmp(k->name, "Param") == 0;
    return true;
}

/* One entry, after its `{`. */
static bool read_entry(struct reader *r, struct supp_set *set, const char *file)
{
    struct supp_entry e = { .file = file };
    bool ours = false, is_param = false, have = false;
    if (!next_line(r))
        return fail(r, "unexpected end of file (expecting the entry's name)");
    if (strcmp(r->buf, "}") == 0 || strcmp(r->buf, "{") == 0)
        return fail(r, "an entry needs a name line after '{'");
    e.line = r->lineno;
    if (!(e.name = strdup(r->buf)))
        return fail(r, "out of memory");
    bool ok = read_kind(r, &e, &ours, &is_param);
    if (ok && !ours) {
        free_entry(&e);
        return skip_entry(r);
    }
    ok = ok && (read_extra(r, &e, is_param, &have) || fail(r, "bad extra line"));
    ok = ok && read_frames(r, &e, have);
    if (ok && !grow((void **)&set->entries, &set->cap, set->n + 1, sizeof *set->entries))
        ok = fail(r, "out of memory");
    if (!ok) {
        free_entry(&e);
        return false;
    }
    set->entries[set->n++] = e;
    return true;
}

bool supp_parse(struct supp_set *set, const char *name, const char *text, size_t len)
{
    struct reader *r = calloc(1, sizeof *r);
    char *file = strdup(name);
    char **files = realloc(set->files, (set->nfiles + 1) * sizeof *files);
    if (!r || !file || !files) {
        free(r);
        free(file);
        if (files)
            set->files = files;
        fprintf(stderr, "memtrace: %s: out of memory\n", name);
        return false;
    }
    set->files = files;
    set->files[set->nfiles++] = file;
    *r = (struct reader){ .name = file, .p = text, .end = text + len };
    bool ok = true;
    while (ok && next_line(r)) {
        if (strcmp(r->buf, "{") != 0)
            ok = fail(r, "expected '{' or end of file");
        else
            ok = read_entry(r, set, file);
    }
    if (ok && r->error)
        ok = fail(r, NULL);
    free(r);
    return ok;
}

bool supp_read_file(struct supp_set *set, const char *path)
{
    char err[128];
    size_t len;
    char *text = textfile_read(path, SUPP_MAX_FILE_BYTES, &len, err, sizeof err);
    if (!text) {
        fprintf(stderr, "memtrace: cannot read suppressions file %s: %s\n", path, err);
        return false;
    }
    bool ok = supp_parse(set, path, text, len);
    free(text);
    return ok;
}

/* ------------------------------------------------------------------------------------- */
/* Loading                                                                                */
/* ------------------------------------------------------------------------------------- */

bool supp_default_file(char *buf, size_t size)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return false;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return false;
    *slash = '\0';
    static const char *const places[] = { "%s/default.supp", "%s/../share/memtrace/default.supp" };
    for (size_t i = 0; i < 2; i++) {
        int len = snprintf(buf, size, places[i], exe);
        if (len > 0 && (size_t)len < size && access(buf, R_OK) == 0)
            return true;
    }
    return false;
}

struct supp_set *supp_load(const struct report_options *opts)
{
    struct supp_set *set = supp_set_new();
    if (!set) {
        fprintf(stderr, "memtrace: out of memory reading suppressions\n");
        return NULL;
    }
    for (size_t i = 0; i < opts->nsuppression_files; i++) {
        if (!supp_read_file(set, opts->suppression_files[i])) {
            supp_set_free(set);
            return NULL;
        }
    }
    char path[PATH_MAX];
    if (!opts->default_suppressions)
        return set;
    if (!supp_default_file(path, sizeof path)) {
        fprintf(stderr, "memtrace: warning: the default suppressions file (default.supp next to "
                "memtrace or in ../share/memtrace/) is missing; none applied\n");
        return set;
    }
    if (!supp_read_file(set, path)) {
        supp_set_free(set);
        return NULL;
    }
    return set;
}

/* ------------------------------------------------------------------------------------- */
/* Globs: `*` any run of characters, `?` one character, `\` quotes the next (valgrind's    */
/* VG_(string_match))                                                                     */
/* ------------------------------------------------------------------------------------- */

static bool glob_match(const char *pat, const char *s)
{
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (*pat == '*') {
            star = ++pat;
            resume = s;
            continue;
        }
        const char *lit = pat;
        if (*lit == '\\' && lit[1])
            lit++;
        if (*pat && (*pat == '?' ? true : *lit == *s)) {
            pat = lit + 1;
            s++;
            continue;
        }
        if (!star)
            return false;
        pat = star;
        s = ++resume;
    }
    while (*pat == '*')
        pat++;
    return *pat == '\0';
}

/* ------------------------------------------------------------------------------------- */
/* Frame names                                                                            */
/* ------------------------------------------------------------------------------------- */

/* The allocator and deallocator families, as valgrind names their replacements. */
static const char *const malloc_names[] = {
    "malloc", "calloc", "realloc", "reallocarray", NULL };
static const char *const aligned_names[] = {
    "memalign", "posix_memalign", "aligned_alloc", "valloc", "pvalloc",
    "_ZnwmSt11align_val_t", "_ZnamSt11align_val_t", "_ZnwmSt11align_val_tRKSt9nothrow_t",
    "_ZnamSt11align_val_tRKSt9nothrow_t", NULL };
static const char *const new_names[] = {
    "_Znwm", "_ZnwmRKSt9nothrow_t", "_Znwj", "_ZnwjRKSt9nothrow_t", "operator new(unsigned long)",
    "_ZnwmSt11align_val_t", "_ZnwmSt11align_val_tRKSt9nothrow_t", NULL };
static const char *const new_array_names[] = {
    "_Znam", "_ZnamRKSt9nothrow_t", "_Znaj", "_ZnajRKSt9nothrow_t",
    "operator new[](unsigned long)", "_ZnamSt11align_val_t",
    "_ZnamSt11align_val_tRKSt9nothrow_t", NULL };
static const char *const free_names[] = { "free", "realloc", "cfree", NULL };
static const char *const delete_names[] = {
    "_ZdlPv", "_ZdlPvm", "_ZdlPvj", "_ZdlPvRKSt9nothrow_t", "_ZdlPvSt11align_val_t",
    "_ZdlPvmSt11align_val_t", "_ZdlPvSt11align_val_tRKSt9nothrow_t", "operator delete(void*)",
    "operator delete(void*, unsigned long)", NULL };
static const char *const delete_array_names[] = {
    "_ZdaPv", "_ZdaPvm", "_ZdaPvj", "_ZdaPvRKSt9nothrow_t", "_ZdaPvSt11align_val_t",
    "_ZdaPvmSt11align_val_t", "_ZdaPvSt11align_val_tRKSt9nothrow_t", "operator delete[](void*)",
    "operator delete[](void*, unsigned long)", NULL };

/* valgrind's names for the fishy-size check, per family (mc_malloc_wrappers.c). */
static const char *const fishy_malloc[] = { "malloc", "calloc", "realloc", NULL };
static const char *const fishy_new[] = { "__builtin_new", "__builtin_new_aligned", NULL };
static const char *const fishy_new_array[] = { "__builtin_vec_new", "__builtin_vec_new_aligned",
                                               NULL };
static const char *const fishy_aligned[] = { "memalign", "posix_memalign", "aligned_alloc",
                                             "valloc", "pvalloc", "__builtin_new_aligned",
                                             "__builtin_vec_new_aligned", NULL };

/* The copying functions checked for overlap (interpose/copy.c), one list each. */
static const char *const copy_names[][2] = {
    { "strcpy" }, { "stpcpy" }, { "strncpy" }, { "stpncpy" }, { "strcat" }, { "strncat" },
};

/* Where valgrind's replacements live, for obj: lines aimed at the allocator frame. */
static const char *const allocator_objects[] = {
    "/usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so",
    "/usr/lib/x86_64-linux-gnu/valgrind/vgpreload_memcheck-amd64-linux.so",
    "/usr/lib/valgrind/vgpreload_memcheck-amd64-linux.so", NULL };

/* The virtual frame 0: up to four name lists (a family, or every family). */
struct vframe {
    const char *const *lists[4];
};

static struct vframe alloc_frame(enum mt_alloc_fn fn)
{
    switch (fn) {
    case MT_FN_MALLOC: return (struct vframe){ { malloc_names } };
    case MT_FN_NEW: return (struct vframe){ { new_names } };
    case MT_FN_NEW_ARRAY: return (struct vframe){ { new_array_names } };
    case MT_FN_ALIGNED: return (struct vframe){ { aligned_names } };
    default: return (struct vframe){ { malloc_names, new_names, new_array_names, aligned_names } };
    }
}

/* An overlapping copy's frame 0 is the copying function, as valgrind replaces it. */
static struct vframe copy_frame(const char *fn)
{
    for (size_t i = 0; i < sizeof copy_names / sizeof *copy_names; i++)
        if (strcmp(fn, copy_names[i][0]) == 0)
            return (struct vframe){ { copy_names[i] } };
    return (struct vframe){ { NULL } };
}

static struct vframe free_frame(enum mt_alloc_fn fn)
{
    switch (fn) {
    case MT_FN_MALLOC:
    case MT_FN_ALIGNED: return (struct vframe){ { free_names } };
    case MT_FN_NEW: return (struct vframe){ { delete_names } };
    case MT_FN_NEW_ARRAY: return (struct vframe){ { delete_array_names } };
    default: return (struct vframe){ { free_names, delete_names, delete_array_names } };
    }
}

static bool list_has(const char *const *list, const char *name)
{
    for (; list && *list; list++)
        if (strcmp(*list, name) == 0)
            return true;
    return false;
}

static bool vframe_matches(const struct vframe *vf, const struct supp_frame *sf)
{
    if (sf->type == SF_SRC)
        return false;
    if (sf->type == SF_OBJ) {
        for (const char *const *o = allocator_objects; *o; o++)
            if (glob_match(sf->pattern, *o))
                return true;
        return false;
    }
    for (int i = 0; i < 4; i++)
        for (const char *const *n = vf->lists[i]; n && *n; n++)
            if (glob_match(sf->pattern, *n))
                return true;
    return false;
}

/* valgrind shows the functions that call main as "(below main)". */
static bool is_below_main(const char *name)
{
    return name && (strncmp(name, "__libc_start_main", 17) == 0 ||
                    strcmp(name, "__libc_start_call_main") == 0 ||
                    strcmp(name, "generic_start_main") == 0);
}

static bool fun_matches(const char *pattern, const struct sym_frame *f)
{
    /* an inlined call also answers to its short DWARF name, which valgrind writes for it */
    const char *names[4] = { f->function ? f->function : "???", f->linkage, f->symbol,
                             f->inlined ? f->short_name : NULL };
    for (int i = 0; i < 4; i++) {
        if (!names[i])
            continue;
        if (glob_match(pattern, names[i]))
            return true;
        /* pthread_create@@GLIBC_2.34 also answers to pthread_create */
        const char *at = i == 2 ? strchr(names[i], '@') : NULL;
        if (at && at > names[i] && (size_t)(at - names[i]) < 256) {
            char plain[256];
            snprintf(plain, sizeof plain, "%.*s", (int)(at - names[i]), names[i]);
            if (glob_match(pattern, plain))
                return true;
        }
        if (is_below_main(names[i]) && glob_match(pattern, "(below main)"))
            return true;
        /* valgrind has no clone3, so glibc's threads start from clone under it */
        if (strcmp(names[i], "clone3") == 0 && glob_match(pattern, "clone"))
            return true;
    }
    return false;
}

static const char *real_path_of(struct supp_set *set, const char *module)
{
    for (size_t i = 0; i < set->nreals; i++)
        if (set->reals[i].module == module)
            return set->reals[i].real;
    if (!grow((void **)&set->reals, &set->cap_reals, set->nreals + 1, sizeof *set->reals))
        return NULL;
    set->reals[set->nreals++] = (struct real_path){ module, realpath(module, NULL) };
    return set->reals[set->nreals - 1].real;
}

static bool obj_matches(struct supp_set *set, const char *pattern, const struct sym_frame *f)
{
    if (!f->module)
        return glob_match(pattern, "???");
    if (glob_match(pattern, f->module))
        return true;
    const char *real = real_path_of(set, f->module);
    return real && strcmp(real, f->module) != 0 && glob_match(pattern, real);
}

static bool src_matches(const struct supp_frame *sf, const struct sym_frame *f)
{
    if (!f->file || (sf->line && sf->line != f->line))
        return false;
    const char *base = strrchr(f->file, '/');
    return glob_match(sf->pattern, base ? base + 1 : f->file) || glob_match(sf->pattern, f->file);
}

/* ------------------------------------------------------------------------------------- */
/* Matching                                                                               */
/* ------------------------------------------------------------------------------------- */

/* What one runtime error or loss record offers to the matcher. */
struct target {
    enum supp_kind kind;
    unsigned leak_bit;          /* SK_LEAK */
    uint64_t access_size;       /* SK_ADDR; 0: unknown */
    const char *const *fishy;   /* SK_FISHY: valgrind's names for the function; NULL: any */
    const char *fishy_fn;       /* SK_FISHY: the function itself, when the log names it */
    bool has_vframe;
    struct vframe vframe;
    size_t nvirtual;            /* frames the virtual one stands for: 0, or 1 or 2 */
    const struct sym_stack *stack;
    size_t depth;               /* frames available: the virtual ones and the stack's */
};

static bool frame_matches(struct supp_set *set, const struct target *t, size_t i,
                          const struct supp_frame *sf)
{
    if (i < t->nvirtual)
        return vframe_matches(&t->vframe, sf);
    const struct sym_frame *f = &t->stack->frames[i - t->nvirtual];
    switch (sf->type) {
    case SF_FUN: return fun_matches(sf->pattern, f);
    case SF_OBJ: return obj_matches(set, sf->pattern, f);
    case SF_SRC: return src_matches(sf, f);
    default: return true;
    }
}

/* `obj:*` or `fun:*`: any frame at all. */
static bool is_any_frame(const struct supp_frame *sf)
{
    return (sf->type == SF_FUN || sf->type == SF_OBJ) && !sf->line &&
           strspn(sf->pattern, "*") == strlen(sf->pattern);
}

/* VG_(generic_match) without matchAll: the frame lines match a prefix of the frames; `...`
 * is any run of frames. Backtracks only to the last `...` seen, as a glob matcher does.
 * Lines past the stack's capacity (--num-callers) are ignored, as valgrind ignores lines
 * past its own --num-callers. Past the end of a whole stack (shorter than that capacity),
 * `obj:*` lines match nothing: valgrind's unwinder walks on below _start, and its entries
 * end with such lines for frames memtrace's stacks rightly do not have. */
static bool stack_matches(struct supp_set *set, const struct supp_entry *e, const struct target *t,
                          size_t max_lines)
{
    size_t np = e->nframes < max_lines ? e->nframes : max_lines;
    size_t i = 0, j = 0, star_i = SIZE_MAX, star_j = 0;
    while (i < np) {
        const struct supp_frame *sf = &e->frames[i];
        if (sf->type == SF_ANY) {
            star_i = i++;
            star_j = j;
            continue;
        }
        if (j == t->depth && t->depth < max_lines && is_any_frame(sf)) {
            i++;
            continue;
        }
        if (j < t->depth && frame_matches(set, t, j, sf)) {
            i++;
            j++;
            continue;
        }
        if (star_i == SIZE_MAX || star_j >= t->depth)
            return false;
        i = star_i + 1;
        j = ++star_j;
    }
    return true;
}

static bool is_addr_size(uint64_t size)
{
    return size == 1 || size == 2 || size == 4 || size == 8 || size == 16 || size == 32 ||
           size == 64;
}

static bool kind_matches(const struct supp_entry *e, const struct target *t)
{
    if (e->kind != t->kind)
        return false;
    switch (e->kind) {
    case SK_LEAK:
        return (e->leak_kinds & t->leak_bit) != 0;
    case SK_ADDR: /* a size no AddrN names (or none known) matches every AddrN */
        return t->access_size == e->size || !is_addr_size(t->access_size);
    case SK_FISHY:
        if (e->fishy_fn && t->fishy_fn)
            return strcmp(e->fishy_fn, t->fishy_fn) == 0;
        return !e->fishy_fn || !t->fishy || list_has(t->fishy, e->fishy_fn);
    default:
        return true;
    }
}

/* Whether E matches T. The virtual frame stands for one allocator frame, or two: valgrind's
 * posix_memalign shows as memalign called by posix_memalign. */
static bool entry_matches(struct supp_set *set, const struct supp_entry *e, struct target t,
                          size_t max_lines)
{
    size_t real = t.stack ? t.stack->n : 0;
    if (!kind_matches(e, &t))
        return false;
    for (t.nvirtual = t.has_vframe ? 1 : 0; t.nvirtual <= (t.has_vframe ? 2u : 0u); t.nvirtual++) {
        t.depth = real + t.nvirtual;
        if (stack_matches(set, e, &t, max_lines + t.nvirtual - (t.has_vframe ? 1 : 0)))
            return true;
    }
    return false;
}

/* The first entry matching T, or NULL. */
static struct supp_entry *find_match(struct supp_set *set, const struct target *t, size_t max_lines)
{
    for (size_t i = 0; i < set->n; i++) {
        struct supp_entry *e = &set->entries[i];
        if (entry_matches(set, e, *t, max_lines))
            return e;
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------- */
/* Errors and loss records as targets                                                    */
/* ------------------------------------------------------------------------------------- */

static const char *const *fishy_names(enum mt_alloc_fn fn)
{
    switch (fn) {
    case MT_FN_MALLOC: return fishy_malloc;
    case MT_FN_NEW: return fishy_new;
    case MT_FN_NEW_ARRAY: return fishy_new_array;
    case MT_FN_ALIGNED: return fishy_aligned;
    default: return NULL;
    }
}

/* memalign and aligned new: valgrind's frame is one of the aligned allocators. */
static bool is_aligned_call(const char *call_fn)
{
    return call_fn && (strcmp(call_fn, "memalign") == 0 || strstr(call_fn, "_aligned"));
}

static struct target error_target(const struct report_view *v, const struct mt_error *e)
{
    struct target t = { .kind = SK_NEVER, .stack = report_view_stack(v, e->stack, e->exact) };
    switch (e->kind) {
    case MT_ERR_DOUBLE_FREE:
    case MT_ERR_INVALID_FREE:
    case MT_ERR_MISMATCHED_FREE:
        t.kind = SK_FREE;
        t.has_vframe = true;
        t.vframe = free_frame(e->free_fn);
        break;
    case MT_ERR_INVALID_SIZE:
        t.kind = SK_FISHY;
        t.has_vframe = true;
        t.vframe = is_aligned_call(e->call_fn) ? alloc_frame(MT_FN_ALIGNED) : alloc_frame(e->alloc_fn);
        t.fishy = fishy_names(e->alloc_fn);
        t.fishy_fn = e->call_fn;
        break;
    case MT_ERR_HEAP_OVERFLOW:
    case MT_ERR_HEAP_UNDERFLOW:
    case MT_ERR_USE_AFTER_FREE:
        t.kind = SK_ADDR;
        t.access_size = e->has & MT_HAS_ACCESS ? e->access_size : 0;
        break;
    case MT_ERR_INVALID_MUNMAP:
        t.kind = SK_MUNMAP;
        break;
    case MT_ERR_OVERLAP:
        t.kind = SK_OVERLAP;
        t.has_vframe = e->call_fn != NULL;
        if (e->call_fn)
            t.vframe = copy_frame(e->call_fn);
        break;
    default:
        break;
    }
    return t;
}

/* A loss record's virtual frame answers to its family's allocators (to them all when the
 * log does not say: aligned allocators are of the malloc family there too). */
static struct target leak_target(const struct report_view *v, const struct mt_leak *l)
{
    struct target t = { .kind = SK_LEAK, .leak_bit = 1u << l->cls, .has_vframe = true,
                        .vframe = l->alloc_fn == MT_FN_NEW || l->alloc_fn == MT_FN_NEW_ARRAY
                                  ? alloc_frame(l->alloc_fn) : alloc_frame(MT_FN_UNKNOWN),
                        .stack = report_view_stack(v, l->stack, false) };
    return t;
}

static size_t max_lines(const struct report_view *v)
{
    int callers = v->opts->num_callers < 1 ? 1 : v->opts->num_callers;
    return (size_t)callers + 1; /* the virtual frame comes on top */
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* view->used: the entries that matched, in the order they were read. */
static bool fill_used(const struct supp_set *set, struct report_view *v)
{
    size_t n = 0;
    for (size_t i = 0; i < set->n; i++)
        n += set->entries[i].count > 0;
    if (n == 0)
        return true;
    if (!(v->used = calloc(n, sizeof *v->used)))
        return false;
    for (size_t i = 0; i < set->n; i++) {
        const struct supp_entry *e = &set->entries[i];
        if (e->count > 0)
            v->used[v->nused++] = (struct suppression_use){ e->name, e->file, e->line, e->count,
                                                            e->bytes, e->blocks };
    }
    return true;
}

bool supp_apply(struct supp_set *set, struct report_view *v)
{
    const struct mt_log *log = v->log;
    if (set->n == 0)
        return true;
    v->error_suppressed_by = calloc(log->nerrors + 1, sizeof *v->error_suppressed_by);
    v->leak_suppressed_by = calloc(log->nleaks + 1, sizeof *v->leak_suppressed_by);
    if (!v->error_suppressed_by || !v->leak_suppressed_by)
        return false;
    size_t lines = max_lines(v);
    for (size_t i = 0; i < set->n; i++)
        set->entries[i].count = 0, set->entries[i].bytes = set->entries[i].blocks = 0;
    for (size_t i = 0; i < log->nerrors; i++) {
        struct target t = error_target(v, &log->errors[i]);
        struct supp_entry *m = find_match(set, &t, lines);
        if (m) {
            v->error_suppressed_by[i] = m->name;
            m->count += (long)log->errors[i].count;
        }
    }
    for (size_t i = 0; i < log->nleaks; i++) {
        const struct mt_leak *l = &log->leaks[i];
        struct target t = leak_target(v, l);
        struct supp_entry *m = find_match(set, &t, lines);
        if (m) {
            v->leak_suppressed_by[i] = m->name;
            m->count++;
            m->bytes = sat_add(m->bytes, l->bytes);
            m->blocks = sat_add(m->blocks, l->blocks);
        }
    }
    return fill_used(set, v);
}

/* ------------------------------------------------------------------------------------- */
/* --gen-suppressions: the entry valgrind would print                                    */
/* ------------------------------------------------------------------------------------- */

/* A name on one line: control characters (never in real symbols) become `?`, which still
 * matches them. */
static void put_name(FILE *out, const char *prefix, const char *name)
{
    fprintf(out, "   %s", prefix);
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        fputc(*c < 0x20 || *c == 0x7f ? '?' : *c, out);
    fputc('\n', out);
}

/* valgrind names an inlined call by its DWARF name and a real function by its symbol. */
static const char *gen_name(const struct sym_frame *f)
{
    if (f->inlined)
        return f->short_name ? f->short_name : f->linkage ? f->linkage : f->function;
    return f->symbol ? f->symbol : f->linkage ? f->linkage : f->function;
}

static void put_frame(FILE *out, const struct sym_frame *f)
{
    const char *name = gen_name(f);
    if (name) {
        put_name(out, "fun:", name);
    } else if (f->module) {
        char *real = realpath(f->module, NULL);
        put_name(out, "obj:", real ? real : f->module);
        free(real);
    } else {
        fputs("   obj:*\n", out);
    }
}

/* The frames, stopping after main as valgrind does (its callers are "(below main)"). */
static void put_stack(FILE *out, const struct sym_stack *s)
{
    for (size_t i = 0; s && i < s->n; i++) {
        const struct sym_frame *f = &s->frames[i];
        const char *name = gen_name(f);
        if (!f->inlined && is_below_main(name)) {
            fputs("   fun:(below main)\n", out);
            return;
        }
        put_frame(out, f);
        if (!f->inlined && name && strcmp(name, "main") == 0)
            return;
    }
}

static void put_entry(FILE *out, const char *kind, const char *extra, const char *vframe,
                      const struct sym_stack *s)
{
    fprintf(out, "{\n   <insert_a_suppression_name_here>\n   %s\n", kind);
    if (extra)
        fprintf(out, "   %s\n", extra);
    if (vframe)
        fprintf(out, "   fun:%s\n", vframe);
    put_stack(out, s);
    fputs("}\n", out);
}

static const char *alloc_name(enum mt_alloc_fn fn)
{
    switch (fn) {
    case MT_FN_NEW: return "_Znwm";
    case MT_FN_NEW_ARRAY: return "_Znam";
    case MT_FN_ALIGNED: return "memalign";
    default: return "malloc";
    }
}

static const char *free_name(enum mt_alloc_fn fn)
{
    return fn == MT_FN_NEW ? "_ZdlPv" : fn == MT_FN_NEW_ARRAY ? "_ZdaPv" : "free";
}

/* The symbol valgrind's stack starts with for a fishy size in valgrind's function FN. */
static const char *fishy_frame(const char *fn, enum mt_alloc_fn family)
{
    static const char *const frames[][2] = {
        { "__builtin_new", "_Znwm" }, { "__builtin_vec_new", "_Znam" },
        { "__builtin_new_aligned", "_ZnwmSt11align_val_t" },
        { "__builtin_vec_new_aligned", "_ZnamSt11align_val_t" },
        { "malloc", "malloc" }, { "calloc", "calloc" }, { "realloc", "realloc" },
        { "memalign", "memalign" },
    };
    for (size_t i = 0; i < sizeof frames / sizeof *frames; i++)
        if (strcmp(fn, frames[i][0]) == 0)
            return frames[i][1];
    return alloc_name(family);
}

void supp_print_error(FILE *out, const struct report_view *v, const struct mt_error *e)
{
    const struct sym_stack *s = report_view_stack(v, e->stack, e->exact);
    char kind[32], extra[64];
    switch (e->kind) {
    case MT_ERR_DOUBLE_FREE:
    case MT_ERR_INVALID_FREE:
    case MT_ERR_MISMATCHED_FREE:
        put_entry(out, "Memcheck:Free", NULL, free_name(e->free_fn), s);
        break;
    case MT_ERR_INVALID_SIZE: {
        const char *const *fishy = fishy_names(e->alloc_fn);
        const char *fn = e->call_fn ? e->call_fn : fishy ? fishy[0] : "malloc";
        snprintf(extra, sizeof extra, "%s(%s)", fn, e->size_arg ? e->size_arg : "size");
        put_entry(out, "Memcheck:FishyValue", extra, fishy_frame(fn, e->alloc_fn), s);
        break;
    }
    case MT_ERR_INVALID_MUNMAP:
        put_entry(out, "memtrace:Munmap", NULL, NULL, s);
        break;
    case MT_ERR_OVERLAP:
        put_entry(out, "Memcheck:Overlap", NULL, e->call_fn, s);
        break;
    default: {
        uint64_t size = e->has & MT_HAS_ACCESS ? e->access_size : 0;
        snprintf(kind, sizeof kind, "Memcheck:Addr%u", is_addr_size(size) ? (unsigned)size : 1u);
        put_entry(out, kind, NULL, NULL, s);
        break;
    }
    }
}

void supp_print_leak(FILE *out, const struct report_view *v, const struct mt_leak *l)
{
    static const char *const kinds[MT_LEAK_CLASS_COUNT] = {
        "definite", "indirect", "possible", "reachable" };
    const struct sym_stack *s = report_view_stack(v, l->stack, false);
    char extra[48];
    snprintf(extra, sizeof extra, "match-leak-kinds: %s", kinds[l->cls]);
    /* An older log does not say which allocator made a loss record's blocks: a C++
     * caller most likely used operator new, anything else malloc. */
    const char *linkage = s && s->n ? s->frames[0].linkage : NULL;
    bool cxx = linkage && strncmp(linkage, "_Z", 2) == 0;
    const char *frame = l->alloc_fn != MT_FN_UNKNOWN ? alloc_name(l->alloc_fn)
                        : cxx ? "_Znwm" : "malloc";
    put_entry(out, "Memcheck:Leak", extra, frame, s);
}
