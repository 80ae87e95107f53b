/* overlap.h — memcheck's overlap check for the copying string functions (strcpy, strcat
 * and kin): their source and destination must not overlap, and a program that lets them
 * gets whatever the library's copy order makes of it. The entry points (interpose/copy.c)
 * test the ranges, as valgrind's replacements do, and report here; the copy itself is
 * always libc's own. */
#ifndef MEMTRACE_OVERLAP_H
#define MEMTRACE_OVERLAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Whether [dst, dst+dst_len) and [src, src+src_len) share a byte (never for an empty one). */
static inline bool overlap_between(const void *dst, const void *src, size_t dst_len, size_t src_len)
{
    uintptr_t d = (uintptr_t)dst, s = (uintptr_t)src;
    if (dst_len == 0 || src_len == 0)
        return false;
    return s <= d ? d - s < src_len : s - d < dst_len;
}

/* Reports an overlapping copy by `function` (valgrind's name: "strcpy", "strncpy" ...);
 * size: the length argument, 0 for functions without one. Nothing while memtrace itself
 * runs on the thread. */
void overlap_report(const char *function, const void *dst, const void *src, size_t size);

#endif
