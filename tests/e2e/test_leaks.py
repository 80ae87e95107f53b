"""test_leaks.py — leak classification of the single-process samples: each loss record's kind,
bytes, blocks, indirect bytes and allocation site (frame 0 function and exact file:line), the
summary numbers, and which records are shown under the default --show-leak-kinds.
Expected numbers are the ones valgrind 3.19 reports for the same samples (see each sample's
header and test_valgrind_parity.py)."""

import os
import re
import signal
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

import e2e_util as u

ALL = ("--show-leak-kinds=all",)


def assert_frame0(record, function, src, line, paths=None, sample=None):
    top = record["stack"][0]
    assert top.get("function") == function, f"frame 0 is {top}"
    assert u.same_file(top.get("file"), src), f"frame 0 file {top.get('file')!r} is not {src}"
    assert top.get("line") == line, f"frame 0 line {top.get('line')} != {line}"
    if paths is not None:
        assert u.same_file(top.get("module"), paths.sample_bin(sample)), top


def assert_leaked(report, **expected):
    """expected: kind=(bytes, blocks) for each of the four kinds (missing kinds: (0, 0))."""
    s = report["summary"]
    for kind in u.LEAK_KINDS:
        want = expected.get(kind, (0, 0))
        got = (s["leaked_bytes"][kind], s["leaked_blocks"][kind])
        assert got == want, f"summary {kind}: got {got}, want {want}"


def test_definite(run_sample, marker, paths):
    proc, report = run_sample("leak_definite")
    assert proc.returncode == 0, proc.stderr
    assert report.get("exit") == {"status": 0}

    src, line = marker("leak_definite", "leak definite message")
    msg = u.record_at(report, "definite", src, line)
    assert (msg["bytes"], msg["blocks"], msg["indirect_bytes"]) == (100, 1, 0)
    assert_frame0(msg, "make_message", src, line, paths, "leak_definite")
    assert msg["stack"][1].get("function") == "main"
    assert msg["suppressed"] is False

    src, line = marker("leak_definite", "leak definite token")
    tok = u.record_at(report, "definite", src, line)
    # Four blocks, one allocation stack: one loss record.
    assert (tok["bytes"], tok["blocks"], tok["indirect_bytes"]) == (64, 4, 0)
    assert_frame0(tok, "make_token", src, line, paths, "leak_definite")

    assert len(u.leak_records(report)) == 2, u.describe(u.leak_records(report))
    assert_leaked(report, definite=(164, 5))
    assert report["summary"]["errors"] == 2
    assert report["summary"]["in_use_at_exit"] == {"bytes": 164, "blocks": 5}
    assert report["summary"]["total_heap_usage"] == {"allocs": 5, "frees": 0, "bytes": 164}


def test_data_segment_grown_by_the_program_is_scanned(run_sample, marker):
    """Arenas from sbrk() and brk() are the program's memory: the blocks only they point to
    are reachable, as under valgrind; the one whose pointer was dropped is lost."""
    proc, report = run_sample("sbrk_arena", options=("--show-leak-kinds=all",))
    assert proc.returncode == 0, proc.stderr[-3000:]
    for tag, kind, size in [("reachable from sbrk", "reachable", 40),
                            ("reachable from brk", "reachable", 56),
                            ("leak definite after the arenas", "definite", 24)]:
        src, line = marker("sbrk_arena", tag)
        assert u.record_at(report, kind, src, line)["bytes"] == size
    assert_leaked(report, definite=(24, 1), reachable=(96, 2))


def test_shared_memory_segment_is_scanned_while_attached(run_sample, marker):
    """A SysV shared memory segment is the program's memory while attached: the block only it
    points to is reachable, as under valgrind; the one a detached segment held is lost."""
    proc, report = run_sample("sysv_shm", options=("--show-leak-kinds=all",))
    assert proc.returncode == 0, proc.stderr[-3000:]
    for tag, kind, size in [("reachable from shared memory", "reachable", 40),
                            ("leak definite after shmdt", "definite", 72)]:
        src, line = marker("sysv_shm", tag)
        assert u.record_at(report, kind, src, line)["bytes"] == size
    assert_leaked(report, definite=(72, 1), reachable=(40, 1))


