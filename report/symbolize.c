/* symbolize.c — PC -> frames with libdwfl, offline.
 *
 * libdw's convenient per-address calls are the slow ones: dwfl_module_addrinfo scans the
 * whole symbol table on every call and dwarf_getscopes walks the whole CU. So each module
 * gets a sorted symbol array the first time one of its PCs is looked up, and each compile
 * unit that holds a looked-up PC (found by its address ranges) a sorted table of its
 * subprograms' ranges; an address then only costs two binary searches, a descent through
 * the scopes of the one subprogram that holds it (for its inlined calls) and a line-table
 * lookup. The descent uses a range table per visited scope, built once,
 * because a large function can have thousands of call-site children to step over. Every
 * looked-up address is cached, and all strings are interned. */
#include "symbolize.h"

#include "debugcache.h"
#include "eventlog_read.h"

#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libstdc++'s demangler (libdw has none), loaded on the first mangled name: linked in,
 * libstdc++ (with libm and libgcc_s) was 1.4 MB of every report's memory, C or not. */
typedef char *demangle_fn(const char *mangled, char *buf, size_t *len, int *status);

#define MAX_INLINE_DEPTH 64 /* inlined calls kept per address; deeper ones are cut */

/* ------------------------------------------------------------------------------------- */
/* Data                                                                                   */
/* ------------------------------------------------------------------------------------- */

struct elf_sym {                 /* one FUNC symbol, biased address */
    uint64_t lo, hi;             /* hi == lo: the symbol has no size */
    const char *name;            /* in the ELF string table: lives as long as the Dwfl */
    unsigned rank;               /* lower is preferred among aliases */
};

struct die_range {               /* one address range of a DIE, DWARF addresses */
    Dwarf_Addr lo, hi;
    Dwarf_Die die;
};

struct range_table {             /* sorted by lo, searched by address */
    struct die_range *r;
    Dwarf_Addr *maxhi;           /* maxhi[i] = max hi of r[0..i], so overlaps stay cheap */
    size_t n, cap;
};

struct scope_slot {              /* a scope DIE's children that can hold code */
    Dwarf_Off off;
    struct range_table kids;
    bool used;
};

enum mod_state { MOD_UNOPENED, MOD_OK, MOD_GONE, MOD_UNTRUSTED };

struct modctx {                  /* one logged module, opened on first use */
    enum mod_state state;
    Dwfl *dwfl;                  /* one per module, so overlapping logged ranges can't clash */
    Dwfl_Module *mod;
    struct elf_sym *syms;
    size_t nsyms;
    struct range_table funcs;    /* every subprogram of every CU, built only for a PC that
                                  * the CU address ranges do not place */
    bool funcs_indexed;
    struct scope_slot *scopes;   /* open addressing by DIE offset, filled on demand */
    size_t scopes_mask, nscopes;
    Dwarf_Addr dwbias;
};

struct modrange {                /* a logged module's range, for PC -> module */
    uint64_t lo, hi;
    size_t index;                /* in log->modules: the higher, the later logged */
};

struct pc_slot {                 /* cache: looked-up address -> frames */
    uint64_t addr;
    uint32_t first, count;       /* in symbolizer.frames */
    bool used;
};

struct symbolizer {
    const struct mt_log *log;
    struct modctx *mods;         /* parallel to log->modules */
    struct modrange *ranges;     /* sorted by lo */
    uint64_t *ranges_maxhi;
    size_t nranges;
    char **strs;                 /* interned strings, open addressing */
    size_t strs_mask, nstrs;
    struct pc_slot *pcs;
    size_t pcs_mask, npcs;
    struct sym_frame *frames;    /* cached frames, pc left 0 */
    size_t nframes, cap_frames;
};

/* ------------------------------------------------------------------------------------- */
/* Interned strings                                                                       */
/* ------------------------------------------------------------------------------------- */

