/* launch.c — starting the program under the runtime (see launch.h). */
#include "launch.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t running_child;

static void forward_signal(int sig)
{
    if (running_child > 0)
        kill(running_child, sig);
}

static bool is_executable_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static int search_path(const char *name, char *out, size_t size)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t len = strcspn(path, ":");
        if ((size_t)snprintf(out, size, "%.*s/%s", (int)len, len ? path : ".", name) < size &&
            is_executable_file(out))
            return 0;
        path += len + (path[len] == ':');
    }
    return -1;
}

/* An ELF file with no PT_INTERP is started by the kernel alone: nothing preloads into it. */
static bool is_static_elf(const char *path)
{
    Elf64_Ehdr eh;
    bool has_interp = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool elf = pread(fd, &eh, sizeof eh, 0) == (ssize_t)sizeof eh &&
               memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 && eh.e_ident[EI_CLASS] == ELFCLASS64;
    for (int i = 0; elf && i < eh.e_phnum && i < 4096; i++) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (uint64_t)i * eh.e_phentsize)) !=
            (ssize_t)sizeof ph)
            break;
        has_interp |= ph.p_type == PT_INTERP;
    }
    close(fd);
    return elf && !has_interp;
}

int launch_resolve_program(const char *name, char *out, size_t size)
{
    struct stat st;
    if (strchr(name, '/')) {
        if (snprintf(out, size, "%s", name) >= (int)size)
            return -1;
    } else if (search_path(name, out, size) != 0) {
        fprintf(stderr, "memtrace: cannot run '%s': not found in PATH\n", name);
        return -1;
    }
    if (stat(out, &st) != 0) {
        fprintf(stderr, "memtrace: cannot run '%s': %s\n", name, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode) || access(out, X_OK) != 0) {
        fprintf(stderr, "memtrace: cannot run '%s': not an executable file\n", name);
        return -1;
    }
    if (is_static_elf(out)) {
        fprintf(stderr, "memtrace: '%s' is statically linked: libmemtrace.so cannot be "
                        "preloaded into it (rebuild it dynamically linked)\n", name);
        return -1;
    }
    if ((st.st_mode & (S_ISUID | S_ISGID)) && geteuid() != 0) {
        fprintf(stderr, "memtrace: '%s' is set-user-ID or set-group-ID: the loader ignores "
                        "LD_PRELOAD for it\n", name);
        return -1;
    }
    return 0;
}

const char *launch_find_runtime(char *out, size_t size)
{
    static const char *const candidates[] = {"/libmemtrace.so", "/../lib/memtrace/libmemtrace.so"};
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = '\0';
        for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
            if (snprintf(out, size, "%s%s", self, candidates[i]) < (int)size &&
                access(out, R_OK) == 0) {
                char *real = realpath(out, NULL);
                if (real && strlen(real) < size)
                    strcpy(out, real);
                free(real);
                return out;
            }
    }
    fprintf(stderr, "memtrace: libmemtrace.so not found next to the memtrace binary\n");
    return NULL;
}

static void set_environment(const char *runtime_lib, const char *runtime_options)
{
    const char *old = getenv("LD_PRELOAD");
    char *preload;
    if (old && *old) {
        preload = malloc(strlen(runtime_lib) + strlen(old) + 2);
        sprintf(preload, "%s:%s", runtime_lib, old);
    } else {
        preload = strdup(runtime_lib);
    }
    setenv("LD_PRELOAD", preload, 1);
    setenv("MEMTRACE_OPTIONS", runtime_options, 1);
    free(preload);
}

/* Every log the run left: the program's own first, then its children's by pid. */
static void collect_logs(const char *log_pattern, struct launch_result *r)
{
    char pattern[PATH_MAX], own[PATH_MAX];
    size_t k = 0;
    glob_t g;

    for (const char *s = log_pattern; *s && k + 2 < sizeof pattern; s++) {
        if (s[0] == '%' && s[1] == 'p') {
            pattern[k++] = '*';
            s++;
        } else {
            pattern[k++] = *s;
        }
    }
    pattern[k] = '\0';
    snprintf(own, sizeof own, "%s", log_pattern);
    char *at = strstr(own, "%p");
    if (at) {
        char tail[PATH_MAX];
        snprintf(tail, sizeof tail, "%s", at + 2);
        snprintf(at, sizeof own - (size_t)(at - own), "%d%s", (int)r->pid, tail);
    }
    r->logs = calloc(1, sizeof(char *));
    r->nlogs = 0;
    if (glob(pattern, 0, NULL, &g) != 0)
        return;
    r->logs = realloc(r->logs, (g.gl_pathc + 1) * sizeof(char *));
    for (size_t i = 0; i < g.gl_pathc; i++)
        if (strcmp(g.gl_pathv[i], own) == 0)
            r->logs[r->nlogs++] = strdup(g.gl_pathv[i]);
    r->has_own_log = r->nlogs == 1;
    for (size_t i = 0; i < g.gl_pathc; i++)
        if (strcmp(g.gl_pathv[i], own) != 0)
            r->logs[r->nlogs++] = strdup(g.gl_pathv[i]);
    globfree(&g);
}

int launch_run(const char *path, char **argv, const char *runtime_lib,
               const char *runtime_options, const char *log_pattern,
               struct launch_result *result)
{
    int status, exec_pipe[2];
    char exec_errno_buf[sizeof(int)];

    memset(result, 0, sizeof *result);
    if (pipe2(exec_pipe, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(exec_pipe[0]);
        set_environment(runtime_lib, runtime_options);
        execv(path, argv);
        int err = errno;
        if (write(exec_pipe[1], &err, sizeof err) < 0)
            _exit(127);
        _exit(127);
    }
    close(exec_pipe[1]);
    running_child = pid;
    /* Like system(): the terminal's ^C goes to the program; we stay to write the report. */
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    signal(SIGTERM, forward_signal);
    signal(SIGHUP, forward_signal);
    ssize_t got = read(exec_pipe[0], exec_errno_buf, sizeof exec_errno_buf);
    close(exec_pipe[0]);
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    running_child = 0;
    if (got == (ssize_t)sizeof(int)) {
        int err;
        memcpy(&err, exec_errno_buf, sizeof err);
        fprintf(stderr, "memtrace: cannot run '%s': %s\n", argv[0], strerror(err));
        return -1;
    }
    result->pid = pid;
    result->signaled = WIFSIGNALED(status);
    result->exit_value = WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status);
    collect_logs(log_pattern, result);
    return 0;
}
