"""test_bad_frees.py — frees that must be reported and then ignored (valgrind's behaviour):
double free, invalid frees (stack, global, interior pointer of a live block, a pointer the
allocator never returned), mismatched allocator families, and fishy allocation sizes.
Each case sits at its own `/* expect: ... */` line of samples/bad_free.c,
mismatched_free.cpp and invalid_size.c; every report is checked for its kind, address,
stack[0] (the bad call's line), and where the contract has them its block, alloc and free
stacks. The program must go on after each report with its output and exit unchanged."""

import re

import pytest

import e2e_util as u

ALL = ("--show-leak-kinds=all",)


def assert_top(stack, src, line, function):
    assert stack, "empty stack"
    assert u.frame_at(stack[0], src, line, function), f"frame 0 is {stack[0]}, want {function} {src}:{line}"


def assert_no_memtrace_frames(err):
    for key in ("stack", "alloc_stack", "free_stack"):
        for frame in err.get(key) or []:
            assert not (frame.get("module") or "").endswith("/libmemtrace.so"), f"{key}: {frame}"
            assert (frame.get("function") or "").split("(")[0] not in (
                "free", "malloc", "calloc", "realloc", "operator delete", "operator new",
                "operator delete[]", "operator new[]"), f"{key}[0] is the allocator itself: {frame}"


# ---------------------------------------------------------------------------------------
# bad_free: double free and invalid frees
# ---------------------------------------------------------------------------------------

BAD_FREE_OUTPUT = [
    "double-free block ADDR",
    "invalid-free stack ADDR",
    "invalid-free global ADDR",
    "invalid-free interior ADDR block ADDR",
    "invalid-free mmap ADDR",
    "bad_free: end",
]


@pytest.fixture
def bad_free(run_sample):
    proc, report = run_sample("bad_free", options=ALL)
    return proc, report


def test_bad_free_program_goes_on(bad_free):
    """Every bad free is a report and nothing else: the program runs to its end, prints
    exactly its own lines (no "live block changed" / "stack buffer changed") and exits 0."""
    proc, report = bad_free
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr}"
    assert report.get("exit") == {"status": 0}
    assert u.mask_addresses(proc.stdout) == BAD_FREE_OUTPUT, proc.stdout


def test_double_free(bad_free, marker, paths):
    proc, report = bad_free
    src, line = marker("bad_free", "double-free")
    err = u.error_at(report, "double-free", src, line)
    block = u.printed_address(proc.stdout, "double-free block")
    assert u.address(err["address"]) == block
    assert err["stack"][0].get("function") == "double_free"
    assert u.same_file(err["stack"][0].get("module"), paths.sample_bin("bad_free"))
    assert err["stack"][1].get("function") == "main", err["stack"][:2]
    assert err.get("block") and u.address(err["block"]["address"]) == block, err.get("block")
    assert err["block"]["size"] == 32
    assert_top(err.get("alloc_stack"), src, u.marker_line(src, "alloc double"), "double_free")
    assert_top(err.get("free_stack"), src, u.marker_line(src, "first free"), "double_free")
    assert "access" not in err, err
    assert err["suppressed"] is False
    assert_no_memtrace_frames(err)


@pytest.mark.parametrize("tag,function,address_in,relation", [
    ("invalid-free stack", "free_stack_address", {"stack_of_thread": 1},
     "is on thread 1's stack"),
    ("invalid-free global", "free_global_address", {"data_symbol": "g_table", "offset": 0},
     'is 0 bytes inside data symbol "g_table"'),
    ("invalid-free mmap", "free_never_allocated", None,
     "is not stack'd, malloc'd or (recently) free'd"),
], ids=["stack", "global", "never-allocated"])
def test_invalid_free_not_heap(bad_free, marker, tag, function, address_in, relation):
    """Addresses that are no heap block at all: no block, no alloc or free stack; where the
    address lies, in valgrind's words in the text and as `address_in` in the JSON."""
    proc, report = bad_free
    src, line = marker("bad_free", tag)
    err = u.error_at(report, "invalid-free", src, line)
    addr = u.printed_address(proc.stdout, tag)
    assert u.address(err["address"]) == addr
    assert err["stack"][0].get("function") == function
    assert err["stack"][1].get("function") == "main", err["stack"][:2]
    for key in ("block", "alloc_stack", "free_stack", "access"):
        assert key not in err, f"{key} for a non-heap address: {err}"
    assert err.get("address_in") == address_in, err
    assert err["thread"] == 1 and err["tid"] == report["pid"], err
    assert f"Address {addr:#x} {relation}" in proc.stderr, proc.stderr
    assert_no_memtrace_frames(err)


