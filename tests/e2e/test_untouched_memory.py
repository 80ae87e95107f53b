"""test_untouched_memory.py — memory the program never touches stays untouched under
memtrace: what it costs natively in memory and time, it costs under memtrace.

- A large calloc (samples/calloc_large.c): glibc mmaps a chunk that large, and fresh pages
  are zero; glibc's own calloc skips the memset for such a chunk, and so must memtrace's, or
  a sparse table costs its whole size. A glibc told to perturb (MALLOC_PERTURB_) fills the
  chunk with a nonzero byte instead; then memtrace must zero it as before.
- Blocks aligned to 2 MiB (samples/aligned_huge.c): the head redzone grows to the
  alignment, and only its last bytes before the block may be written (the canary).
- The leak scan over a huge, barely touched reservation and block (samples/sparse_roots.c)
  passes over the untouched pages, yet finds the pointers on the touched ones.
"""

import os

import pytest

import e2e_util as u


def printed(proc, key):
    for line in proc.stdout.splitlines():
        if line.startswith(key + " "):
            return line.split(" ", 1)[1]
    raise AssertionError(f"no {key!r} line in:\n{proc.stdout}")


def test_large_calloc_is_zero_and_not_made_resident(run_sample):
    proc, report = run_sample("calloc_large")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "done", proc.stdout
    assert printed(proc, "zero") == "yes"
    assert int(printed(proc, "resident")) < 64, proc.stdout    # of the block's 256 MiB
    assert u.runtime_errors(report) == []
    assert report["summary"]["errors"] == 0


@pytest.mark.parametrize("options", [(), ("--malloc-fill=0xaa",)])
def test_large_calloc_is_zero_when_glibc_perturbs(run_sample, options):
    env = dict(os.environ, MALLOC_PERTURB_="77")
    proc, report = run_sample("calloc_large", options=options, env=env)
    assert proc.returncode == 0, proc.stderr
    assert printed(proc, "zero") == "yes"
    assert report["summary"]["errors"] == 0


def test_huge_alignment_slack_is_not_written(run_sample):
    proc, report = run_sample("aligned_huge")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "done", proc.stdout
    assert int(printed(proc, "resident")) < 32, proc.stdout    # 64 blocks x 2 MiB if written
    assert report["summary"]["errors"] == 0


def test_leak_scan_finds_pointers_in_sparse_regions(run_sample, marker):
    proc, report = run_sample("sparse_roots", options=("--show-leak-kinds=all",))
    assert proc.returncode == 0, proc.stderr
    for tag, size in [("reachable through the reservation", 40),
                      ("reachable table", 1 << 30), ("reachable through the table", 56)]:
        src, line = marker("sparse_roots", tag)
        rec = u.record_at(report, "reachable", src, line)
        assert (rec["bytes"], rec["blocks"]) == (size, 1), tag
    src, line = marker("sparse_roots", "leak definite")
    rec = u.record_at(report, "definite", src, line)
    assert (rec["bytes"], rec["blocks"]) == (24, 1)
    s = report["summary"]
    assert (s["leaked_bytes"]["definite"], s["leaked_blocks"]["definite"]) == (24, 1)