def test_thread_specific_values_are_reachable(run_sample, marker):
    """Values of pthread keys past the first 32 live in an array glibc mallocs per thread,
    first while memtrace itself unwinds (libunwind's own key): that array is scanned too."""
    proc, report = run_sample("reachable_specific", options=("--show-leak-kinds=all",))
    assert proc.returncode == 0 and proc.stdout == "value kept\n", proc.stderr[-3000:]
    src, line = marker("reachable_specific", "reachable through a key")
    records = [r for r in u.leak_records(report) if u.frame_at(r["stack"][0], src, line)]
    assert sorted((r["leak_kind"], r["bytes"]) for r in records) == \
        [("reachable", 77), ("reachable", 88)], u.describe(u.leak_records(report))
    assert_leaked(report, reachable=(165, 2))


@pytest.mark.parametrize("ending", ["return", "exit"])
def test_dead_frame_is_no_root(run_sample, marker, ending):
    """Copies of the only pointer left in a returned function's frame, below main, where the
    exit sequence then runs: the block is definitely lost. Where the exit sequence's frames
    leave holes over the copies depends on the stack's random alignment, so a memtrace that
    scanned dead frames passes a single run now and then, not several."""
    src, line = marker("leak_dead_frame", "leak definite record")
    for _ in range(6):
        proc, report = run_sample("leak_dead_frame", ending, options=ALL)
        assert proc.returncode == 0, proc.stderr
        record = u.record_at(report, "definite", src, line)
        assert (record["bytes"], record["blocks"], record["indirect_bytes"]) == (48, 1, 0)
        assert_frame0(record, "make_record", src, line)
        assert_leaked(report, definite=(48, 1))


def test_indirect_default_kinds(run_sample, marker):
    """Default --show-leak-kinds=definite,possible: the indirect records are not listed, nor
    counted as errors (default --errors-for-leak-kinds=definite,possible, as valgrind's:
    its ERROR SUMMARY for this sample is 1 error)."""
    _, report = run_sample("leak_indirect")
    src, line = marker("leak_indirect", "leak definite list")
    head = u.record_at(report, "definite", src, line)
    # valgrind: "122 (16 direct, 106 indirect) bytes in 1 blocks are definitely lost"
    assert (head["bytes"], head["blocks"], head["indirect_bytes"]) == (16, 1, 106)
    assert_frame0(head, "new_list", src, line)
    assert u.leak_records(report, "indirect") == []
    assert len(u.leak_records(report)) == 1, u.describe(u.leak_records(report))
    assert_leaked(report, definite=(16, 1), indirect=(106, 4))
    assert report["summary"]["errors"] == 1      # the definite record; indirect ones are not errors


def test_indirect_all_kinds(run_sample, marker):
    _, report = run_sample("leak_indirect", options=ALL)
    src, line = marker("leak_indirect", "leak indirect item")
    items = u.record_at(report, "indirect", src, line)
    assert (items["bytes"], items["blocks"], items["indirect_bytes"]) == (96, 3, 0)
    assert_frame0(items, "new_item", src, line)
    assert items["stack"][1].get("function") == "new_list"

    src, line = marker("leak_indirect", "leak indirect name")
    name = u.record_at(report, "indirect", src, line)
    assert (name["bytes"], name["blocks"], name["indirect_bytes"]) == (10, 1, 0)
    assert_frame0(name, "new_list", src, line)

    assert len(u.leak_records(report)) == 3, u.describe(u.leak_records(report))
    assert_leaked(report, definite=(16, 1), indirect=(106, 4))
    assert report["summary"]["errors"] == 1
    assert report["summary"]["in_use_at_exit"] == {"bytes": 122, "blocks": 5}


def test_possible(run_sample, marker, paths):
    """Only an interior pointer survives: possibly lost, never definite; an error by default
    (the default --errors-for-leak-kinds is valgrind's, definite,possible)."""
    _, report = run_sample("leak_possible")
    src, line = marker("leak_possible", "leak possible")
    rec = u.record_at(report, "possible", src, line)
    assert (rec["bytes"], rec["blocks"], rec["indirect_bytes"]) == (64, 1, 0)
    assert_frame0(rec, "make_buffer", src, line, paths, "leak_possible")
    assert u.leak_records(report, "definite") == []
    assert len(u.leak_records(report)) == 1, u.describe(u.leak_records(report))
    assert_leaked(report, possible=(64, 1))
    assert report["summary"]["errors"] == 1


