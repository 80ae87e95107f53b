"""test_processes.py — threads, fork, exec and exit from a second thread: every process gets
its own report with its own numbers, and leaks made on other threads are found."""

import json
import re

import pytest

import e2e_util as u


def test_threads(run_sample, marker):
    """8 threads pass 800 blocks to each other and free them; each leaks one 24-byte block
    from the same stack: one loss record of 8 blocks."""
    proc, report = run_sample("threads")
    assert proc.returncode == 0, proc.stderr
    src, line = marker("threads", "leak definite per thread")
    rec = u.record_at(report, "definite", src, line)
    assert (rec["bytes"], rec["blocks"], rec["indirect_bytes"]) == (192, 8, 0)
    assert rec["stack"][0].get("function") == "leak_one"
    assert rec["stack"][1].get("function") == "worker"
    definite = u.leak_records(report, "definite")
    assert len(definite) == 1, u.describe(definite)
    s = report["summary"]
    assert (s["leaked_bytes"]["definite"], s["leaked_blocks"]["definite"]) == (192, 8)
    assert (s["leaked_bytes"]["indirect"], s["leaked_blocks"]["indirect"]) == (0, 0)
    assert s["errors"] == 1
    # Every block handed to another thread was freed there: 8 * 100 blocks of 32 bytes
    # plus the 8 leaks are the program's own allocations (glibc adds one per thread for the
    # TLS vector, hence >=).
    heap = s["total_heap_usage"]
    assert heap["allocs"] >= 808 and heap["frees"] >= 800, heap
    assert heap["allocs"] - heap["frees"] == s["in_use_at_exit"]["blocks"], heap


def _pid_lines(stdout):
    pids = dict(re.findall(r"^(parent|child) (\d+)$", stdout, re.M))
    assert set(pids) == {"parent", "child"}, f"sample output:\n{stdout}"
    return {k: int(v) for k, v in pids.items()}


def test_fork_reports_per_process(paths, run_memtrace, tmp_path, marker):
    proc = run_memtrace(f"--json={tmp_path}/out.%p.json", paths.sample_bin("fork_leak"))
    assert proc.returncode == 0, proc.stderr
    pids = _pid_lines(proc.stdout)
    files = sorted(tmp_path.glob("out.*.json"))
    assert sorted(f.name for f in files) == sorted(f"out.{p}.json" for p in pids.values()), \
        f"{[f.name for f in files]} vs pids {pids}\n{proc.stderr}"

    expected = {"parent": (300, "parent_work", "leak definite parent"),
                "child": (77, "child_work", "leak definite child")}
    for who, (size, function, tag) in expected.items():
        report = u.load_report(tmp_path / f"out.{pids[who]}.json", proc)
        src, line = marker("fork_leak", tag)
        rec = u.record_at(report, "definite", src, line)
        assert (rec["bytes"], rec["blocks"]) == (size, 1), who
        assert rec["stack"][0].get("function") == function
        assert len(u.leak_records(report)) == 1, f"{who}: {u.describe(u.leak_records(report))}"
        s = report["summary"]
        assert s["leaked_bytes"] == {"definite": size, "indirect": 0, "possible": 0,
                                     "reachable": 0}, who
        assert s["in_use_at_exit"] == {"bytes": size, "blocks": 1}, who
        assert s["errors"] == 1, who
        assert report.get("exit") == {"status": 0}, f"{who}'s report"


def test_files_without_pid_hold_the_programs_own_report(paths, run_memtrace, tmp_path):
    """Without %p in a file option, every format's file holds the program's report, not
    a forked child's (docs/options.md); the child's text goes to stderr."""
    out = {fmt: tmp_path / f"r.{fmt}" for fmt in ("json", "xml", "sarif", "md", "txt")}
    proc = run_memtrace(f"--json={out['json']}", "--xml=yes", f"--xml-file={out['xml']}",
                        f"--sarif={out['sarif']}", f"--markdown={out['md']}",
                        f"--log-file={out['txt']}", paths.sample_bin("fork_leak"))
    assert proc.returncode == 0, proc.stderr
    pids = _pid_lines(proc.stdout)
    parent = pids["parent"]
    assert u.load_report(out["json"], proc)["pid"] == parent
    assert f"<pid>{parent}</pid>" in out["xml"].read_text()
    assert f"pid {parent}" in out["md"].read_text()
    assert f"=={parent}==" in out["txt"].read_text()
    sarif = json.loads(out["sarif"].read_text())
    lost = [r["message"]["text"] for r in sarif["runs"][0]["results"]]
    assert len(lost) == 1 and lost[0].startswith("300 bytes"), lost
    assert f"=={pids['child']}==" in proc.stderr