static size_t hash_str(const char *s)
{
    size_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static bool strs_rehash(struct symbolizer *sym, size_t nslots)
{
    char **slots = calloc(nslots, sizeof *slots);
    if (!slots)
        return false;
    for (size_t i = 0; sym->strs && i <= sym->strs_mask; i++) {
        if (!sym->strs[i])
            continue;
        size_t j = hash_str(sym->strs[i]) & (nslots - 1);
        while (slots[j])
            j = (j + 1) & (nslots - 1);
        slots[j] = sym->strs[i];
    }
    free(sym->strs);
    sym->strs = slots;
    sym->strs_mask = nslots - 1;
    return true;
}

/* The one stored copy of S, or NULL for NULL (and when out of memory: a missing name is
 * better than a failed report). */
static const char *intern(struct symbolizer *sym, const char *s)
{
    if (!s)
        return NULL;
    if ((sym->nstrs + 1) * 2 > (sym->strs ? sym->strs_mask + 1 : 0) &&
        !strs_rehash(sym, sym->strs ? (sym->strs_mask + 1) * 2 : 1024))
        return NULL;
    size_t i = hash_str(s) & sym->strs_mask;
    for (; sym->strs[i]; i = (i + 1) & sym->strs_mask)
        if (strcmp(sym->strs[i], s) == 0)
            return sym->strs[i];
    if (!(sym->strs[i] = strdup(s)))
        return NULL;
    sym->nstrs++;
    return sym->strs[i];
}

/* __cxa_demangle, or NULL where libstdc++ is not installed (names then stay mangled). */
static demangle_fn *demangler(void)
{
    static demangle_fn *found;
    static bool tried;
    if (!tried) {
        tried = true;
        void *lib = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_LOCAL);
        if (lib)
            found = (demangle_fn *)dlsym(lib, "__cxa_demangle");
    }
    return found;
}

/* Demangles C++ names (those starting with _Z), interns the result. */
static const char *intern_name(struct symbolizer *sym, const char *name)
{
    if (!name || name[0] != '_' || name[1] != 'Z' || !demangler())
        return intern(sym, name);
    int status = -1;
    char *d = demangler()(name, NULL, NULL, &status);
    const char *r = intern(sym, status == 0 && d ? d : name);
    free(d);
    return r;
}

/* ------------------------------------------------------------------------------------- */
/* PC -> logged module (a later module wins where ranges overlap)                         */
/* ------------------------------------------------------------------------------------- */

static int cmp_range(const void *a, const void *b)
{
    const struct modrange *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo ? 1 : 0;
}

static bool build_ranges(struct symbolizer *sym)
{
    const struct mt_log *log = sym->log;
    sym->ranges = calloc(log->nmodules + 1, sizeof *sym->ranges);
    sym->ranges_maxhi = calloc(log->nmodules + 1, sizeof *sym->ranges_maxhi);
    if (!sym->ranges || !sym->ranges_maxhi)
        return false;
    for (size_t i = 0; i < log->nmodules; i++)
        if (log->modules[i].lo < log->modules[i].hi)
            sym->ranges[sym->nranges++] = (struct modrange){ log->modules[i].lo,
                                                             log->modules[i].hi, i };
    qsort(sym->ranges, sym->nranges, sizeof *sym->ranges, cmp_range);
    for (size_t i = 0; i < sym->nranges; i++)
        sym->ranges_maxhi[i] = i && sym->ranges_maxhi[i - 1] > sym->ranges[i].hi
                                   ? sym->ranges_maxhi[i - 1] : sym->ranges[i].hi;
    return true;
}

/* Index into log->modules of the module holding ADDR, or -1. The running maximum of hi
 * stops the backward scan as soon as no earlier range can reach ADDR, so it is one step
 * unless modules overlap. */
static long find_module(const struct symbolizer *sym, uint64_t addr)
{
    size_t lo = 0, hi = sym->nranges;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sym->ranges[mid].lo <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    long best = -1;
    for (size_t i = lo; i-- > 0 && sym->ranges_maxhi[i] > addr;)
        if (addr < sym->ranges[i].hi && (long)sym->ranges[i].index > best)
            best = (long)sym->ranges[i].index;
    return best;
}

/* ------------------------------------------------------------------------------------- */
/* Address range tables: the subprograms of a module, the children of a scope            */
/* ------------------------------------------------------------------------------------- */


static bool rt_push(struct range_table *t, Dwarf_Addr lo, Dwarf_Addr hi, const Dwarf_Die *die)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        struct die_range *r = realloc(t->r, cap * sizeof *r);
        if (!r)
            return false;
        t->r = r;
        t->cap = cap;
    }
    t->r[t->n++] = (struct die_range){ lo, hi, *die };
    return true;
}

