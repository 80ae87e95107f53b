/* new.c — every C++ operator new / delete variant (plain, nothrow, sized, aligned), by
 * their mangled names, so that new/delete mismatches can be told apart from malloc/free.
 * A failing throwing new behaves as the standard says: call the new-handler, or throw
 * std::bad_alloc through libstdc++ (looked up only when needed). */
#include <dlfcn.h>
#include <stdlib.h>

#include "heap.h"
#include "interpose.h"

typedef void (*new_handler_fn)(void);

static void *new_or_throw(size_t size, size_t align, enum alloc_kind kind)
{
    for (;;) {
        void *p = heap_alloc(size, align, kind);
        if (p)
            return p;
        new_handler_fn (*get_handler)(void) =
            (new_handler_fn (*)(void))dlsym(RTLD_DEFAULT, "_ZSt15get_new_handlerv");
        new_handler_fn handler = get_handler ? get_handler() : NULL;
        if (handler) {
            handler();
            continue;
        }
        void (*throw_bad_alloc)(void) =
            (void (*)(void))dlsym(RTLD_DEFAULT, "_ZSt17__throw_bad_allocv");
        if (throw_bad_alloc)
            throw_bad_alloc();
        abort();
    }
}

/* operator new(size_t) and new[] */
MEMTRACE_EXPORT void *_Znwm(size_t size) { return new_or_throw(size, 0, ALLOC_NEW); }
MEMTRACE_EXPORT void *_Znam(size_t size) { return new_or_throw(size, 0, ALLOC_NEW_ARRAY); }
/* nothrow */
MEMTRACE_EXPORT void *_ZnwmRKSt9nothrow_t(size_t size, const void *tag)
{
    (void)tag;
    return heap_alloc(size, 0, ALLOC_NEW);
}
MEMTRACE_EXPORT void *_ZnamRKSt9nothrow_t(size_t size, const void *tag)
{
    (void)tag;
    return heap_alloc(size, 0, ALLOC_NEW_ARRAY);
}
/* align_val_t */
MEMTRACE_EXPORT void *_ZnwmSt11align_val_t(size_t size, size_t align)
{
    return new_or_throw(size, align, ALLOC_NEW);
}
MEMTRACE_EXPORT void *_ZnamSt11align_val_t(size_t size, size_t align)
{
    return new_or_throw(size, align, ALLOC_NEW_ARRAY);
}
MEMTRACE_EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t size, size_t align, const void *tag)
{
    (void)tag;
    return heap_alloc(size, align, ALLOC_NEW);
}
MEMTRACE_EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t size, size_t align, const void *tag)
{
    (void)tag;
    return heap_alloc(size, align, ALLOC_NEW_ARRAY);
}

/* delete and delete[]: plain, sized, nothrow, aligned and their combinations */
MEMTRACE_EXPORT void _ZdlPv(void *p) { heap_free(p, ALLOC_NEW); }
MEMTRACE_EXPORT void _ZdaPv(void *p) { heap_free(p, ALLOC_NEW_ARRAY); }
MEMTRACE_EXPORT void _ZdlPvm(void *p, size_t size) { (void)size; heap_free(p, ALLOC_NEW); }
MEMTRACE_EXPORT void _ZdaPvm(void *p, size_t size) { (void)size; heap_free(p, ALLOC_NEW_ARRAY); }
MEMTRACE_EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const void *tag) { (void)tag; heap_free(p, ALLOC_NEW); }
MEMTRACE_EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const void *tag) { (void)tag; heap_free(p, ALLOC_NEW_ARRAY); }
MEMTRACE_EXPORT void _ZdlPvSt11align_val_t(void *p, size_t align) { (void)align; heap_free(p, ALLOC_NEW); }
MEMTRACE_EXPORT void _ZdaPvSt11align_val_t(void *p, size_t align) { (void)align; heap_free(p, ALLOC_NEW_ARRAY); }
MEMTRACE_EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t size, size_t align)
{
    (void)size;
    (void)align;
    heap_free(p, ALLOC_NEW);
}
MEMTRACE_EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t size, size_t align)
{
    (void)size;
    (void)align;
    heap_free(p, ALLOC_NEW_ARRAY);
}
MEMTRACE_EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *tag)
{
    (void)align;
    (void)tag;
    heap_free(p, ALLOC_NEW);
}
MEMTRACE_EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *tag)
{
    (void)align;
    (void)tag;
    heap_free(p, ALLOC_NEW_ARRAY);
}
