/* mmap.c — the program's own mappings, recorded so that the leak scan can use the
 * writable ones as roots (see src/mappings.h), and munmap/mprotect checked so that the
 * program cannot take memtrace's or the heap's memory away (src/heap.h). The calls
 * themselves are raw syscalls: libc's wrappers are what we replace. sbrk and brk too, for
 * programs that grow the data segment themselves (glibc's malloc calls its own __sbrk,
 * not these), and SysV shared memory (shmat/shmdt). */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/shm.h>
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

/* The break moved from old to new: the program's pages gained or lost. */
static void record_break(uintptr_t old, uintptr_t new)
{
    if (new > old)
        record_mapping((void *)old, new - old, PROT_READ | PROT_WRITE, false);
    else if (new < old && runtime_tables_ready())
        mappings_remove(new, old - new);
}

MEMTRACE_EXPORT void *sbrk(intptr_t increment)
{
    static void *(*real_sbrk)(intptr_t);
    if (!real_sbrk)
        real_sbrk = (void *(*)(intptr_t))dlsym(RTLD_NEXT, "sbrk");
    void *old = real_sbrk(increment);
    if (old != (void *)-1 && increment != 0)
        record_break((uintptr_t)old, (uintptr_t)old + (uintptr_t)increment);
    return old;
}

MEMTRACE_EXPORT int brk(void *addr)
{
    static int (*real_brk)(void *);
    if (!real_brk)
        real_brk = (int (*)(void *))dlsym(RTLD_NEXT, "brk");
    void *old = sbrk(0);
    int rc = real_brk(addr);
    if (rc == 0 && old != (void *)-1)
        record_break((uintptr_t)old, (uintptr_t)addr);
    return rc;
}

MEMTRACE_EXPORT void *shmat(int shmid, const void *addr, int flags)
{
    void *p = (void *)syscall(SYS_shmat, shmid, addr, flags);
    struct shmid_ds segment;
    if (p != (void *)-1 && shmctl(shmid, IPC_STAT, &segment) == 0)
        record_mapping(p, segment.shm_segsz,
                       flags & SHM_RDONLY ? PROT_READ : PROT_READ | PROT_WRITE,
                       (flags & SHM_REMAP) != 0);
    return p;
}

MEMTRACE_EXPORT int shmdt(const void *addr)
{
    size_t len = runtime_tables_ready() ? mappings_length_at((uintptr_t)addr) : 0;
    int rc = (int)syscall(SYS_shmdt, addr);
    if (rc == 0 && len)
        mappings_remove((uintptr_t)addr, len);
    return rc;
}
