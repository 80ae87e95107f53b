/* exec.c — the exec family. Before a process replaces itself, its event log is marked, so
 * that the reporter does not mistake the unfinished log for a crash. glibc's exec
 * functions call execve inside libc, out of reach of an interposed execve: each is here. */
#include <stdarg.h>
#include <unistd.h>

#include "interpose.h"
#include "runtime.h"

#define MAX_LIST_ARGS 4096

typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*execv_fn)(const char *, char *const[]);

MEMTRACE_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    runtime_before_exec();
    return ((execve_fn)interpose_next("execve"))(path, argv, envp);
}

MEMTRACE_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    runtime_before_exec();
    return ((execve_fn)interpose_next("execvpe"))(file, argv, envp);
}

MEMTRACE_EXPORT int execv(const char *path, char *const argv[])
{
    runtime_before_exec();
    return ((execv_fn)interpose_next("execv"))(path, argv);
}

MEMTRACE_EXPORT int execvp(const char *file, char *const argv[])
{
    runtime_before_exec();
    return ((execv_fn)interpose_next("execvp"))(file, argv);
}

/* The execl forms: their variadic list, up to its NULL, becomes an argv on the stack. */
static void collect_args(char **args, const char *first, va_list *ap)
{
    size_t n = 0;
    args[n++] = (char *)first;
    while (n < MAX_LIST_ARGS && (args[n] = va_arg(*ap, char *)) != NULL)
        n++;
    args[n] = NULL;
}

MEMTRACE_EXPORT int execl(const char *path, const char *arg, ...)
{
    char *args[MAX_LIST_ARGS + 1];
    va_list ap;
    va_start(ap, arg);
    collect_args(args, arg, &ap);
    va_end(ap);
    return execv(path, args);
}

/* execlp is execl with a PATH search: the same list, handed to execvp. */
MEMTRACE_EXPORT int execlp(const char *file, const char *arg, ...)
{
    char *args[MAX_LIST_ARGS + 1];
    va_list ap;
    va_start(ap, arg);
    collect_args(args, arg, &ap);
    va_end(ap);
    return execvp(file, args);
}

MEMTRACE_EXPORT int execle(const char *path, const char *arg, ...)
{
    char *args[MAX_LIST_ARGS + 1];
    va_list ap;
    va_start(ap, arg);
    collect_args(args, arg, &ap);
    char **envp = va_arg(ap, char **);
    va_end(ap);
    return execve(path, args, envp);
}
