/* suppress.h — valgrind-format suppression files (docs/suppressions.md): reading them
 * (a broken file is reported as FILE:LINE, never skipped), matching a report's runtime
 * errors and loss records against them, and writing the entry valgrind's
 * --gen-suppressions=all prints after an error.
 *
 * Valgrind's stacks start at the allocator or deallocator (malloc, operator new, free ...)
 * and memtrace's never show memtrace's own frames, so matching puts a virtual frame 0 in
 * front of the stacks of loss records, bad frees and fishy sizes: it answers to the names
 * of the allocator family the event log names (any allocator when it names none).
 * Single-threaded; the set owns every string it hands out (names and file names). */
#ifndef MEMTRACE_SUPPRESS_H
#define MEMTRACE_SUPPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct report_options;
struct report_view;
struct mt_error;
struct mt_leak;
struct supp_set;

#define SUPP_MAX_FILE_BYTES (64u << 20) /* a bigger "suppression file" is an error */
#define SUPP_MAX_FRAMES 500             /* frame lines per entry (valgrind's limit) */

/* An empty set; NULL only when out of memory. */
struct supp_set *supp_set_new(void);
void supp_set_free(struct supp_set *set);

/* Reads the entries of PATH into SET. False after one line on stderr:
 * "memtrace: PATH:LINE: what is wrong" (or why PATH cannot be read). */
bool supp_read_file(struct supp_set *set, const char *path);

/* Parses LEN bytes of TEXT as if read from NAME (which the set copies). Same contract. */
bool supp_parse(struct supp_set *set, const char *name, const char *text, size_t len);

/* The shipped default file: next to the running binary, else ../share/memtrace/. Writes its
 * path to BUF and returns true when one of them exists. */
bool supp_default_file(char *buf, size_t size);

/* Every file OPTS names, in order, then the default file unless --default-suppressions=no
 * (a missing default file is not an error: a warning line, and no defaults). NULL, after
 * the line saying why, when a file is broken or memory ran out. */
struct supp_set *supp_load(const struct report_options *opts);

/* Matches every runtime error and loss record of V against SET and fills the view's
 * error_suppressed_by, leak_suppressed_by and used (names owned by SET, which must outlive
 * the view's use of them). False only when out of memory. */
bool supp_apply(struct supp_set *set, struct report_view *v);

/* The suppression entry valgrind's --gen-suppressions=all prints after an error, for a
 * runtime error or a loss record, written to OUT. */
void supp_print_error(FILE *out, const struct report_view *v, const struct mt_error *e);
void supp_print_leak(FILE *out, const struct report_view *v, const struct mt_leak *l);

#endif
