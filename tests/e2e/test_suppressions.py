"""test_suppressions.py — valgrind-format suppression files (docs/suppressions.md).

- --gen-suppressions=all prints valgrind's entry after each error (mangled names, the
  allocator as frame 0), and feeding those entries back silences every error.
- The acceptance test of memtrace issue 4: entries that valgrind's own --gen-suppressions=all
  writes for the same samples silence the same errors under memtrace, unchanged.
- The grammar: comments, blank lines, tool lists, entries for other tools, kinds memtrace
  never reports, match-leak-kinds, `...`, globs, fun:/obj:/src:; a broken file is one line
  `memtrace: FILE:LINE: what` and exit status 2, before the program runs.
- What a suppression does to the reports: not printed, "suppressed" in the JSON, the
  LEAK SUMMARY's suppressed line, used_suppression lines, the ERROR SUMMARY.
- The shipped default.supp: what glibc, ld.so and libstdc++ leave allocated on purpose
  disappears (never a definite leak), --default-suppressions=no brings it back, and the
  build tree and an installed tree both find the file.
"""

import glob
import os
import re
import subprocess

import pytest

import e2e_util as u

ALL = ("--show-leak-kinds=all",)
FREERES_OFF = ("--run-libc-freeres=no", "--run-cxx-freeres=no")

# (sample, argv) whose every error both tools report with the same stack.
SAME_ERRORS = [
    ("leak_definite", ()), ("leak_indirect", ()), ("leak_possible", ()), ("leak_cpp", ()),
    ("threads", ()), ("bad_free", ()), ("mismatched_free", ()), ("invalid_size", ()),
    ("alloc_apis", ()), ("deep_recursion", ()), ("reachable", ()),
    ("overflow", ("overflow_write_1",)), ("overflow", ("overflow_read_1",)),
    ("overflow", ("thread_aligned16_overflow_write_1",)),
    ("use_after_free", ("read",)), ("use_after_free", ("write",)),
]


def _id(case):
    sample, argv = case
    return "-".join((sample,) + argv)


def entries_in(text):
    """The `{ ... }` suppression entries in a text (lines without ==PID== prefixes), as
    lists of stripped lines, braces excluded."""
    out, cur = [], None
    for line in text.splitlines():
        if line == "{":
            cur = []
        elif line == "}" and cur is not None:
            out.append(cur)
            cur = None
        elif cur is not None:
            cur.append(line.strip())
    return out


def write_entries(path, entries, names=None):
    with open(path, "w") as f:
        for i, e in enumerate(entries):
            name = names[i] if names else e[0]
            f.write("{\n   " + "\n   ".join([name] + e[1:]) + "\n}\n")
    return path


def counted(report):
    """Entries of the JSON that are not suppressed."""
    return [e for e in report["errors"] if not e["suppressed"]]


@pytest.fixture
def supp_file(tmp_path):
    """supp_file(text, name=...) -> path of a suppressions file with that text."""
    counter = [0]

    def make(text, name=None):
        counter[0] += 1
        path = tmp_path / (name or f"s{counter[0]}.supp")
        path.write_text(text)
        return path
    return make


# ---------------------------------------------------------------------------------------
# --gen-suppressions
# ---------------------------------------------------------------------------------------

def test_gen_suppressions_c_leak(run_sample):
    proc, _ = run_sample("leak_definite", options=("--gen-suppressions=all",))
    entries = entries_in(proc.stderr)
    assert ["<insert_a_suppression_name_here>", "Memcheck:Leak", "match-leak-kinds: definite",
            "fun:malloc", "fun:make_message", "fun:main"] in entries, proc.stderr


def test_gen_suppressions_cpp_mangled(run_sample):
    """C++ names are mangled, as valgrind's fun: lines need them; the allocator is operator new."""
    proc, _ = run_sample("leak_cpp", options=("--gen-suppressions=all",))
    entries = entries_in(proc.stderr)
    assert ["<insert_a_suppression_name_here>", "Memcheck:Leak", "match-leak-kinds: definite",
            "fun:_Znwm", "fun:_ZN4shop11make_widgetEi", "fun:main"] in entries, proc.stderr