/* Adds every non-empty address range of DIE. */
static bool rt_push_die(struct range_table *t, Dwarf_Die *die)
{
    Dwarf_Addr base, lo, hi;
    ptrdiff_t off = 0;
    while ((off = dwarf_ranges(die, off, &base, &lo, &hi)) > 0)
        if (lo < hi && !rt_push(t, lo, hi, die))
            return false;
    return true;
}

static int cmp_range_lo(const void *a, const void *b)
{
    const struct die_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo ? 1 : 0;
}

/* Sorts T; false (T emptied) when out of memory. */
static bool rt_finish(struct range_table *t)
{
    if (t->n == 0)
        return true;
    qsort(t->r, t->n, sizeof *t->r, cmp_range_lo);
    if (!(t->maxhi = malloc(t->n * sizeof *t->maxhi))) {
        t->n = 0;
        return false;
    }
    for (size_t i = 0; i < t->n; i++)
        t->maxhi[i] = i && t->maxhi[i - 1] > t->r[i].hi ? t->maxhi[i - 1] : t->r[i].hi;
    return true;
}

/* The range holding REL; the one starting last (the innermost) if several do. */
static const struct die_range *rt_find(const struct range_table *t, Dwarf_Addr rel)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->r[mid].lo <= rel)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i-- > 0 && t->maxhi[i] > rel;)
        if (rel < t->r[i].hi)
            return &t->r[i];
    return NULL;
}

static void rt_free(struct range_table *t)
{
    free(t->r);
    free(t->maxhi);
    *t = (struct range_table){ 0 };
}

/* ------------------------------------------------------------------------------------- */
/* Module contexts: find debug files, open, check the build-id, index symbols            */
/* ------------------------------------------------------------------------------------- */

static char *debuginfo_path; /* NULL: libdwfl's default search path */
static const char *debug_cache; /* --debug-cache, for find_debuginfo */

/* libdwfl asks for two files through find_debuginfo: the module's separate debug file,
 * passing the main file's .gnu_debuglink (or none), and a dwz alternate file named in
 * the debug file's .gnu_debugaltlink. Only the first is the module's, keyed by its
 * build-id in the cache. */
static bool wants_module_debug_file(Dwfl_Module *mod, const char *debuglink_file)
{
    GElf_Addr bias;
    GElf_Word crc;
    Elf *elf = dwfl_module_getelf(mod, &bias);
    const char *own = elf ? dwelf_elf_gnu_debuglink(elf, &crc) : NULL;
    return elf && (own == debuglink_file || (own && debuglink_file && strcmp(own, debuglink_file) == 0));
}

/* The inflated copy of the module's debug file from the cache (see debugcache.h), else
 * libdwfl's own search, whose find is then inflated for the next report. (The standard
 * search keeps the file it found open for the module: the cache must come first.) */
static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
                          const char *file_name, const char *debuglink_file, GElf_Word debuglink_crc,
                          char **debuginfo_file_name)
{
    const unsigned char *bits;
    GElf_Addr vaddr;
    bool cached = wants_module_debug_file(mod, debuglink_file);
    int len = dwfl_module_build_id(mod, &bits, &vaddr);
    if (cached && len > 0) {
        char *path;
        int fd = debugcache_open(debug_cache, bits, (size_t)len, &path);
        if (fd >= 0) {
            free(*debuginfo_file_name);
            *debuginfo_file_name = path;
            return fd;
        }
    }
    int fd = dwfl_standard_find_debuginfo(mod, userdata, modname, base, file_name, debuglink_file,
                                          debuglink_crc, debuginfo_file_name);
    if (fd >= 0 && cached)
        debugcache_store(debug_cache, fd);
    return fd;
}

static const Dwfl_Callbacks dwfl_callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = &debuginfo_path,
};

static bool build_id_matches(Dwfl_Module *mod, const char *want)
{
    const unsigned char *bits;
    GElf_Addr vaddr;
    if (!want)
        return true; /* nothing logged to compare with */
    int len = dwfl_module_build_id(mod, &bits, &vaddr);
    if (len <= 0 || strlen(want) != (size_t)len * 2)
        return false;
    for (int i = 0; i < len; i++) {
        char hex[3];
        snprintf(hex, sizeof hex, "%02x", bits[i]);
        if (hex[0] != want[2 * i] || hex[1] != want[2 * i + 1])
            return false;
    }
    return true;
}

/* The module is reported at its logged load bias: add_p_vaddr makes libdwfl place each
 * segment at bias + p_vaddr, which is right for PIE, DSOs and non-PIE executables alike. */