@pytest.mark.parametrize("guard", ["auto", "none"])
def test_possible_far_inside(run_sample, marker, guard):
    """Pointers thousands of bytes into a block, past pages where no block starts or where
    the next block starts, still find it: possibly lost, glibc-placed or guarded."""
    _, report = run_sample("leak_possible_far", options=(f"--guard={guard}",))
    src, line = marker("leak_possible_far", "leak possible far")
    rec = u.record_at(report, "possible", src, line)
    assert (rec["bytes"], rec["blocks"]) == (40000, 2), u.describe(u.leak_records(report))
    assert u.leak_records(report, "definite") == []
    assert_leaked(report, possible=(40000, 2), reachable=(32, 1))


def test_reachable_is_clean_by_default(run_sample):
    proc, report = run_sample("reachable")
    assert proc.returncode == 0
    assert report["errors"] == []
    assert report["summary"]["errors"] == 0
    assert_leaked(report, reachable=(248, 2))


def test_reachable_all_kinds(run_sample, marker):
    _, report = run_sample("reachable", options=ALL)
    records = u.leak_records(report)
    assert {r["leak_kind"] for r in records} == {"reachable"}, u.describe(records)
    assert len(records) == 2, u.describe(records)
    src, line = marker("reachable", "reachable config")
    cfg = u.record_at(report, "reachable", src, line)
    assert (cfg["bytes"], cfg["blocks"]) == (48, 1)
    assert_frame0(cfg, "load_config", src, line)
    src, line = marker("reachable", "reachable table")
    table = u.record_at(report, "reachable", src, line)
    assert (table["bytes"], table["blocks"]) == (200, 1)
    assert report["summary"]["errors"] == 0
    assert [e for e in report["errors"] if e["kind"] != "leak"] == []


@pytest.mark.parametrize("options", [(), ALL], ids=["default", "all-kinds"])
def test_clean(run_sample, options):
    proc, report = run_sample("clean", options=options)
    assert proc.returncode == 0
    assert report["errors"] == []
    assert report["summary"]["errors"] == 0
    assert_leaked(report)
    assert report["summary"]["in_use_at_exit"] == {"bytes": 0, "blocks": 0}
    # valgrind: 14 allocs, 14 frees, 710 bytes allocated (realloc = one alloc + one free)
    assert report["summary"]["total_heap_usage"] == {"allocs": 14, "frees": 14, "bytes": 710}


def test_cpp_leaks(run_sample, marker, paths):
    _, report = run_sample("leak_cpp")
    src, line = marker("leak_cpp", "leak definite widget")
    widget = u.record_at(report, "definite", src, line)
    # valgrind: "145 (64 direct, 81 indirect) bytes in 1 blocks are definitely lost"
    assert (widget["bytes"], widget["blocks"], widget["indirect_bytes"]) == (64, 1, 81)
    fn = widget["stack"][0].get("function") or ""
    assert "shop::make_widget" in fn, f"frame 0 function is not demangled: {fn!r}"
    assert "_Z" not in fn
    assert u.same_file(widget["stack"][0].get("file"), src), widget["stack"][0]
    assert widget["stack"][0].get("line") == line
    assert u.same_file(widget["stack"][0].get("module"), paths.sample_bin("leak_cpp"))

    src, line = marker("leak_cpp", "leak definite scores")
    scores = u.record_at(report, "definite", src, line)
    assert (scores["bytes"], scores["blocks"], scores["indirect_bytes"]) == (40, 1, 0)
    assert "shop::make_scores" in (scores["stack"][0].get("function") or "")
    assert u.same_file(scores["stack"][0].get("file"), src), scores["stack"][0]

    assert len(u.leak_records(report, "definite")) == 2, u.describe(u.leak_records(report))
    s = report["summary"]
    assert (s["leaked_bytes"]["definite"], s["leaked_blocks"]["definite"]) == (104, 2)
    assert (s["leaked_bytes"]["indirect"], s["leaked_blocks"]["indirect"]) == (81, 2)
    assert (s["leaked_bytes"]["possible"], s["leaked_blocks"]["possible"]) == (0, 0)
    assert s["errors"] == 2                      # the 2 definite records