def test_gen_suppressions_follow_each_error(run_sample):
    """valgrind's layout: the error, its blank ==PID== line, then the entry, unprefixed."""
    proc, report = run_sample("bad_free", options=("--gen-suppressions=all",))
    lines = proc.stderr.splitlines()
    opens = [i for i, line in enumerate(lines) if line == "{"]
    assert len(opens) == len(u.runtime_errors(report)) == 5, proc.stderr
    for i in opens:
        assert re.fullmatch(r"==\d+== ", lines[i - 1]), lines[i - 1]
        assert lines[i + 2] == "   Memcheck:Free" and lines[i + 3] == "   fun:free", lines[i:i + 6]


def test_gen_suppressions_kinds(run_sample):
    proc, _ = run_sample("invalid_size", options=("--gen-suppressions=all",))
    e = entries_in(proc.stderr)[0]
    assert e[1:4] == ["Memcheck:FishyValue", "malloc(size)", "fun:malloc"] and e[-1] == "fun:main", e
    proc, _ = run_sample("overflow", "overflow_write_1", options=("--gen-suppressions=all",))
    e = entries_in(proc.stderr)[0]
    assert e[1] == "Memcheck:Addr1" and e[-1] == "fun:main", e


def test_gen_suppressions_off_by_default(run_sample):
    proc, _ = run_sample("leak_definite")
    assert entries_in(proc.stderr) == []


@pytest.mark.parametrize("case", SAME_ERRORS, ids=_id)
def test_generated_entries_silence_their_errors(run_sample, tmp_path, case):
    sample, argv = case
    proc, before = run_sample(sample, *argv, options=ALL + ("--gen-suppressions=all",))
    assert counted(before), f"{sample} reports no error: nothing to test"
    supp = write_entries(tmp_path / "gen.supp", entries_in(proc.stderr))
    proc, after = run_sample(sample, *argv, options=ALL + (f"--suppressions={supp}",))
    leftover = [e for e in after["errors"] if not e["suppressed"]]
    assert leftover == [], f"not silenced: {u.describe_errors(leftover)}\n{supp.read_text()}"
    assert after["summary"]["errors"] == 0
    names = {e["suppression"] for e in after["errors"] if e["suppressed"]}
    assert all(n == "<insert_a_suppression_name_here>" or n.startswith("memtrace-")
               for n in names), names


# ---------------------------------------------------------------------------------------
# valgrind's own entries (the acceptance test)
# ---------------------------------------------------------------------------------------

def valgrind_entries(valgrind, prog, argv, workdir):
    log = workdir / "vg.log"
    subprocess.run([valgrind, "--leak-check=full", "--show-leak-kinds=all",
                    "--gen-suppressions=all", f"--log-file={log}", str(prog), *argv],
                   cwd=workdir, capture_output=True, timeout=u.VALGRIND_TIMEOUT)
    return entries_in(log.read_text())


# Errors memtrace reports and valgrind does not (so valgrind writes no entry for them):
# (sample, marker). valgrind's calloc refuses an overflowing count * size without a report,
# and checks its arguments only after that refusal.
MEMTRACE_ONLY = [("invalid_size", "invalid-size calloc negative"),
                 ("invalid_size", "invalid-size calloc overflow")]


def memtrace_only(paths, sample, errors):
    lines = [u.marker_line(paths.sample_src(s), tag) for s, tag in MEMTRACE_ONLY if s == sample]
    return [e for e in errors if e["kind"] != "leak" and e["stack"][0].get("line") in lines]


