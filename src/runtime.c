/* runtime.c — start-up, fork and exit of the runtime (see runtime.h). */
#include "runtime.h"

#include <dlfcn.h>
#include <errno.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <spawn.h>
#include <ucontext.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blocks.h"
#include "eventlog.h"
#include "fault.h"
#include "guard.h"
#include "heap.h"
#include "leakscan.h"
#include "mappings.h"
#include "os.h"
#include "quarantine.h"
#include "slab.h"
#include "stacks.h"
#include "thread_registry.h"
#include "threads.h"
#include "unwind_cache.h"

#define POOL_ARENA_ORDER 26          /* 64 MiB arenas, reserved lazily by the kernel */
#define DEFAULT_STATIC_TLS 4096

struct options runtime_options;
struct pool runtime_pool;
__thread struct thread_state runtime_thread __attribute__((tls_model("initial-exec")));

extern char **environ;
extern const ElfW(Ehdr) __ehdr_start;   /* this library's own ELF header (linker-defined) */

static struct {
    int state;                       /* enum runtime_state */
    int tables_ready;
    int exit_done;
    bool own_log;                    /* no launcher: we render the report ourselves */
    bool thread_exit_key_ready;      /* thread_exit runs as each thread ends */
    int exit_kind;                   /* 0 unknown, 1 status, 2 signal */
    int exit_value;
    char options_text[1024];
    uintptr_t self_lo, self_hi;
    size_t static_tls_size;
    pid_t pid;                       /* the process whose log this is (fork updates it) */
} rt;

/* A vfork child (or a clone(CLONE_VM) one, as posix_spawn makes) runs in its parent's
 * memory without the atfork handlers: its exec and _exit must not touch the parent's log
 * or exit state. glibc does not cache the pid: getpid() is the calling process's. */
static bool in_borrowed_memory(void)
{
    return rt.pid != 0 && getpid() != rt.pid;
}

pid_t runtime_tid(void)
{
    if (!runtime_thread.tid)
        runtime_thread.tid = os_gettid();
    return runtime_thread.tid;
}

bool runtime_tables_ready(void)
{
    return __atomic_load_n(&rt.tables_ready, __ATOMIC_ACQUIRE);
}

static void say(const char *a, const char *b)
{
    char buf[1024];
    struct line l;
    line_init(&l, buf, sizeof buf - 1);
    line_str(&l, "memtrace: ");
    line_str(&l, a);
    line_str(&l, b);
    line_char(&l, '\n');
    os_write_all(2, l.buf, l.len);
}

/* Our own text and data, from our program headers: no loader lock needed. */
static void find_self(void)
{
    const ElfW(Phdr) *ph = (const ElfW(Phdr) *)((const char *)&__ehdr_start + __ehdr_start.e_phoff);
    uintptr_t base = (uintptr_t)&__ehdr_start;
    rt.self_lo = base;
    rt.self_hi = base;
    for (int i = 0; i < __ehdr_start.e_phnum; i++)
        if (ph[i].p_type == PT_LOAD && base + ph[i].p_vaddr + ph[i].p_memsz > rt.self_hi)
            rt.self_hi = base + ph[i].p_vaddr + ph[i].p_memsz;
}

static void find_static_tls_size(void)
{
    void (*get_info)(size_t *, size_t *) =
        (void (*)(size_t *, size_t *))dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info");
    size_t size = 0, align = 0;
    if (get_info)
        get_info(&size, &align);
    rt.static_tls_size = size ? size : DEFAULT_STATIC_TLS;
}

/* With --trace-children=no, programs started by exec must not load us again. */
static void drop_self_from_ld_preload(void)
{
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "LD_PRELOAD=", 11) != 0)
            continue;
        char *out = *e + 11;
        for (char *in = out; *in;) {
            char *end = in + strcspn(in, ": ");
            size_t len = (size_t)(end - in);
            bool ours = memmem(in, len, "libmemtrace", 11) != NULL;
            if (!ours && len > 0) {
                if (out != *e + 11)
                    *out++ = ':';
                memmove(out, in, len);
                out += len;
            }
            in = *end ? end + 1 : end;
        }
        *out = '\0';
    }
}

