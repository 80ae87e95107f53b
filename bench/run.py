#!/usr/bin/python3
"""memtrace benchmark: how much slower and bigger programs get under memtrace, next to
valgrind memcheck, heaptrack and ASan's allocator, on real allocation-heavy programs; plus
microbenchmarks of memtrace's primitives. See bench/README.md.

    /usr/bin/python3 bench/run.py [--quick] [--tools LIST] [--out FILE] [--build DIR]

Debian packages the bench needs (CI machines start empty; --install-deps installs the
missing ones with apt-get, which is what `make bench` does):
    python3 gcc libc6-dev perl sqlite3 valgrind heaptrack libasan8
    linux-perf                 (optional: the profile section of the full run)
plus memtrace's own build dependencies, which `make build` installs:
    cmake make gcc g++ pkg-config libunwind-dev libdw-dev libelf-dev
Standard library only; runs on Debian 12's /usr/bin/python3 (3.11).
"""
import argparse
import datetime
import glob
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, "bench")
PYTHON = "/usr/bin/python3"          # Debian's python3: the workload, not whatever runs us
ASAN_LIB = "/usr/lib/x86_64-linux-gnu/libasan.so.8"
JEMALLOC_LIB = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"   # only under the breakdown's shim
BENCH_PACKAGES = ["python3", "gcc", "libc6-dev", "perl", "sqlite3", "valgrind", "heaptrack",
                  "libasan8", "libjemalloc2"]
OPTIONAL_PACKAGES = ["linux-perf"]

# Input sizes. Full: each native run takes about 0.5-1 s on a 2-core VM; quick: ~0.1 s.
SIZES = {
    "quick": {"python3": 15000, "sqlite3": 30000, "perl": 20000, "mt_ops": 4_000_000,
              "micro_ms": 100, "scaling_ops": 300_000, "leak_blocks": 1_000_000,
              "sym_functions": 2000, "prim_scale": 1, "runs": 1},
    "full": {"python3": 70000, "sqlite3": 200000, "perl": 100000, "mt_ops": 24_000_000,
             "micro_ms": 300, "scaling_ops": 2_000_000, "leak_blocks": 1_000_000,
             "sym_functions": 2000, "prim_scale": 2, "runs": 5},
}
SYM_SITES = 5                        # malloc call sites per generated function

# Tools: how each one wraps a command. `memtrace*` modes go through the launcher, which
# runs the reporter after the program (part of what a user pays); the event log is kept so
# the reporter's share can be timed again on its own.
MEMTRACE_MODES = {
    "memtrace": [],
    "memtrace-guard-all": ["--guard=all"],
    "memtrace-leak-only": ["--guard=none", "--quarantine-size=0"],
    # Not in the default set: the default mode with malloc's 16-byte alignment for guarded
    # blocks (see docs/performance.md: CPython needs it).
    "memtrace-align16": ["--guard-align=16"],
}
DEFAULT_TOOLS = ["memtrace", "memtrace-guard-all", "memtrace-leak-only", "valgrind",
                 "heaptrack", "asan"]
ALL_TOOLS = DEFAULT_TOOLS + ["memtrace-align16"]
TOOL_LABELS = {
    "native": "native",
    "memtrace": "memtrace (default)",
    "memtrace-guard-all": "memtrace --guard=all",
    "memtrace-leak-only": "memtrace leak-only",
    "memtrace-align16": "memtrace --guard-align=16",
    "valgrind": "valgrind memcheck",
    "heaptrack": "heaptrack",
    "asan": "libasan preload",
}
# The breakdown section: what each part of memtrace's default mode costs, cumulatively. The
# shim rows are bench/holdshim.c, which does only what any checker with memtrace's block
# layout must do; "shim" gives its HOLDSHIM_BYTES (its FIFO rows run on single-threaded
# workloads only). 4 MiB is what memtrace's quarantine holds for one thread by default
# (--quarantine-size=32 MB, 8 shards).
SHIM_HOLD_BYTES = 4 << 20
# (key, label, how to run it, the step it adds to)
BREAKDOWN_STEPS = [
    ("shim-layout", "shim: 16-byte head and tail on every block, nothing else", {"shim": 0}, None),
    ("mt-bare", "memtrace `--quarantine-size=0 --guard=none --num-callers=1`",
     {"opts": ["--quarantine-size=0", "--guard=none", "--num-callers=1"]}, "shim-layout"),
    ("mt-stacks", "memtrace `--quarantine-size=0 --guard=none` (+ full stacks)",
     {"opts": ["--quarantine-size=0", "--guard=none"]}, "mt-bare"),
    ("mt-guards", "memtrace `--quarantine-size=0` (+ guard pages)", {"opts": ["--quarantine-size=0"]},
     "mt-stacks"),
    ("mt-default", "memtrace default (+ quarantine)", {"opts": []}, "mt-guards"),
    ("mt-glibc", "memtrace default on glibc's malloc (`--allocator=glibc`)", {"opts": ["--allocator=glibc"]},
     "mt-default"),
    ("shim-fifo", "shim + a 4 MiB FIFO of freed blocks, unchecked (any quarantine's share)",
     {"shim": SHIM_HOLD_BYTES}, "shim-layout"),
    # The same two over a size-class allocator instead of glibc: how much of a quarantine's
    # cost is glibc's way of reusing chunks that come back late.
    ("je-layout", "shim over jemalloc instead of glibc, layout only", {"shim": 0, "under": JEMALLOC_LIB},
     None),
    ("je-fifo", "shim over jemalloc + the 4 MiB FIFO", {"shim": SHIM_HOLD_BYTES, "under": JEMALLOC_LIB},
     "je-layout"),
]

WORKLOADS = ["python3", "sqlite3", "perl", "mt-2", "mt-8"]
# Per-run time limit: TIMEOUT_BASE + TIMEOUT_FACTOR x the native time (valgrind gets more).
TIMEOUT_BASE = {"quick": 5, "full": 30}
TIMEOUT_FACTOR = {"valgrind": 200}
DEFAULT_TIMEOUT_FACTOR = 50
MAX_TIMEOUT = 1200

# Targets of issue 5 (default mode).
TARGET_WALL = {"python3": 1.8}
TARGET_WALL_OTHER = 1.5
TARGET_RSS_SLACK_MB = 8


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# Running one command: wall time, peak RSS of the process tree, output
# --------------------------------------------------------------------------------------

class Proc:
    """One finished (or killed) execution."""

    def __init__(self):
        self.wall = 0.0
        self.rss_kb = 0
        self.exit_code = None
        self.signal = None
        self.timed_out = False
        self.stdout = b""
        self.stderr = b""
        self.end_ns = 0          # CLOCK_MONOTONIC when wait4 returned

    def how(self):
        if self.timed_out:
            return "timeout"
        if self.signal:
            return "killed by signal %d (%s)" % (self.signal, signal.Signals(self.signal).name)
        return "exit status %s" % self.exit_code


_current = {"pid": None}
SPAWN = {"exe": None}            # bench/spawn.c, built into the scratch directory


def run_proc(argv, env, workdir, stdin_path=None, timeout=None):
    """Runs argv through bench/spawn.c (see there: wall time from fork to wait4, ru_maxrss
    of the command's process tree without Python's own image), in a process group of its
    own so a timeout kills everything the tool started."""
    p = Proc()
    out = tempfile.TemporaryFile(dir=workdir)
    err = tempfile.TemporaryFile(dir=workdir)
    fd, result = tempfile.mkstemp(dir=workdir, suffix=".spawn")
    os.close(fd)
    os.unlink(result)
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    killed = threading.Event()
    try:
        env = dict(env)
        preload = ["LD_PRELOAD=" + env.pop("LD_PRELOAD")] if "LD_PRELOAD" in env else []
        child = subprocess.Popen([SPAWN["exe"], result] + preload + ["--"] + list(argv), env=env, stdin=stdin,
                                 stdout=out, stderr=err, cwd=workdir, start_new_session=True)
        _current["pid"] = child.pid

        def kill():
            killed.set()
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        timer = threading.Timer(timeout, kill) if timeout else None
        if timer:
            timer.daemon = True
            timer.start()
        child.wait()
        if timer:
            timer.cancel()
        _current["pid"] = None
        # Whatever the tool left running in the group (heaptrack's interpreter) goes too.
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        p.timed_out = killed.is_set()
        fields = {}
        if os.path.exists(result):
            with open(result) as f:
                fields = dict(kv.split("=", 1) for kv in f.read().split() if "=" in kv)
            os.unlink(result)
        if "status" in fields:
            status = int(fields["status"])
            p.wall = int(fields["wall_ns"]) / 1e9
            p.end_ns = int(fields["end_ns"])
            p.rss_kb = int(fields["maxrss_kb"])
            if os.WIFSIGNALED(status):
                p.signal = os.WTERMSIG(status)
            else:
                p.exit_code = os.WEXITSTATUS(status)
        elif not p.timed_out:
            p.exit_code = 125                  # spawn itself failed (or was killed)
        out.seek(0)
        p.stdout = out.read()
        err.seek(0)
        p.stderr = err.read()
    finally:
        out.close()
        err.close()
        if stdin_path:
            stdin.close()
    return p


