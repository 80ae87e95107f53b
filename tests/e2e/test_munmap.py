"""test_munmap.py — munmap of memory the program does not own (samples/bad_munmap.c): a
range it never mapped, and a page-aligned heap block. Both are reported as invalid-munmap
at the call, and the program goes on to its end. The sample's mprotect of a heap page may
or may not be flagged: it is only held to "nowhere else, and nothing fatal". Correct mmap
use (samples/clean_mmap.c, including a region still mapped at exit) is in
test_clean_corruption.py."""

import pytest

import e2e_util as u

SAMPLE = "bad_munmap"
NEVER_MAPPED = 0x200000000000

OUTPUT = [
    "invalid-munmap unmapped ADDR",
    "invalid-munmap heap ADDR",
    "mprotect heap ADDR",
    "bad_munmap: end",
]

GUARDS = [(), ("--guard=all",), ("--guard=none",), ("--guard-side=underflow",)]
GUARD_IDS = ["auto", "all", "none", "underflow"]


def check_frames(err):
    for frame in err["stack"]:
        assert not (frame.get("module") or "").endswith("/libmemtrace.so"), frame
    assert (err["stack"][0].get("function") or "") not in ("munmap", "__munmap", "mprotect")


@pytest.mark.parametrize("options", GUARDS, ids=GUARD_IDS)
def test_program_goes_on(run_sample, options):
    proc, report = run_sample(SAMPLE, options=options)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert report.get("exit") == {"status": 0}
    assert u.mask_addresses(proc.stdout) == OUTPUT, proc.stdout


@pytest.mark.parametrize("options", GUARDS, ids=GUARD_IDS)
def test_munmap_never_mapped(run_sample, marker, options):
    proc, report = run_sample(SAMPLE, options=options)
    src, line = marker(SAMPLE, "invalid-munmap unmapped")
    err = u.error_at(report, "invalid-munmap", src, line)
    assert u.address(err["address"]) == NEVER_MAPPED
    assert u.printed_address(proc.stdout, "invalid-munmap unmapped") == NEVER_MAPPED
    assert err["stack"][0].get("function") == "unmap_never_mapped"
    assert err["stack"][1].get("function") == "main", err["stack"][:2]
    for key in ("access", "free_stack", "block", "alloc_stack"):
        assert key not in err, f"{key} for a range that holds no block: {err}"
    check_frames(err)


@pytest.mark.parametrize("options", GUARDS, ids=GUARD_IDS)
def test_munmap_heap_block(run_sample, marker, options):
    proc, report = run_sample(SAMPLE, options=options)
    src, line = marker(SAMPLE, "invalid-munmap heap")
    err = u.error_at(report, "invalid-munmap", src, line)
    block = u.printed_address(proc.stdout, "invalid-munmap heap")
    assert u.address(err["address"]) == block
    assert err["stack"][0].get("function") == "unmap_heap_block"
    assert err["stack"][1].get("function") == "main", err["stack"][:2]
    assert "access" not in err and "free_stack" not in err, err
    # Optional in the contract; right when present.
    if "block" in err:
        assert (u.address(err["block"]["address"]), err["block"]["size"]) == (block, 8192)
    if "alloc_stack" in err:
        assert u.frame_at(err["alloc_stack"][0], src, u.marker_line(src, "alloc heap block"),
                          "unmap_heap_block"), err["alloc_stack"][0]
    check_frames(err)


def test_nothing_else_reported(run_sample, marker):
    """Exactly the two munmap errors, plus at most one for the mprotect line; the summary and
    the text report count what the JSON lists."""
    proc, report = run_sample(SAMPLE, options=("--show-leak-kinds=all",))
    src = marker(SAMPLE, "mprotect heap")[0]
    lines = {u.marker_line(src, t): t for t in ("invalid-munmap unmapped", "invalid-munmap heap",
                                               "mprotect heap")}
    errors = u.runtime_errors(report)
    at = [lines.get(e["stack"][0].get("line")) if u.same_file(e["stack"][0].get("file"), src)
          else None for e in errors]
    assert None not in at, f"an error outside the marked lines; {u.describe_errors(errors)}"
    assert sorted(t for t in at if t != "mprotect heap") == \
        ["invalid-munmap heap", "invalid-munmap unmapped"], u.describe_errors(errors)
    assert at.count("mprotect heap") <= 1, u.describe_errors(errors)
    assert {e["kind"] for e in errors} == {"invalid-munmap"}, u.describe_errors(errors)
    assert report["summary"]["errors"] == len(errors)
    assert u.parse_text_summary(proc.stderr).get("errors") == len(errors), proc.stderr


def test_error_exitcode(run_sample):
    proc, report = run_sample(SAMPLE, options=("--error-exitcode=9",))
    assert report["summary"]["errors"] >= 2
    assert proc.returncode == 9, proc.stderr