static bool open_log(void)
{
    const char *pattern = runtime_options.event_log;
    char own[600];
    if (!pattern[0]) {
        const char *tmp = os_getenv("TMPDIR");
        struct line l;
        line_init(&l, own, sizeof own - 1);
        line_str(&l, tmp && tmp[0] == '/' ? tmp : "/tmp");
        line_str(&l, "/memtrace.%p.log");
        own[l.len] = '\0';
        pattern = own;
        rt.own_log = true;
    }
    if (eventlog_open(&runtime_pool, pattern, rt.options_text))
        return true;
    say("cannot create the event log ", pattern);
    return false;
}

/* Every memtrace lock, in one order: for fork, and before stopping the world. */
static void fork_prepare(void)
{
    eventlog_lock();
    mappings_lock();
    quarantine_lock_all();
    guard_lock();
    blocks_lock_all();
    slab_lock_all();
    pool_fork_prepare(&runtime_pool);
}

static void fork_parent(void)
{
    pool_fork_parent(&runtime_pool);
    slab_unlock_all();
    blocks_unlock_all();
    guard_unlock();
    quarantine_unlock_all();
    mappings_unlock();
    eventlog_unlock();
}

static void fork_child(void)
{
    pool_fork_child(&runtime_pool);
    slab_reset_locks();
    blocks_reset_locks();
    guard_reset_lock();
    quarantine_reset_locks();
    mappings_reset_lock();
    eventlog_reset_lock();
    os_forget_held_locks();
    runtime_thread.tid = 0;
    rt.pid = getpid();
    rt.exit_done = 0;
    runtime_thread.busy = 1;
    eventlog_reopen_in_child();
    runtime_leave();
}

/* A reported fault or a termination signal is about to end the process: finish the log
 * first. Without ucontext the signal waited for memtrace to leave: this thread's own
 * registers and stack are the roots. */
static void end_log_before_death(int sig, void *ucontext)
{
    runtime_note_exit_signal(sig);
    if (ucontext)
        runtime_exit_from_signal(ucontext);
    else
        runtime_exit();
}

static bool read_options(void)
{
    char err[256];
    const char *text = os_getenv("MEMTRACE_OPTIONS");
    options_init(&runtime_options);
    if (!text)
        return true;
    size_t n = strlen(text);
    if (n >= sizeof rt.options_text)
        n = sizeof rt.options_text - 1;
    memcpy(rt.options_text, text, n);
    rt.options_text[n] = '\0';
    if (options_parse_string(&runtime_options, rt.options_text, err, sizeof err) == 0)
        return true;
    say("MEMTRACE_OPTIONS: ", err);
    return false;
}

struct tls_low {
    uintptr_t lo, floor;
};

static int lower_tls(struct dl_phdr_info *info, size_t size, void *ctx)
{
    struct tls_low *t = ctx;
    uintptr_t data = (uintptr_t)info->dlpi_tls_data;
    (void)size;
    if (data >= t->floor && data < t->lo)
        t->lo = data;
    return 0;
}

/* The lowest of the calling thread's static TLS blocks: its frames start below it. */
static uintptr_t static_tls_start(uintptr_t tp)
{
    struct tls_low t = {tp, tp - rt.static_tls_size};
    dl_iterate_phdr(lower_tls, &t);
    return t.lo;
}

/* Whether glibc frees the calling thread's stack as it ends (pthread_getattr_np may
 * allocate: the thread is marked busy). */
static bool thread_is_detached(void)
{
    pthread_attr_t attr;
    int state = PTHREAD_CREATE_JOINABLE;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getdetachstate(&attr, &state);
        pthread_attr_destroy(&attr);
    }
    return state == PTHREAD_CREATE_DETACHED;
}

/* Runs as each thread ends (a pthread key's destructor): the thread registry hears of it;
 * its unwind cache and its signal stack go back (kept, a program that made threads one
 * after another for long ran out of mappings: two a thread, vm.max_map_count 65530), and
 * its cached slab slots. */
static void thread_exit(void *unused)
{
    (void)unused;
    int was_busy = runtime_thread.busy;
    runtime_thread.busy = 1;         /* a signal handler's free must not reach the cache now */
    uintptr_t tp = (uintptr_t)__builtin_thread_pointer();
    thread_registry_ended(os_gettid(), static_tls_start(tp), tp, !thread_is_detached());
    unwind_cache_thread_exit();
    fault_thread_exit();
    slab_thread_exit();
    if (!was_busy)
        runtime_leave();
}