@pytest.mark.parametrize("guard", ["auto", "none"])
def test_invalid_free_interior(run_sample, marker, guard):
    """An interior pointer of a live block: valgrind says "8 bytes inside a block of size 48
    alloc'd" with the alloc stack; the block itself stays live and is freed correctly later.
    The same without a guard page, where the block is found by its header."""
    proc, report = run_sample("bad_free", options=ALL + (f"--guard={guard}",))
    src, line = marker("bad_free", "invalid-free interior")
    err = u.error_at(report, "invalid-free", src, line)
    inside = u.printed_address(proc.stdout, "invalid-free interior")
    assert u.address(err["address"]) == inside
    assert err["stack"][0].get("function") == "free_interior_pointer"
    assert err.get("block"), f"no block for an interior pointer: {err}"
    assert u.address(err["block"]["address"]) == inside - 8
    assert err["block"]["size"] == 48
    assert_top(err.get("alloc_stack"), src, u.marker_line(src, "alloc interior"),
               "free_interior_pointer")
    assert "free_stack" not in err, err
    assert_no_memtrace_frames(err)


def test_bad_free_totals(bad_free, marker):
    """Exactly the five marked errors; the bad frees freed nothing, the good ones did: no
    leak of any kind, nothing in use at exit."""
    proc, report = bad_free
    src = marker("bad_free", "double-free")[0]
    errors = u.runtime_errors(report)
    assert len(errors) == 5, u.describe_errors(errors)
    assert sorted(e["kind"] for e in errors) == ["double-free"] + ["invalid-free"] * 4
    want = sorted(u.marker_line(src, t) for t in ("double-free", "invalid-free stack",
                  "invalid-free global", "invalid-free interior", "invalid-free mmap"))
    assert sorted(e["stack"][0].get("line") for e in errors) == want, u.describe_errors(errors)
    assert u.leak_records(report) == []
    s = report["summary"]
    assert s["errors"] == 5
    assert s["in_use_at_exit"] == {"bytes": 0, "blocks": 0}
    assert (s["total_heap_usage"]["allocs"], s["total_heap_usage"]["bytes"]) == (2, 80)


def test_bad_free_text_report(bad_free):
    """The text report counts the same errors, and shows each in valgrind's words."""
    proc, report = bad_free
    text = u.parse_text_summary(proc.stderr)
    assert text.get("errors") == report["summary"]["errors"] == 5, proc.stderr
    heads = [u.strip_prefix(l) for l in proc.stderr.splitlines()]
    assert heads.count("Invalid free() / delete / delete[] / realloc()") == 5, proc.stderr


def test_bad_free_error_exitcode(run_sample):
    proc, report = run_sample("bad_free", options=("--error-exitcode=42",))
    assert report["summary"]["errors"] == 5
    assert proc.returncode == 42, proc.stderr
    assert report.get("exit") == {"status": 0}


# ---------------------------------------------------------------------------------------
# mismatched_free: the wrong deallocator family
# ---------------------------------------------------------------------------------------

MISMATCHES = [
    # (case,           function,                 block size)
    ("malloc/delete",  "malloc_then_delete",     16),
    ("new/free",       "new_then_free",           4),
    ("new[]/delete",   "new_array_then_delete",  32),
    ("new/delete[]",   "new_then_delete_array",   4),
]


@pytest.fixture
def mismatched(run_sample):
    return run_sample("mismatched_free", options=ALL)


def test_mismatched_program_goes_on(mismatched, run_plain):
    """Same output and exit as without memtrace (glibc itself does not notice these)."""
    proc, report = mismatched
    plain = run_plain("mismatched_free")
    assert plain.returncode == 0, plain.stderr
    assert proc.returncode == 0, proc.stderr
    assert report.get("exit") == {"status": 0}
    assert u.mask_addresses(proc.stdout) == u.mask_addresses(plain.stdout), proc.stdout
    assert u.mask_addresses(proc.stdout)[-1] == "mismatched_free: end"


@pytest.mark.parametrize("case,function,size", MISMATCHES, ids=[m[0] for m in MISMATCHES])
def test_mismatched_free(mismatched, marker, case, function, size):
    proc, report = mismatched
    src, line = marker("mismatched_free", f"mismatched {case}")
    err = u.error_at(report, "mismatched-free", src, line)
    block = u.printed_address(proc.stdout, f"{case} block")
    assert u.address(err["address"]) == block
    fn = err["stack"][0].get("function") or ""
    assert fn.split("(")[0] == function and "_Z" not in fn, err["stack"][0]
    assert err["stack"][1].get("function") == "main", err["stack"][:2]
    assert err.get("block"), f"no block: {err}"
    assert (u.address(err["block"]["address"]), err["block"]["size"]) == (block, size), err["block"]
    alloc = err.get("alloc_stack")
    assert alloc, f"no alloc stack: {err}"
    assert u.frame_at(alloc[0], src, u.marker_line(src, f"alloc {case}")), alloc[0]
    assert "free_stack" not in err, err
    assert_no_memtrace_frames(err)


