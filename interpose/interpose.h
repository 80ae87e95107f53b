/* interpose.h — what the thin entry points in interpose/ share: the attribute that
 * exports a symbol from libmemtrace.so (everything else is hidden), and the way to the
 * function an entry point stands in front of. The entry points do nothing but translate a
 * libc or C++ ABI call into the runtime's own calls. */
#ifndef MEMTRACE_INTERPOSE_H
#define MEMTRACE_INTERPOSE_H

#include <dlfcn.h>

#define MEMTRACE_EXPORT __attribute__((visibility("default")))

/* The definition of `name` after ours: libc's, usually. */
static inline void *interpose_next(const char *name)
{
    return dlsym(RTLD_NEXT, name);
}

#endif
