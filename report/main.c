/* main.c — the `memtrace` command: `memtrace [options] program [args]` runs a program
 * under the runtime and reports; `memtrace report LOG` renders a saved event log.
 * Exit codes: the program's own status (or its fatal signal, re-raised); N from
 * --error-exitcode=N when errors were found; 2 for a usage error, a program that cannot
 * be run under memtrace, a report file or event log that cannot be written, or an
 * unreadable log. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "baseline.h"
#include "compare.h"
#include "launch.h"
#include "options.h"
#include "report.h"
#include "suppress.h"

#define EXIT_USAGE 2

static void print_help(void)
{
    printf("usage: memtrace [options] program [args...]\n"
           "       memtrace report [options] EVENT-LOG\n"
           "       memtrace compare MEMTRACE.json VALGRIND.xml\n\n"
           "Runs the program with libmemtrace.so preloaded and reports leaks and heap errors\n"
           "when it exits. Options (also read from MEMTRACE_OPTIONS as key=value words):\n");
    for (size_t i = 0; i < option_count; i++) {
        const struct option_info *o = &option_infos[i];
        char left[64];
        snprintf(left, sizeof left, "--%s=%s", o->name,
                 o->type == OPT_BOOL ? "yes|no" : o->type == OPT_CHOICE ? o->choices :
                 o->type == OPT_PATH || o->type == OPT_PATHS ? "FILE" : o->type == OPT_KINDS ? (o->choices ? "SET" : "KINDS") :
                 o->type == OPT_GUARD ? "MODE" : o->type == OPT_BYTE ? "0xNN" : "N");
        printf("  %-36s %s\n", left, o->help);
    }
    printf("  %-36s %s\n  %-36s %s\n", "-q", "same as --quiet=yes", "--help, --version",
           "this text; the version");
    printf("\nExit status: the program's own, unless --error-exitcode applies;"
           " 2 on a usage error or a report file that cannot be written.\n");
}

/* Applies one command-line option; returns 0, or -1 after printing why not. */
static int apply_option(struct options *opts, const char *arg)
{
    char err[256];
    if (strcmp(arg, "-q") == 0 || strcmp(arg, "--quiet") == 0) {
        opts->quiet = true;
        return 0;
    }
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    if (strncmp(arg, "--", 2) == 0 && !eq && options_scope(name, strlen(name))) {
        fprintf(stderr, "memtrace: option '%s' needs a value (%s=...; see memtrace --help)\n",
                arg, arg);
        return -1;
    }
    if (strncmp(arg, "--", 2) != 0 || !eq) {
        fprintf(stderr, "memtrace: unknown option '%s' (see memtrace --help)\n", arg);
        return -1;
    }
    if (options_set(opts, name, (size_t)(eq - name), eq + 1, strlen(eq + 1), err, sizeof err) != 0) {
        fprintf(stderr, "memtrace: %s (see memtrace --help)\n", err);
        return -1;
    }
    return 0;
}

/* Parses options up to the first non-option; returns its index, or -1. */
static int parse_options(struct options *opts, int argc, char **argv, int first)
{
    int i;
    for (i = first; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--") == 0)
            return i + 1;
        if (apply_option(opts, argv[i]) != 0)
            return -1;
    }
    return i;
}

static void to_report_options(const struct options *opts, struct report_options *r)
{
    report_options_init(r);
    r->leak_check = (enum leak_check_mode)opts->leak_check;
    r->show_leak_kinds = opts->show_leak_kinds;
    r->errors_for_leak_kinds = opts->errors_for_leak_kinds;
    r->num_callers = opts->num_callers;
    r->quiet = opts->quiet;
    r->text_path = opts->log_file[0] ? opts->log_file : NULL;
    r->json_path = opts->json[0] ? opts->json : NULL;
    r->xml_path = opts->xml && opts->xml_file[0] ? opts->xml_file : NULL;
    r->sarif_path = opts->sarif[0] ? opts->sarif : NULL;
    r->markdown_path = opts->markdown[0] ? opts->markdown : NULL;
    r->source_root = opts->source_root[0] ? opts->source_root : NULL;
    r->debug_cache = opts->debug_cache[0] ? opts->debug_cache : NULL;
    static const char *supp[OPTION_PATHS_MAX];
    for (int i = 0; i < opts->suppressions.count; i++)
        supp[i] = opts->suppressions.path[i];
    r->suppression_files = supp;
    r->nsuppression_files = (size_t)opts->suppressions.count;
    r->default_suppressions = opts->default_suppressions;
    r->gen_suppressions = opts->gen_suppressions != 0;
    r->baseline_path = opts->baseline[0] ? opts->baseline : NULL;
}

