/* mmap.c — the program's own mappings, recorded so that the leak scan can use the
 * writable ones as roots (see src/mappings.h), and munmap/mprotect checked so that the
 * program cannot take memtrace's or the heap's memory away (src/heap.h). The calls
 * themselves are raw syscalls: libc's wrappers are what we replace. */
#include <errno.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "heap.h"
#include "interpose.h"
#include "mappings.h"
#include "os.h"
#include "runtime.h"
#include "stacks.h"

static void record_mapping(void *p, size_t len, int prot, bool replaces)
{
    if (p == MAP_FAILED || !runtime_ensure_ready() || runtime_thread.busy)
        return;
    runtime_thread.busy = 1;
    mappings_add((uintptr_t)p, len, prot, stacks_capture(runtime_options.num_callers), replaces);
    runtime_leave();
}

MEMTRACE_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset)
{
    void *p = os_mmap(addr, len, prot, flags, fd, offset);
    record_mapping(p, len, prot, (flags & MAP_FIXED) != 0);
    return p;
}

MEMTRACE_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t offset)
{
    return mmap(addr, len, prot, flags, fd, offset);
}

MEMTRACE_EXPORT int munmap(void *addr, size_t len)
{
    if (!heap_check_unmap(addr, len, false)) {
        errno = EINVAL;
        return -1;
    }
    int rc = os_munmap(addr, len);
    if (rc == 0 && runtime_tables_ready())
        mappings_remove((uintptr_t)addr, len);
    return rc;
}

MEMTRACE_EXPORT int mprotect(void *addr, size_t len, int prot)
{
    if (!heap_check_mprotect(addr, len, prot)) {
        errno = EACCES;
        return -1;
    }
    int rc = os_mprotect(addr, len, prot);
    if (rc == 0 && runtime_tables_ready())
        mappings_protect((uintptr_t)addr, len, prot);
    return rc;
}

MEMTRACE_EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
    va_list ap;
    void *wanted = NULL;
    if (flags & MREMAP_FIXED) {
        va_start(ap, flags);
        wanted = va_arg(ap, void *);
        va_end(ap);
    }
    void *p = (void *)syscall(SYS_mremap, old, old_len, new_len, flags, wanted);
    if (p != MAP_FAILED && runtime_tables_ready()) {
        mappings_remove((uintptr_t)old, old_len);
        record_mapping(p, new_len, PROT_READ | PROT_WRITE, (flags & MREMAP_FIXED) != 0);
    }
    return p;
}
