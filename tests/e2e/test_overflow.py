"""test_overflow.py — heap overflows and underflows caught by the guarded pool
(samples/overflow.c: one bad 1-byte access per run, chosen by argv[1]).

Every combination is run: write and read; 1 byte and 300 bytes out; an odd size (13) and
an aligned one (16); on the main thread and on a second thread. What memtrace must do:
- default (--guard-side=overflow): an overflow faults at the access. The report's stack[0]
  is the access line (poke/peek), access.op and access.size say what the instruction did,
  address is the exact byte, block and alloc_stack are the block's, and the process dies of
  SIGSEGV (JSON exit {"signal": 11}, memtrace itself killed by SIGSEGV). An underflow WRITE
  lands in the head redzone and is found when the block is freed (heap-underflow, stack =
  the free's); an underflow READ cannot be seen there (it changes nothing).
- --guard-side=underflow: the mirror image.
- --continue-after-fault=yes: one report, then the program runs to its end (status 0).
- --guard-align=16, --guard=all|sample:1|none: where the block sits and whether it is guarded.
"""

import signal
import subprocess

import pytest

import e2e_util as u

SAMPLE = "overflow"
PAGE = 4096


def parse_case(name):
    """{thread, size, side, op, distance, offset} of a case name (see overflow.c)."""
    rest, c = name, {"thread": False, "size": 13}
    if rest.startswith("thread_"):
        c["thread"], rest = True, rest[len("thread_"):]
    if rest.startswith("aligned16_"):
        c["size"], rest = 16, rest[len("aligned16_"):]
    elif rest.startswith("int5_"):
        c["size"], rest = 20, rest[len("int5_"):]
    c["side"], c["op"], distance = rest.split("_")
    c["distance"] = int(distance)
    c["offset"] = -c["distance"] if c["side"] == "underflow" else c["size"] - 1 + c["distance"]
    return c


def cases(side=None, op=None):
    out = []
    for thread in ("", "thread_"):
        for aligned in ("", "aligned16_"):
            for s in ("overflow", "underflow"):
                for o in ("write", "read"):
                    for d in (1, 300):
                        name = f"{thread}{aligned}{s}_{o}_{d}"
                        if (side is None or s == side) and (op is None or o == op):
                            out.append(name)
    return out


def the_block(proc, case):
    blocks = u.printed_blocks(proc.stdout)
    assert len(blocks) == 1, f"expected one 'block ADDR size N' line:\n{proc.stdout}"
    assert blocks[0][1] == case["size"], blocks
    return blocks[0][0]


def check_caller(stack, src, case):
    """Below the access: run_case, called from main or from the thread's body."""
    names = [f.get("function") for f in stack]
    assert "run_case" in names, f"no run_case frame: {names}"
    caller = "thread_body" if case["thread"] else "main"
    tag = "thread calls run_case" if case["thread"] else "main calls run_case"
    hits = [f for f in stack if f.get("function") == caller]
    assert hits and u.frame_at(hits[0], src, u.marker_line(src, tag)), \
        f"no {caller} frame at '{tag}': {stack}"
    if case["thread"]:
        assert "main" not in names, f"a second thread's stack reaches main: {names}"


