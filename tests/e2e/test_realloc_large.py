"""test_realloc_large.py — realloc of blocks past the guarded size (samples/realloc_large.c).

Such a block is resized through glibc (in place, or moved by glibc) instead of copied by
memtrace, yet must be checked and recorded as a moved one would be: its redzones checked
at the realloc, its tail redzone at the new end (so overflows past the new size are found
at the free), its record carrying the new size and the realloc's stack, its leak counted.
With --free-fill every freed byte is checked, so the block is moved as valgrind moves it.
"""

import pytest

import e2e_util as u

SAMPLE = "realloc_large"


def only_error(report):
    errors = u.runtime_errors(report)
    assert len(errors) == 1, u.describe_errors(errors)
    return errors[0]


def final_block(proc):
    blocks = u.printed_blocks(proc.stdout)
    assert len(blocks) == 1, proc.stdout
    return blocks[0]


def assert_ran_to_end(proc, report):
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr}"
    assert report.get("exit") == {"status": 0}
    assert proc.stdout.splitlines()[-1] == "done", proc.stdout


@pytest.mark.parametrize("case,size", [("grow_overflow", 300000), ("shrink_overflow", 70000)])
def test_overflow_past_the_new_size(run_sample, marker, case, size):
    """One byte past the new end is found at the free, in the block of the new size that
    the realloc made."""
    proc, report = run_sample(SAMPLE, case)
    assert_ran_to_end(proc, report)
    addr, printed_size = final_block(proc)
    assert printed_size == size
    err = only_error(report)
    src, free_line = marker(SAMPLE, "free")
    assert err["kind"] == "heap-overflow", err
    assert u.frame_at(err["stack"][0], src, free_line, "release"), err["stack"][:2]
    assert u.address(err["address"]) == addr + size
    assert (u.address(err["block"]["address"]), err["block"]["size"]) == (addr, size)
    assert u.frame_at(err["alloc_stack"][0], src, u.marker_line(src, "realloc"), "grow")
    assert report["summary"]["in_use_at_exit"] == {"bytes": 0, "blocks": 0}


def test_underflow_found_at_the_realloc(run_sample, marker):
    """A write before the block is in the old redzone: the realloc checks it, as a free
    would, and reports it with the realloc's stack and the old block."""
    proc, report = run_sample(SAMPLE, "underflow")
    assert_ran_to_end(proc, report)
    addr, _ = final_block(proc)
    err = only_error(report)
    src, realloc_line = marker(SAMPLE, "realloc")
    assert err["kind"] == "heap-underflow", err
    assert u.frame_at(err["stack"][0], src, realloc_line, "grow"), err["stack"][:2]
    assert err["block"]["size"] == 100000
    assert u.address(err["address"]) == u.address(err["block"]["address"]) - 1
    assert u.frame_at(err["alloc_stack"][0], src, u.marker_line(src, "alloc underflow"))


def test_leak_has_the_new_size_and_the_realloc_stack(run_sample, marker):
    proc, report = run_sample(SAMPLE, "leak")
    assert_ran_to_end(proc, report)
    assert u.runtime_errors(report) == []
    src, line = marker(SAMPLE, "realloc")
    rec = u.record_at(report, "definite", src, line)
    assert (rec["bytes"], rec["blocks"]) == (400000, 1), rec
    s = report["summary"]
    assert s["in_use_at_exit"] == {"bytes": 400000, "blocks": 1}
    assert (s["total_heap_usage"]["allocs"], s["total_heap_usage"]["frees"]) == (2, 1)


def test_chains_keep_their_contents_and_count(run_sample):
    """7 doublings to 8 MiB and 7 halvings back: contents kept, no error, and every realloc
    counts as an allocation and a free, as valgrind counts them."""
    proc, report = run_sample(SAMPLE, "chains")
    assert_ran_to_end(proc, report)
    assert u.runtime_errors(report) == []
    s = report["summary"]
    assert s["in_use_at_exit"] == {"bytes": 0, "blocks": 0}
    assert (s["total_heap_usage"]["allocs"], s["total_heap_usage"]["frees"]) == (15, 15)


@pytest.mark.parametrize("options,moved", [((), "no"), (("--free-fill=0x55",), "yes")],
                         ids=["default", "free-fill"])
def test_shrink_in_place_unless_free_fill(run_sample, options, moved):
    """glibc shrinks a block where it is; with --free-fill the block moves, as valgrind's."""
    proc, report = run_sample(SAMPLE, "shrink", options=options)
    assert_ran_to_end(proc, report)
    assert f"moved {moved}" in proc.stdout.splitlines(), proc.stdout
    assert u.runtime_errors(report) == []