static Dwfl_Module *report_module(Dwfl *dwfl, const struct mt_module *lm)
{
    Dwfl_Module *mod = dwfl_report_elf(dwfl, lm->path, lm->path, -1, lm->base, true);
    if (mod || !lm->build_id)
        return mod;
    /* The file is gone (or unreadable); its separate debug file, found by build-id, has
     * the same program headers, symbols and DWARF. */
    char *dbg = NULL;
    if (asprintf(&dbg, "/usr/lib/debug/.build-id/%.2s/%s.debug", lm->build_id,
                 lm->build_id + 2) < 0)
        return NULL;
    mod = dwfl_report_elf(dwfl, lm->path, dbg, -1, lm->base, true);
    free(dbg);
    return mod;
}

/* Among aliases, as valgrind chooses: global over weak over local, the default version
 * (`@@`) over an old one (`@`), fewer leading underscores (`malloc`, not `__libc_malloc`);
 * cmp_sym then takes the alphabetically first (a C1 constructor over its C2 twin). */
static unsigned symbol_rank(const GElf_Sym *s, const char *name)
{
    unsigned bind = GELF_ST_BIND(s->st_info);
    unsigned r = bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : 2;
    const char *at = strchr(name, '@');
    unsigned old_version = at && at[1] != '@';
    unsigned underscores = 0;
    while (name[underscores] == '_' && underscores < 3)
        underscores++;
    return r * 8 + old_version * 4 + underscores;
}