def interrupt(signum, frame):
    pid = _current["pid"]
    if pid:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    raise KeyboardInterrupt


# --------------------------------------------------------------------------------------
# Set-up: packages, programs, inputs
# --------------------------------------------------------------------------------------

def install_missing_packages(packages):
    missing = []
    for pkg in packages:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True,
                           text=True)
        if "ok installed" not in r.stdout:
            missing.append(pkg)
    if not missing:
        return
    log("bench: installing Debian packages: " + " ".join(missing))
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True, env=env)
    r = subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends"]
                       + missing, env=env)
    if r.returncode != 0:
        log("bench: apt-get could not install everything; missing tools will show as 'missing'")


def tool_available(tool):
    if tool == "native" or tool.startswith("memtrace"):
        return True
    if tool == "valgrind":
        return shutil.which("valgrind") is not None
    if tool == "heaptrack":
        return shutil.which("heaptrack") is not None and shutil.which("heaptrack_print") is not None
    if tool == "asan":
        return os.path.exists(ASAN_LIB)
    return False


def compile_c(src, exe, extra=()):
    cmd = ["gcc", "-O2", "-g", "-fno-omit-frame-pointer", "-pthread", "-Wall", "-o", exe, src]
    cmd += list(extra)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("cannot compile %s:\n%s" % (src, r.stderr))


def compile_primitives(build, workdir):
    """primitives.c against the runtime core: the CMake build's own objects when they are
    there (the exact code in libmemtrace.so), else src/*.c compiled with the same flags."""
    exe = os.path.join(workdir, "primitives")
    objs = sorted(glob.glob(os.path.join(build, "CMakeFiles", "memtrace_core.dir", "src", "*.o")))
    flags = ["-O2", "-g", "-D_GNU_SOURCE", "-I" + os.path.join(REPO, "src")]
    sources = glob.glob(os.path.join(REPO, "src", "*.[ch]"))
    if objs and max(map(os.path.getmtime, sources)) > min(map(os.path.getmtime, objs)):
        log("[primitives] src/ is newer than the build's objects: compiling src/*.c afresh")
        objs = []
    if not objs:
        objs = []
        for src in sorted(glob.glob(os.path.join(REPO, "src", "*.c"))):
            obj = os.path.join(workdir, os.path.basename(src) + ".o")
            r = subprocess.run(["gcc"] + flags + [
                "-DNDEBUG", '-DMEMTRACE_VERSION="bench"', "-fPIC", "-fvisibility=hidden",
                "-fno-strict-aliasing", "-ftls-model=initial-exec", "-fno-builtin-malloc",
                "-fno-builtin-free", "-fno-builtin-calloc", "-fno-builtin-realloc",
                "-c", src, "-o", obj], capture_output=True, text=True)
            if r.returncode != 0:
                return None, errors_of(r.stderr)
            objs.append(obj)
    r = subprocess.run(["gcc"] + flags + ["-o", exe, os.path.join(BENCH, "primitives.c")] + objs
                       + ["-ldl", "-lpthread"], capture_output=True, text=True)
    if r.returncode != 0:
        return None, errors_of(r.stderr)
    return exe, ""


def errors_of(text):
    lines = [l for l in text.splitlines() if "error" in l]
    return "\n".join(lines[:3]) if lines else text


PYTHON_WORKLOAD = r'''# python3 workload of memtrace's benchmark (generated by bench/run.py)
import collections, hashlib, json, re, sys

n = int(sys.argv[1])
h = hashlib.sha256()

class Node:
    def __init__(self, key, left=None, right=None):
        self.key, self.left, self.right = key, left, right

def build(lo, hi):
    if lo >= hi:
        return None
    mid = (lo + hi) // 2
    return Node("k%d" % mid, build(lo, mid), build(mid + 1, hi))

def walk(node, out):
    while node is not None:
        walk(node.left, out)
        out.append(node.key)
        node = node.right

words = ["w%d_%s" % (i, "x" * (i % 13)) for i in range(n)]
table = {}
for i, w in enumerate(words):
    table[w] = [i, w.upper(), (i, i * i % 1009), {"k": i % 97, "s": str(i)}]
counts = collections.Counter(w[:3] for w in words)
h.update(repr(sorted(counts.items())[:50]).encode())

blob = json.dumps([[k, v[0], v[1], list(v[2]), v[3]] for k, v in list(table.items())[: n // 2]])
back = json.loads(blob)
h.update(str(len(blob)).encode())
h.update(repr(back[-1]).encode())

rx = re.compile(r"w(\d+)_(x*)$")
total = 0
for w in words:
    m = rx.match(w)
    total += int(m.group(1)) * 3 + len(m.group(2))
h.update(str(total).encode())

ordered = sorted(words, key=lambda w: (len(w), w[::-1]))
h.update("".join(ordered[:: max(1, n // 100)]).encode())

for rounds in range(3):
    root = build(0, n // 2)
    keys = []
    walk(root, keys)
    h.update(keys[len(keys) // 3].encode())
    del root

parts = []
for i in range(n):
    parts.append("%s:%d;" % (words[i][::-1], i % 7))
s = "".join(parts)
pieces = s.split(";")
h.update(str(sum(len(p) for p in pieces)).encode())

for k in words[::2]:
    del table[k]
h.update(str(len(table)).encode())
print("n=%d table=%d total=%d sha256=%s" % (n, len(table), total, h.hexdigest()))
'''

PERL_WORKLOAD = r'''# perl workload of memtrace's benchmark (generated by bench/run.py)
use strict; use warnings;
my $n = shift // 1000;
my (%h, @keys);
for my $i (0 .. $n - 1) {
    my $k = "key$i" . ("x" x ($i % 11));
    $h{$k} = [$i, uc($k), { v => $i * 3, s => "$i" }];
    push @keys, $k;
}
my @sorted = sort { length($a) <=> length($b) or $a cmp $b } @keys;
my $total = 0;
for my $k (@sorted) {
    $total += $h{$k}[0] if $k =~ /^key(\d+)(x*)$/ && length($2) % 2;
}
my $str = join(",", map { sprintf("%s=%d", $_, $h{$_}[2]{v}) } @sorted[0 .. $#sorted / 2]);
my @parts = split /,/, $str;
my %count;
$count{ substr($_, 0, 4) }++ for @parts;
my @words;
for my $r (1 .. 3) {
    my @tmp = map { { id => $_, name => "n$_" x ($r + 1), list => [ ($_) x 3 ] } } 0 .. $n / 2;
    push @words, $tmp[-1]{name};
    my $s = 0; $s += $_->{list}[1] for @tmp; $total += $s % 1000;
}
(my $rev = reverse $str) =~ s/(\d+)/<$1>/g;
delete $h{$keys[$_]} for grep { $_ % 2 } 0 .. $#keys;
my $checksum = unpack("%32C*", $str) + unpack("%32C*", $rev);
printf "n=%d left=%d total=%d parts=%d groups=%d checksum=%d last=%s\n",
    $n, scalar(keys %h), $total, scalar(@parts), scalar(keys %count), $checksum, $words[-1];
'''