def assert_fault_report(proc, report, src, name, kind):
    """The process died at the access, with this one report."""
    case = parse_case(name)
    assert proc.returncode == -signal.SIGSEGV, \
        f"memtrace should die of SIGSEGV, exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert report.get("exit") == {"signal": signal.SIGSEGV}, report.get("exit")
    assert "accessed" not in proc.stdout.splitlines(), f"ran past the access:\n{proc.stdout}"
    block = the_block(proc, case)
    errors = u.runtime_errors(report)
    assert len(errors) == 1, u.describe_errors(errors)
    err = errors[0]
    assert err["kind"] == kind, u.describe_errors(errors)
    fn, tag = ("poke", "write") if case["op"] == "write" else ("peek", "read")
    assert u.frame_at(err["stack"][0], src, u.marker_line(src, tag), fn), \
        f"stack[0] {err['stack'][0]} is not the access ({fn}, '{tag}')"
    check_caller(err["stack"], src, case)
    assert err.get("access") == {"op": case["op"], "size": 1}, err.get("access")
    assert u.address(err["address"]) == block + case["offset"], \
        f"address {err['address']} != block {block:#x} {case['offset']:+d}"
    assert err.get("block"), err
    assert (u.address(err["block"]["address"]), err["block"]["size"]) == (block, case["size"])
    assert err.get("alloc_stack"), err
    assert u.frame_at(err["alloc_stack"][0], src, u.marker_line(src, "alloc"), "run_case"), \
        err["alloc_stack"][0]
    check_caller(err["alloc_stack"], src, case)
    assert "free_stack" not in err, err
    assert err["suppressed"] is False
    assert report["summary"]["errors"] == 1
    # The text report says it in valgrind's words, and counts it.
    heads = [u.strip_prefix(l) for l in proc.stderr.splitlines()]
    want = f"Invalid {case['op']} of size 1"
    assert want in heads, f"no '{want}' line:\n{proc.stderr}"
    assert u.parse_text_summary(proc.stderr).get("errors") == 1, proc.stderr
    return err


def assert_found_at_free(proc, report, src, name, kind):
    """A write into the redzone on the unguarded side: no fault; found by the free."""
    case = parse_case(name)
    assert case["op"] == "write"
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr}"
    assert report.get("exit") == {"status": 0}
    assert proc.stdout.splitlines()[-3:] == ["accessed", "freed", "done"], proc.stdout
    block = the_block(proc, case)
    errors = u.runtime_errors(report)
    assert len(errors) == 1, u.describe_errors(errors)
    err = errors[0]
    assert err["kind"] == kind, u.describe_errors(errors)
    assert u.frame_at(err["stack"][0], src, u.marker_line(src, "free"), "run_case"), \
        f"stack[0] {err['stack'][0]} is not the free"
    check_caller(err["stack"], src, case)
    assert u.address(err["address"]) == block + case["offset"], \
        f"address {err['address']} != block {block:#x} {case['offset']:+d}"
    assert err.get("block"), err
    assert (u.address(err["block"]["address"]), err["block"]["size"]) == (block, case["size"])
    assert u.frame_at(err["alloc_stack"][0], src, u.marker_line(src, "alloc"), "run_case")
    assert report["summary"]["errors"] == 1
    return err


def assert_ran_to_end(proc, report):
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr}"
    assert report.get("exit") == {"status": 0}
    assert proc.stdout.splitlines()[-3:] == ["accessed", "freed", "done"], proc.stdout


# ---------------------------------------------------------------------------------------
# Default: the guard page is after the block
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", cases(side="overflow"))
def test_overflow_faults_at_access(run_sample, marker, name):
    proc, report = run_sample(SAMPLE, name)
    assert_fault_report(proc, report, marker(SAMPLE, "write")[0], name, "heap-overflow")


@pytest.mark.parametrize("name", cases(side="underflow", op="write"))
def test_underflow_write_found_at_free(run_sample, marker, name):
    proc, report = run_sample(SAMPLE, name)
    assert_found_at_free(proc, report, marker(SAMPLE, "free")[0], name, "heap-underflow")


@pytest.mark.parametrize("name", cases(side="underflow", op="read"))
def test_underflow_read_not_fatal_by_default(run_sample, name):
    """A read before the block touches the accessible head redzone: the program goes on,
    and nothing may be misreported (no fault, no other kind)."""
    proc, report = run_sample(SAMPLE, name)
    assert_ran_to_end(proc, report)
    kinds = {e["kind"] for e in u.runtime_errors(report)}
    assert kinds <= {"heap-underflow"}, u.describe_errors(u.runtime_errors(report))


@pytest.mark.parametrize("name", ["int5_overflow_read_1", "int5_overflow_write_1"])
def test_int_array_overflow_faults_at_access(run_sample, marker, name):
    """An array of 5 ints (20 bytes) sits 4-aligned against its guard: the read or write
    of a[5] faults at the access, as valgrind reports it there."""
    proc, report = run_sample(SAMPLE, name)
    assert_fault_report(proc, report, marker(SAMPLE, "read")[0], name, "heap-overflow")