static int cmp_sym(const void *a, const void *b)
{
    const struct elf_sym *x = a, *y = b;
    if (x->lo != y->lo)
        return x->lo < y->lo ? -1 : 1;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Sorted, one entry per address (the preferred alias, spanning the largest size). */
static void index_symbols(struct modctx *m)
{
    int n = dwfl_module_getsymtab(m->mod);
    if (n <= 1 || !(m->syms = malloc((size_t)n * sizeof *m->syms)))
        return;
    for (int i = 1; i < n; i++) {
        GElf_Sym s;
        GElf_Addr addr;
        GElf_Word shndx;
        const char *name = dwfl_module_getsym_info(m->mod, i, &s, &addr, &shndx, NULL, NULL);
        int type = GELF_ST_TYPE(s.st_info);
        if (!name || !*name || shndx == SHN_UNDEF || (type != STT_FUNC && type != STT_GNU_IFUNC))
            continue;
        m->syms[m->nsyms++] = (struct elf_sym){ addr, addr + s.st_size, name,
                                                symbol_rank(&s, name) };
    }
    qsort(m->syms, m->nsyms, sizeof *m->syms, cmp_sym);
    size_t out = 0;
    for (size_t i = 0; i < m->nsyms; i++) {
        if (out && m->syms[out - 1].lo == m->syms[i].lo) {
            if (m->syms[i].hi > m->syms[out - 1].hi)
                m->syms[out - 1].hi = m->syms[i].hi;
            continue;
        }
        m->syms[out++] = m->syms[i];
    }
    m->nsyms = out;
}

static int collect_func(Dwarf_Die *die, void *table)
{
    return rt_push_die(table, die) ? DWARF_CB_OK : DWARF_CB_ABORT;
}

static void index_functions(struct modctx *m)
{
    Dwarf_Die *cu = NULL;
    Dwarf_Addr bias;
    while ((cu = dwfl_module_nextcu(m->mod, cu, &bias)) != NULL) {
        m->dwbias = bias;
        if (dwarf_getfuncs(cu, collect_func, &m->funcs, 0) > 0)
            break;                          /* out of memory (a broken unit gives -1) */
    }
    rt_finish(&m->funcs); /* out of memory: no inline frames, but symbols and lines work */
    m->funcs_indexed = true;
}

static void open_module(struct modctx *m, const struct mt_module *lm)
{
    m->state = MOD_GONE;
    if (!(m->dwfl = dwfl_begin(&dwfl_callbacks)))
        return;
    dwfl_report_begin(m->dwfl);
    m->mod = report_module(m->dwfl, lm);
    dwfl_report_end(m->dwfl, NULL, NULL);
    if (!m->mod)
        return;
    if (!build_id_matches(m->mod, lm->build_id)) {
        m->state = MOD_UNTRUSTED;
        return;
    }
    m->state = MOD_OK;
    index_symbols(m);
}

static void close_module(struct modctx *m)
{
    if (m->dwfl)
        dwfl_end(m->dwfl);
    free(m->syms);
    rt_free(&m->funcs);
    for (size_t i = 0; m->scopes && i <= m->scopes_mask; i++)
        rt_free(&m->scopes[i].kids);
    free(m->scopes);
}

/* ------------------------------------------------------------------------------------- */
/* One address -> frames                                                                  */
/* ------------------------------------------------------------------------------------- */

static const struct elf_sym *find_symbol(const struct modctx *m, uint64_t addr)
{
    size_t lo = 0, hi = m->nsyms;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->syms[mid].lo <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    const struct elf_sym *s = &m->syms[lo - 1];
    return s->hi == s->lo || addr < s->hi ? s : NULL; /* sizeless: nearest one below */
}

static bool is_scope(int tag)
{
    return tag == DW_TAG_inlined_subroutine || tag == DW_TAG_lexical_block ||
           tag == DW_TAG_try_block || tag == DW_TAG_catch_block;
}

static size_t hash_off(Dwarf_Off off)
{
    return (size_t)(off * 0x9e3779b97f4a7c15ull >> 17);
}

static bool scopes_rehash(struct modctx *m, size_t nslots)
{
    struct scope_slot *slots = calloc(nslots, sizeof *slots);
    if (!slots)
        return false;
    for (size_t i = 0; m->scopes && i <= m->scopes_mask; i++) {
        if (!m->scopes[i].used)
            continue;
        size_t j = hash_off(m->scopes[i].off) & (nslots - 1);
        while (slots[j].used)
            j = (j + 1) & (nslots - 1);
        slots[j] = m->scopes[i];
    }
    free(m->scopes);
    m->scopes = slots;
    m->scopes_mask = nslots - 1;
    return true;
}

/* The code-holding children of SCOPE as a range table, built on the first visit: of a
 * compile unit its subprograms, of a function its inlined calls and blocks. Walking the
 * children is what costs (a big function has thousands of call-site DIEs, libc's debug
 * info thousands of units), so each scope is walked once, not once per address, and only
 * the units of the addresses looked up. NULL when out of memory. */
static const struct range_table *scope_children(struct modctx *m, Dwarf_Die *scope)
{
    if ((m->nscopes + 1) * 2 > (m->scopes ? m->scopes_mask + 1 : 0) &&
        !scopes_rehash(m, m->scopes ? (m->scopes_mask + 1) * 2 : 256))
        return NULL;
    Dwarf_Off off = dwarf_dieoffset(scope);
    size_t i = hash_off(off) & m->scopes_mask;
    for (; m->scopes[i].used; i = (i + 1) & m->scopes_mask)
        if (m->scopes[i].off == off)
            return &m->scopes[i].kids;

    struct range_table kids = { 0 };
    Dwarf_Die child;
    bool ok = true;
    int tag = dwarf_tag(scope);
    if (tag == DW_TAG_compile_unit || tag == DW_TAG_partial_unit) {
        ok = dwarf_getfuncs(scope, collect_func, &kids, 0) <= 0;   /* > 0: out of memory */
    } else if (dwarf_child(scope, &child) == 0) {
        do {
            if (is_scope(dwarf_tag(&child)))
                ok = rt_push_die(&kids, &child);
        } while (ok && dwarf_siblingof(&child, &child) == 0);
    }
    if (!ok || !rt_finish(&kids)) {
        rt_free(&kids);
        return NULL;
    }
    m->scopes[i] = (struct scope_slot){ off, kids, true };
    m->nscopes++;
    return &m->scopes[i].kids;
}

/* Walks down from FUNC through the scopes holding REL and stores the inlined calls met,
 * outermost first, in CHAIN. Only FUNC's subtree is visited, never the whole CU. */
static size_t inline_chain(struct modctx *m, const Dwarf_Die *func, Dwarf_Addr rel,
                           Dwarf_Die *chain, size_t max)
{
    size_t n = 0;
    Dwarf_Die scope = *func;
    for (int level = 0; n < max && level < 4 * MAX_INLINE_DEPTH; level++) {
        const struct range_table *kids = scope_children(m, &scope);
        const struct die_range *hit = kids ? rt_find(kids, rel) : NULL;
        if (!hit)
            break;
        scope = hit->die;
        if (dwarf_tag(&scope) == DW_TAG_inlined_subroutine)
            chain[n++] = scope;
    }
    return n;
}

/* A subprogram's or inlined call's function name, demangled. The linkage name is preferred
 * because it demangles to the qualified C++ name; attribute lookups follow
 * DW_AT_abstract_origin and DW_AT_specification. */
static const char *die_function(struct symbolizer *sym, Dwarf_Die *die)
{
    Dwarf_Attribute attr;
    const char *name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));
    if (!name)
        name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr));
    return name ? intern_name(sym, name) : intern(sym, dwarf_diename(die));
}