/* The defaults, then MEMTRACE_OPTIONS; false after saying what is wrong. */
static bool options_from_env(struct options *opts)
{
    char err[256];
    const char *env = getenv("MEMTRACE_OPTIONS");
    options_init(opts);
    if (env && options_parse_string(opts, env, err, sizeof err) != 0) {
        fprintf(stderr, "memtrace: MEMTRACE_OPTIONS: %s\n", err);
        return false;
    }
    return true;
}

/* valgrind refuses --xml=yes without a place to write it, rather than write nothing. */
static bool xml_has_file(const struct options *opts)
{
    if (opts->xml && !opts->xml_file[0])
        fprintf(stderr, "memtrace: --xml=yes needs --xml-file=FILE to write to\n");
    return !opts->xml || opts->xml_file[0];
}

/* `memtrace report [options] LOG [options]`: MEMTRACE_OPTIONS first, then the command line. */
static int command_report(int argc, char **argv)
{
    struct options opts;
    struct report_options ropts;
    struct report_result result;
    const char *log = NULL;

    if (!options_from_env(&opts))
        return EXIT_USAGE;
    for (int i = 2; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            if (apply_option(&opts, argv[i]) != 0)
                return EXIT_USAGE;
        } else if (!log) {
            log = argv[i];
        } else {
            log = NULL;
            break;
        }
    }
    if (!log) {
        fprintf(stderr, "memtrace: usage: memtrace report [options] EVENT-LOG\n");
        return EXIT_USAGE;
    }
    if (!xml_has_file(&opts))
        return EXIT_USAGE;
    to_report_options(&opts, &ropts);
    if (report_log(log, &ropts, &result) != 0)
        return EXIT_USAGE;
    return opts.error_exitcode && result.errors > 0 ? opts.error_exitcode : 0;
}

/* Appends WORD (key=value, LEN bytes) to the runtime's options text when it is the
 * runtime's; the event log's place is the launcher's to give. */
static size_t add_runtime_word(const char *word, size_t len, char *out, size_t size, size_t at)
{
    const char *eq = memchr(word, '=', len);
    size_t name_len = eq ? (size_t)(eq - word) : 0;
    if (!eq || at >= size || !(options_scope(word, name_len) & SCOPE_RUNTIME) ||
        (name_len == 9 && strncmp(word, "event-log", 9) == 0))
        return at;
    return at + (size_t)snprintf(out + at, size - at, " %.*s", (int)len, word);
}

/* The runtime's share of the options, as MEMTRACE_OPTIONS words: those of the
 * MEMTRACE_OPTIONS memtrace was given, then the command line's. */
static void runtime_options_text(const char *env, char **argv, int last, const char *log_pattern,
                                 char *out, size_t size)
{
    size_t len = (size_t)snprintf(out, size, "event-log=%s", log_pattern);
    for (const char *w = env ? env : ""; *w;) {
        size_t n = strcspn(w, " \t");
        len = add_runtime_word(w, n, out, size, len);
        w += n + strspn(w + n, " \t");
    }
    for (int i = 1; i < last; i++)
        if (strncmp(argv[i], "--", 2) == 0)
            len = add_runtime_word(argv[i] + 2, strlen(argv[i] + 2), out, size, len);
}

/* MEMTRACE_OPTIONS, then the command line up to the program: the index of the program's
 * name, or -1 after saying what is wrong. */
static int read_options(struct options *opts, int argc, char **argv, int first)
{
    if (!options_from_env(opts))
        return -1;
    int at = parse_options(opts, argc, argv, first);
    return at >= 0 && xml_has_file(opts) ? at : -1;
}

/* The program's own exit, passed on: a fatal signal is raised again, without a core. */
static int pass_on_exit(const struct launch_result *run)
{
    if (!run->signaled)
        return run->exit_value;
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    signal(run->exit_value, SIG_DFL);
    raise(run->exit_value);
    return 128 + run->exit_value;
}

/* 1 when errors were found, 0 when none; -1 when a report file could not be written or the
 * program's own log could not be read (said on stderr). */
