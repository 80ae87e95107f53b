"""test_overlap.py — the copying string functions given overlapping source and destination
(samples/overlap.c): each call is one `overlap` error at its line, named as valgrind names
it, with the destination, the source and the length argument; the copies still happen, as
natively, and the clean copies after them report nothing."""

import pytest

import e2e_util as u

CASES = [("strcpy", None), ("strncpy", 4), ("strcat", None), ("strncat", 2), ("stpcpy", None),
         ("stpncpy", 4)]


@pytest.fixture
def overlap(run_sample):
    return run_sample("overlap", options=("--show-leak-kinds=all",))


def printed_pair(stdout, label):
    for line in stdout.splitlines():
        words = line.split()
        if words and words[0] == label:
            return int(words[1], 16), int(words[2], 16)
    raise AssertionError(f"no '{label}' line in:\n{stdout}")


def test_overlap_program_goes_on(overlap, run_plain):
    proc, report = overlap
    plain = run_plain("overlap")
    assert proc.returncode == 0 == plain.returncode, proc.stderr
    assert proc.stdout.splitlines()[-1] == plain.stdout.splitlines()[-1] == \
        "ccdefefgh cdefefghcdefefghcd"


@pytest.mark.parametrize("function,size", CASES, ids=[c[0] for c in CASES])
def test_overlap_reported_at_the_call(overlap, marker, function, size):
    proc, report = overlap
    src, line = marker("overlap", function)
    err = u.error_at(report, "overlap", src, line)
    dst, source = printed_pair(proc.stdout, function)
    assert u.address(err["address"]) == dst
    want = {"function": function, "source": f"{source:#x}"}
    if size is not None:
        want["size"] = size
    assert err.get("overlap") == want, err
    assert err["stack"][0].get("function") == "main"
    args = f"{dst:#x}, {source:#x}" + (f", {size}" if size is not None else "")
    assert f"Source and destination overlap in {function}({args})" in proc.stderr, proc.stderr
    for key in ("block", "alloc_stack", "free_stack", "access"):
        assert key not in err, err


def test_only_the_overlaps(overlap):
    proc, report = overlap
    errors = u.runtime_errors(report)
    assert sorted(e["overlap"]["function"] for e in errors) == sorted(c[0] for c in CASES), \
        u.describe_errors(errors)
    assert report["summary"]["in_use_at_exit"] == {"bytes": 0, "blocks": 0}


def test_overlap_suppressed_by_valgrind_style_entry(run_sample, tmp_path):
    """memcheck's Overlap kind with the copying function as frame 0; what
    --gen-suppressions writes silences the same errors."""
    supp = tmp_path / "overlap.supp"
    supp.write_text("{\n   strcpy-overlap\n   Memcheck:Overlap\n   fun:strcpy\n   fun:main\n}\n")
    _, report = run_sample("overlap", options=(f"--suppressions={supp}",))
    suppressed = [e for e in u.runtime_errors(report) if e["suppressed"]]
    assert [e["overlap"]["function"] for e in suppressed] == ["strcpy"]
    proc, _ = run_sample("overlap", options=("--gen-suppressions=all",))
    assert "   Memcheck:Overlap\n   fun:strncat\n   fun:main\n" in proc.stdout + proc.stderr