/* The raw name of a subprogram or inlined call: its linkage name (mangled, for C++ and for
 * C functions with an asm label) or else its plain name. */
static const char *die_linkage(struct symbolizer *sym, Dwarf_Die *die)
{
    Dwarf_Attribute attr;
    const char *name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));
    if (!name)
        name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr));
    return intern(sym, name ? name : dwarf_diename(die));
}

/* DIR/FILE with "." and "dir/.." steps taken out, into out (size PATH_MAX). */
static void join_path(const char *dir, const char *file, char *out)
{
    size_t n = 0;
    char joined[2 * PATH_MAX];
    snprintf(joined, sizeof joined, "%s/%s", dir, file);
    for (const char *p = joined; *p;) {
        size_t len = strcspn(p, "/");
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            while (n > 0 && out[--n] != '/')
                ;
        } else if (len > 0 && !(len == 1 && p[0] == '.') && n + 1 + len < PATH_MAX) {
            out[n++] = '/';
            memcpy(out + n, p, len);
            n += len;
        }
        p += len + (p[len] == '/');
    }
    if (n == 0)
        out[n++] = '/';
    out[n] = '\0';
}

/* FILE, interned; named relative to its unit's compilation directory DIR (gcc src/x.c run
 * in /proj), made absolute as valgrind makes it: the docs promise absolute paths. */
static const char *unit_file(struct symbolizer *sym, const char *dir, const char *file)
{
    char path[PATH_MAX];
    if (!file || file[0] == '/' || !dir || dir[0] != '/')
        return intern(sym, file);
    join_path(dir, file, path);
    return intern(sym, path);
}

/* Where the inlined call INL was made: its DW_AT_call_file and DW_AT_call_line. */
static void call_site(struct symbolizer *sym, Dwarf_Die *inl, struct sym_frame *f)
{
    Dwarf_Attribute attr;
    Dwarf_Word file_idx, line;
    Dwarf_Die cu;
    Dwarf_Files *files;
    size_t nfiles;
    if (dwarf_formudata(dwarf_attr(inl, DW_AT_call_file, &attr), &file_idx) == 0 &&
        dwarf_diecu(inl, &cu, NULL, NULL) && dwarf_getsrcfiles(&cu, &files, &nfiles) == 0 &&
        file_idx < nfiles)
        f->file = unit_file(sym, dwarf_formstring(dwarf_attr(&cu, DW_AT_comp_dir, &attr)),
                            dwarf_filesrc(files, file_idx, NULL, NULL));
    if (dwarf_formudata(dwarf_attr(inl, DW_AT_call_line, &attr), &line) == 0 &&
        line <= UINT32_MAX)
        f->line = (unsigned)line;
}

/* ADDR's line, when a unit really covers it: libdwfl stretches each unit's address range
 * to the next one's start, which gave crt1's _start, right after an -O2 main, a line of
 * the inlined code that ends main. */
static void line_of(struct symbolizer *sym, Dwfl_Module *mod, uint64_t addr,
                    struct sym_frame *f)
{
    Dwarf_Addr bias;
    Dwarf_Die *cu = dwfl_module_addrdie(mod, addr, &bias);
    Dwfl_Line *l = cu && dwarf_haspc(cu, addr - bias) > 0 ? dwfl_module_getsrc(mod, addr) : NULL;
    int line = 0;
    const char *file = l ? dwfl_lineinfo(l, NULL, &line, NULL, NULL, NULL) : NULL;
    f->file = unit_file(sym, file && file[0] != '/' ? dwfl_line_comp_dir(l) : NULL, file);
    f->line = line > 0 ? (unsigned)line : 0;
}