def test_mismatched_blocks_are_still_freed(mismatched):
    """valgrind releases a block freed with the wrong function; so must memtrace: nothing
    of the sample's leaks (libstdc++'s own emergency pool may be reachable)."""
    proc, report = mismatched
    errors = u.runtime_errors(report)
    assert sorted(e["kind"] for e in errors) == ["mismatched-free"] * 4, u.describe_errors(errors)
    assert [r for r in u.leak_records(report) if r["leak_kind"] != "reachable"] == [], \
        u.describe(u.leak_records(report))
    s = report["summary"]
    assert (s["leaked_bytes"]["definite"], s["leaked_bytes"]["indirect"],
            s["leaked_bytes"]["possible"]) == (0, 0, 0)
    assert s["errors"] == 4
    text = u.parse_text_summary(proc.stderr)
    assert text.get("errors") == 4, proc.stderr


# ---------------------------------------------------------------------------------------
# invalid_size: fishy sizes
# ---------------------------------------------------------------------------------------

INVALID_SIZES = ["invalid-size malloc", "invalid-size calloc negative",
                 "invalid-size calloc overflow"]


@pytest.fixture
def invalid_size(run_sample):
    return run_sample("invalid_size", options=ALL)


def test_invalid_size_program_goes_on(invalid_size, run_plain):
    """The calls still fail as glibc fails them: NULL and errno ENOMEM, same output."""
    proc, report = invalid_size
    plain = run_plain("invalid_size")
    assert plain.returncode == 0, plain.stderr
    assert proc.returncode == 0, proc.stderr
    assert report.get("exit") == {"status": 0}
    assert proc.stdout == plain.stdout
    assert proc.stdout.splitlines() == [
        "malloc(-5): NULL errno=ENOMEM",
        "calloc(2, SIZE_MAX/2+1): NULL errno=ENOMEM",
        "calloc(2^33, 2^33): NULL errno=ENOMEM",
        "invalid_size: end",
    ], proc.stdout


CALLS = [
    {"function": "malloc", "argument": "size", "value": -5},
    {"function": "calloc", "argument": "size", "value": -2**63},
    {"function": "calloc", "argument": "nmemb*size", "value": 2**33, "times": 2**33},
]
HEADLINES = [
    "Argument 'size' of function malloc has a fishy (possibly negative) value: -5",
    "Argument 'size' of function calloc has a fishy (possibly negative) value: "
    "-9223372036854775808",
    "Argument 'nmemb*size' of function calloc overflows: 8589934592 * 8589934592",
]


@pytest.mark.parametrize("tag,call,headline", zip(INVALID_SIZES, CALLS, HEADLINES),
                         ids=["malloc", "calloc-negative", "calloc-overflow"])
def test_invalid_size(invalid_size, marker, tag, call, headline):
    """Named as valgrind names the call and its argument (calloc's overflowing product,
    which valgrind does not report, in the same words)."""
    proc, report = invalid_size
    src, line = marker("invalid_size", tag)
    err = u.error_at(report, "invalid-size", src, line)
    assert err["stack"][0].get("function") == "main"
    for key in ("block", "alloc_stack", "free_stack", "access"):
        assert key not in err, f"{key} in an invalid-size error: {err}"
    assert err.get("call") == call, err
    assert headline in [u.strip_prefix(l) for l in proc.stderr.splitlines()], proc.stderr
    assert_no_memtrace_frames(err)


def test_invalid_size_totals(invalid_size):
    proc, report = invalid_size
    errors = u.runtime_errors(report)
    assert len(errors) == 3, u.describe_errors(errors)
    s = report["summary"]
    assert s["errors"] == 3
    # Nothing was allocated by the failed calls.
    assert s["in_use_at_exit"] == {"bytes": 0, "blocks": 0}
    assert s["total_heap_usage"]["bytes"] == 0
    assert u.leak_records(report) == []
    assert u.parse_text_summary(proc.stderr).get("errors") == 3, proc.stderr


@pytest.mark.parametrize("sample", ["bad_free", "mismatched_free", "invalid_size"])
def test_not_killed(run_sample, sample):
    """None of these is fatal under memtrace, whatever the guard options."""
    for options in ((), ("--guard=all",), ("--guard=none",), ("--guard-side=underflow",)):
        proc, report = run_sample(sample, options=options)
        assert proc.returncode == 0, f"{options}: exit {proc.returncode}\n{proc.stderr}"
        assert report.get("exit") == {"status": 0}, options
        assert report["summary"]["errors"] == len(u.runtime_errors(report)) > 0, options


