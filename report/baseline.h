/* baseline.h — --baseline=OLD.json: which errors of this run an earlier memtrace JSON report
 * already had. An error is known when OLD has one of the same kind (and leak kind) whose
 * stack names the same functions in the same files, frame by frame; addresses, pcs and line
 * numbers are ignored (code moves within a function from one commit to the next), and files
 * are compared by base name (a baseline made in another checkout still applies). Only new
 * errors count toward summary.errors and --error-exitcode. */
#ifndef MEMTRACE_BASELINE_H
#define MEMTRACE_BASELINE_H

#include <stdbool.h>
#include <stddef.h>

struct baseline;
struct report_view;
struct json;
struct sym_stack;

/* Reads PATH. NULL after one line on stderr when it cannot be read or is not a memtrace
 * JSON report. */
struct baseline *baseline_load(const char *path);
void baseline_free(struct baseline *base);

/* Fills V's error_known and leak_known. False only when out of memory. When OLD lists no
 * indirect loss records (the default --show-leak-kinds leaves them out, yet they count as
 * errors), this run's indirect records are known when every record that owns indirect
 * blocks (definite or possible, with indirect bytes) is known. */
bool baseline_apply(const struct baseline *base, struct report_view *v);

/* The comparison key of one error: KIND, LEAK_KIND (NULL for runtime errors) and its frames,
 * from a symbolized stack or from a JSON stack array. malloc'd; NULL when out of memory. */
char *baseline_key_sym(const char *kind, const char *leak_kind, const struct sym_stack *s);
char *baseline_key_json(const char *kind, const char *leak_kind, const struct json *stack);

#endif