static struct modctx *module_for(struct symbolizer *sym, uint64_t addr, const char **path)
{
    long mi = find_module(sym, addr);
    if (mi < 0)
        return NULL;
    struct modctx *m = &sym->mods[mi];
    if (m->state == MOD_UNOPENED)
        open_module(m, &sym->log->modules[mi]);
    *path = sym->log->modules[mi].path;
    return m;
}

/* The subprogram holding ADDR, looked for in the unit the CU address ranges (aranges)
 * give; in every unit's, indexed once, when they give none. *rel: ADDR in DWARF terms. */
static const struct die_range *find_function(struct modctx *m, uint64_t addr, Dwarf_Addr *rel)
{
    Dwarf_Addr bias;
    Dwarf_Die *cu = dwfl_module_addrdie(m->mod, addr, &bias);
    if (cu) {
        m->dwbias = bias;
        *rel = addr - bias;
        const struct range_table *funcs = scope_children(m, cu);
        return funcs ? rt_find(funcs, *rel) : NULL;
    }
    if (!m->funcs_indexed)
        index_functions(m);
    *rel = addr - m->dwbias;
    return rt_find(&m->funcs, *rel);
}

/* Fills OUT (room for MAX_INLINE_DEPTH + 1) with ADDR's frames, innermost first. */
static size_t resolve_addr(struct symbolizer *sym, uint64_t addr, struct sym_frame *out)
{
    const char *path = NULL;
    struct modctx *m = module_for(sym, addr, &path);
    out[0] = (struct sym_frame){ .module = path };
    if (!m || m->state != MOD_OK)
        return 1; /* unknown code, a vanished file, or one we must not trust */

    const struct elf_sym *es = find_symbol(m, addr);
    const char *symname = es ? intern_name(sym, es->name) : NULL;
    Dwarf_Addr rel;
    const struct die_range *fr = find_function(m, addr, &rel);
    Dwarf_Die chain[MAX_INLINE_DEPTH + 1];
    size_t depth = 0;
    if (fr) {
        chain[0] = fr->die;
        depth = 1 + inline_chain(m, &chain[0], rel, chain + 1, MAX_INLINE_DEPTH);
    }
    size_t n = depth ? depth : 1;
    for (size_t j = 0; j < n; j++) {
        struct sym_frame *f = &out[j];
        Dwarf_Attribute attr;
        *f = (struct sym_frame){ .module = path, .inlined = j + 1 < n };
        if (depth) {
            Dwarf_Die *die = &chain[depth - 1 - j];
            f->function = die_function(sym, die);
            f->linkage = die_linkage(sym, die);
            f->short_name = intern(sym, dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &attr)));
        }
        if (j + 1 == n && es)
            f->symbol = intern(sym, es->name);
        /* No DWARF name, or only a short one (lambdas, local classes, anonymous namespaces
         * have no linkage name there): the symbol demangles to the qualified name. */
        if (j + 1 == n && (!f->function || (f->linkage == f->short_name && es &&
                                            strncmp(es->name, "_Z", 2) == 0))) {
            f->function = symname;
            f->linkage = f->symbol;
        }
        if (j == 0)
            line_of(sym, m->mod, addr, f);
        else
            call_site(sym, &chain[depth - j], f);
    }
    return n;
}

const char *sym_data_object(struct symbolizer *sym, uint64_t addr, uint64_t *offset)
{
    const char *path;
    struct modctx *m = module_for(sym, addr, &path);
    GElf_Sym es;
    GElf_Off off;
    const char *name = m && m->state == MOD_OK
                       ? dwfl_module_addrinfo(m->mod, addr, &off, &es, NULL, NULL, NULL) : NULL;
    if (!name || GELF_ST_TYPE(es.st_info) != STT_OBJECT || off >= es.st_size)
        return NULL;
    *offset = off;
    return intern_name(sym, name);
}

/* ------------------------------------------------------------------------------------- */
/* Address cache                                                                          */
/* ------------------------------------------------------------------------------------- */

static size_t hash_addr(uint64_t a)
{
    a ^= a >> 33;
    a *= 0xff51afd7ed558ccdull;
    a ^= a >> 33;
    return (size_t)a;
}

static bool pcs_rehash(struct symbolizer *sym, size_t nslots)
{
    struct pc_slot *slots = calloc(nslots, sizeof *slots);
    if (!slots)
        return false;
    for (size_t i = 0; sym->pcs && i <= sym->pcs_mask; i++) {
        if (!sym->pcs[i].used)
            continue;
        size_t j = hash_addr(sym->pcs[i].addr) & (nslots - 1);
        while (slots[j].used)
            j = (j + 1) & (nslots - 1);
        slots[j] = sym->pcs[i];
    }
    free(sym->pcs);
    sym->pcs = slots;
    sym->pcs_mask = nslots - 1;
    return true;
}

