/* compare.h — `memtrace compare MEMTRACE.json VALGRIND.xml`: the findings of one memtrace
 * JSON report and one valgrind --xml=yes file (protocol 4) of the same program, matched by
 * kind and by the functions of the program's own frames (docs/ci.md). Prints one table —
 * found by both, only by memtrace, only by valgrind, with bytes for loss records — and
 * exits 0 when the two agree, 1 when they differ, 2 on bad input (one line saying why). */
#ifndef MEMTRACE_COMPARE_H
#define MEMTRACE_COMPARE_H

#include <stdio.h>

/* ARGV[0] is "compare" (or the program), ARGV[1..] the two files. */
int compare_main(int argc, char **argv, FILE *out);

#endif