# ---------------------------------------------------------------------------------------
# repeated_errors: one context per (kind, access, stack), counted
# ---------------------------------------------------------------------------------------

def test_repeated_errors_are_one_context_each(run_sample, marker, tmp_path):
    """50 bad frees from one line and 3 from another: two entries, each counted, as
    valgrind's "53 errors from 2 contexts"; XML's errorcounts carry the counts too."""
    xml, log = tmp_path / "repeated.xml", tmp_path / "repeated.log"
    proc, report = run_sample("repeated_errors", options=("--xml=yes", f"--xml-file={xml}",
                                                          f"--event-log={log}"))
    assert proc.returncode == 0 and proc.stdout == "done\n", proc.stderr
    errors = u.runtime_errors(report)
    assert len(errors) == 2, u.describe(errors)
    for tag, function, times in (("repeated stack free", "free_stack_address", 50),
                                 ("repeated global free", "main", 3)):
        src, line = marker("repeated_errors", tag)
        err = u.error_at(report, "invalid-free", src, line)
        assert err["count"] == times, err
        assert_top(err["stack"], src, line, function)
    assert report["summary"]["errors"] == 2
    assert report["summary"]["occurrences"] == 53
    assert "ERROR SUMMARY: 53 errors from 2 contexts (suppressed: 0 from 0)" in proc.stderr
    counts = sorted(int(c) for c in re.findall(r"<count>(\d+)</count>\s*<unique>",
                                                xml.read_text()))
    assert counts == [3, 50], counts
    # The runtime writes each context's first error, and its repeats as one count at the end.
    lines = [line for line in log.read_text().splitlines() if line.startswith("error ")]
    firsts = [line for line in lines if " repeats=" not in line]
    repeats = sorted(int(re.search(r" repeats=(\d+)", line)[1]) for line in lines if line not in firsts)
    assert len(firsts) == 2 and repeats == [2, 49], lines


# ---------------------------------------------------------------------------------------
# array_cookie: delete and delete[] crossed on a class with a destructor
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("guard", ["auto", "none"])
def test_array_cookie(run_sample, marker, guard):
    """delete[] of a scalar new block frees 8 bytes before it and runs no destructor (the
    count it reads there is zero); delete of a new[] block runs one destructor and frees 8
    bytes inside it. Both are invalid frees naming the block, guarded or not, and both
    blocks are then definitely lost, as valgrind says. A byte written where delete[] reads
    the count (zero under memtrace) is still an underflow, found at the delete."""
    proc, report = run_sample("array_cookie", options=ALL + (f"--guard={guard}",))
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr}"
    assert u.mask_addresses(proc.stdout) == [
        "delete[] of new ADDR", "delete of new[] ADDR", "destructor 1", "write before new ADDR",
        "destructor 1", "array_cookie: end"]
    # (tag, its alloc's tag, freed address and block start less the printed pointer, size)
    cases = (("delete[] of new", "alloc new", -8, 0, 4, "new_then_delete_array()"),
             ("delete of new[]", "alloc new[]", 0, -8, 20, "new_array_then_delete()"))
    for tag, alloc_tag, freed, start, size, function in cases:
        src, line = marker("array_cookie", tag)
        err = u.error_at(report, "invalid-free", src, line)
        printed = u.printed_address(proc.stdout, tag)
        assert u.address(err["address"]) == printed + freed, err
        assert err.get("block"), f"no block for {tag}: {err}"
        assert u.address(err["block"]["address"]) == printed + start, err
        assert err["block"]["size"] == size, err
        assert_top(err.get("alloc_stack"), src, u.marker_line(src, alloc_tag), function)
        assert_no_memtrace_frames(err)
    src, line = marker("array_cookie", "delete underflow")
    err = u.error_at(report, "heap-underflow", src, line)
    block = u.printed_address(proc.stdout, "write before new")
    assert u.address(err["address"]) == block - 1, err
    assert u.address(err["block"]["address"]) == block and err["block"]["size"] == 4, err
    assert_top(err.get("alloc_stack"), src, u.marker_line(src, "alloc underflow"), "write_before_new()")
    assert len(u.runtime_errors(report)) == 3, u.describe_errors(u.runtime_errors(report))
    lost = sorted((r["bytes"], r["stack"][0].get("line")) for r in u.leak_records(report, "definite"))
    src = marker("array_cookie", "alloc new")[0]
    assert lost == [(4, u.marker_line(src, "alloc new")), (20, u.marker_line(src, "alloc new[]"))], lost