/* The cached frames of ADDR, resolving it on first use; NULL when out of memory. */
static const struct pc_slot *lookup(struct symbolizer *sym, uint64_t addr)
{
    if ((sym->npcs + 1) * 2 > (sym->pcs ? sym->pcs_mask + 1 : 0) &&
        !pcs_rehash(sym, sym->pcs ? (sym->pcs_mask + 1) * 2 : 1024))
        return NULL;
    size_t i = hash_addr(addr) & sym->pcs_mask;
    for (; sym->pcs[i].used; i = (i + 1) & sym->pcs_mask)
        if (sym->pcs[i].addr == addr)
            return &sym->pcs[i];

    struct sym_frame tmp[MAX_INLINE_DEPTH + 1];
    size_t n = resolve_addr(sym, addr, tmp);
    if (sym->nframes + n > sym->cap_frames) {
        size_t cap = sym->cap_frames ? sym->cap_frames * 2 : 4096;
        if (sym->nframes + n > UINT32_MAX || cap > SIZE_MAX / sizeof *sym->frames)
            return NULL;
        struct sym_frame *f = realloc(sym->frames, cap * sizeof *f);
        if (!f)
            return NULL;
        sym->frames = f;
        sym->cap_frames = cap;
    }
    memcpy(sym->frames + sym->nframes, tmp, n * sizeof *tmp);
    sym->pcs[i] = (struct pc_slot){ addr, (uint32_t)sym->nframes, (uint32_t)n, true };
    sym->nframes += n;
    sym->npcs++;
    return &sym->pcs[i];
}

/* ------------------------------------------------------------------------------------- */
/* Public interface                                                                       */
/* ------------------------------------------------------------------------------------- */

struct symbolizer *sym_new(const struct mt_log *log, const char *cache)
{
    debug_cache = cache;
    struct symbolizer *sym = calloc(1, sizeof *sym);
    if (!sym)
        return NULL;
    sym->log = log;
    sym->mods = calloc(log->nmodules + 1, sizeof *sym->mods);
    if (!sym->mods || !build_ranges(sym)) {
        sym_free(sym);
        return NULL;
    }
    return sym;
}

void sym_free(struct symbolizer *sym)
{
    if (!sym)
        return;
    for (size_t i = 0; sym->mods && i < sym->log->nmodules; i++)
        close_module(&sym->mods[i]);
    for (size_t i = 0; sym->strs && i <= sym->strs_mask; i++)
        free(sym->strs[i]);
    free(sym->strs);
    free(sym->mods);
    free(sym->ranges);
    free(sym->ranges_maxhi);
    free(sym->pcs);
    free(sym->frames);
    free(sym);
}

bool sym_resolve(struct symbolizer *sym, const uint64_t *pcs, size_t n, bool exact0,
                 size_t max_frames, struct sym_stack *out)
{
    size_t cap = max_frames < 64 ? max_frames : 64;
    *out = (struct sym_stack){ 0 };
    if (cap && !(out->frames = malloc(cap * sizeof *out->frames)))
        return false;
    for (size_t i = 0; i < n && out->n < max_frames; i++) {
        /* A return address points after the call; pc-1 is inside it. */
        uint64_t addr = i == 0 && exact0 ? pcs[i] : pcs[i] - 1;
        const struct pc_slot *slot = lookup(sym, addr);
        if (!slot) {
            sym_stack_free(out);
            return false;
        }
        for (uint32_t k = 0; k < slot->count && out->n < max_frames; k++) {
            if (out->n == cap) {
                cap = cap * 2 < max_frames ? cap * 2 : max_frames;
                struct sym_frame *f = realloc(out->frames, cap * sizeof *f);
                if (!f) {
                    sym_stack_free(out);
                    return false;
                }
                out->frames = f;
            }
            out->frames[out->n] = sym->frames[slot->first + k];
            out->frames[out->n++].pc = pcs[i];
        }
    }
    return true;
}

void sym_stack_free(struct sym_stack *stack)
{
    free(stack->frames);
    *stack = (struct sym_stack){ 0 };
}