@pytest.mark.parametrize("case", SAME_ERRORS, ids=_id)
def test_valgrind_generated_entries_silence_the_same_errors(valgrind, paths, run_sample,
                                                            tmp_path, case):
    sample, argv = case
    entries = valgrind_entries(valgrind, paths.sample_bin(sample), argv, tmp_path)
    assert entries, f"valgrind generated no suppression for {sample}"
    supp = write_entries(tmp_path / "valgrind.supp", entries,
                         [f"vg-{i}" for i in range(len(entries))])
    _, before = run_sample(sample, *argv, options=ALL)
    proc, after = run_sample(sample, *argv, options=ALL + (f"--suppressions={supp}",))
    assert counted(before)
    only = memtrace_only(paths, sample, counted(after))
    assert after["summary"]["errors"] == len(only), (
        f"{u.describe_errors(counted(after))}\n{u.describe(counted(after))}\n{supp.read_text()}")
    # every error valgrind also has is silenced: all runtime errors and the lost blocks of
    # the program (glibc's thread blocks are the default file's business; a block still
    # reachable is no error, and valgrind may not see it at all)
    leftover = [e for e in counted(after) if e not in only and (e["kind"] != "leak" or
                (e["leak_kind"] != "reachable" and not u.is_glibc_internal(e)))]
    assert leftover == [], f"{u.describe(leftover)}\n{supp.read_text()}"


def test_valgrind_default_supp_reads_unchanged(valgrind, run_sample):
    """valgrind's own default.supp (Helgrind, DRD, Memcheck:Cond, Param, Addr4 ...) loads
    without a complaint and changes nothing that memtrace reports."""
    found = glob.glob(os.path.join(os.path.dirname(os.path.realpath(valgrind)), "..",
                                   "libexec", "valgrind", "default.supp")) + \
        glob.glob("/usr/lib*/valgrind/default.supp") + glob.glob("/usr/lib/*/valgrind/default.supp")
    assert found, "valgrind's default.supp not found"
    proc, report = run_sample("leak_definite", options=(f"--suppressions={found[0]}",))
    assert "memtrace:" not in proc.stderr, proc.stderr
    assert report["summary"]["errors"] == 2 and counted(report) == report["errors"]