def test_cpp_indirect_owned_by_widget(run_sample, marker):
    """The std::string and std::vector buffers are allocated inside libstdc++ / template
    code; their stacks still reach make_widget at the line that built them."""
    _, report = run_sample("leak_cpp", options=ALL)
    src = marker("leak_cpp", "leak definite widget")[0]
    indirect = u.leak_records(report, "indirect")
    assert sorted((r["bytes"], r["blocks"]) for r in indirect) == [(40, 1), (41, 1)], \
        u.describe(indirect)
    for rec in indirect:
        frame = u.first_frame_in(rec["stack"], src.parent)
        assert frame is not None, f"no frame in {src.parent}: {rec['stack']}"
        assert "shop::make_widget" in (frame.get("function") or ""), frame
        tag = "indirect name" if rec["bytes"] == 41 else "indirect values"
        assert frame.get("line") == u.marker_line(src, tag), frame
        assert all("_Z" not in (f.get("function") or "") for f in rec["stack"]), rec["stack"]


def test_cpp_clean(run_sample):
    proc, report = run_sample("clean_cpp")
    assert proc.returncode == 0
    assert report["errors"] == []
    assert report["summary"]["errors"] == 0
    s = report["summary"]["leaked_bytes"]
    # Reachable is not asserted: libstdc++'s emergency exception pool may still be allocated.
    assert (s["definite"], s["indirect"], s["possible"]) == (0, 0, 0)


ALLOC_APIS = [
    # marker tag,              bytes, function
    ("leak posix_memalign",      100, "via_posix_memalign"),
    ("leak aligned_alloc",       160, "via_aligned_alloc"),
    ("leak memalign",            200, "via_memalign"),
    ("leak valloc",               50, "via_valloc"),
    ("leak realloc grow",        300, "via_realloc_grow"),
    ("leak realloc shrink",       20, "via_realloc_shrink"),
    ("leak calloc",               63, "via_calloc"),
]


@pytest.fixture(scope="module")
def alloc_apis_report(paths, tmp_path_factory):
    out = tmp_path_factory.mktemp("alloc_apis") / "r.json"
    proc = subprocess.run([str(paths.memtrace), f"--json={out}",
                           str(paths.sample_bin("alloc_apis"))],
                          capture_output=True, text=True, timeout=u.TIMEOUT, cwd=out.parent)
    return u.load_report(out, proc)


@pytest.mark.parametrize("tag,size,function", ALLOC_APIS, ids=[a[0].split(" ", 1)[1] for a in ALLOC_APIS])
def test_alloc_api(alloc_apis_report, marker, tag, size, function):
    src, line = marker("alloc_apis", tag)
    rec = u.record_at(alloc_apis_report, "definite", src, line)
    assert (rec["bytes"], rec["blocks"], rec["indirect_bytes"]) == (size, 1, 0)
    assert_frame0(rec, function, src, line)


def test_alloc_apis_summary(alloc_apis_report):
    records = u.leak_records(alloc_apis_report)
    assert len(records) == 7, u.describe(records)
    assert_leaked(alloc_apis_report, definite=(893, 7))
    assert alloc_apis_report["summary"]["errors"] == 7
    # valgrind: 9 allocs, 2 frees, 1,403 bytes allocated
    assert alloc_apis_report["summary"]["total_heap_usage"] == \
        {"allocs": 9, "frees": 2, "bytes": 1403}


def test_deep_recursion_default_num_callers(run_sample, marker):
    _, report = run_sample("deep_recursion")
    src, line = marker("deep_recursion", "leak definite bottom")
    rec = u.record_at(report, "definite", src, line)
    assert (rec["bytes"], rec["blocks"]) == (64, 1)
    stack = rec["stack"]
    assert len(stack) == 24, f"default --num-callers is 24, got {len(stack)} frames"
    call = u.marker_line(src, "recursive call")
    for i, frame in enumerate(stack[1:], 1):
        assert (frame.get("function"), frame.get("line")) == ("descend", call), f"frame {i}: {frame}"


LEAK_SAMPLES = ["leak_definite", "leak_indirect", "leak_possible", "leak_possible_far", "reachable", "clean",
                "leak_cpp", "clean_cpp", "alloc_apis", "deep_recursion", "threads", "exit_status"]


