"""test_stress.py — memtrace under allocator stress (memtrace issue 6, "Reliability"), with
samples/stress_threads.c, whose header documents every mode and its exact leaks:

- 2, 8 and 64 threads allocating (malloc, calloc, realloc up and down), swapping blocks
  through a shared array of atomic slots so most blocks are freed by another thread than
  the one that made them, and exiting at different times while the others still allocate;
  the process ends after main joins them, through pthread_exit from main (it ends on the
  last worker), or with detached workers still calling malloc and free when exit runs;
- fork from a process whose other threads keep allocating, 100 times: every child mallocs,
  frees and _exit(0)s (the atfork handling of memtrace's locks);
- malloc and free inside a SIGALRM handler (setitimer every 200 us) while main allocates.

What "reliable" means here:
- no hang: every run has a timeout, and a run that outlives it fails with the stacks of
  each of its processes (gdb -p), so a deadlock shows where it is;
- no false report: the JSON holds exactly the sample's known loss record (NTHREADS * 3
  blocks, NTHREADS * 168 bytes, one record for the worker function), no other definite or
  indirect leak, no runtime error, summary.errors == 1 (0 for fork and signal);
- bounded time: the 64-thread runs finish in under 30 s.

Under `make test-long` (MEMTRACE_LONG=1) every run is bigger: 10 times the iterations, 128
threads as well, 300 forks, 10 signal runs (u.scaled).
"""

import re
import time

import pytest

import e2e_util as u

SAMPLE = "stress_threads"
ITERS = u.scaled(20000, 200000)    # churn iterations of the busiest worker
LEAK_SIZES = (24, 40, 104)         # leak_blocks() in the sample
WORKER = {"join": "churn_worker", "pthread-exit": "churn_worker",
          "detached": "detached_worker"}
RUN_TIMEOUT = u.scaled(120, 600)   # seconds, any single run (they take a few seconds)
SIGNAL_TIMEOUT = 60                # the signal mode gives up by itself after 20 s
BOUND_64_THREADS = u.scaled(30, 300)  # seconds, end to end, for the 64-thread runs
FORKS = u.scaled(100, 300)
FORK_THREADS = 8                   # main plus 7 threads that keep allocating
FORK_TIMEOUT = u.scaled(300, 900)
SIGNAL_RUNS = u.scaled(3, 10)
THREAD_COUNTS = u.scaled([2, 8, 64], [2, 8, 64, 128])


def runtime_errors(report):
    return [e for e in report["errors"] if e["kind"] != "leak"]


def describe_runtime(errors):
    out = []
    for e in errors:
        def frames(key):
            return " < ".join(f"{f.get('function')}:{f.get('line')}"
                              for f in (e.get(key) or [])[:4])
        out.append(f"{e['kind']} at {e.get('address')} {e.get('access')} block {e.get('block')}"
                   f"\n      stack: {frames('stack')}\n      alloc: {frames('alloc_stack')}"
                   f"\n      free:  {frames('free_stack')}")
    return "\n  ".join(["runtime errors:"] + out)


def sample_site(record, samples_src):
    """Function of the first frame of the record's stack in the sample's own code."""
    frame = u.first_frame_in(record["stack"], samples_src)
    return frame.get("function") if frame else None