def test_exec_trace_children(paths, run_memtrace, tmp_path):
    child = paths.sample_bin("leak_definite")
    parent = paths.sample_bin("exec_child")

    yes = tmp_path / "yes"
    yes.mkdir()
    proc = run_memtrace("--trace-children=yes", f"--json={yes}/r.%p.json", parent, child)
    assert proc.returncode == 0, proc.stderr
    reports = [u.load_report(f, proc) for f in sorted(yes.glob("r.*.json"))]
    by_prog = {r["command"][0]: r for r in reports}
    assert set(by_prog) == {str(parent), str(child)}, \
        f"reports for {sorted(by_prog)}\n{proc.stderr}"
    assert by_prog[str(child)]["summary"]["leaked_bytes"]["definite"] == 164
    assert by_prog[str(child)]["command"] == [str(child)]
    assert by_prog[str(parent)]["summary"]["leaked_bytes"]["definite"] == 0
    assert by_prog[str(parent)]["summary"]["errors"] == 0
    assert by_prog[str(parent)].get("exit") == {"status": 0}
    assert by_prog[str(child)].get("exit") == {"status": 0}, "the exec'd child's report"

    no = tmp_path / "no"
    no.mkdir()
    proc = run_memtrace("--trace-children=no", f"--json={no}/r.%p.json", parent, child)
    assert proc.returncode == 0, proc.stderr
    reports = [u.load_report(f, proc) for f in sorted(no.glob("r.*.json"))]
    assert [r["command"][0] for r in reports] == [str(parent)], \
        f"{[r['command'] for r in reports]}\n{proc.stderr}"
    assert reports[0]["summary"]["errors"] == 0


def test_exit_from_second_thread(run_sample, marker):
    """exit(7) on a second thread while main still runs: the leak check still happens, finds
    the thread's block, and sees main's live stack as a root."""
    proc, report = run_sample("exit_from_thread", options=("--show-leak-kinds=all",))
    assert proc.returncode == 7, proc.stderr
    assert report.get("exit") == {"status": 7}
    src, line = marker("exit_from_thread", "leak definite from thread")
    rec = u.record_at(report, "definite", src, line)
    assert (rec["bytes"], rec["blocks"]) == (56, 1)
    assert rec["stack"][0].get("function") == "leak_block"
    assert rec["stack"][1].get("function") == "leak_and_exit"
    s = report["summary"]
    assert (s["leaked_bytes"]["definite"], s["leaked_blocks"]["definite"]) == (56, 1)
    assert s["errors"] == 1
    # main's block is referenced from main's (live) stack: reachable, never lost.
    src, line = marker("exit_from_thread", "reachable on main stack")
    kept = u.record_at(report, "reachable", src, line)
    assert (kept["bytes"], kept["blocks"]) == (40, 1)


def test_ended_threads_keep_their_values(run_sample, marker):
    """Threads that ended unjoined keep a return value, a pthread_exit value and a __thread
    variable where glibc keeps them: reachable, as valgrind says; a block a thread dropped,
    and one only a joined thread's __thread variable held, are lost."""
    proc, report = run_sample("ended_threads", options=("--show-leak-kinds=all",))
    assert proc.returncode == 0, proc.stderr
    for tag, size in (("reachable through the return value", 111),
                      ("reachable through a __thread variable", 222),
                      ("reachable through pthread_exit", 333)):
        src, line = marker("ended_threads", tag)
        assert u.record_at(report, "reachable", src, line)["bytes"] == size
    for tag, size in (("leak definite in a thread", 44),
                      ("leak definite in a joined thread's TLS", 55)):
        src, line = marker("ended_threads", tag)
        assert u.record_at(report, "definite", src, line)["bytes"] == size
    s = report["summary"]
    assert (s["leaked_bytes"]["definite"], s["leaked_blocks"]["definite"]) == (99, 2)


@pytest.mark.parametrize("mode", ["wait", "spin"])
def test_thread_blocking_signals_at_exit(run_sample, marker, mode):
    """A thread that blocks every signal never answers the exit scan's handshake: its stack
    is still scanned (from the stack pointer /proc gives while it sleeps in sigwait; whole,
    while it runs its own code), so the block only it holds is reachable, not lost."""
    proc, report = run_sample("blocked_signals_thread", *(["spin"] if mode == "spin" else []),
                              options=("--show-leak-kinds=all",))
    assert proc.returncode == 0, proc.stderr
    src, line = marker("blocked_signals_thread", "reachable on blocked thread's stack")
    held = u.record_at(report, "reachable", src, line)
    assert (held["bytes"], held["blocks"]) == (64, 1)
    src, line = marker("blocked_signals_thread", "leak definite from main")
    rec = u.record_at(report, "definite", src, line)
    assert (rec["bytes"], rec["blocks"]) == (24, 1)
    s = report["summary"]
    assert (s["leaked_bytes"]["definite"], s["leaked_blocks"]["definite"]) == (24, 1)