@pytest.mark.parametrize("sample", LEAK_SAMPLES)
def test_summary_sums_records(run_sample, sample):
    """With every kind shown, the loss records add up to the summary, and in use at exit is
    the sum of the four classes and the suppressed records (which leave their class, as in
    valgrind's LEAK SUMMARY)."""
    _, report = run_sample(sample, options=ALL)
    s = report["summary"]
    sums = u.totals([r for r in u.leak_records(report) if not r["suppressed"]])
    for kind in u.LEAK_KINDS:
        assert sums[kind] == (s["leaked_bytes"][kind], s["leaked_blocks"][kind]), kind
    hidden = [r for r in u.leak_records(report) if r["suppressed"]]
    assert (s["suppressed"]["bytes"], s["suppressed"]["blocks"]) == \
        (sum(r["bytes"] for r in hidden), sum(r["blocks"] for r in hidden))
    assert s["in_use_at_exit"]["bytes"] == sum(s["leaked_bytes"].values()) + s["suppressed"]["bytes"]
    assert s["in_use_at_exit"]["blocks"] == sum(s["leaked_blocks"].values()) + s["suppressed"]["blocks"]
    # A definite/possible record's indirect bytes are blocks that are themselves indirect.
    assert sum(r["indirect_bytes"] for r in u.leak_records(report)) == s["leaked_bytes"]["indirect"]


ALLOCATOR_NAMES = ("malloc", "calloc", "realloc", "memalign", "posix_memalign", "aligned_alloc",
                   "valloc", "operator new", "operator new[]")


@pytest.mark.parametrize("sample", LEAK_SAMPLES)
def test_no_memtrace_frames(run_sample, sample):
    """Frames inside memtrace itself are never shown: not at frame 0 (the allocator
    wrappers), and not further down either (e.g. a wrapper around main)."""
    _, report = run_sample(sample, options=ALL)
    for rec in u.leak_records(report):
        for i, frame in enumerate(rec["stack"]):
            module = os.path.basename(frame.get("module") or "")
            assert module != "libmemtrace.so", f"frame {i} is memtrace's own: {frame}"
        if u.is_glibc_internal(rec):
            continue                # frame 0 is ld.so's own calloc wrapper there, legitimately
        fn = (rec["stack"][0].get("function") or "") if rec["stack"] else ""
        assert fn.split("(")[0] not in ALLOCATOR_NAMES, f"frame 0 is the allocator: {fn}"


@pytest.mark.parametrize("sample", LEAK_SAMPLES)
def test_text_report_matches_json(run_sample, sample):
    """The text report on stderr carries the same numbers as the JSON."""
    proc, report = run_sample(sample)
    text = u.parse_text_summary(proc.stderr)
    s = report["summary"]
    assert text.get("errors") == s["errors"], f"ERROR SUMMARY vs JSON:\n{proc.stderr}"
    assert text.get("in_use") == (s["in_use_at_exit"]["bytes"], s["in_use_at_exit"]["blocks"]), \
        proc.stderr
    t = s["total_heap_usage"]
    assert text.get("total") == (t["allocs"], t["frees"], t["bytes"]), proc.stderr
    if s["in_use_at_exit"]["blocks"] == 0 and "leaks" not in text:
        assert text.get("all_freed"), f"neither LEAK SUMMARY nor 'All heap blocks were freed':\n{proc.stderr}"
    else:
        assert text.get("leak_summary"), f"no LEAK SUMMARY:\n{proc.stderr}"
        for kind in u.LEAK_KINDS:
            assert text["leaks"].get(kind) == (s["leaked_bytes"][kind], s["leaked_blocks"][kind]), \
                f"LEAK SUMMARY {kind} vs JSON:\n{proc.stderr}"