@pytest.mark.parametrize("nthreads", THREAD_COUNTS)
@pytest.mark.parametrize("mode", ["join", "pthread-exit", "detached"])
def test_threads_leaks_reconcile(paths, run_watched, marker, tmp_path, mode, nthreads):
    prog = paths.sample_bin(SAMPLE)
    out = tmp_path / "report.json"
    started = time.monotonic()
    proc = run_watched([paths.memtrace, "--show-leak-kinds=all", f"--json={out}", prog, mode,
                        nthreads, ITERS], RUN_TIMEOUT, cwd=tmp_path, env=u.clean_env())
    elapsed = time.monotonic() - started
    stdout, stderr = u.texts(proc)
    assert proc.returncode == 0, \
        f"exit {proc.returncode}\nstdout:\n{stdout}\nstderr:\n{stderr[-4000:]}"
    if nthreads == 64:
        assert elapsed < BOUND_64_THREADS, f"{mode} with 64 threads took {elapsed:.1f} s"
    blocks, nbytes = nthreads * len(LEAK_SIZES), nthreads * sum(LEAK_SIZES)
    assert f"{mode} ok threads={nthreads} leaked_blocks={blocks} leaked_bytes={nbytes}" in stdout, \
        stdout

    report = u.load_report(out, u.for_load(proc))
    assert report.get("exit") == {"status": 0}, report.get("exit")
    assert report["summary"]["log_truncated"] is False
    errors = runtime_errors(report)
    assert not errors, describe_runtime(errors)

    # The known leak: one record, the worker function's, with every thread's blocks.
    src, line = marker(SAMPLE, "leak definite per thread")
    rec = u.record_at(report, "definite", src, line)
    assert rec["stack"][0].get("function") == "leak_blocks", u.describe([rec])
    assert rec["stack"][1].get("function") == WORKER[mode], u.describe([rec])
    # With pthread_exit from main, the process exits from the last worker and the exit scan
    # runs on that thread: its dead frames (below its stack pointer, where the pointers it
    # leaked were) must not be scanned, not even as part of its static TLS, which sits on
    # the same mapping. Every thread's blocks are definitely lost, as valgrind says.
    assert (rec["bytes"], rec["blocks"], rec["indirect_bytes"]) == (nbytes, blocks, 0), \
        u.describe([rec])

    # Nothing else is lost: no other definite or indirect record, and the totals are exactly
    # the sample's (a stdio buffer or a slot block reported lost would show here).
    lost = u.leak_records(report, "definite") + u.leak_records(report, "indirect")
    assert lost == [rec], "loss records besides the sample's known leak:\n" + u.describe(lost)
    s = report["summary"]
    assert (s["leaked_bytes"]["definite"], s["leaked_blocks"]["definite"]) == (nbytes, blocks), \
        u.describe(u.leak_records(report))
    assert (s["leaked_bytes"]["indirect"], s["leaked_blocks"]["indirect"]) == (0, 0)
    assert s["errors"] == 1, u.describe(u.leak_records(report))

    # Every other block the sample's own code allocated was freed, except, with detached
    # workers still running at exit, the one block each may hold between its malloc and
    # its free (its pointer is in that thread's registers or stack: reachable).
    # (print_ok's frames lead to stdout's buffer: glibc's, reachable.)
    # glibc's own thread setup (the DTV pthread_create callocs) is not the sample's either.
    others = [r for r in u.leak_records(report)
              if r is not rec and not u.is_glibc_internal(r)
              and sample_site(r, paths.samples_src) not in (None, "print_ok")]
    if mode == "detached":
        assert all(r["leak_kind"] == "reachable" for r in others), u.describe(others)
        assert sum(r["blocks"] for r in others) <= nthreads, u.describe(others)
    else:
        assert others == [], "blocks of the sample still in use at exit:\n" + u.describe(others)
    possible = [r for r in u.leak_records(report, "possible")
                if sample_site(r, paths.samples_src) is not None]
    assert possible == [], u.describe(possible)

    heap = s["total_heap_usage"]
    assert heap["allocs"] >= nthreads * ITERS // 4, heap
    assert heap["allocs"] - heap["frees"] == s["in_use_at_exit"]["blocks"], (
        f"total heap usage ({heap['allocs']} allocs - {heap['frees']} frees = "
        f"{heap['allocs'] - heap['frees']}) disagrees with in use at exit "
        f"({s['in_use_at_exit']['blocks']} blocks)")