static int render_logs(const struct options *opts, const struct launch_result *run,
                       char *const *command, int ncommand)
{
    long errors = 0;
    bool failed = false;
    for (int i = 0; i < run->nlogs; i++) {
        struct report_options ropts;
        struct report_result result;
        to_report_options(opts, &ropts);
        bool own = i == 0 && run->has_own_log;
        /* Without %p, only the program's own report goes to the named files. */
        const char **paths[] = { &ropts.text_path, &ropts.json_path, &ropts.xml_path,
                                 &ropts.sarif_path, &ropts.markdown_path };
        for (size_t k = 0; !own && k < sizeof paths / sizeof *paths; k++)
            if (*paths[k] && !strstr(*paths[k], "%p"))
                *paths[k] = NULL;
        ropts.exit_known = own;
        ropts.hide_event_log = !opts->event_log[0];
        if (own) {
            ropts.command = command;
            ropts.ncommand = (size_t)ncommand;
        }
        ropts.exit_signaled = run->signaled;
        ropts.exit_value = run->exit_value;
        if (report_log(run->logs[i], &ropts, &result) == 0)
            errors += result.errors;
        else if (own || result.output_failed)
            failed = true;
    }
    return failed ? -1 : errors > 0;
}

/* The logs are removed unless the user asked to keep them (--event-log). */
static void finish_logs(struct launch_result *run, const char *dir, bool keep)
{
    for (int i = 0; i < run->nlogs; i++) {
        if (!keep)
            unlink(run->logs[i]);
        free(run->logs[i]);
    }
    free(run->logs);
    run->logs = NULL;
    rmdir(dir);
}

/* Suppression files and the baseline are read before the program runs, as valgrind reads
 * its suppressions first: a broken one stops memtrace with its one line, not after a long run.
 * So are the places the report files and the event log will be written. */
static bool inputs_readable(const struct options *opts)
{
    struct report_options r;
    to_report_options(opts, &r);
    const char *outputs[] = {r.text_path, r.json_path, r.xml_path, r.sarif_path, r.markdown_path};
    for (size_t i = 0; i < sizeof outputs / sizeof outputs[0]; i++)
        if (outputs[i] && !report_check_output(outputs[i], false))
            return false;
    if (opts->event_log[0] && !report_check_output(opts->event_log, true))
        return false;
    struct supp_set *set = supp_load(&r);
    struct baseline *base = set && r.baseline_path ? baseline_load(r.baseline_path) : NULL;
    bool ok = set && (!r.baseline_path || base);
    supp_set_free(set);
    baseline_free(base);
    return ok;
}

static int command_run(int argc, char **argv)
{
    struct options opts;
    struct launch_result run;
    char program[PATH_MAX], runtime[PATH_MAX], dir[PATH_MAX], pattern[PATH_MAX + 16];
    char runtime_text[4096];

    int first = read_options(&opts, argc, argv, 1);
    if (first < 0)
        return EXIT_USAGE;
    if (first >= argc) {
        fprintf(stderr, "memtrace: no program given (usage: memtrace [options] program [args])\n");
        return EXIT_USAGE;
    }
    if (!inputs_readable(&opts))
        return EXIT_USAGE;
    if (launch_resolve_program(argv[first], program, sizeof program) != 0 ||
        !launch_find_runtime(runtime, sizeof runtime))
        return EXIT_USAGE;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/memtrace.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "memtrace: cannot create a directory for the event log: %s\n", strerror(errno));
        return EXIT_USAGE;
    }
    if (opts.event_log[0])
        snprintf(pattern, sizeof pattern, "%s", opts.event_log);
    else
        snprintf(pattern, sizeof pattern, "%s/%%p.log", dir);
    runtime_options_text(getenv("MEMTRACE_OPTIONS"), argv, first, pattern, runtime_text,
                         sizeof runtime_text);
    if (launch_run(program, argv + first, runtime, runtime_text, pattern, &run) != 0) {
        rmdir(dir);
        return EXIT_USAGE;
    }
    if (run.nlogs == 0)
        fprintf(stderr, "memtrace: the program left no event log (did it replace its "
                        "environment, or is it not dynamically linked?)\n");
    int found_errors = run.nlogs == 0 ? -1 : render_logs(&opts, &run, argv + first, argc - first);
    finish_logs(&run, dir, opts.event_log[0] != '\0');
    if (found_errors < 0)          /* the report is incomplete: it said which file */
        return EXIT_USAGE;
    if (opts.error_exitcode && found_errors)
        return opts.error_exitcode;
    return pass_on_exit(&run);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--help") == 0) {
        print_help();
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("memtrace %s\n", MEMTRACE_VERSION);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "report") == 0)
        return command_report(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "compare") == 0)
        return compare_main(argc - 1, argv + 1, stdout);
    return command_run(argc, argv);
}
