/* process.c — process life-cycle entry points: load (start the runtime even if the
 * program never allocates), unload and _exit (the exit sequence: a program that leaves
 * with _exit, as fork children do, still gets its report), and dlopen (new modules are
 * recorded while it is safe, so their stacks can be symbolized after a dlclose). */
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "interpose.h"
#include "runtime.h"

__attribute__((constructor)) static void memtrace_load(void)
{
    runtime_ensure_ready();
}

__attribute__((destructor)) static void memtrace_unload(void)
{
    runtime_exit();
}

MEMTRACE_EXPORT void _exit(int status)
{
    runtime_exit();
    for (;;)
        syscall(SYS_exit_group, status);
}

MEMTRACE_EXPORT void _Exit(int status)
{
    _exit(status);
}

MEMTRACE_EXPORT void *dlopen(const char *file, int mode)
{
    static void *(*real_dlopen)(const char *, int);
    if (!real_dlopen)
        real_dlopen = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
    void *handle = real_dlopen(file, mode);
    if (handle)
        runtime_modules_changed();
    return handle;
}
