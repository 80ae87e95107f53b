/* malloc.c — the C allocation entry points. glibc's aligned allocators do not go through
 * malloc, so every one of them is interposed here. */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

#include "heap.h"
#include "interpose.h"

MEMTRACE_EXPORT void *malloc(size_t size)
{
    return heap_alloc(size, 0, ALLOC_MALLOC);
}

MEMTRACE_EXPORT void free(void *ptr)
{
    heap_free(ptr, ALLOC_MALLOC);
}

MEMTRACE_EXPORT void cfree(void *ptr)
{
    heap_free(ptr, ALLOC_MALLOC);
}

MEMTRACE_EXPORT void *calloc(size_t count, size_t size)
{
    return heap_calloc(count, size);
}

MEMTRACE_EXPORT void *realloc(void *ptr, size_t size)
{
    return heap_realloc(ptr, size);
}

MEMTRACE_EXPORT void *reallocarray(void *ptr, size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return heap_realloc(ptr, total);
}

MEMTRACE_EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
    return heap_posix_memalign(out, align, size);
}

MEMTRACE_EXPORT void *aligned_alloc(size_t align, size_t size)
{
    if (align == 0 || (align & (align - 1))) {
        errno = EINVAL;
        return NULL;
    }
    return heap_alloc(size, align, ALLOC_MALLOC);
}

/* glibc's memalign rounds a non-power-of-two alignment up; so do we. */
MEMTRACE_EXPORT void *memalign(size_t align, size_t size)
{
    size_t pow2 = 16;
    while (pow2 < align && pow2 < ((size_t)1 << 62))
        pow2 <<= 1;
    return heap_alloc(size, pow2, ALLOC_MALLOC);
}

MEMTRACE_EXPORT void *valloc(size_t size)
{
    return heap_alloc(size, (size_t)sysconf(_SC_PAGESIZE), ALLOC_MALLOC);
}

MEMTRACE_EXPORT void *pvalloc(size_t size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t rounded = (size + page - 1) & ~(page - 1);
    return heap_alloc(rounded ? rounded : page, page, ALLOC_MALLOC);
}

MEMTRACE_EXPORT size_t malloc_usable_size(void *ptr)
{
    return heap_usable_size(ptr);
}