def test_memtrace_default_supp_reads_in_valgrind(valgrind, paths, tmp_path):
    """The shipped file is valgrind format: valgrind accepts it unchanged."""
    supp = paths.source / "report" / "default.supp"
    run = subprocess.run([valgrind, "-q", f"--suppressions={supp}", "/bin/true"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=u.VALGRIND_TIMEOUT)
    assert run.returncode == 0 and "FATAL" not in run.stderr, run.stderr


# ---------------------------------------------------------------------------------------
# The grammar
# ---------------------------------------------------------------------------------------

GRAMMAR = """\
# a comment, then blank lines

   # an indented comment
{
   an entry for another tool, skipped whole (its lines are not memcheck's)
   drd:ConflictingAccess
   whatever: this line is
   fun:*
}
{
   never matches: memtrace has no uninitialised-value errors
   Memcheck:Cond
   fun:*
}
{
   a Param entry has its syscall parameter line
   Memcheck:Param
   write(buf)
   fun:*
}
{
   several tools, lower-case memcheck
   memcheck,exp-foo:Leak
   match-leak-kinds: definite
   fun:malloc
   fun:make_message
   fun:main
}
{
   globs, and the allocator skipped by ...
   Memcheck:Leak
   ...
   fun:make_tok?n
   fun:m*n
}
"""


def test_grammar(run_sample, supp_file):
    supp = supp_file(GRAMMAR)
    proc, report = run_sample("leak_definite", options=(f"--suppressions={supp}",))
    assert "memtrace:" not in proc.stderr, proc.stderr
    by = {e["suppression"]: e for e in report["errors"] if e["suppressed"]}
    assert set(by) == {"several tools, lower-case memcheck",
                       "globs, and the allocator skipped by ..."}, report["errors"]
    assert report["summary"]["errors"] == 0


@pytest.mark.parametrize("frames, silenced", [
    (["fun:malloc", "fun:make_message", "fun:main"], True),
    (["fun:calloc", "fun:make_message"], True),    # the log does not name a record's allocator
    (["fun:free", "fun:make_message"], False),      # ... but it is one
    (["fun:*alloc", "fun:make_message"], True),
    (["obj:*/vgpreload_memcheck-amd64-linux.so", "fun:make_message"], True),
    (["fun:make_message"], False),                        # frame 0 is the allocator
    (["...", "fun:make_message", "..."], True),
    (["...", "fun:main"], True),
    (["fun:malloc", "...", "fun:__libc_start_main*"], True),
    (["fun:malloc", "fun:main"], False),
    (["fun:malloc", "obj:*/leak_definite", "obj:*/leak_definite"], True),
    (["fun:malloc", "src:leak_definite.c", "src:leak_definite.c"], True),
    (["fun:malloc", "src:leak_definite.c:1", "..."], False),
    (["fun:malloc", "fun:make_message", "fun:(below main)"], False),
    (["fun:malloc", "fun:make_message", "fun:main", "fun:(below main)"], True),
], ids=str)
def test_frame_lines(run_sample, supp_file, marker, frames, silenced):
    """Matching against valgrind's view of the stack: the allocator as frame 0."""
    text = "{\n   x\n   Memcheck:Leak\n   " + "\n   ".join(frames) + "\n}\n"
    _, report = run_sample("leak_definite", options=(f"--suppressions={supp_file(text)}",))
    src, line = marker("leak_definite", "leak definite message")
    rec = u.record_at(report, "definite", src, line)
    assert rec["suppressed"] is silenced, frames


def test_src_line(run_sample, supp_file, marker):
    src, line = marker("leak_definite", "leak definite message")
    text = f"{{\n   x\n   Memcheck:Leak\n   fun:malloc\n   src:leak_definite.c:{line}\n}}\n"
    _, report = run_sample("leak_definite", options=(f"--suppressions={supp_file(text)}",))
    assert u.record_at(report, "definite", src, line)["suppressed"] is True


@pytest.mark.parametrize("kinds, silenced", [
    ("definite", True), ("possible,reachable", False), ("all", True), ("indirect", False),
])
def test_match_leak_kinds(run_sample, supp_file, kinds, silenced):
    text = f"{{\n   x\n   Memcheck:Leak\n   match-leak-kinds: {kinds}\n   fun:malloc\n   fun:make_message\n}}\n"
    _, report = run_sample("leak_definite", options=(f"--suppressions={supp_file(text)}",))
    rec = [r for r in u.leak_records(report) if r["stack"][0].get("function") == "make_message"]
    assert len(rec) == 1 and rec[0]["suppressed"] is silenced


@pytest.mark.parametrize("sample, argv, kind, silenced", [
    ("bad_free", (), "Free", True),
    ("bad_free", (), "Leak", False),
    ("mismatched_free", (), "Free", True),
    ("invalid_size", (), "FishyValue", True),
    ("overflow", ("overflow_write_1",), "Addr1", True),
    ("overflow", ("overflow_write_1",), "Addr8", False),
    ("overflow", ("overflow_write_1",), "Free", False),
    ("use_after_free", ("read",), "Addr1", True),
    ("leak_definite", (), "Addr1", False),
    ("leak_definite", (), "Value8", False),
], ids=str)
def test_kinds(run_sample, supp_file, sample, argv, kind, silenced):
    text = f"{{\n   x\n   Memcheck:{kind}\n   ...\n   fun:main\n}}\n"
    _, report = run_sample(sample, *argv, options=(f"--suppressions={supp_file(text)}",))
    mine = [e for e in report["errors"] if e["kind"] != "leak"] or report["errors"]
    assert mine and all(e["suppressed"] is silenced for e in mine), mine


def test_addr_size_matches_the_access(run_sample, supp_file):
    """Addr8 is an 8-byte access; the sample's 1-byte overflow needs Addr1."""
    _, report = run_sample("overflow", "overflow_read_1")
    err = u.runtime_errors(report)[0]
    size = err["access"]["size"]
    text = f"{{\n   x\n   Memcheck:Addr{size}\n   ...\n   fun:main\n}}\n"
    _, report = run_sample("overflow", "overflow_read_1",
                           options=(f"--suppressions={supp_file(text)}",))
    assert u.runtime_errors(report)[0]["suppressed"] is True


BROKEN = [
    ("garbage\n", 1, "expected '{'"),
    ("{\n   name\n   Memcheck:Leak\n   fun:malloc\n", 4, "end of file"),
    ("{\n   name\n   Memcheck:Lek\n   fun:malloc\n}\n", 3, "unknown memcheck suppression kind"),
    ("{\n   name\n   Memcheck Leak\n   fun:malloc\n}\n", 3, "malformed"),
    ("{\n   name\n   Memcheck:Leak\n   frame:malloc\n}\n", 4, "frame line"),
    ("{\n   name\n   Memcheck:Leak\n}\n", 4, "missing stack trace"),
    ("{\n   name\n   Memcheck:Leak\n   ...\n}\n", 5, "not '...'"),
    ("{\n   name\n   Memcheck:Leak\n   match-leak-kinds: lost\n   fun:x\n}\n", 4, "match-leak-kinds"),
    ("{\n}\n", 2, "name"),
    ("# ok\n{\n  a\n  Memcheck:Free\n  fun:free\n}\n\n}\n", 8, "expected '{'"),
    ("{\n   n\n   Memcheck:FishyValue\n   malloc size\n   fun:x\n}\n", 4, "FishyValue"),
    ("{\n   n\n   helgrind:Race\n   fun:x\n", 4, "end of file"),
    ("{\n   n\n   Memcheck:Leak\n   fun:x\x00y\n}\n", 4, "NUL"),
]


@pytest.mark.parametrize("text, line, what", BROKEN, ids=[b[2] for b in BROKEN])
def test_broken_file_is_one_line_and_exit_2(run_memtrace, paths, supp_file, tmp_path,
                                            text, line, what):
    supp = supp_file(text, name="broken.supp")
    proc = run_memtrace(f"--suppressions={supp}", paths.sample_bin("leak_definite"))
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "", "the program ran before the file was read"
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"memtrace: {supp}:{line}: ") and \
        what in lines[0], proc.stderr


