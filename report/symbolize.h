/* symbolize.h — turns the PCs of an event log into source frames, offline, with elfutils
 * libdwfl: one PC becomes its innermost inlined call first, then the calls it is inlined
 * into, then the real function. Modules come from the log's `module` records (later wins
 * for overlapping ranges); a file whose build-id differs from the logged one is not trusted
 * and yields module + pc only. Per-module indexes (symbols, subprogram ranges) are built
 * once and every looked-up address is cached, because libdw's own per-address lookups are
 * O(symbols) or O(CU DIEs) (docs: runtime-costs-and-pitfalls 1.4, pitfall 15).
 * Single-threaded. The symbolizer borrows the log: free the symbolizer first. */
#ifndef MEMTRACE_SYMBOLIZE_H
#define MEMTRACE_SYMBOLIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mt_log;

struct sym_frame {
    uint64_t pc;            /* as logged: a return address, or the faulting instruction */
    const char *function;   /* demangled; NULL when unknown */
    const char *linkage;    /* raw DWARF name, mangled for C++ (what valgrind's fun: lines
                             * match); NULL when unknown */
    const char *symbol;     /* raw symbol-table name of the real function, e.g.
                             * pthread_create@@GLIBC_2.34; NULL for inlined frames */
    const char *short_name; /* the DWARF name alone (operator(), alloc): what valgrind calls
                             * an inlined call; NULL when unknown */
    const char *file;       /* as the debug info names it; NULL when unknown */
    unsigned line;          /* 0 when unknown */
    const char *module;     /* path of the logged module; NULL when no module holds pc */
    bool inlined;           /* an inlined call: same pc as the frame after it */
};

struct sym_stack {
    struct sym_frame *frames; /* innermost first; strings belong to the symbolizer */
    size_t n;
};

struct symbolizer;

/* NULL only when out of memory. Opens no file yet: modules are opened on first use. */
/* debug_cache: --debug-cache (see debugcache.h), NULL for the default place. */
struct symbolizer *sym_new(const struct mt_log *log, const char *debug_cache);
void sym_free(struct symbolizer *sym);

/* Expands the N PCS of one logged stack (innermost first) into at most MAX_FRAMES frames
 * in OUT. Every pc is looked up at pc-1 (it is a return address) except frame 0 when
 * EXACT0. Returns false, with OUT empty, only when out of memory. */
bool sym_resolve(struct symbolizer *sym, const uint64_t *pcs, size_t n, bool exact0,
                 size_t max_frames, struct sym_stack *out);
void sym_stack_free(struct sym_stack *stack);

/* The variable of a logged module's symbol table that holds ADDR (a global or static),
 * demangled, with ADDR's offset into it; NULL when none does. */
const char *sym_data_object(struct symbolizer *sym, uint64_t addr, uint64_t *offset);

#endif
