/* heap.h — what every interposed allocation entry point calls: records each block with
 * its allocation stack, checks every release (invalid, mismatched, fishy sizes) and
 * forwards to glibc's own allocator (__libc_*), which still owns the memory.
 * Re-entrant calls (from dlopen, from the unwinder) are forwarded and recorded with no
 * stack, so a later free of them is not mistaken for an invalid free. */
#ifndef MEMTRACE_HEAP_H
#define MEMTRACE_HEAP_H

#include <stddef.h>

#include "blocks.h"
#include "eventlog.h"

void *heap_alloc(size_t size, size_t align, enum alloc_kind kind);
void *heap_calloc(size_t count, size_t size);
void *heap_realloc(void *ptr, size_t size);
void heap_free(void *ptr, enum alloc_kind kind);
size_t heap_usable_size(void *ptr);
/* posix_memalign's contract: EINVAL for a bad alignment, ENOMEM, or 0. */
int heap_posix_memalign(void **out, size_t align, size_t size);

void heap_totals(struct heap_totals *out);

#endif