def test_fork_from_threads(paths, run_watched, tmp_path):
    """FORKS children of a process whose other threads keep allocating: each must exit 0
    (the sample gives each 20 s; a child stuck on a lock held by a thread that does not
    exist in it would hang there), and every process's report must be complete and free
    of runtime errors. The children's leaks are not checked: blocks that the parent's
    other threads held only in their registers at the fork are unreachable in the child,
    where those threads do not exist (valgrind says the same)."""
    prog = paths.sample_bin(SAMPLE)
    reports = tmp_path / "reports"
    reports.mkdir()
    proc = run_watched([paths.memtrace, f"--json={reports}/%p.json", f"--log-file={reports}/%p.txt",
                        prog, "fork", FORK_THREADS, FORKS], FORK_TIMEOUT, cwd=tmp_path,
                       env=u.clean_env())
    stdout, stderr = u.texts(proc)
    assert proc.returncode == 0, \
        f"exit {proc.returncode}\nstdout:\n{stdout}\nstderr:\n{stderr[-4000:]}"
    m = re.search(rf"^fork ok threads={FORK_THREADS} forks={FORKS} pid=(\d+)$", stdout, re.M)
    assert m, stdout
    parent_pid = int(m[1])

    files = sorted(reports.glob("*.json"))
    assert len(files) == FORKS + 1, f"{len(files)} JSON reports for {FORKS + 1} processes"
    by_pid = {int(f.stem): u.load_report(f, u.for_load(proc)) for f in files}
    assert parent_pid in by_pid, sorted(by_pid)
    texts_written = sorted(reports.glob("*.txt"))
    assert len(texts_written) == FORKS + 1

    parent = by_pid.pop(parent_pid)
    assert parent.get("exit") == {"status": 0}
    assert parent["summary"]["log_truncated"] is False
    assert not runtime_errors(parent), describe_runtime(runtime_errors(parent))
    assert parent["summary"]["errors"] == 0, u.describe(u.leak_records(parent))

    bad = []
    for pid, report in sorted(by_pid.items()):
        problems = []
        if report.get("exit") != {"status": 0}:
            problems.append(f"exit {report.get('exit')}")
        if report["summary"]["log_truncated"]:
            problems.append("truncated log")
        if runtime_errors(report):
            problems.append(describe_runtime(runtime_errors(report)))
        if problems:
            bad.append(f"child {pid}: " + "; ".join(problems))
    assert not bad, f"{len(bad)} of {FORKS} children:\n" + "\n".join(bad)


def test_malloc_in_signal_handler(paths, run_watched, tmp_path):
    """A SIGALRM handler that mallocs and frees, every 200 us, while main allocates. POSIX
    does not allow it (malloc is not async-signal-safe), but real programs do it and glibc
    tolerates the sample's pattern single-threaded (checked first, without memtrace).
    Under memtrace it must neither deadlock nor corrupt the heap. Three runs: the
    interleavings differ from run to run."""
    prog = paths.sample_bin(SAMPLE)
    plain = run_watched([prog, "signal", 0], SIGNAL_TIMEOUT, cwd=tmp_path, env=u.clean_env())
    stdout, stderr = u.texts(plain)
    assert plain.returncode == 0 and "signal ok" in stdout, \
        f"the sample fails without memtrace (exit {plain.returncode}):\n{stdout}\n{stderr}"

    for attempt in range(SIGNAL_RUNS):
        out = tmp_path / f"signal.{attempt}.json"
        proc = run_watched([paths.memtrace, f"--json={out}", prog, "signal", 0], SIGNAL_TIMEOUT,
                           cwd=tmp_path, env=u.clean_env())
        stdout, stderr = u.texts(proc)
        assert proc.returncode == 0, (f"run {attempt + 1}: exit {proc.returncode}\nstdout:\n"
                                      f"{stdout}\nstderr:\n{stderr[-4000:]}")
        assert "signal ok" in stdout, stdout
        report = u.load_report(out, u.for_load(proc))
        assert report.get("exit") == {"status": 0}
        assert not runtime_errors(report), describe_runtime(runtime_errors(report))
        s = report["summary"]
        assert s["errors"] == 0, u.describe(u.leak_records(report))
        assert s["leaked_bytes"]["definite"] == 0 and s["leaked_bytes"]["indirect"] == 0


def test_threads_made_one_after_another_leave_nothing_behind(run_sample):
    """memtrace gives back what it set up for a thread (its signal stack, its caches) when
    the thread ends: 2000 threads in turn add no mappings. Kept, each thread left two, and
    a long-running program reached vm.max_map_count."""
    proc, report = run_sample("thread_churn", str(u.scaled(2000, 20000)))
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr}"
    counts = dict(l.rsplit(" ", 1) for l in proc.stdout.splitlines() if l.startswith("maps "))
    before, after = int(counts["maps before"]), int(counts["maps after"])
    assert after - before <= 16, f"mappings grew from {before} to {after}"
    assert u.runtime_errors(report) == []
    assert u.leak_records(report) == []