def test_broken_file_in_report_mode(run_memtrace, paths, supp_file, tmp_path):
    log = tmp_path / "run.log"
    run_memtrace(f"--event-log={log}", paths.sample_bin("leak_definite"))
    supp = supp_file("{\n   n\n   Memcheck:Leek\n   fun:x\n}\n")
    proc = run_memtrace("report", f"--suppressions={supp}", log)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"memtrace: {supp}:3: unknown memcheck suppression kind 'Leek'"], proc.stderr


@pytest.mark.parametrize("what", ["missing", "directory"])
def test_unreadable_file(run_memtrace, paths, tmp_path, what):
    path = tmp_path / "nothing.supp"
    if what == "directory":
        path.mkdir()
    proc = run_memtrace(f"--suppressions={path}", paths.sample_bin("leak_definite"))
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and str(path) in proc.stderr, proc.stderr


def test_several_files_and_lines_past_num_callers(run_sample, supp_file):
    """Several --suppressions files apply together; frame lines past --num-callers (plus the
    allocator's) are ignored, as valgrind ignores lines past its --num-callers."""
    a = supp_file("{\n   a\n   Memcheck:Leak\n   fun:malloc\n   fun:make_message\n}\n")
    long_entry = ["fun:malloc", "fun:make_token", "fun:main"] + ["fun:nowhere"] * 30
    b = supp_file("{\n   b\n   Memcheck:Leak\n   " + "\n   ".join(long_entry) + "\n}\n")
    _, report = run_sample("leak_definite", options=(f"--suppressions={a}", f"--suppressions={b}",
                                                      "--num-callers=2"))
    assert {e["suppression"] for e in report["errors"]} == {"a", "b"}


# ---------------------------------------------------------------------------------------
# The reports
# ---------------------------------------------------------------------------------------

