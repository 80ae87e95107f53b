/* launch.h — runs the program under the runtime: checks that it can be preloaded at all,
 * starts it with LD_PRELOAD and MEMTRACE_OPTIONS, waits for it, and finds the event logs
 * it (and any child process) left behind. */
#ifndef MEMTRACE_LAUNCH_H
#define MEMTRACE_LAUNCH_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

struct launch_result {
    pid_t pid;
    bool signaled;
    int exit_value;                 /* exit status, or the signal that ended it */
    char **logs;                    /* event logs found, the program's own first */
    int nlogs;
    bool has_own_log;               /* logs[0] is the program's own (not a child's) */
};

/* Resolves `name` like execvp would; writes the path into out. Returns 0, or -1 after
 * printing one line explaining why it cannot be run under memtrace (missing, not
 * executable, statically linked, set-user-ID). */
int launch_resolve_program(const char *name, char *out, size_t size);
/* The libmemtrace.so that belongs with this memtrace binary, or NULL (with a message). */
const char *launch_find_runtime(char *out, size_t size);
/* Runs argv[0] (already resolved to `path`) and waits. `log_pattern` is where the
 * runtime writes its logs (%p = pid); `runtime_options` goes into MEMTRACE_OPTIONS.
 * Returns 0, or -1 when the program could not be started. */
int launch_run(const char *path, char **argv, const char *runtime_lib,
               const char *runtime_options, const char *log_pattern,
               struct launch_result *result);

#endif