def sqlite_workload(n):
    return """-- sqlite3 workload of memtrace's benchmark (generated by bench/run.py)
PRAGMA cache_size = -200000;
CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c REAL);
WITH RECURSIVE cnt(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM cnt WHERE x < {n})
INSERT INTO t SELECT x, (x * 7919) % 1000,
    printf('s%d-%x-%s', x, x * 31, substr('abcdefghijklmnop', 1 + x % 16)), x * 0.5 FROM cnt;
CREATE INDEX t_a ON t(a);
CREATE INDEX t_b ON t(b);
SELECT a, count(*), sum(c) FROM t GROUP BY a ORDER BY 2 DESC, 1 LIMIT 3;
SELECT count(*), sum(length(b)) FROM t WHERE b LIKE 's1%';
CREATE TABLE u AS SELECT a, group_concat(b, ',') AS bs, count(*) AS n FROM t GROUP BY a;
SELECT sum(length(bs)), sum(n) FROM u;
UPDATE t SET b = b || '-' || hex(id) WHERE a % 3 = 0;
DELETE FROM t WHERE a % 5 = 0;
SELECT count(*), total(c), max(b) FROM t;
SELECT x.a, count(*) FROM t AS x JOIN u AS y ON x.a = y.a WHERE x.id % 97 = 0
    GROUP BY x.a ORDER BY x.a LIMIT 3;
WITH w AS (SELECT id, b, row_number() OVER (PARTITION BY a ORDER BY b DESC) AS r FROM t)
SELECT count(*), sum(length(b)) FROM w WHERE r <= 10;
SELECT json_group_array(json_object('id', id, 'b', b)) IS NOT NULL, count(*)
    FROM (SELECT id, b FROM t ORDER BY b LIMIT {q});
DROP TABLE u;
SELECT count(*) FROM t;
""".format(n=n, q=max(1, n // 4))


def symbolize_source(functions, sites):
    """A C program whose allocations come from functions*sites distinct call sites, each
    block kept reachable: `--show-leak-kinds=all` prints one loss record per site."""
    out = ["/* generated by bench/run.py: %d functions x %d malloc call sites */" % (functions, sites),
           "#include <stdlib.h>", "void *keep[%d];" % (functions * sites), "static int slot;"]
    for f in range(functions):
        body = "".join("    keep[slot++] = malloc(%d);\n" % (16 + (f * sites + s) % 64)
                       for s in range(sites))
        out.append("__attribute__((noinline)) void f%d(void)\n{\n%s}" % (f, body))
    out.append("typedef void (*fn)(void);")
    out.append("static fn const table[%d] = {%s};" % (functions, ",".join("f%d" % f for f in range(functions))))
    out.append("int main(void)\n{\n    for (int i = 0; i < %d; i++)\n        table[i]();\n"
               "    return 0;\n}" % functions)
    return "\n".join(out) + "\n"


class Workload:
    def __init__(self, name, argv, env=None, stdin=None, note="", threads=1):
        self.name, self.argv, self.env, self.stdin, self.note = name, argv, env or {}, stdin, note
        self.threads = threads


def make_workloads(names, sizes, workdir, mtalloc):
    wls = []
    for name in names:
        if name == "python3":
            path = os.path.join(workdir, "workload.py")
            with open(path, "w") as f:
                f.write(PYTHON_WORKLOAD)
            wls.append(Workload(name, [PYTHON, path, str(sizes["python3"])],
                                {"PYTHONMALLOC": "malloc", "PYTHONHASHSEED": "0",
                                 "PYTHONDONTWRITEBYTECODE": "1"},
                                note="dicts, lists, json, re, sort, a tree; n=%d" % sizes["python3"]))
        elif name == "sqlite3":
            path = os.path.join(workdir, "workload.sql")
            with open(path, "w") as f:
                f.write(sqlite_workload(sizes["sqlite3"]))
            wls.append(Workload(name, ["/usr/bin/sqlite3", ":memory:"], stdin=path,
                                note="in-memory db, %d rows: insert, indexes, group by, update, "
                                     "delete, window, json" % sizes["sqlite3"]))
        elif name == "perl":
            path = os.path.join(workdir, "workload.pl")
            with open(path, "w") as f:
                f.write(PERL_WORKLOAD)
            wls.append(Workload(name, ["/usr/bin/perl", path, str(sizes["perl"])],
                                note="hashes, arrays, sort, regex, sprintf/split; n=%d" % sizes["perl"]))
        elif name.startswith("mt-"):
            threads = int(name[3:])
            per_thread = max(1, sizes["mt_ops"] // threads)
            wls.append(Workload(name, [mtalloc, str(threads), str(per_thread)],
                                note="bench/mtalloc.c, %d threads x %d allocs, 1/4 freed by the "
                                     "next thread" % (threads, per_thread), threads=threads))
        else:
            raise SystemExit("unknown workload %r (have: %s)" % (name, ", ".join(WORKLOADS)))
    return wls


# --------------------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------------------

def base_env():
    env = dict(os.environ)
    for k in ("LD_PRELOAD", "MEMTRACE_OPTIONS", "ASAN_OPTIONS", "LSAN_OPTIONS", "PYTHONMALLOC",
              "PYTHONHASHSEED", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PERL5LIB",
              "PERL5OPT", "VALGRIND_OPTS"):
        env.pop(k, None)
    env["LC_ALL"] = "C"
    return env


class Invocation:
    """How to run one command under one tool, and its separate report step (if any)."""

    def __init__(self, argv, env, report=None, cleanup=()):
        self.argv, self.env, self.report, self.cleanup = argv, env, report, list(cleanup)


def wrap(tool, argv, wl_env, ctx, tag, leak_check=True):
    env = base_env()
    env.update(wl_env)
    wd = ctx["workdir"]
    if tool == "native":
        return Invocation(argv, env)
    if tool in MEMTRACE_MODES:
        logpat = os.path.join(wd, "ev-%s.%%p.log" % tag)
        opts = ["--log-file=/dev/null", "--event-log=" + logpat] + MEMTRACE_MODES[tool]
        if not leak_check:
            opts.append("--leak-check=no")

        def report():
            logs = glob.glob(os.path.join(wd, "ev-%s.*.log" % tag))
            return [ctx["memtrace"], "report", "--log-file=/dev/null"] + sorted(logs) if logs else None
        return Invocation([ctx["memtrace"]] + opts + argv, env, report,
                          [os.path.join(wd, "ev-%s.*.log" % tag)])
    if tool == "valgrind":
        vlog = os.path.join(wd, "vg-%s.%%p.log" % tag)
        return Invocation(["valgrind", "--leak-check=%s" % ("full" if leak_check else "no"),
                           "--log-file=" + vlog] + argv, env, None,
                          [os.path.join(wd, "vg-%s.*.log" % tag)])
    if tool == "heaptrack":
        out = os.path.join(wd, "ht-%s" % tag)

        def report():
            files = glob.glob(out + ".*")
            return (["heaptrack_print", "--print-peaks=0", "--print-allocators=0",
                     "--print-temporary=0", "--print-leaks=1", "-f", files[0]] if files else None)
        return Invocation(["heaptrack", "-o", out] + argv, env, report, [out + ".*"])
    if tool == "asan":
        env["LD_PRELOAD"] = ASAN_LIB
        env["ASAN_OPTIONS"] = "detect_leaks=%d" % (1 if leak_check else 0)
        return Invocation(argv, env)
    raise SystemExit("unknown tool %r (have: %s)" % (tool, ", ".join(ALL_TOOLS)))


def tool_stdout(tool, data):
    """The program's own stdout: heaptrack prints its banner and epilogue there too."""
    if tool != "heaptrack":
        return data
    lines = data.split(b"\n")
    start = 0
    for i, line in enumerate(lines):
        if line.startswith(b"starting application"):
            start = i + 1
            break
    end = len(lines)
    for i in range(len(lines) - 1, start - 1, -1):
        if lines[i].startswith(b"Heaptrack finished!"):
            end = i
            break
    return b"\n".join(lines[start:end]) + (b"\n" if end < len(lines) else b"")


def cleanup(inv):
    for pat in inv.cleanup:
        for f in glob.glob(pat):
            try:
                os.unlink(f)
            except OSError:
                pass


def first_lines(data, n=3):
    text = data.decode("utf-8", "replace").strip().splitlines()
    text = [t for t in text if t.strip()]
    return " | ".join(t.strip()[:160] for t in text[:n])


# --------------------------------------------------------------------------------------
# Workload table
# --------------------------------------------------------------------------------------

def measure_workloads(wls, tools, runs, ctx, results):
    for wl in wls:
        res = results.setdefault(wl.name, {"native": [], "tools": {}, "note": wl.note})
        # Reference run: expected output and the time limits.
        inv = wrap("native", wl.argv, wl.env, ctx, "ref")
        ref = run_proc(inv.argv, inv.env, ctx["workdir"], wl.stdin, timeout=600)
        if ref.timed_out or ref.signal or ref.exit_code != 0:
            log("[%s] native run failed (%s): %s" % (wl.name, ref.how(), first_lines(ref.stderr)))
            res["error"] = "native run failed: %s" % ref.how()
            continue
        expected = ref.stdout
        res["expected_stdout"] = expected.decode("utf-8", "replace")[:400]
        log("[%s] native %.2f s, %.0f MB — %s" % (wl.name, ref.wall, ref.rss_kb / 1024, wl.note))
        dead = {}
        for it in range(runs):
            for tool in tools:
                cell = res["tools"].setdefault(tool, {"runs": [], "failure": None})
                if not tool_available(tool):
                    cell["failure"] = "missing"
                    continue
                if tool in dead:
                    continue
                nat = run_proc(inv.argv, inv.env, ctx["workdir"], wl.stdin, timeout=600)
                if nat.stdout != expected or nat.exit_code != 0:
                    res["error"] = "native output changed between runs (nondeterministic workload?)"
                res["native"].append({"wall": nat.wall, "rss_kb": nat.rss_kb})
                factor = TIMEOUT_FACTOR.get(tool, DEFAULT_TIMEOUT_FACTOR)
                limit = min(MAX_TIMEOUT, TIMEOUT_BASE[ctx["mode"]] + factor * ref.wall)
                tinv = wrap(tool, wl.argv, wl.env, ctx, "%s-%s" % (wl.name, tool))
                p = run_proc(tinv.argv, tinv.env, ctx["workdir"], wl.stdin, timeout=limit)
                failure = None
                if p.timed_out:
                    failure = "timeout"
                    detail = "killed after %.0f s" % limit
                    cell["limit_ratio"] = limit / nat.wall
                elif (p.signal or p.exit_code != 0) and not leak_exit(tool, p):
                    failure = "failed"
                    detail = "%s: %s" % (p.how(), first_lines(p.stderr))
                elif tool_stdout(tool, p.stdout) != expected:
                    failure = "failed"
                    detail = "wrong output: %s" % first_lines(tool_stdout(tool, p.stdout), 2)
                if failure:
                    cell["failure"] = failure
                    cell["detail"] = detail
                    dead[tool] = True
                    log("[%s %d/%d] %s: %s (%s)" % (wl.name, it + 1, runs, tool, failure, detail))
                    cleanup(tinv)
                    continue
                run = {"wall": p.wall, "rss_kb": p.rss_kb, "native_wall": nat.wall,
                       "native_rss_kb": nat.rss_kb}
                if tinv.report:
                    rargv = tinv.report()
                    if rargv:
                        r = run_proc(rargv, base_env(), ctx["workdir"], timeout=limit)
                        if r.exit_code is not None and r.exit_code in (0, 1) and not r.timed_out:
                            run["report_wall"] = r.wall
                            run["report_rss_kb"] = r.rss_kb
                    if tool in MEMTRACE_MODES and it == 0:
                        run["summary"] = read_summary(os.path.join(ctx["workdir"], "ev-%s-%s.*.log"
                                                                   % (wl.name, tool)))
                cleanup(tinv)
                cell["runs"].append(run)
                log("[%s %d/%d] %-19s %7.2f s  %5.2fx wall  %5.2fx rss%s" % (
                    wl.name, it + 1, runs, tool, p.wall, p.wall / nat.wall,
                    p.rss_kb / max(1, nat.rss_kb),
                    ("  (report %.2f s)" % run["report_wall"]) if "report_wall" in run else ""))


def breakdown_invocation(step, wl, ctx):
    env = base_env()
    env.update(wl.env)
    if "shim" in step:
        env["LD_PRELOAD"] = ctx["holdshim"] + (" " + step["under"] if "under" in step else "")
        env["HOLDSHIM_BYTES"] = str(step["shim"])
        return Invocation(wl.argv, env)
    wd = ctx["workdir"]
    opts = ["--log-file=/dev/null", "--event-log=" + os.path.join(wd, "ev-breakdown.%p.log")]
    return Invocation([ctx["memtrace"]] + opts + step["opts"] + wl.argv, env, None,
                      [os.path.join(wd, "ev-breakdown.*.log")])


def measure_breakdown(wls, runs, ctx, results):
    """Each round runs the workload natively and then under every step of BREAKDOWN_STEPS;
    a step's ratio is its wall time over that round's native run. A run whose output
    differs from the native one fails its step."""
    bd = results.setdefault("breakdown", {})
    for wl in wls:
        res = bd.setdefault(wl.name, {})
        ref = run_proc(wl.argv, dict(base_env(), **wl.env), ctx["workdir"], wl.stdin, timeout=600)
        if ref.exit_code != 0:
            continue
        limit = TIMEOUT_BASE[ctx["mode"]] + DEFAULT_TIMEOUT_FACTOR * ref.wall
        for it in range(runs):
            nat = run_proc(wl.argv, dict(base_env(), **wl.env), ctx["workdir"], wl.stdin, timeout=limit)
            for key, _, step, _ in BREAKDOWN_STEPS:
                if step.get("shim") and wl.threads > 1:
                    continue             # one global FIFO is no model of per-thread quarantines
                if "under" in step and not os.path.exists(step["under"]):
                    continue
                cell = res.setdefault(key, {"ratios": [], "failure": None})
                if cell["failure"]:
                    continue
                inv = breakdown_invocation(step, wl, ctx)
                p = run_proc(inv.argv, inv.env, ctx["workdir"], wl.stdin, timeout=limit)
                cleanup(inv)
                if p.timed_out or p.exit_code != 0 or p.stdout != ref.stdout:
                    cell["failure"] = "%s: %s" % (p.how(), first_lines(p.stderr))
                    continue
                cell["ratios"].append(p.wall / nat.wall)
            log("[breakdown %s %d/%d] %s" % (wl.name, it + 1, runs, ", ".join(
                "%s %.2f" % (k, c["ratios"][-1]) for k, c in res.items() if c["ratios"])))


def render_breakdown(bd):
    names = [n for n in bd if bd[n]]
    L = ["## Where the time goes: memtrace's parts, one at a time", ""]
    L.append("Wall-time ratio to native (median of paired runs; memtrace rows include the "
             "launcher's report and the exit-time leak check), and in brackets what the row adds "
             "to the one it builds on: the memtrace rows each add one part, the first of them to "
             "the shim's layout row. The shim is bench/holdshim.c: only the block layout of "
             "memtrace's redzoned blocks, then also a quarantine that checks nothing and holds "
             "what memtrace's holds for one thread. Its FIFO row is what holding freed memory "
             "back costs any checker on glibc. The memtrace rows place blocks of up to 1 KiB "
             "(with their redzones) in memtrace's own size-class slots (src/slab.c), the shim "
             "on glibc's malloc; the row with `--allocator=glibc` is memtrace's default on glibc "
             "instead, as memtrace ran before it had its slots. "
             "The shim's FIFO is one list behind one lock, no model of memtrace's per-thread "
             "quarantine: it runs on the single-threaded workloads only (—). The last two rows "
             "put jemalloc (a size-class allocator, Debian's libjemalloc2) under the shim "
             "instead of glibc, still as a ratio to the program on glibc: what a quarantine "
             "costs depends on the allocator it hands blocks back to.")
    L.append("")
    L.append("| step | " + " | ".join(names) + " |")
    L.append("|" + "---|" * (1 + len(names)))
    for key, label, _, base_key in BREAKDOWN_STEPS:
        row = "| %s |" % label
        for n in names:
            cell, base = bd[n].get(key), bd[n].get(base_key) if base_key else None
            if not cell or cell["failure"] or not cell["ratios"]:
                row += " %s |" % ("failed" if cell and cell["failure"] else "—")
                continue
            r = statistics.median(cell["ratios"])
            b = statistics.median(base["ratios"]) if base and base["ratios"] else 1.0
            row += " %s (%+.2f) |" % (fmt_ratio(r), r - b)
        L.append(row)
    L.append("")
    if not os.path.exists(JEMALLOC_LIB):
        L.append("The jemalloc rows are empty: %s is not installed (`--install-deps` installs "
                 "libjemalloc2)." % JEMALLOC_LIB)
        L.append("")
    fails = ["- %s, %s: %s" % (n, k, c["failure"]) for n in names for k, c in bd[n].items() if c["failure"]]
    if fails:
        L.append("Failures:")
        L.extend(fails)
        L.append("")
    return L


def leak_exit(tool, p):
    """ASan's leak checker exits non-zero when it finds leaks (perl leaves its interpreter
    to the OS at exit): that is the tool working, not failing."""
    return (tool == "asan" and not p.signal and b"LeakSanitizer: detected memory leaks" in p.stderr
            and b"ERROR: AddressSanitizer" not in p.stderr)


def read_summary(pattern):
    """The `summary` record of the program's event log, plus how many `error` records the
    runtime wrote (on these correct programs, any is a false positive worth a look)."""
    for path in sorted(glob.glob(pattern)):
        out, errors = None, 0
        with open(path, errors="replace") as f:
            for line in f:
                if line.startswith("summary "):
                    out = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
                elif line.startswith("error "):
                    errors += 1
        if out is not None:
            out["error_records"] = errors
            return out
    return None


def workload_stats(cell):
    runs = cell["runs"]
    if not runs:
        return None
    wall = statistics.median(r["wall"] / r["native_wall"] for r in runs)
    rss = statistics.median(r["rss_kb"] / max(1, r["native_rss_kb"]) for r in runs)
    out = {"wall": wall, "rss": rss, "n": len(runs),
           "rss_mb": statistics.median(r["rss_kb"] for r in runs) / 1024,
           "native_rss_mb": statistics.median(r["native_rss_kb"] for r in runs) / 1024}
    reps = [r for r in runs if "report_wall" in r]
    if reps:
        out["run_only"] = statistics.median(max(0.0, r["wall"] - r["report_wall"]) / r["native_wall"]
                                            for r in reps)
        out["report_s"] = statistics.median(r["report_wall"] for r in reps)
        out["report_rss_mb"] = statistics.median(r.get("report_rss_kb", 0) for r in reps) / 1024
    return out


# --------------------------------------------------------------------------------------
# Microbenchmarks
# --------------------------------------------------------------------------------------

MICRO_TESTS = [
    # (key, test, depth, label)
    ("pair_shallow", "pair", 0, "malloc+free pair, ~6-frame stack"),
    ("pair_deep", "pair", 30, "malloc+free pair, 36-frame stack (24 kept)"),
    ("malloc_deep", "malloc", 30, "malloc alone, 36-frame stack"),
    ("free_deep", "free", 30, "free alone, 36-frame stack"),
]


def parse_micro(data):
    m = re.search(rb"ns_per_op=([0-9.]+)", data)
    return float(m.group(1)) if m else None


def measure_micro(tools, runs, sizes, ctx, results):
    micro = results.setdefault("micro", {})
    for key, test, depth, label in MICRO_TESTS:
        entry = micro.setdefault(key, {"label": label, "native": [], "tools": {}})
        argv = [ctx["micro"], test, str(depth), "32", str(sizes["micro_ms"])]
        for it in range(runs):
            for tool in tools:
                cell = entry["tools"].setdefault(tool, {"added": [], "abs": [], "failure": None})
                if not tool_available(tool):
                    cell["failure"] = "missing"
                    continue
                if cell["failure"]:
                    continue
                nat = run_proc(argv, base_env(), ctx["workdir"], timeout=120)
                nv = parse_micro(nat.stdout)
                inv = wrap(tool, argv, {}, ctx, "micro-%s-%s" % (key, tool), leak_check=False)
                p = run_proc(inv.argv, inv.env, ctx["workdir"], timeout=600)
                cleanup(inv)
                tv = parse_micro(tool_stdout(tool, p.stdout))
                if nv is None:
                    continue
                entry["native"].append(nv)
                if tv is None:
                    cell["failure"] = "timeout" if p.timed_out else "failed"
                    cell["detail"] = "%s: %s" % (p.how(), first_lines(p.stderr))
                    continue
                cell["abs"].append(tv)
                cell["added"].append(tv - nv)
            log("[micro %s %d/%d] native %.1f ns; %s" % (
                key, it + 1, runs, statistics.median(entry["native"]) if entry["native"] else -1,
                ", ".join("%s +%.0f" % (t, statistics.median(c["added"]))
                          for t, c in entry["tools"].items() if c["added"])))


def measure_scaling(tools, runs, sizes, ctx, results):
    """Aggregate allocation throughput of 2 threads over that of 1 thread doing the same
    per-thread work (mtalloc's in-process timing of the allocation phase)."""
    sc = results.setdefault("scaling", {})
    ops = str(sizes["scaling_ops"])
    for it in range(runs):
        for tool in ["native"] + [t for t in tools if t not in ("valgrind", "memtrace-guard-all")]:
            cell = sc.setdefault(tool, {"ratio": [], "failure": None})
            if not tool_available(tool):
                cell["failure"] = "missing"
                continue
            if cell["failure"]:
                continue
            ns = {}
            for threads in (1, 2):
                inv = wrap(tool, [ctx["mtalloc"], str(threads), ops], {}, ctx,
                           "scale-%s-%d" % (tool, threads), leak_check=False)
                p = run_proc(inv.argv, inv.env, ctx["workdir"], timeout=600)
                cleanup(inv)
                m = re.search(rb"mtalloc: threads=\d+ ops=\d+ ns=(\d+)", p.stderr)
                if not m or p.exit_code != 0:
                    cell["failure"] = "timeout" if p.timed_out else "failed"
                    cell["detail"] = "%s: %s" % (p.how(), first_lines(p.stderr))
                    break
                ns[threads] = int(m.group(1))
            if len(ns) == 2:
                cell["ratio"].append(2.0 * ns[1] / ns[2])
                cell.setdefault("ns_per_op_1", []).append(ns[1] / sizes["scaling_ops"])
        log("[scaling %d/%d] %s" % (it + 1, runs, ", ".join(
            "%s %.2f" % (t, statistics.median(c["ratio"])) for t, c in sc.items() if c["ratio"])))


def measure_primitives(runs, sizes, ctx, results):
    exe, err = compile_primitives(ctx["build"], ctx["workdir"])
    prim = results.setdefault("primitives", {})
    if not exe:
        prim["error"] = "primitives.c does not build against the current src/: " + err.strip()[:300]
        log("[primitives] " + prim["error"])
        return
    samples = {}
    for it in range(runs):
        p = run_proc([exe, str(sizes["prim_scale"])], base_env(), ctx["workdir"], timeout=300)
        if p.exit_code != 0:
            prim["error"] = "primitives failed: %s: %s" % (p.how(), first_lines(p.stderr))
            log("[primitives] " + prim["error"])
            return
        for m in re.finditer(rb"^(\w+)=([0-9.]+)$", p.stdout, re.M):
            samples.setdefault(m.group(1).decode(), []).append(float(m.group(2)))
    prim["ns"] = {k: statistics.median(v) for k, v in samples.items()}
    log("[primitives] " + ", ".join("%s %.0f ns" % kv for kv in prim["ns"].items()))


def measure_leakscan(runs, sizes, ctx, results):
    """Exit path of a program with 1M live blocks: from the end of main (timestamp written
    by the program) to wait4's return, under the runtime preloaded directly (no launcher, so
    no reporter), leak-check=full minus leak-check=no, default mode otherwise."""
    ls = results.setdefault("leakscan", {"full": [], "no": [], "native": [], "diff": []})
    n = sizes["leak_blocks"]
    stamp = os.path.join(ctx["workdir"], "leakscan.stamp")
    ls["blocks"] = n

    def exit_ms(env):
        if os.path.exists(stamp):
            os.unlink(stamp)
        p = run_proc([ctx["leakscan"], str(n), stamp], env, ctx["workdir"], timeout=600)
        for f in glob.glob(os.path.join(ctx["workdir"], "ls-ev.*.log")):
            os.unlink(f)
        if p.exit_code != 0 or not os.path.exists(stamp):
            raise RuntimeError("%s: %s" % (p.how(), first_lines(p.stderr)))
        with open(stamp) as f:
            return (p.end_ns - int(f.read().strip())) / 1e6

    try:
        for it in range(runs):
            env_n = base_env()
            ls["native"].append(exit_ms(env_n))
            row = {}
            for mode in ("full", "no"):
                env = base_env()
                env["LD_PRELOAD"] = ctx["lib"]
                env["MEMTRACE_OPTIONS"] = "event-log=%s leak-check=%s" % (
                    os.path.join(ctx["workdir"], "ls-ev.%p.log"), mode)
                row[mode] = exit_ms(env)
                ls[mode].append(row[mode])
            ls["diff"].append(row["full"] - row["no"])
            log("[leakscan %d/%d] exit path: native %.0f ms, leak-check=no %.0f ms, full %.0f ms"
                % (it + 1, runs, ls["native"][-1], row["no"], row["full"]))
    except RuntimeError as e:
        ls["error"] = str(e)
        log("[leakscan] failed: %s" % e)


def measure_symbolize(runs, sizes, ctx, results):
    sy = results.setdefault("symbolize", {"report": []})
    wd = ctx["workdir"]
    src = os.path.join(wd, "symgen.c")
    exe = os.path.join(wd, "symgen")
    with open(src, "w") as f:
        f.write(symbolize_source(sizes["sym_functions"], SYM_SITES))
    r = subprocess.run(["gcc", "-O0", "-g", "-fno-omit-frame-pointer", "-fno-builtin", "-o", exe, src],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sy["error"] = "cannot compile the generated program: " + r.stderr[:300]
        return
    evlog = os.path.join(wd, "symgen.log")
    p = run_proc([ctx["memtrace"], "--event-log=" + evlog, "--leak-check=full",
                  "--show-leak-kinds=all", "--log-file=/dev/null", exe], base_env(), wd, timeout=300)
    if p.exit_code != 0 or not os.path.exists(evlog):
        sy["error"] = "generating the log failed: %s: %s" % (p.how(), first_lines(p.stderr))
        log("[symbolize] " + sy["error"])
        return
    pcs, stacks, leaks = set(), 0, 0
    with open(evlog) as f:
        for line in f:
            if line.startswith("stack "):
                stacks += 1
                pcs.update(line.split()[3:])
            elif line.startswith("leak "):
                leaks += 1
    sy.update({"pcs": len(pcs), "stacks": stacks, "loss_records": leaks})
    argv = [ctx["memtrace"], "report", evlog, "--show-leak-kinds=all", "--json=/dev/null",
            "--log-file=/dev/null"]
    for it in range(max(runs, 3)):
        q = run_proc(argv, base_env(), wd, timeout=300)
        if q.exit_code not in (0, 1):
            sy["error"] = "memtrace report failed: %s: %s" % (q.how(), first_lines(q.stderr))
            return
        sy["report"].append(q.wall)
        sy.setdefault("rss_kb", []).append(q.rss_kb)
    log("[symbolize] %d distinct PCs in %d stacks: report %.3f s" % (
        len(pcs), stacks, statistics.median(sy["report"])))


def perf_works():
    if not shutil.which("perf"):
        return False
    r = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-o", "/dev/null", "true"],
                       capture_output=True)
    return r.returncode == 0


def measure_profile(wls, tools, ctx, results):
    """perf record (cpu-clock sampling: works without hardware counters, as in most VMs) of
    the python3 workload under the first memtrace mode that runs it correctly."""
    prof = results.setdefault("profile", {})
    wl = next((w for w in wls if w.name == "python3"), None) or (wls[0] if wls else None)
    if wl is None:
        return
    candidates = [t for t in ["memtrace", "memtrace-align16", "memtrace-leak-only"]
                  if t in tools or t == "memtrace"]
    wres = results.get(wl.name, {}).get("tools", {})
    tool = next((t for t in candidates if wres.get(t, {}).get("runs")), None)
    if tool is None:
        prof["error"] = "no memtrace mode ran the %s workload correctly" % wl.name
        return
    data = os.path.join(ctx["workdir"], "perf.data")
    inv = wrap(tool, wl.argv, wl.env, ctx, "perf")
    argv = ["perf", "record", "-q", "-e", "cpu-clock", "-F", "1999", "-o", data, "--"] + inv.argv
    p = run_proc(argv, inv.env, ctx["workdir"], wl.stdin, timeout=900)
    cleanup(inv)
    if p.exit_code != 0:
        prof["error"] = "perf record failed: %s: %s" % (p.how(), first_lines(p.stderr))
        return
    prof["workload"], prof["tool"] = wl.name, tool
    prof["command"] = "perf record -e cpu-clock -F 1999 -- " + " ".join(
        a.replace(ctx["workdir"], "$WORK").replace(ctx["build"], "$BUILD") for a in inv.argv)

    def report(sort):
        r = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", sort,
                            "--stdio", "--percent-limit", "0.01"],
                           capture_output=True, text=True)
        rows = {}
        for line in r.stdout.splitlines():
            m = re.match(r"^\s+([0-9.]+)%\s+(.*\S)\s*$", line)
            if not m:
                continue
            cols = [c for c in re.split(r"\s{2,}", m.group(2)) if c.strip() not in ("-", "")]
            if sort != "dso" and len(cols) >= 2:
                sym = re.sub(r"^\[[.k]\]\s*", "", cols[1])
                if re.fullmatch(r"0x[0-9a-f]+", sym):
                    sym = "(addresses without symbols)"
                key = (cols[0], sym)
            else:
                key = (cols[0], "")
            rows[key] = rows.get(key, 0.0) + float(m.group(1))
        return sorted(([round(v, 2), k[0], k[1]] for k, v in rows.items()), reverse=True)
    prof["by_dso"] = [[p_, d] for p_, d, _ in report("dso")[:12]]
    prof["by_symbol"] = report("dso,symbol")[:25]
    log("[profile] top: " + "; ".join("%.1f%% %s %s" % tuple(r) for r in prof["by_symbol"][:5]))


# --------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------

def fmt_ratio(x):
    return "%.1f×" % x if x >= 10 else "%.2f×" % x


def fmt_count(n):
    n = float(n)
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return "%.1f%s" % (n / div, unit)
    return "%d" % n


def cell_failure(cell):
    if cell is None:
        return "—"
    f = cell.get("failure")
    return f if f else None


def render(results, tools, args, started, elapsed):
    L = []
    mode = "quick" if args.quick else "full"
    runs = results["meta"]["runs"]
    L.append("# memtrace benchmark results")
    L.append("")
    L.append("- date: %s; mode: **%s** (%d interleaved run%s per cell, medians); whole bench took %.1f min"
             % (started.strftime("%Y-%m-%d %H:%M UTC"), mode, runs, "" if runs == 1 else "s",
                elapsed / 60))
    L.append("- machine: %s" % results["meta"]["machine"])
    if results["meta"].get("loadavg"):
        la = results["meta"]["loadavg"]
        L.append("- 1-minute load average during the run (sampled every 10 s, the bench itself "
                 "counts for about 1): median %.1f, max %.1f" % (statistics.median(la), max(la)))
    L.append("- memtrace: %s, libmemtrace.so built %s from the work tree at HEAD %s"
             % (results["meta"]["memtrace_version"], results["meta"]["built"], results["meta"]["commit"]))
    L.append("- tools: %s" % results["meta"]["tool_versions"])
    L.append("- command: `%s`" % results["meta"]["command"])
    if results["meta"].get("section_s"):
        L.append("- time per section: " + ", ".join("%s %.0f s" % kv for kv in results["meta"]["section_s"].items()))
    L.append("")

    wl_names = [w for w in results["workload_order"]]
    if wl_names:
        L.append("## Workloads: wall time and peak RSS, as ratios to native")
        L.append("")
        L.append("Each cell: **wall-time ratio** / peak-RSS ratio, tool over native, median of "
                 "the per-run ratios (each tool run is paired with a native run just before it). "
                 "Wall time includes the tool's report (memtrace's launcher runs its reporter; "
                 "valgrind and ASan report in-process; heaptrack: run only, see the next table). "
                 "`failed`: wrong output, bad exit status or crash; `timeout`: killed.")
        L.append("")
        head = "| workload | native | " + " | ".join(TOOL_LABELS[t] for t in tools) + " |"
        L.append(head)
        L.append("|" + "---|" * (2 + len(tools)))
        for name in wl_names:
            res = results[name]
            if "error" in res and not res["native"]:
                L.append("| %s | %s |%s" % (name, res["error"], " |" * len(tools)))
                continue
            nat_wall = statistics.median(r["wall"] for r in res["native"])
            nat_rss = statistics.median(r["rss_kb"] for r in res["native"]) / 1024
            extra = ""
            summ = next((r["summary"] for r in res["tools"].get("memtrace", {}).get("runs", [])
                         if r.get("summary")), None)
            if summ and "allocs" in summ:
                extra = ", %s allocs" % fmt_count(int(summ["allocs"]))
            row = "| %s | %.2f s, %.0f MB%s |" % (name, nat_wall, nat_rss, extra)
            for t in tools:
                cell = res["tools"].get(t)
                f = cell_failure(cell)
                st = workload_stats(cell) if cell else None
                if f == "timeout" and cell.get("limit_ratio"):
                    row += " timeout (> %s) |" % fmt_ratio(cell["limit_ratio"])
                elif f or not st:
                    row += " %s |" % (f or "—")
                else:
                    row += " **%s** / %s |" % (fmt_ratio(st["wall"]), fmt_ratio(st["rss"]))
            L.append(row)
        L.append("")
        notes = []
        for name in wl_names:
            for t in tools:
                cell = results[name]["tools"].get(t)
                if cell and cell.get("failure") in ("failed", "timeout"):
                    notes.append("- %s under %s: %s" % (name, TOOL_LABELS[t], cell.get("detail", "")))
        for name in wl_names:
            for t in tools:
                for r in results[name]["tools"].get(t, {}).get("runs", [])[:1]:
                    n_err = (r.get("summary") or {}).get("error_records", 0)
                    if n_err:
                        notes.append("- %s under %s: ran correctly, but the event log has %d `error` "
                                     "record(s) on this correct program" % (name, TOOL_LABELS[t], n_err))
        if notes:
            L.append("Failures and remarks:")
            L.extend(notes)
            L.append("")
        L.append("Workloads:")
        for name in wl_names:
            L.append("- **%s**: %s" % (name, results[name]["note"]))
        L.append("")

        rep_tools = [t for t in tools if t in MEMTRACE_MODES or t == "heaptrack"]
        if rep_tools:
            L.append("### Run only vs run + report")
            L.append("")
            L.append("Wall-time ratio of the run alone (total minus the report step, which is "
                     "timed again on its own right after), the report's own time and peak RSS. memtrace: "
                     "`memtrace report LOG` on the run's kept event log; heaptrack: "
                     "`heaptrack_print --print-leaks=1` (peaks, allocators, temporaries off) — "
                     "heaptrack's launcher does not analyse, so its run+report is run × + print.")
            L.append("")
            L.append("| workload | " + " | ".join(TOOL_LABELS[t] for t in rep_tools) + " |")
            L.append("|" + "---|" * (1 + len(rep_tools)))
            for name in wl_names:
                res = results[name]
                if not res["native"]:
                    continue
                row = "| %s |" % name
                for t in rep_tools:
                    cell = res["tools"].get(t)
                    f = cell_failure(cell)
                    st = workload_stats(cell) if cell else None
                    if f or not st or "run_only" not in st:
                        row += " %s |" % (f or "—")
                    elif t == "heaptrack":
                        row += " run %s + print %.2f s, %.0f MB |" % (fmt_ratio(st["wall"]), st["report_s"],
                                                                    st["report_rss_mb"])
                    else:
                        row += " run %s, report %.0f ms, %.0f MB |" % (fmt_ratio(st["run_only"]),
                                                                      1000 * st["report_s"], st["report_rss_mb"])
                L.append(row)
            L.append("")

    if results.get("breakdown"):
        L.extend(render_breakdown(results["breakdown"]))

    if "micro" in results or "primitives" in results:
        L.append("## Primitives")
        L.append("")
    if "micro" in results:
        mtools = [t for t in tools if any(results["micro"][k]["tools"].get(t) for k in results["micro"])]
        L.append("Added cost per call in ns (tool minus native, each timed inside the process by "
                 "bench/micro.c over ≥ %d ms of calls, 32-byte blocks; median of paired runs). "
                 "Native column: absolute ns." % SIZES[mode]["micro_ms"])
        L.append("")
        L.append("| call | native | " + " | ".join(TOOL_LABELS[t] for t in mtools) + " |")
        L.append("|" + "---|" * (2 + len(mtools)))
        for key, _, _, label in MICRO_TESTS:
            e = results["micro"].get(key)
            if not e or not e["native"]:
                continue
            row = "| %s | %.0f ns |" % (label, statistics.median(e["native"]))
            for t in mtools:
                c = e["tools"].get(t)
                if not c or c.get("failure") or not c["added"]:
                    row += " %s |" % ((c or {}).get("failure") or "—")
                else:
                    row += " +%.0f |" % statistics.median(c["added"])
            L.append(row)
        sc = results.get("scaling")
        if sc:
            row = "| 2 threads vs 1: aggregate alloc throughput ratio (≥ 1: scales) | %s |" % (
                "%.2f" % statistics.median(sc["native"]["ratio"]) if sc.get("native", {}).get("ratio") else "—")
            for t in mtools:
                c = sc.get(t)
                if t == "valgrind":
                    row += " n/a (runs one thread at a time) |"
                elif t == "memtrace-guard-all":
                    row += " not run |"
                elif not c or c.get("failure") or not c["ratio"]:
                    row += " %s |" % ((c or {}).get("failure") or "—")
                else:
                    row += " %.2f |" % statistics.median(c["ratio"])
            L.append(row)
        L.append("")
    if "primitives" in results:
        prim = results["primitives"]
        if "error" in prim:
            L.append("White-box primitives: n/a — %s" % prim["error"])
        else:
            ns = prim["ns"]
            L.append("White-box, bench/primitives.c linked against the runtime core (ns per call):")
            L.append("")
            L.append("| primitive | ns |")
            L.append("|---|---|")
            labels = [
                ("capture_deep", "stack capture + dedup hit, 24 frames kept of 40 (`stacks_capture`)"),
                ("capture_shallow", "stack capture + dedup hit, ~6-frame stack"),
                ("intern_hit", "dedup alone, known 24-PC stack, random among 100k (cache-cold) (`stacks_intern`)"),
                ("intern_new", "dedup, new 24-PC stack (`stacks_intern`, insert)"),
                ("blocks_find", "block lookup among 1M live blocks (`blocks_find`)"),
                ("blocks_release", "free(): find and remove among 1M (`blocks_release`)"),
                ("blocks_insert", "insert, table growing to 1M (`blocks_insert`)"),
            ]
            for key, label in labels:
                if key in ns:
                    L.append("| %s | %.0f |" % (label, ns[key]))
        L.append("")
    ls = results.get("leakscan")
    if ls:
        if ls.get("error"):
            L.append("Exit-time leak scan: failed — %s" % ls["error"])
        elif ls["diff"]:
            L.append("Exit-time leak scan of %s live blocks (bench/leakscan.c, a linked list from "
                     "a global): **%.0f ms** (exit path with `leak-check=full` minus with "
                     "`leak-check=no`, from the program's end-of-main timestamp to wait4; "
                     "default mode, runtime preloaded without the launcher). Exit path: full %.0f ms, "
                     "no scan %.0f ms, native %.0f ms."
                     % (fmt_count(ls["blocks"]), statistics.median(ls["diff"]),
                        statistics.median(ls["full"]), statistics.median(ls["no"]),
                        statistics.median(ls["native"])))
        L.append("")
    sy = results.get("symbolize")
    if sy:
        if sy.get("error"):
            L.append("Symbolization: failed — %s" % sy["error"])
        else:
            L.append("Symbolizing: `memtrace report LOG --show-leak-kinds=all --json=/dev/null` on a "
                     "log with **%d distinct PCs** (%d stacks, %d loss records; generated program, "
                     "%d functions × %d malloc sites, -O0 -g): **%.3f s**, %.0f MB peak RSS."
                     % (sy["pcs"], sy["stacks"], sy["loss_records"], SIZES[mode]["sym_functions"],
                        SYM_SITES, statistics.median(sy["report"]),
                        statistics.median(sy["rss_kb"]) / 1024))
        L.append("")

    prof = results.get("profile")
    if prof and prof.get("by_symbol"):
        L.append("## Profile: %s under %s" % (prof["workload"], TOOL_LABELS[prof["tool"]]))
        L.append("")
        L.append("`%s`, then `perf report --no-children --sort dso,symbol`; self time, whole "
                 "process tree (launcher, program, reporter)." % prof["command"])
        L.append("")
        L.append("| self % | object | symbol |")
        L.append("|---|---|---|")
        for pct, dso, sym in prof["by_symbol"]:
            L.append("| %.1f | %s | `%s` |" % (pct, dso, sym))
        L.append("")
        L.append("By object: " + ", ".join("%s %.1f%%" % (d, p) for p, d in prof["by_dso"]))
        L.append("")
    elif prof and prof.get("error"):
        L.append("Profile: %s" % prof["error"])
        L.append("")

    targets = evaluate_targets(results, tools)
    if targets:
        L.append("## Targets (issue 5, default mode)")
        L.append("")
        L.append("| target | measured | |")
        L.append("|---|---|---|")
        for name, measured, ok in targets:
            L.append("| %s | %s | %s |" % (name, measured,
                                           "met" if ok is True else "**missed**" if ok is False else "n/a"))
        L.append("")
    return "\n".join(L) + "\n"


def evaluate_targets(results, tools):
    out = []
    wl_names = results["workload_order"]

    def stats(name, tool):
        cell = results.get(name, {}).get("tools", {}).get(tool)
        if not cell or cell.get("failure"):
            return None, (cell or {}).get("failure") or "not run"
        return workload_stats(cell), None

    for name in wl_names:
        if "memtrace" not in tools:
            break
        st, why = stats(name, "memtrace")
        limit = TARGET_WALL.get(name, TARGET_WALL_OTHER)
        if st is None:
            out.append(("%s wall ≤ %.1f× native" % (name, limit), why, False if why in ("failed", "timeout") else None))
            continue
        out.append(("%s wall ≤ %.1f× native" % (name, limit), fmt_ratio(st["wall"]), st["wall"] <= limit))
        vg, vwhy = stats(name, "valgrind")
        if vg:
            speed = vg["wall"] / st["wall"]
            out.append(("%s ≥ 10× faster than valgrind" % name, "%.1f× faster (%s vs %s)"
                        % (speed, fmt_ratio(vg["wall"]), fmt_ratio(st["wall"])), speed >= 10))
        ht, hwhy = stats(name, "heaptrack")
        if ht:
            out.append(("%s faster than heaptrack" % name, "%s vs heaptrack run only %s"
                        % (fmt_ratio(st["wall"]), fmt_ratio(ht["wall"])), st["wall"] < ht["wall"]))
        limit_mb = 2 * st["native_rss_mb"] + TARGET_RSS_SLACK_MB
        out.append(("%s peak RSS ≤ 2× native + %d MB" % (name, TARGET_RSS_SLACK_MB),
                    "%.0f MB vs limit %.0f MB (%s)" % (st["rss_mb"], limit_mb, fmt_ratio(st["rss"])),
                    st["rss_mb"] <= limit_mb))
    micro = results.get("micro", {})

    def added(key):
        c = micro.get(key, {}).get("tools", {}).get("memtrace")
        if not c or not c["added"]:
            return None
        return statistics.median(c["added"])
    for key, limit, label in (("pair_shallow", 300, "malloc/free pair added ≤ 300 ns (~6 frames)"),
                              ("pair_deep", 300, "malloc/free pair added ≤ 300 ns (24 frames)"),
                              ("free_deep", 50, "free alone added ≤ 50 ns (24 frames)")):
        a = added(key)
        if a is not None:
            out.append((label, "+%.0f ns" % a, a <= limit))
    sc = results.get("scaling", {}).get("memtrace")
    if sc and sc["ratio"]:
        r = statistics.median(sc["ratio"])
        out.append(("2 threads allocate ≥ as fast together as 1 alone", "%.2f× (native %.2f×)" % (
            r, statistics.median(results["scaling"]["native"]["ratio"])), r >= 1.0))
    ls = results.get("leakscan")
    if ls and ls.get("diff"):
        d = statistics.median(ls["diff"])
        out.append(("leak scan of 1M blocks ≤ 1 s", "%.0f ms" % d, d <= 1000))
    sy = results.get("symbolize")
    if sy and sy.get("report"):
        s = statistics.median(sy["report"])
        out.append(("symbolizing 10k PCs ≤ 0.5 s", "%.3f s (%d PCs)" % (s, sy["pcs"]), s <= 0.5))
    return out


def tool_versions():
    vs = []
    for argv in (["valgrind", "--version"], ["heaptrack", "--version"], [PYTHON, "--version"],
                 ["sqlite3", "--version"], ["perl", "-e", "print $^V"], ["gcc", "-dumpfullversion"]):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
            v = (r.stdout or r.stderr).strip().splitlines()
            if v:
                vs.append("%s %s" % (os.path.basename(argv[0]), v[0].split()[0] if argv[0] == "sqlite3"
                                     else v[0].replace("heaptrack ", "").replace("Python ", "")))
        except (OSError, subprocess.TimeoutExpired):
            pass
    if os.path.exists(ASAN_LIB):
        vs.append("libasan " + os.path.basename(os.path.realpath(ASAN_LIB)).replace("libasan.so.", ""))
    return ", ".join(vs)


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = ", %.0f GB RAM" % (int(f.readline().split()[1]) / 1024 / 1024)
    except (OSError, ValueError, IndexError):
        pass
    return "%d CPUs (%s)%s, Linux %s" % (os.cpu_count() or 0, cpu, mem, platform.release())


# --------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description="memtrace benchmark (see bench/README.md)")
    ap.add_argument("--quick", action="store_true",
                    help="1 run each, small inputs (a few minutes; what CI runs)")
    ap.add_argument("--tools", default=",".join(DEFAULT_TOOLS),
                    help="comma list of tools, or 'all' (default: %(default)s; also: memtrace-align16)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help="default: %(default)s")
    ap.add_argument("--out", default=None, help="markdown results (default: BUILD/bench-results.md); "
                    "raw numbers go next to it as .json")
    ap.add_argument("--build", default=os.path.join(REPO, "build"),
                    help="memtrace build directory with memtrace and libmemtrace.so (default: %(default)s)")
    ap.add_argument("--runs", type=int, default=None, help="runs per cell (quick: 1, full: 5)")
    ap.add_argument("--skip", default="", help="comma list of sections to skip: "
                    "workloads,breakdown,micro,scaling,primitives,leakscan,symbolize,profile")
    ap.add_argument("--profile", choices=["auto", "yes", "no"], default="auto",
                    help="perf profile of python3 under memtrace (auto: full mode, when perf works)")
    ap.add_argument("--install-deps", action="store_true",
                    help="apt-get install the Debian packages the bench needs first")
    ap.add_argument("--keep-workdir", action="store_true", help="keep the scratch directory")
    args = ap.parse_args()

    mode = "quick" if args.quick else "full"
    sizes = dict(SIZES[mode])
    runs = args.runs or sizes["runs"]
    tools = ALL_TOOLS if args.tools == "all" else [t for t in args.tools.split(",") if t and t != "native"]
    for t in tools:
        if t not in ALL_TOOLS:
            ap.error("unknown tool %r (have: %s)" % (t, ", ".join(ALL_TOOLS)))
    wl_names = [w for w in args.workloads.split(",") if w]
    skip = set(s for s in args.skip.split(",") if s)

    if args.install_deps:
        install_missing_packages(BENCH_PACKAGES + (OPTIONAL_PACKAGES if args.profile != "no" else []))
    build = os.path.abspath(args.build)
    memtrace = os.path.join(build, "memtrace")
    lib = os.path.join(build, "libmemtrace.so")
    if not (os.access(memtrace, os.X_OK) and os.path.exists(lib)):
        sys.exit("bench: no memtrace build in %s (run `make build`, or pass --build DIR)" % build)
    out = os.path.abspath(args.out or os.path.join(build, "bench-results.md"))

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="memtrace-bench.")
    ctx = {"workdir": workdir, "memtrace": memtrace, "lib": lib, "build": build, "mode": mode}
    try:
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip() or "?"
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        version = subprocess.run([memtrace, "--version"], capture_output=True, text=True).stdout.strip()
        results = {"meta": {
            "mode": mode, "runs": runs, "tools": tools, "machine": machine(),
            "commit": commit + (" (with uncommitted changes)" if dirty else ""), "memtrace_version": version,
            "tool_versions": tool_versions(), "started": started.isoformat(),
            "built": datetime.datetime.fromtimestamp(os.path.getmtime(lib), datetime.timezone.utc)
                     .strftime("%Y-%m-%d %H:%M UTC"),
            "command": " ".join(["bench/run.py"] + sys.argv[1:])}, "workload_order": []}
        log("bench: %s mode, %d run(s) per cell, tools: %s; scratch dir %s" % (
            mode, runs, ", ".join(tools), workdir))
        for name in ("spawn", "mtalloc", "micro", "leakscan"):
            ctx[name] = os.path.join(workdir, name)
            compile_c(os.path.join(BENCH, name + ".c"), ctx[name])
        ctx["holdshim"] = os.path.join(workdir, "holdshim.so")
        compile_c(os.path.join(BENCH, "holdshim.c"), ctx["holdshim"], ["-shared", "-fPIC", "-fno-builtin"])
        SPAWN["exe"] = ctx["spawn"]

        timing = results["meta"]["section_s"] = {}
        load = results["meta"]["loadavg"] = []
        sampler_stop = threading.Event()

        def sample_load():                 # other jobs on a shared machine: say how busy it was
            while not sampler_stop.is_set():
                load.append(os.getloadavg()[0])
                sampler_stop.wait(10)
        threading.Thread(target=sample_load, daemon=True).start()

        def section(name, fn, *a):
            if name in skip:
                return
            t0 = time.monotonic()
            fn(*a)
            timing[name] = round(time.monotonic() - t0, 1)
            log("bench: %s took %.0f s" % (name, timing[name]))

        if "workloads" not in skip:
            wls = make_workloads(wl_names, sizes, workdir, ctx["mtalloc"])
            results["workload_order"] = [w.name for w in wls]
        else:
            wls = make_workloads([w for w in wl_names if w == "python3"], sizes, workdir, ctx["mtalloc"])
        section("workloads", measure_workloads, wls, tools, runs, ctx, results)
        section("breakdown", measure_breakdown, wls, runs, ctx, results)
        section("micro", measure_micro, tools, runs, sizes, ctx, results)
        section("scaling", measure_scaling, tools, runs, sizes, ctx, results)
        section("primitives", measure_primitives, runs, sizes, ctx, results)
        section("leakscan", measure_leakscan, runs, sizes, ctx, results)
        section("symbolize", measure_symbolize, runs, sizes, ctx, results)
        want_profile = args.profile == "yes" or (args.profile == "auto" and mode == "full")
        if "profile" not in skip and want_profile and "workloads" not in skip:
            if perf_works():
                section("profile", measure_profile, wls, tools, ctx, results)
            else:
                results["profile"] = {"error": "perf record does not work here"}

        sampler_stop.set()
        elapsed = time.monotonic() - t_start
        results["meta"]["elapsed_s"] = elapsed
        text = render(results, tools, args, started, elapsed)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "w") as f:
            f.write(text)
        with open(os.path.splitext(out)[0] + ".json", "w") as f:
            json.dump(results, f, indent=1, default=str)
        print(text)
        log("bench: done in %.1f min; results in %s" % (elapsed / 60, out))
    except KeyboardInterrupt:
        log("bench: interrupted")
        return 130
    finally:
        if not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