static pthread_key_t thread_exit_key;

/* The key's destructor only runs for a thread that set a value: done on its first call. */
void runtime_thread_start(void)
{
    uintptr_t lo, hi;
    if (!runtime_thread.exit_hooked && rt.thread_exit_key_ready) {
        runtime_thread.exit_hooked = 1;
        pthread_setspecific(thread_exit_key, &runtime_thread);
        if (os_gettid() != rt.pid && unwind_cache_stack_bounds(&lo, &hi))
            thread_registry_started(os_gettid(), lo, hi);
    }
}

static void initialize(void)
{
    runtime_thread.busy = 1;
    if (!read_options())
        _exit(2);
    rt.pid = getpid();
    find_self();
    pool_init(&runtime_pool, POOL_ARENA_ORDER, 0);
    if (!blocks_init(&runtime_pool) || !mappings_init(&runtime_pool) ||
        !stacks_init(&runtime_pool, rt.self_lo, rt.self_hi) || !heap_init(&runtime_pool)) {
        say("cannot map memory for the block table; not tracking", "");
        __atomic_store_n(&rt.state, RUNTIME_DISABLED, __ATOMIC_RELEASE);
        return;
    }
    __atomic_store_n(&rt.tables_ready, 1, __ATOMIC_RELEASE);
    if (!stacks_load_unwinder())
        say("cannot load libunwind.so.8; allocation stacks will be empty", "");
    fault_before_death = end_log_before_death;
    fault_set_continue(runtime_options.continue_after_fault);
    fault_install();
    term_signals_before_death = end_log_before_death;
    term_signals_install();
    find_static_tls_size();
    if (!runtime_options.trace_children)
        drop_self_from_ld_preload();
    bool logging = open_log();
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    rt.thread_exit_key_ready = pthread_key_create(&thread_exit_key, thread_exit) == 0;
    __atomic_store_n(&rt.state, logging ? RUNTIME_READY : RUNTIME_DISABLED, __ATOMIC_RELEASE);
    runtime_leave();
}

bool runtime_ensure_ready(void)
{
    int state = __atomic_load_n(&rt.state, __ATOMIC_ACQUIRE);
    if (state == RUNTIME_READY)
        return true;
    if (state == RUNTIME_UNINIT &&
        __atomic_compare_exchange_n(&rt.state, &state, RUNTIME_STARTING, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        initialize();
        return __atomic_load_n(&rt.state, __ATOMIC_ACQUIRE) == RUNTIME_READY;
    }
    if (runtime_thread.busy)
        return false;                /* our own initialisation, re-entered */
    while ((state = __atomic_load_n(&rt.state, __ATOMIC_ACQUIRE)) == RUNTIME_STARTING)
        sched_yield();
    return state == RUNTIME_READY;
}

void runtime_before_exec(void)
{
    if (__atomic_load_n(&rt.state, __ATOMIC_ACQUIRE) == RUNTIME_READY && !in_borrowed_memory())
        eventlog_exec();
}

void runtime_modules_changed(void)
{
    if (__atomic_load_n(&rt.state, __ATOMIC_ACQUIRE) == RUNTIME_READY)
        eventlog_write_modules();
}

/* ----------------------------------------------------------------------------------
 * Exit
 * -------------------------------------------------------------------------------- */

static void lock_everything(void)
{
    fork_prepare();
}

static void unlock_everything(void)
{
    fork_parent();
}

static void count_live(const struct block *b, void *ctx)
{
    struct heap_totals *t = ctx;
    if (b->state != BLOCK_LIVE)
        return;
    t->live_blocks++;
    t->live_bytes += b->size;
}

static void log_mapping(const struct mapping *m, void *ctx)
{
    (void)ctx;
    eventlog_mapping(m->start, m->end - m->start, m->stack);
}

static int find_reporter(char *out, size_t size)
{
    static const char *const candidates[] = {"/memtrace", "/../../bin/memtrace", "/../bin/memtrace"};
    Dl_info info;
    if (!dladdr((void *)find_reporter, &info) || !info.dli_fname)
        return -1;
    const char *slash = strrchr(info.dli_fname, '/');
    size_t dir_len = slash ? (size_t)(slash - info.dli_fname) : 0;
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        size_t n = strlen(candidates[i]);
        if (dir_len + n + 1 > size)
            continue;
        memcpy(out, info.dli_fname, dir_len);
        memcpy(out + dir_len, candidates[i], n + 1);
        if (access(out, X_OK) == 0)
            return 0;
    }
    return -1;
}