def test_text_and_json_of_suppressed_records(run_sample, supp_file):
    supp = supp_file("{\n   tokens\n   Memcheck:Leak\n   fun:malloc\n   fun:make_token\n}\n")
    proc, report = run_sample("leak_definite", options=(f"--suppressions={supp}",))
    text = proc.stderr
    assert "make_token" not in text, "a suppressed record is printed"
    assert "make_message" in text
    s = report["summary"]
    assert s["errors"] == 1
    assert s["suppressed"] == {"errors": 1, "bytes": 64, "blocks": 4}
    assert s["leaked_bytes"]["definite"] == 100
    assert re.search(r"==\d+==         suppressed: 64 bytes in 4 blocks$", text, re.M), text
    assert re.search(r"^==\d+== used_suppression:      1 tokens " + re.escape(str(supp))
                     + r":2 suppressed: 64 bytes in 4 blocks$", text, re.M), text
    assert re.search(r"ERROR SUMMARY: 1 errors from 1 contexts \(suppressed: 1 from 1\)$", text,
                     re.M), text
    rec = [r for r in u.leak_records(report) if r["suppressed"]]
    assert len(rec) == 1 and rec[0]["suppression"] == "tokens" and rec[0]["bytes"] == 64


def test_suppressed_runtime_errors_stay_in_the_json(run_sample, supp_file):
    supp = supp_file("{\n   frees\n   Memcheck:Free\n   fun:free\n   fun:double_free\n}\n")
    proc, report = run_sample("bad_free", options=(f"--suppressions={supp}",
                                                   "--error-exitcode=9"))
    errs = u.runtime_errors(report)
    assert len(errs) == 5
    assert [e["kind"] for e in errs if e["suppressed"]] == ["double-free"]
    assert report["summary"]["errors"] == 4
    assert proc.stderr.count("Invalid free()") == 4


def test_exit_code_counts_only_unsuppressed(run_sample, tmp_path):
    proc, _ = run_sample("leak_definite", options=("--gen-suppressions=all",))
    supp = write_entries(tmp_path / "all.supp", entries_in(proc.stderr))
    proc, report = run_sample("leak_definite", options=(f"--suppressions={supp}",
                                                        "--error-exitcode=7"))
    assert proc.returncode == 0 and report["summary"]["errors"] == 0
    proc, _ = run_sample("leak_definite", options=("--error-exitcode=7",))
    assert proc.returncode == 7


# ---------------------------------------------------------------------------------------
# The default file
# ---------------------------------------------------------------------------------------

def default_entries(paths):
    return entries_in((paths.source / "report" / "default.supp").read_text())


def test_default_file_hides_no_real_leak(paths):
    """Leak entries only, each with match-leak-kinds of reachable and possible at most."""
    entries = default_entries(paths)
    assert entries
    for e in entries:
        assert e[1] == "Memcheck:Leak", e
        assert e[2].startswith("match-leak-kinds: "), e
        kinds = set(e[2].split(":", 1)[1].strip().split(","))
        assert kinds <= {"reachable", "possible"}, e


@pytest.mark.parametrize("sample, entry, kind", [
    ("clean_cpp", "memtrace-libstdc++-emergency-eh-pool", "reachable"),
    ("leak_cpp", "memtrace-libstdc++-emergency-eh-pool", "reachable"),
    ("threads", "memtrace-glibc-thread-dtv", "reachable"),
    ("exit_from_thread", "memtrace-glibc-thread-dtv", "reachable"),
])
def test_default_file_on_samples(run_sample, paths, sample, entry, kind):
    # The entries are for what glibc and libstdc++ keep when their freeres is not run.
    _, off = run_sample(sample, options=ALL + FREERES_OFF + ("--default-suppressions=no",))
    _, on = run_sample(sample, options=ALL + FREERES_OFF)
    assert not any(r["suppressed"] for r in off["errors"])
    hidden = [r for r in u.leak_records(on) if r["suppressed"]]
    assert hidden and all(r["suppression"] == entry and r["leak_kind"] == kind for r in hidden), \
        u.describe(hidden)
    # nothing the program allocated itself is hidden, and no definite or indirect leak at all
    assert all(u.first_frame_in(r["stack"][:1], paths.samples_src) is None for r in hidden)
    for k in ("definite", "indirect"):
        assert on["summary"]["leaked_bytes"][k] == off["summary"]["leaked_bytes"][k]
    assert on["summary"]["suppressed"]["bytes"] == sum(r["bytes"] for r in hidden)
    assert on["summary"]["in_use_at_exit"] == off["summary"]["in_use_at_exit"]


