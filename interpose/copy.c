/* copy.c — strcpy, strcat and kin, checked for overlapping source and destination as
 * valgrind's replacements check them (src/overlap.h), then done by libc: its checked forms
 * (__memcpy_chk, __strncpy_chk ...) with no destination bound are the same copy, and being
 * libc's own they cannot lead back here. They are declared under other names: the compiler
 * knows __strncpy_chk(d, s, n, -1) as strncpy(d, s, n), which would call this file's
 * strncpy again.
 * memcpy and mempcpy are left alone: gcc copies a struct onto itself with memcpy(p, p, n)
 * (`*a = *b` with a == b), which valgrind here does not report either; memmove is meant
 * for overlap. */
#include <string.h>

#include "interpose.h"
#include "overlap.h"

char *libc_strncpy(char *dst, const char *src, size_t n, size_t dst_len) __asm__("__strncpy_chk");
char *libc_stpncpy(char *dst, const char *src, size_t n, size_t dst_len) __asm__("__stpncpy_chk");
void *libc_memcpy(void *dst, const void *src, size_t n, size_t dst_len) __asm__("__memcpy_chk");

#define UNBOUNDED ((size_t)-1)

/* A whole string and its terminator copied: their length, checked. The copy is then a
 * memcpy, the length being known. */
static size_t checked_string(const char *function, char *dst, const char *src)
{
    size_t len = strlen(src) + 1;
    if (overlap_between(dst, src, len, len))
        overlap_report(function, dst, src, 0);
    return len;
}

/* All n bytes of the destination are written; of the source, its string and terminator
 * if it ends within n. */
static void check_bounded(const char *function, char *dst, const char *src, size_t n)
{
    size_t len = strnlen(src, n);
    if (overlap_between(dst, src, n, len < n ? len + 1 : n))
        overlap_report(function, dst, src, n);
}

MEMTRACE_EXPORT char *strcpy(char *dst, const char *src)
{
    return libc_memcpy(dst, src, checked_string("strcpy", dst, src), UNBOUNDED);
}

MEMTRACE_EXPORT char *stpcpy(char *dst, const char *src)
{
    size_t len = checked_string("stpcpy", dst, src);
    return (char *)libc_memcpy(dst, src, len, UNBOUNDED) + len - 1;
}

MEMTRACE_EXPORT char *strncpy(char *dst, const char *src, size_t n)
{
    check_bounded("strncpy", dst, src, n);
    return libc_strncpy(dst, src, n, UNBOUNDED);
}

MEMTRACE_EXPORT char *stpncpy(char *dst, const char *src, size_t n)
{
    check_bounded("stpncpy", dst, src, n);
    return libc_stpncpy(dst, src, n, UNBOUNDED);
}

/* The destination is the whole string the concatenation makes, terminator included. The
 * copy to its end is a memcpy: libc's checked strcat is a byte loop, slow, and endless
 * when the source overlaps the end it moves. */
MEMTRACE_EXPORT char *strcat(char *dst, const char *src)
{
    size_t end = strlen(dst), len = strlen(src) + 1;
    if (overlap_between(dst, src, end + len, len))
        overlap_report("strcat", dst, src, 0);
    libc_memcpy(dst + end, src, len, UNBOUNDED);
    return dst;
}

MEMTRACE_EXPORT char *strncat(char *dst, const char *src, size_t n)
{
    size_t end = strlen(dst), len = strnlen(src, n);
    if (overlap_between(dst, src, end + len + 1, len < n ? len + 1 : len))
        overlap_report("strncat", dst, src, n);
    libc_memcpy(dst + end, src, len, UNBOUNDED);
    dst[end + len] = '\0';
    return dst;
}