/* The reporter's environment: the program's without LD_PRELOAD (so the reporter is not
 * traced), copied into the pool, as glibc's freeres clears the program's. */
static char **reporter_env;

static void keep_reporter_environment(void)
{
    size_t nenv = 0, k = 0;
    while (environ && environ[nenv])
        nenv++;
    char **env = pool_alloc(&runtime_pool, (nenv + 1) * sizeof(char *));
    for (size_t i = 0; env && i < nenv; i++) {
        size_t len = strlen(environ[i]) + 1;
        char *copy = strncmp(environ[i], "LD_PRELOAD=", 11) ? pool_alloc(&runtime_pool, len) : NULL;
        if (copy)
            env[k++] = memcpy(copy, environ[i], len);
    }
    if (env)
        env[k] = NULL;
    reporter_env = env;
}

/* Without a launcher, the runtime starts the reporter on its own log and removes the log. */
static void run_reporter(void)
{
    char reporter[1024];
    const char *log = eventlog_path();
    pid_t pid;
    int status;

    if (!log || find_reporter(reporter, sizeof reporter) != 0) {
        say("no reporter found next to libmemtrace.so; event log kept in ", log ? log : "?");
        return;
    }
    if (!reporter_env)
        keep_reporter_environment();
    if (!reporter_env)
        return;
    char *argv[] = {reporter, "report", (char *)log, NULL};
    if (posix_spawn(&pid, reporter, NULL, NULL, argv, reporter_env) == 0)
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    unlink(log);
}

/* Set by exit(), main's return or _exit on the thread that runs the exit sequence. */
static __thread uintptr_t exit_frame __attribute__((tls_model("initial-exec")));
/* More than exit's handlers and memtrace's destructor ever take below it: a frame farther
 * off is not this exit's (a stack switched in between). */
#define EXIT_CHAIN_MAX (1ul << 20)

void runtime_note_exit(int status, uintptr_t frame)
{
    if (in_borrowed_memory())        /* a vfork child's: its TLS is its parent's too */
        return;
    exit_frame = frame;
    if (!rt.exit_kind) {
        rt.exit_kind = 1;
        rt.exit_value = status & 0xff;
    }
}

void runtime_note_exit_signal(int sig)
{
    if (in_borrowed_memory())
        return;
    rt.exit_kind = 2;
    rt.exit_value = sig;
}

/* The exiting thread's roots are its stack from `stack_from` up and `regs`. */
static void report_exit(uintptr_t stack_from, const void *regs, size_t regs_size)
{
    struct heap_totals totals;

    runtime_thread.busy = 1;         /* from here on, allocations are not ours to judge */
    eventlog_write_modules();        /* libraries loaded since: their stacks need them */
    heap_totals(&totals);            /* the scan retakes them with the world stopped */
    if (runtime_options.leak_check != 0) {
        struct scan_caller caller = {
            .stack_from = stack_from, .saved_regs = regs, .saved_regs_size = regs_size,
            .self_lo = rt.self_lo, .self_hi = rt.self_hi,
            .static_tls_size = rt.static_tls_size,
            .heuristics = runtime_options.leak_check_heuristics,
            .lock_all = lock_everything, .unlock_all = unlock_everything,
            .while_stopped = heap_check_all,
        };
        leakscan_run(&runtime_pool, &caller, &totals);
    } else {
        heap_check_all();            /* threads still running may race with it: no scan */
        blocks_for_each(count_live, &totals);
    }
    mappings_for_each(log_mapping, NULL);
    if (rt.exit_kind)
        eventlog_exit(rt.exit_kind == 2, rt.exit_value);
    eventlog_summary(&totals);
    eventlog_end();
    if (rt.own_log)
        run_reporter();
}

/* What glibc and libstdc++ free as valgrind ends a process (__libc_freeres,
 * __gnu_cxx::__freeres, in valgrind's order): their caches, kept until the end on purpose. */