DLOPEN_LIB = r"""
#include <stdlib.h>
__thread int counters[64];
static void *kept;
__attribute__((constructor)) static void init(void) { kept = malloc(33); }
int touch(int i) { counters[i & 63]++; return counters[i & 63]; }
"""
DLOPEN_MAIN = r"""
#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv)
{
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
    if (!h) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    int (*touch)(int) = (int (*)(int))dlsym(h, "touch");
    printf("%d\n", touch(3));
    if (!dlopen("/nonexistent/libnothing.so", RTLD_NOW))
        dlerror();
    return 0;
}
"""


def test_default_file_on_dlopen(run_memtrace, tmp_path):
    """dlopen's link maps, dependency and version tables, _dl_find_object's table, the
    global scope, the TLS block, dlerror's state and stdout's buffer are ld.so's and glibc's;
    the block the library's own constructor keeps is not."""
    (tmp_path / "lib.c").write_text(DLOPEN_LIB)
    (tmp_path / "main.c").write_text(DLOPEN_MAIN)
    for cmd in (["cc", "-g", "-shared", "-fPIC", "-o", "libdemo.so", "lib.c"],
                ["cc", "-g", "-o", "dlmain", "main.c", "-ldl"]):
        subprocess.run(cmd, cwd=tmp_path, check=True, timeout=u.TIMEOUT)
    json_path = tmp_path / "r.json"
    proc = run_memtrace(*ALL, *FREERES_OFF, f"--json={json_path}", tmp_path / "dlmain", tmp_path / "libdemo.so")
    report = u.load_report(json_path, proc)
    shown = [r for r in u.leak_records(report) if not r["suppressed"]]
    assert [(r["leak_kind"], r["bytes"]) for r in shown] == [("reachable", 33)], u.describe(shown)
    names = {r["suppression"] for r in u.leak_records(report) if r["suppressed"]}
    assert {"memtrace-ld.so-dlopen-map-object", "memtrace-glibc-stdio-buffer",
            "memtrace-glibc-dlopen-tls-block"} <= names, names


def test_default_file_found_next_to_the_binary(paths):
    assert (paths.build / "default.supp").read_text() == \
        (paths.source / "report" / "default.supp").read_text()


def test_default_file_found_in_an_installed_tree(paths, tmp_path, run_memtrace):
    prefix = tmp_path / "prefix"
    subprocess.run(["cmake", "--install", str(paths.build), "--prefix", str(prefix)],
                   check=True, capture_output=True, timeout=u.TIMEOUT)
    installed = prefix / "bin" / "memtrace"
    assert (prefix / "share" / "memtrace" / "default.supp").is_file()
    assert not (prefix / "bin" / "default.supp").exists()
    json_path = tmp_path / "r.json"
    proc = run_memtrace(*ALL, *FREERES_OFF, f"--json={json_path}", paths.sample_bin("clean_cpp"),
                        memtrace=installed)
    assert "default suppressions" not in proc.stderr, proc.stderr
    report = u.load_report(json_path, proc)
    assert report["summary"]["suppressed"]["blocks"] >= 1, report["summary"]


