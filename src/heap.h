/* heap.h — what every interposed allocation entry point calls: places each block (guarded
 * pool or glibc memory with redzones), records it with its allocation stack, checks every
 * release (invalid, double, mismatched; fishy sizes; overwritten redzones) and holds freed
 * blocks in quarantine. Calls made while memtrace itself runs on the thread (its dlopen, a
 * signal handler that interrupted it) are served apart, by src/nested.h. */
#ifndef MEMTRACE_HEAP_H
#define MEMTRACE_HEAP_H

#include <stddef.h>

#include "blocks.h"
#include "eventlog.h"
#include "pool.h"

/* After the block table: the quarantine, the guarded pool (per --guard) and its policy. */
bool heap_init(struct pool *pool);
void *heap_alloc(size_t size, size_t align, enum alloc_kind kind);
void *heap_calloc(size_t count, size_t size);
void *heap_realloc(void *ptr, size_t size);
void heap_free(void *ptr, enum alloc_kind kind);
size_t heap_usable_size(void *ptr);
/* posix_memalign's contract: EINVAL for a bad alignment, ENOMEM, or 0. */
int heap_posix_memalign(void **out, size_t align, size_t size);

/* munmap/mprotect of [addr, addr+len): false (after a report) when it would take memory
 * from under memtrace or glibc's heap; a range with no mapping at all is reported but
 * allowed (the kernel ignores it). */
bool heap_check_unmap(void *addr, size_t len, bool is_mprotect);
/* mprotect: as heap_check_unmap, except that pages inside one live block are the
 * program's to protect (and are opened again when the block is freed). */
bool heap_check_mprotect(void *addr, size_t len, int prot);
void heap_totals(struct heap_totals *out);
/* At exit: every redzone of a live block, every pattern of a quarantined one. */
void heap_check_all(void);

#endif