@pytest.mark.parametrize("how", ["null", "divide"])
def test_leaks_reported_when_the_program_crashes(run_sample, marker, tmp_path, how):
    """A null dereference (a division by zero) in the program: it still dies of SIGSEGV
    (SIGFPE), and the report still has its leak records and summaries, not a truncated
    log, and says where it crashed, as valgrind does."""
    md, xml = tmp_path / "crash.md", tmp_path / "crash.xml"
    sig, tag, what = {"null": (signal.SIGSEGV, "crash", "Access not within mapped region at address 0x0"),
                      "divide": (signal.SIGFPE, "divide", "Integer divide by zero at address ")}[how]
    proc, report = run_sample("crash_leak", *(["divide"] if how == "divide" else []),
                              options=(f"--markdown={md}", "--xml=yes", f"--xml-file={xml}"))
    assert proc.returncode == -sig, proc.stderr
    assert report.get("exit") == {"signal": sig}
    assert report["summary"]["log_truncated"] is False
    src, line = marker("crash_leak", "leak definite lost")
    record = u.record_at(report, "definite", src, line)
    assert (record["bytes"], record["blocks"]) == (64, 1)
    assert_leaked(report, definite=(64, 1))
    assert "truncated" not in proc.stderr
    crash = report["crash"]
    assert crash["signal"] == sig and crash["what"].startswith(what), crash
    src, line = marker("crash_leak", tag)
    assert u.frame_at(crash["stack"][0], src, line, "main"), crash["stack"][0]
    if how == "null":
        assert u.address(crash["address"]) == 0
    else:      # SIGFPE's address is the faulting instruction's, frame 0's pc
        assert crash["address"] == crash["stack"][0]["pc"], crash
    assert f"Process terminating with default action of signal {int(sig)} (SIG{sig.name[3:]})" in proc.stderr
    text = md.read_text()
    assert "## Crash" in text and re.search(rf"main — \S*crash_leak.c:{line}\n", text), text
    fatal = ET.parse(xml).getroot().find("fatal_signal")   # memcheck's element, its order
    assert [c.tag for c in fatal] == ["tid", "signo", "signame", "sicode", "event", "siaddr",
                                      "stack"], ET.tostring(fatal)
    assert (fatal.findtext("signo"), fatal.findtext("signame")) == (str(int(sig)), sig.name)
    assert what.startswith(fatal.findtext("event") + " at address")
    assert int(fatal.findtext("siaddr"), 16) == u.address(crash["address"])
    assert fatal.find("stack/frame/fn").text == "main"
    assert fatal.find("stack/frame/line").text == str(line)


