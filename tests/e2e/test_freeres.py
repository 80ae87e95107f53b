"""test_freeres.py — glibc's and libstdc++'s end-of-process frees (__libc_freeres,
__gnu_cxx::__freeres), which valgrind calls as a process ends and memtrace calls in a copy
of the process (docs/options.md, --run-libc-freeres): what they free is not in use at exit,
the program's own pending output is written once, by the program, and with the options off
the blocks are back (suppressed by default.supp)."""

import pytest

import e2e_util as u

OFF = ("--run-libc-freeres=no", "--run-cxx-freeres=no")


def run_buffered(run_sample, tmp_path, options=()):
    kept = tmp_path / "kept.txt"
    proc, report = run_sample("buffered_stdio", str(kept), options=("--show-leak-kinds=all",) + options)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr}"
    assert proc.stdout.splitlines() == ["line 0", "line 1", "line 2"], proc.stdout
    assert kept.read_text() == "written once, at exit\n"
    assert u.runtime_errors(report) == [], u.describe_errors(u.runtime_errors(report))
    return report


def test_library_caches_freed(run_sample, marker, tmp_path):
    """stdout's buffer, an unclosed stream's buffer and the time zone data are freed before
    the check, as under valgrind: what is left in use is the unclosed stream itself (glibc
    never frees an open FILE), still reachable; nothing is suppressed."""
    report = run_buffered(run_sample, tmp_path)
    s = report["summary"]
    records = u.leak_records(report)
    assert [(r["leak_kind"], r["blocks"], r["suppressed"]) for r in records] == \
        [("reachable", 1, False)], u.describe(records)
    src, line = marker("buffered_stdio", "fopen")
    assert any(u.frame_at(f, src, line) for f in records[0]["stack"]), u.describe(records)
    assert s["in_use_at_exit"] == {"bytes": records[0]["bytes"], "blocks": 1}, s
    assert s["total_heap_usage"]["allocs"] == s["total_heap_usage"]["frees"] + 1, s
    assert s["suppressed"]["blocks"] == 0, s


def test_library_caches_kept_without_freeres(run_sample, tmp_path):
    """With the options off the same run keeps glibc's buffers at exit: reachable, and
    suppressed by default.supp's stdio entry (so the test above can fail)."""
    report = run_buffered(run_sample, tmp_path, OFF)
    s = report["summary"]
    assert s["in_use_at_exit"]["blocks"] >= 3, s
    names = {r.get("suppression") for r in u.leak_records(report) if r["suppressed"]}
    assert "memtrace-glibc-stdio-buffer" in names, u.describe(u.leak_records(report))


@pytest.mark.parametrize("options", [(), OFF], ids=["freeres", "no-freeres"])
def test_cpp_emergency_pool(run_sample, options):
    """libstdc++'s emergency exception pool (~72 KB, made before main) is freed by
    __gnu_cxx::__freeres: clean_cpp ends with nothing in use, as under valgrind."""
    proc, report = run_sample("clean_cpp", options=("--show-leak-kinds=all",) + options)
    assert proc.returncode == 0, proc.stderr
    in_use = report["summary"]["in_use_at_exit"]
    if options:
        assert in_use["bytes"] >= 70000, in_use
    else:
        assert in_use == {"bytes": 0, "blocks": 0}, (in_use, u.describe(u.leak_records(report)))