static void free_library_caches(void)
{
    void (*cxx_freeres)(void) = NULL, (*libc_freeres)(void) = NULL;
    runtime_thread.busy = 1;         /* dlerror's state, made when a lookup fails, is ours */
    if (runtime_options.run_cxx_freeres)
        *(void **)&cxx_freeres = dlsym(RTLD_DEFAULT, "_ZN9__gnu_cxx9__freeresEv");
    if (runtime_options.run_libc_freeres)
        *(void **)&libc_freeres = dlsym(RTLD_DEFAULT, "__libc_freeres");
    runtime_thread.busy = 0;
    if (cxx_freeres)
        cxx_freeres();
    if (libc_freeres)
        libc_freeres();
}

/* What the program's stdio streams hold unwritten (or have read ahead) is the program's to
 * write at its own exit: the copy drops it, or the freeres, which flushes every stream,
 * would write it twice and move file offsets the copy shares with the program. */
static void drop_stdio_buffers(void)
{
    extern FILE *_IO_list_all;       /* glibc's chain of open streams */
    for (FILE *stream = _IO_list_all; stream; stream = stream->_chain)
        __fpurge(stream);
}

/* The caches freed, then the report, in a copy of the process: freed in the process
 * itself, they would be used by what exit still runs after memtrace's destructor (other
 * libraries' destructors, stdio's cleanup). The program waits for the copy and ends as
 * it would have. Only with one thread: a copy has the calling thread alone, the others'
 * registers would be lost. False when the copy did not get as far as reporting (then the
 * caller reports; one that died while reporting left a log the reporter calls truncated,
 * which a second report in it would only muddle). */
static bool report_exit_from_copy(uintptr_t stack_from, const void *regs, size_t regs_size)
{
    if (!(runtime_options.run_libc_freeres || runtime_options.run_cxx_freeres) || !threads_alone())
        return false;
    volatile uint32_t *reporting = os_mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (reporting == MAP_FAILED)
        return false;
    /* A plain clone with no exit signal: no atfork handler runs (the program's, or
     * memtrace's, which would start a new log), no SIGCHLD reaches the program. */
    pid_t copy = (pid_t)syscall(SYS_clone, 0, NULL, NULL, NULL, NULL);
    if (copy == 0) {
        rt.pid = getpid();
        if (rt.own_log)
            keep_reporter_environment();
        drop_stdio_buffers();
        free_library_caches();
        *reporting = 1;
        report_exit(stack_from, regs, regs_size);
        syscall(SYS_exit_group, 0);
    }
    int status;
    while (copy > 0 && waitpid(copy, &status, __WCLONE) < 0 && errno == EINTR) {
    }
    bool taken = copy > 0 && *reporting;
    os_munmap((void *)reporting, 4096);
    return taken;
}

static void exit_sequence(uintptr_t stack_from, const void *regs, size_t regs_size, bool free_caches)
{
    if (in_borrowed_memory())        /* a vfork child's _exit: the parent reports later */
        return;
    if (__atomic_exchange_n(&rt.exit_done, 1, __ATOMIC_ACQ_REL) ||
        __atomic_load_n(&rt.state, __ATOMIC_ACQUIRE) != RUNTIME_READY)
        return;
    if (!free_caches || !report_exit_from_copy(stack_from, regs, regs_size))
        report_exit(stack_from, regs, regs_size);
    runtime_leave();                 /* later destructors allocate as usual, unreported */
}

void runtime_exit(void)
{
    jmp_buf regs;
    /* setjmp fills the register words only: the rest (the signal mask's room) would hold
     * whatever dead frames left on the stack here. */
    memset(regs, 0, sizeof regs);
    setjmp(regs);                    /* spills callee-saved registers: they are roots */
    uintptr_t from = (uintptr_t)__builtin_frame_address(0);
    if (exit_frame > from && exit_frame - from < EXIT_CHAIN_MAX)
        from = exit_frame;
    exit_sequence(from, regs, sizeof regs, rt.exit_kind != 2);   /* not as a signal kills it */
}

void runtime_exit_from_signal(const void *ucontext)
{
    const ucontext_t *uc = ucontext;
    exit_sequence((uintptr_t)uc->uc_mcontext.gregs[REG_RSP] - 128, uc->uc_mcontext.gregs,
                  sizeof uc->uc_mcontext.gregs, false);
}
