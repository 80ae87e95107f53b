/* check.h — the unit tests' one assertion: CHECK counts passes and failures and names the
 * failing line; CHECK_DONE prints "NAME: N passed, M failed" and gives the exit status. */
#ifndef MEMTRACE_CHECK_H
#define MEMTRACE_CHECK_H

#include <stdio.h>

static int passed, failed;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (cond) {                                                          \
            passed++;                                                        \
        } else {                                                             \
            failed++;                                                        \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, \
                    #cond);                                                  \
        }                                                                    \
    } while (0)

#define CHECK_DONE(name) \
    (printf("%s: %d passed, %d failed\n", name, passed, failed), failed ? 1 : 0)

#endif
