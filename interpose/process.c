/* process.c — process life-cycle entry points: load (start the runtime even if the
 * program never allocates), main's return, exit and _exit (the exit sequence: a program
 * that leaves with _exit, as fork children do, still gets its report), and dlopen (new
 * modules are recorded while it is safe, so their stacks can be symbolized after a
 * dlclose). */
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "interpose.h"
#include "runtime.h"

typedef int (*main_fn)(int, char **, char **);
typedef int (*start_main_fn)(main_fn, int, char **, void (*)(void), void (*)(void),
                             void (*)(void), void *);

static main_fn program_main;

/* glibc calls exit(main's result) from inside libc, out of reach of an interposed exit. */
static int main_with_exit_status(int argc, char **argv, char **envp)
{
    int status = program_main(argc, argv, envp);
    runtime_note_exit(status, (uintptr_t)__builtin_frame_address(0));
    return status;
}

MEMTRACE_EXPORT int __libc_start_main(main_fn main, int argc, char **argv, void (*init)(void),
                                      void (*fini)(void), void (*rtld_fini)(void), void *stack_end)
{
    start_main_fn real = (start_main_fn)dlsym(RTLD_NEXT, "__libc_start_main");
    program_main = main;
    return real(main_with_exit_status, argc, argv, init, fini, rtld_fini, stack_end);
}

__attribute__((constructor)) static void memtrace_load(void)
{
    runtime_ensure_ready();
}

__attribute__((destructor)) static void memtrace_unload(void)
{
    runtime_exit();
}

MEMTRACE_EXPORT void exit(int status)
{
    void (*real_exit)(int) = (void (*)(int))dlsym(RTLD_NEXT, "exit");
    runtime_note_exit(status, (uintptr_t)__builtin_frame_address(0));
    real_exit(status);
    __builtin_unreachable();
}

MEMTRACE_EXPORT void _exit(int status)
{
    runtime_note_exit(status, (uintptr_t)__builtin_frame_address(0));
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
