/* describe.h — what the text, XML, SARIF and Markdown renderers say alike, so they cannot
 * drift apart: an error's headline and auxiliary lines in valgrind's wording, loss-record
 * lines, which errors the view shows, how the process
 * ended, and paths relative to --source-root. Pure functions of the view: nothing here
 * writes output, and the only files touched are the paths realpath() looks at. */
#ifndef MEMTRACE_DESCRIBE_H
#define MEMTRACE_DESCRIBE_H

#include "report.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct mt_error;
struct mt_leak;
struct sym_frame;
struct sym_stack;

/* A count with thousands separators, as valgrind prints it: 1,088. */
struct dnum {
    char s[32];
};
struct dnum describe_count(uint64_t v);

/* Length of the well-formed UTF-8 sequence at S (no overlongs, surrogates, code points past
 * U+10FFFF), or 0 when S does not start one. */
size_t describe_utf8_len(const unsigned char *s);
/* Writes str as a JSON string literal (non-UTF-8 bytes as \u00XX). */
void describe_json_string(FILE *o, const char *str);

/* ---- Runtime errors ------------------------------------------------------------------- */

/* "Invalid read of size 4", "Invalid free() / delete / delete[] / realloc()", ... */
void describe_headline(const struct mt_error *e, char *buf, size_t size);

/* Valgrind's auxiliary description of an error: each part is one `auxwhat` line, followed
 * by a stack when it has one. */
enum aux_role {
    AUX_FREED,       /* "Address A is N bytes inside a block of size S free'd" + free stack */
    AUX_ALLOCD,      /* "Address A is N bytes after a block of size S alloc'd" + alloc stack */
    AUX_ADDRESS,     /* "Address A is not stack'd, malloc'd or (recently) free'd" (or "on
                      * thread 1's stack", "N bytes inside data symbol X"), no stack */
    AUX_ALLOC_STACK, /* "Block was alloc'd at" + alloc stack */
};

struct aux_part {
    enum aux_role role;
    char text[192];
    size_t relation;                 /* offset in text of what follows "Address A is " */
    const struct sym_stack *stack;   /* NULL: none */
};

/* Where the address of a free that names no heap block lies: the erring thread's stack, a
 * module's variable (*object, *offset into it), or neither of those (valgrind: "not
 * stack'd, malloc'd or (recently) free'd"). ADDRESS_NOT_FREED for other errors. */
enum freed_address {
    ADDRESS_NOT_FREED,
    ADDRESS_UNKNOWN,
    ADDRESS_ON_STACK,
    ADDRESS_IN_DATA,
};
enum freed_address describe_freed_address(const struct report_view *v, const struct mt_error *e,
                                          const char **object, uint64_t *offset);

#define DESCRIBE_MAX_AUX 2
size_t describe_aux(const struct report_view *v, const struct mt_error *e,
                    struct aux_part out[DESCRIBE_MAX_AUX]);

/* For an access error found by a later check rather than at the access, the sentence that
 * says so; NULL otherwise. */
const char *describe_late_note(const struct mt_error *e);

/* ---- Loss records --------------------------------------------------------------------- */

/* "48 (16 direct, 32 indirect) bytes in 1 blocks are definitely lost in loss record 2 of 3" */
void describe_leak(const struct report_view *v, const struct mt_leak *l, size_t number,
                   char *buf, size_t size);
const char *describe_leak_phrase(int cls);   /* "definitely lost", ... */
uint64_t describe_leak_total(const struct mt_leak *l); /* direct + indirect, saturated */

/* ---- What the view shows -------------------------------------------------------------- */

/* Runtime error I of the log is shown (not suppressed). */
bool describe_error_shown(const struct report_view *v, size_t i);
/* Loss record I of the log (an index into log->leaks) is listed and not suppressed. */
bool describe_leak_shown(const struct report_view *v, size_t i);
/* How the process ended: what the launcher saw wins over the log's own `exit` record.
 * False when neither knows. */
bool describe_exit(const struct report_view *v, bool *signaled, int *value);
/* Why a truncated log ends early, for the warning: "the process was killed by signal 9
 * (SIGKILL)" when its end is known to be a signal, else "the process died". */
void describe_death(const struct report_view *v, char *buf, size_t size);
/* The signal that ended the process, as valgrind words it: "Process terminating with
 * default action of signal 11 (SIGSEGV)" and, for a fault, "Access not within mapped
 * region at address 0x0" (what is empty for a signal that was sent, e.g. SIGTERM). */
struct mt_crash;
/* "Process terminating with default action of signal 11 (SIGSEGV)" */
void describe_terminating(int sig, char *buf, size_t size);
/* For a fault, its cause ("Access not within mapped region"); NULL for a sent signal. */
const char *describe_crash_event(const struct mt_crash *c);
void describe_crash(const struct mt_crash *c, char *headline, size_t headline_size, char *what,
                    size_t what_size);

/* ---- The source root ------------------------------------------------------------------ */

struct source_root {
    char *path;       /* canonical, without a trailing slash ("/" stays "/") */
    size_t len;
};

/* DIR (NULL: the current directory), canonicalized. False only when it cannot be resolved
 * or memory runs out; the root is then empty and nothing is inside it. */
bool source_root_init(struct source_root *r, const char *dir);
void source_root_free(struct source_root *r);
/* FILE relative to the root (malloc'd), or NULL when FILE is not an absolute path inside it.
 * Symbolic links are resolved when the file exists. */
char *source_root_relative(const struct source_root *r, const char *file);
/* The first frame of S whose file lies inside the root, with its relative path in *REL
 * (malloc'd); NULL when there is none. */
const struct sym_frame *source_root_frame(const struct source_root *r,
                                          const struct sym_stack *s, char **rel);

#endif