def test_missing_default_file_is_a_warning(paths, tmp_path, run_memtrace):
    """A memtrace copied away from its default.supp says so once, and goes on."""
    lone = tmp_path / "bin" / "memtrace"
    lone.parent.mkdir()
    lone.write_bytes(paths.memtrace.read_bytes())
    lone.chmod(0o755)
    proc = run_memtrace("--version", memtrace=lone)
    assert proc.returncode == 0
    log = tmp_path / "run.log"
    run_memtrace(f"--event-log={log}", paths.sample_bin("leak_definite"))
    proc = run_memtrace("report", log, memtrace=lone)
    assert proc.returncode == 0
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("memtrace:")]
    assert len(warnings) == 1 and "default suppressions" in warnings[0], proc.stderr
    proc = run_memtrace("report", "--default-suppressions=no", log, memtrace=lone)
    assert not [line for line in proc.stderr.splitlines() if line.startswith("memtrace:")]


def test_valgrind_entries_for_a_stripped_program(valgrind, run_memtrace, tmp_path):
    """In a stripped program valgrind's unwinder walks on below _start, and its entries end
    with `obj:*` lines for frames memtrace's (whole) stacks do not have: they still match.
    A constructor's leak (a stack without main) and main's own."""
    src, prog = tmp_path / "stripped.c", tmp_path / "stripped"
    src.write_text("#include <stdlib.h>\n"
                   "static void *volatile keep;\n"
                   "__attribute__((noinline)) static void lose(void) { keep = malloc(31); keep = 0; }\n"
                   "__attribute__((constructor)) static void early(void) { keep = malloc(17); keep = 0; }\n"
                   "int main(void) { lose(); return 0; }\n")
    subprocess.run(["gcc", "-O0", "-s", "-o", str(prog), str(src)], check=True, timeout=u.TIMEOUT)
    entries = valgrind_entries(valgrind, prog, [], tmp_path)
    assert len(entries) == 2, entries
    supp = write_entries(tmp_path / "valgrind.supp", entries, ["vg-0", "vg-1"])
    out = tmp_path / "r.json"
    proc = run_memtrace(f"--json={out}", f"--suppressions={supp}", prog)
    report = u.load_report(out, proc)
    assert report["summary"]["leaked_blocks"]["definite"] == 0, (
        f"{u.describe(counted(report))}\n{supp.read_text()}")
    assert report["summary"]["suppressed"]["blocks"] == 2


def test_inlined_member_entries_both_ways(valgrind, run_memtrace, tmp_path):
    """An inlined C++ member function: valgrind names its frame by the short DWARF name
    (`fun:get`), and entries either tool writes silence the leak in the other."""
    src, prog = tmp_path / "inl.cpp", tmp_path / "inl"
    src.write_text("#include <cstdlib>\n"
                   "static void *volatile keep;\n"
                   "struct Pool { __attribute__((always_inline)) void *get(int n) { return malloc(n); } };\n"
                   "__attribute__((noinline)) static void fill() { Pool p; keep = p.get(19); keep = 0; }\n"
                   "int main() { fill(); return 0; }\n")
    subprocess.run(["g++", "-g", "-O0", "-o", str(prog), str(src)], check=True, timeout=u.TIMEOUT)
    entries = [e for e in valgrind_entries(valgrind, prog, [], tmp_path) if "Memcheck:Leak" in e]
    assert entries and any("fun:get" in e for e in entries), entries
    supp = write_entries(tmp_path / "valgrind.supp", entries, [f"vg-{i}" for i in range(len(entries))])
    out = tmp_path / "r.json"
    report = u.load_report(out, run_memtrace(f"--json={out}", f"--suppressions={supp}", prog))
    assert report["summary"]["leaked_blocks"]["definite"] == 0, u.describe(counted(report))

    proc = run_memtrace("--gen-suppressions=all", prog)
    ours = [e for e in entries_in(proc.stderr) if "Memcheck:Leak" in e]
    assert ours and any("fun:get" in e for e in ours), ours
    mine = write_entries(tmp_path / "memtrace.supp", ours, [f"mt-{i}" for i in range(len(ours))])
    run = subprocess.run([valgrind, "--leak-check=full", f"--suppressions={mine}", str(prog)],
                         capture_output=True, text=True, timeout=u.VALGRIND_TIMEOUT)
    assert "definitely lost: 0 bytes in 0 blocks" in run.stderr, run.stderr