def test_default_placement_ends_at_the_guard(run_sample):
    """--guard-align=natural (default): an odd-sized block ends exactly at its page's end,
    so the very next byte is the guard page; so does an array of 5 ints."""
    for name, size in (("overflow_read_1", 13), ("aligned16_overflow_read_1", 16),
                       ("int5_overflow_read_1", 20)):
        proc, _ = run_sample(SAMPLE, name)
        (block, got), = u.printed_blocks(proc.stdout)
        assert got == size
        assert (block + size) % PAGE == 0, f"{name}: block {block:#x}+{size} does not end a page"


# ---------------------------------------------------------------------------------------
# --guard-side=underflow: the guard page is before the block
# ---------------------------------------------------------------------------------------

UNDER = ("--guard-side=underflow",)


@pytest.mark.parametrize("name", cases(side="underflow"))
def test_underflow_side_faults_at_access(run_sample, marker, name):
    proc, report = run_sample(SAMPLE, name, options=UNDER)
    assert_fault_report(proc, report, marker(SAMPLE, "read")[0], name, "heap-underflow")


@pytest.mark.parametrize("name", cases(side="overflow", op="write"))
def test_underflow_side_overflow_write_found_at_free(run_sample, marker, name):
    proc, report = run_sample(SAMPLE, name, options=UNDER)
    assert_found_at_free(proc, report, marker(SAMPLE, "free")[0], name, "heap-overflow")


@pytest.mark.parametrize("name", ["overflow_read_1", "aligned16_overflow_read_300",
                                  "thread_overflow_read_1"])
def test_underflow_side_overflow_read_not_fatal(run_sample, name):
    proc, report = run_sample(SAMPLE, name, options=UNDER)
    assert_ran_to_end(proc, report)
    kinds = {e["kind"] for e in u.runtime_errors(report)}
    assert kinds <= {"heap-overflow"}, u.describe_errors(u.runtime_errors(report))


def test_underflow_side_placement_starts_at_the_guard(run_sample):
    for name in ("underflow_read_1", "aligned16_underflow_read_1"):
        proc, _ = run_sample(SAMPLE, name, options=UNDER)
        (block, _size), = u.printed_blocks(proc.stdout)
        assert block % PAGE == 0, f"{name}: block {block:#x} does not start a page"


# ---------------------------------------------------------------------------------------
# --continue-after-fault=yes
# ---------------------------------------------------------------------------------------

CONTINUE = [
    ((), "overflow_write_1", "heap-overflow"),
    ((), "overflow_read_300", "heap-overflow"),
    ((), "aligned16_overflow_read_1", "heap-overflow"),
    ((), "thread_overflow_write_1", "heap-overflow"),
    ((), "thread_aligned16_overflow_write_300", "heap-overflow"),
    (UNDER, "underflow_write_1", "heap-underflow"),
    (UNDER, "thread_underflow_read_300", "heap-underflow"),
]


@pytest.mark.parametrize("options,name,kind", CONTINUE,
                         ids=[f"{'under-' if o else ''}{n}" for o, n, _ in CONTINUE])
def test_continue_after_fault(run_sample, marker, options, name, kind):
    """The same single report as a fatal fault, then the program runs to its end."""
    src = marker(SAMPLE, "alloc")[0]
    case = parse_case(name)
    proc, report = run_sample(SAMPLE, name, options=(*options, "--continue-after-fault=yes"))
    assert_ran_to_end(proc, report)
    errors = u.runtime_errors(report)
    assert len(errors) == 1, f"the slot must be reported once; {u.describe_errors(errors)}"
    err = errors[0]
    assert err["kind"] == kind
    fn, tag = ("poke", "write") if case["op"] == "write" else ("peek", "read")
    assert u.frame_at(err["stack"][0], src, u.marker_line(src, tag), fn), err["stack"][0]
    assert err.get("access") == {"op": case["op"], "size": 1}, err.get("access")
    block = the_block(proc, case)
    assert u.address(err["address"]) == block + case["offset"]
    assert report["summary"]["errors"] == 1
    assert u.leak_records(report, "definite") == []