def run_until_ready(paths, tmp_path, mode, options=()):
    """killed_leak MODE under memtrace, started: (Popen of memtrace, the program's pid,
    the JSON path)."""
    out = tmp_path / f"killed_{mode}.json"
    proc = subprocess.Popen([str(paths.memtrace), f"--json={out}", *options,
                             str(paths.sample_bin("killed_leak")), mode], cwd=tmp_path,
                            env=u.clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline()
    m = re.match(r"ready (\d+)$", line)
    assert m, f"no 'ready PID' line: {line!r}"
    return proc, int(m[1]), out


def wait_until_paused(pid):
    """Until the program sleeps in pause() (x86-64 syscall 34), not still returning from
    the write of its ready line."""
    for _ in range(1000):
        with open(f"/proc/{pid}/syscall") as f:
            if f.read().split()[0] == "34":
                return
        time.sleep(0.01)
    pytest.fail(f"process {pid} never reached pause()")


def assert_killed_with_report(proc, stderr, report, marker, sig, where=None):
    """Died of sig, the leak found as valgrind finds it, and where the signal landed."""
    assert proc.returncode == -sig, f"exit {proc.returncode}\n{stderr[-3000:]}"
    assert report.get("exit") == {"signal": sig}
    assert report["summary"]["log_truncated"] is False, stderr[-3000:]
    assert not u.runtime_errors(report), u.describe_errors(u.runtime_errors(report))
    src, line = marker("killed_leak", "leak definite before the signal")
    record = u.record_at(report, "definite", src, line)
    assert (record["bytes"], record["blocks"]) == (48, 1)
    crash = report["crash"]
    assert crash["signal"] == sig and crash["what"] == "", crash
    assert f"Process terminating with default action of signal {int(sig)} (SIG{sig.name[3:]})" \
        in stderr
    if where:
        src, line = marker("killed_leak", where)
        assert any(u.frame_at(f, src, line) for f in crash["stack"]), crash["stack"]


@pytest.mark.parametrize("sig, to_wrapper", [(signal.SIGTERM, True), (signal.SIGINT, False),
                                             (signal.SIGHUP, False)])
def test_leaks_reported_when_the_program_is_killed(paths, marker, tmp_path, sig, to_wrapper):
    """A CI timeout's SIGTERM (sent to memtrace, which passes it on), a ^C's SIGINT or a
    SIGHUP (sent to the program): the program still dies of it, and the report has its
    leaks and where it was waiting, as valgrind's does, not a truncated log."""
    proc, pid, out = run_until_ready(paths, tmp_path, "wait")
    wait_until_paused(pid)
    os.kill(proc.pid if to_wrapper else pid, sig)
    _, stderr = proc.communicate(timeout=u.TIMEOUT)
    report = u.load_report(out)
    assert_killed_with_report(proc, stderr, report, marker, sig, "waiting for the signal")


def test_signal_landing_inside_memtrace_waits_for_it(paths, marker, tmp_path):
    """A program that does nothing but allocate is inside memtrace when SIGTERM lands as
    often as not: the signal is taken as memtrace leaves, with its locks released; no hang,
    the full report, and 20 runs of it."""
    for _ in range(20):
        proc, pid, out = run_until_ready(paths, tmp_path, "busy")
        os.kill(pid, signal.SIGTERM)
        _, stderr = proc.communicate(timeout=u.TIMEOUT)
        assert_killed_with_report(proc, stderr, u.load_report(out), marker, signal.SIGTERM)


@pytest.mark.parametrize("mode, sig, where", [("raise", signal.SIGTERM, "raise"),
                                              ("pipe", signal.SIGPIPE, "write to the closed pipe")])
def test_leaks_reported_when_the_program_signals_itself(run_sample, marker, mode, sig, where):
    proc, report = run_sample("killed_leak", mode)
    assert_killed_with_report(proc, proc.stderr, report, marker, sig, where)


def test_programs_own_signal_actions_are_kept(run_sample, marker):
    """memtrace's stand-in for SIGTERM's default reads back as SIG_DFL, and the program's
    own handler, or SIG_IGN, replaces it outright."""
    src, line = marker("killed_leak", "leak definite before the signal")
    for mode, status, stdout in [("query", 7, "default\n"), ("ignore", 0, "")]:
        proc, report = run_sample("killed_leak", mode)
        assert (proc.returncode, proc.stdout) == (status, stdout), proc.stderr[-3000:]
        assert report.get("exit") == {"status": status} and "crash" not in report
        assert u.record_at(report, "definite", src, line)["bytes"] == 48


def test_programs_own_fault_handler_still_runs(run_sample):
    """memtrace hears SIGFPE first (for the report of a fatal one), but a program's own
    handler still gets the fault and still reads back as installed."""
    proc, report = run_sample("crash_leak", "handled")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "caught SIGFPE\nhandler kept 1\n"
    assert "crash" not in report


HEURISTIC_BLOCKS = [("reachable via length64", "length64", 48),
                    ("reachable via newarray", "newarray", 48),
                    ("reachable via stdstring", "stdstring", 35),
                    ("reachable via multipleinheritance", "multipleinheritance", 40)]


def test_heuristics_keep_interior_pointers_reachable(run_sample, marker):
    """valgrind's leak-check heuristics, all on by default as in memcheck: each of the four
    shapes is still reachable, counted under its heuristic; a plain interior pointer is not."""
    proc, report = run_sample("reachable_heuristics", options=ALL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    src = marker("reachable_heuristics", "possible through a cursor")[0]
    for tag, _, size in HEURISTIC_BLOCKS:
        assert u.record_at(report, "reachable", src, u.marker_line(src, tag))["bytes"] == size
    assert u.record_at(report, "possible", src,
                       u.marker_line(src, "possible through a cursor"))["bytes"] == 64
    via = report["summary"]["reachable_via_heuristic"]
    assert via == {name: {"bytes": size, "blocks": 1} for _, name, size in HEURISTIC_BLOCKS}
    lines = [u.strip_prefix(l).strip() for l in proc.stderr.splitlines()]
    at = lines.index("of which reachable via heuristic:")
    size_of = {name: size for _, name, size in HEURISTIC_BLOCKS}
    assert lines[at + 1:at + 5] == [f"{name:<19}: {size_of[name]} bytes in 1 blocks" for name in
                                    ("stdstring", "length64", "newarray", "multipleinheritance")]


@pytest.mark.parametrize("chosen", ["none", "length64,newarray"])
def test_heuristics_can_be_turned_off(run_sample, marker, chosen):
    """--leak-check-heuristics names the ones in force: a block no chosen heuristic accepts
    is possibly lost, as under memcheck with the same option."""
    proc, report = run_sample("reachable_heuristics",
                              options=ALL + (f"--leak-check-heuristics={chosen}",))
    assert proc.returncode == 0, proc.stderr[-3000:]
    src = marker("reachable_heuristics", "possible through a cursor")[0]
    on = set(chosen.split(",")) - {"none"}
    for tag, name, size in HEURISTIC_BLOCKS:
        kind = "reachable" if name in on else "possible"
        assert u.record_at(report, kind, src, u.marker_line(src, tag))["bytes"] == size
    via = report["summary"]["reachable_via_heuristic"]
    assert {k for k, v in via.items() if v["blocks"]} == on