def test_continue_after_fault_no_is_the_default(run_sample):
    """The program ends at the fault, and the text says memtrace ended it and how not to."""
    proc, report = run_sample(SAMPLE, "overflow_write_1", options=("--continue-after-fault=no",))
    assert proc.returncode == -signal.SIGSEGV, proc.stderr
    assert report.get("exit") == {"signal": signal.SIGSEGV}
    lines = [u.strip_prefix(l) for l in proc.stderr.splitlines()]
    at = lines.index("Process terminating with default action of signal 11 (SIGSEGV)")
    assert "--continue-after-fault=yes lets it run on" in lines[at + 1], lines[at:at + 2]
    assert lines.index("Invalid write of size 1") < at


def test_error_exitcode_on_fault(run_sample):
    """--error-exitcode=N applies to a run that found errors however the program ended
    (as for leak_abort): N, with the death by SIGSEGV still in the JSON."""
    proc, report = run_sample(SAMPLE, "overflow_write_1", options=("--error-exitcode=42",))
    assert report.get("exit") == {"signal": signal.SIGSEGV}
    assert report["summary"]["errors"] == 1
    assert proc.returncode == 42, proc.stderr


def test_continue_with_error_exitcode(run_sample):
    proc, report = run_sample(SAMPLE, "overflow_write_1",
                              options=("--continue-after-fault=yes", "--error-exitcode=42"))
    assert report.get("exit") == {"status": 0}
    assert report["summary"]["errors"] == 1
    assert proc.returncode == 42, proc.stderr


# ---------------------------------------------------------------------------------------
# --guard-align and --guard
# ---------------------------------------------------------------------------------------

def test_guard_align_16(run_sample, marker):
    """With 16-byte alignment a 13-byte block leaves 3 bytes of redzone before the guard:
    a 1-byte overflow write is found at the free; 16-byte blocks and far overflows still
    fault at the access."""
    src = marker(SAMPLE, "free")[0]
    opts = ("--guard-align=16",)
    proc, report = run_sample(SAMPLE, "overflow_write_1", options=opts)
    (block, _), = u.printed_blocks(proc.stdout)
    assert block % 16 == 0, f"block {block:#x} is not 16-aligned"
    assert (block + 13 + 3) % PAGE == 0, f"block {block:#x} is not against the guard"
    assert_found_at_free(proc, report, src, "overflow_write_1", "heap-overflow")
    proc, report = run_sample(SAMPLE, "overflow_write_300", options=opts)
    assert_fault_report(proc, report, src, "overflow_write_300", "heap-overflow")
    proc, report = run_sample(SAMPLE, "aligned16_overflow_read_1", options=opts)
    assert_fault_report(proc, report, src, "aligned16_overflow_read_1", "heap-overflow")


def test_guard_align_natural_explicit(run_sample, marker):
    proc, report = run_sample(SAMPLE, "overflow_read_1", options=("--guard-align=natural",))
    assert_fault_report(proc, report, marker(SAMPLE, "read")[0], "overflow_read_1", "heap-overflow")


@pytest.mark.parametrize("mode", ["auto", "all", "sample:1"])
def test_guard_modes_that_guard_this_block(run_sample, marker, mode):
    """The sample's only block is the first one of its call site: guarded by auto, by all,
    and by sampling every allocation."""
    proc, report = run_sample(SAMPLE, "overflow_write_1", options=(f"--guard={mode}",))
    assert_fault_report(proc, report, marker(SAMPLE, "write")[0], "overflow_write_1",
                        "heap-overflow")


def test_guard_none(run_sample, marker):
    """No guarded block: the 1-byte overflow lands in the block's redzone, no fault (and
    so no report at the access)."""
    src, line = marker(SAMPLE, "write")
    proc, report = run_sample(SAMPLE, "overflow_write_1", options=("--guard=none",))
    assert_ran_to_end(proc, report)
    at_access = [e for e in u.runtime_errors(report) if u.frame_at(e["stack"][0], src, line)]
    assert at_access == [], u.describe_errors(at_access)


# Unguarded blocks carry 16 bytes of canary on each side (docs/corruption.md): a 1-byte
# write past either end is found when the block is freed, also without a quarantine (the
# block then goes straight back to glibc).
REDZONE_CASES = [c for c in cases(op="write") if c.endswith("_1")]


# The memory under a redzoned block: memtrace's slab slots (the default) or glibc's chunks.
ALLOCATORS = pytest.mark.parametrize("allocator", [(), ("--allocator=glibc",)], ids=["slab", "glibc"])


@ALLOCATORS
@pytest.mark.parametrize("quarantine", [(), ("--quarantine-size=0",)], ids=["quarantine", "no-quarantine"])
@pytest.mark.parametrize("name", REDZONE_CASES)
def test_redzone_write_found_at_free(run_sample, marker, name, quarantine, allocator):
    proc, report = run_sample(SAMPLE, name, options=("--guard=none",) + quarantine + allocator)
    kind = "heap-underflow" if "underflow" in name else "heap-overflow"
    assert_found_at_free(proc, report, marker(SAMPLE, "free")[0], name, kind)


# The head redzone's first 8 bytes are the block table's header word (docs/corruption.md):
# a write into it, or into glibc's chunk header before it, is found at the free as a write
# to that word; the block's size and allocation stack are lost with it. (Byte 15 before
# the block is a stack id's high byte, 0 in this sample, and byte 20 the high half of
# glibc's chunk size: 'X' always changes them.)
@pytest.mark.parametrize("name,allocator", [
    ("underflow_write_15", ()), ("aligned16_underflow_write_15", ()),
    ("thread_underflow_write_15", ()), ("underflow_write_15", ("--allocator=glibc",)),
    ("underflow_write_20", ("--allocator=glibc",))])
def test_header_word_write_found_at_free(run_sample, marker, name, allocator):
    src, line = marker(SAMPLE, "free")
    proc, report = run_sample(SAMPLE, name, options=("--guard=none",) + allocator)
    assert_ran_to_end(proc, report)
    block = the_block(proc, parse_case(name))
    errors = u.runtime_errors(report)
    assert len(errors) == 1, u.describe_errors(errors)
    err = errors[0]
    assert err["kind"] == "heap-underflow", u.describe_errors(errors)
    assert u.frame_at(err["stack"][0], src, line, "run_case"), err["stack"][0]
    assert u.address(err["address"]) == block - 16, err["address"]
    assert err["access"] == {"op": "write", "size": 8}
    assert u.address(err["block"]["address"]) == block
    assert "size" not in err["block"], err["block"]


# In a slab slot, byte 20 before the block is the slot before's last bytes; before a
# class's first slot (this sample's only 13-byte block) it is a page the slab leaves
# writable, so that the program runs on as it does under glibc, where that byte is its
# chunk header. (No check finds that write: the slab has no canary there.)
def test_underflow_before_first_slab_slot_runs_on(run_sample):
    proc, report = run_sample(SAMPLE, "underflow_write_20", options=("--guard=none",))
    assert_ran_to_end(proc, report)


def test_wide_access_named_by_its_first_byte(run_memtrace, tmp_path):
    """An 8-byte store that starts inside a 13-byte block and runs past it faults on the
    guard page's first byte; the report names the access by its own first byte, with its
    size, as valgrind does ("8 bytes inside a block of size 13")."""
    src, prog = tmp_path / "wide.c", tmp_path / "wide"
    src.write_text("#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n"
                   "int main(void) {\n"
                   "    char *p = malloc(13);\n"
                   "    long v = 0x4142434445464748;\n"
                   "    printf(\"block %p\\n\", (void *)p);\n"
                   "    fflush(stdout);\n"
                   "    memcpy(p + 8, &v, 8);\n"
                   "    free(p);\n"
                   "    return 0;\n"
                   "}\n")
    subprocess.run(["gcc", "-g", "-O0", "-o", str(prog), str(src)], check=True, timeout=u.TIMEOUT)
    out = tmp_path / "wide.json"
    proc = run_memtrace(f"--json={out}", "--continue-after-fault=yes", prog)
    report = u.load_report(out, proc)
    block = u.printed_address(proc.stdout, "block")
    err, = u.runtime_errors(report)
    assert err["kind"] == "heap-overflow" and err["access"] == {"op": "write", "size": 8}, err
    assert u.address(err["address"]) == block + 8, (err["address"], hex(block))
    assert err["stack"][0].get("line") == 9
    assert "is 8 bytes inside a block of size 13 alloc'd" in proc.stderr, proc.stderr
