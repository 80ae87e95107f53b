"""test_use_after_free.py — reads and writes of freed blocks (samples/use_after_free.c, one
case per run): plain free, a block freed on another thread, and the old pointer of a block
that realloc moved. A guarded block is PROT_NONE in the quarantine, so by default the access
faults: kind use-after-free, stack[0] the access, alloc_stack[0] the malloc, free_stack[0]
the free (the realloc, for the realloc cases), and the process dies of SIGSEGV. With
--continue-after-fault=yes the program runs to its end after the one report.
Also --malloc-fill / --free-fill (samples/malloc_fill.c and the read case)."""

import signal

import pytest

import e2e_util as u

SAMPLE = "use_after_free"

# case -> (access marker, function at stack[0], op, offset in the block, block size,
#          free marker, function at free_stack[0], function that allocated (alloc_stack[1]))
CASES = {
    "read":             ("read access", "read_after_free", "read", 5, 40,
                         "free", "release", "read_after_free"),
    "write":            ("write access", "write_after_free", "write", 5, 40,
                         "free", "release", "write_after_free"),
    "realloc_read":     ("realloc read access", "realloc_read", "read", 3, 24,
                         "realloc", "realloc_moved", "realloc_moved"),
    "realloc_write":    ("realloc write access", "realloc_write", "write", 3, 24,
                         "realloc", "realloc_moved", "realloc_moved"),
    "thread_free_read": ("thread free read access", "thread_free_read", "read", 5, 40,
                         "free", "release", "thread_free_read"),
}


def the_block(proc, size):
    blocks = u.printed_blocks(proc.stdout)
    assert len(blocks) == 1, f"expected one 'block ADDR size N' line:\n{proc.stdout}"
    assert blocks[0][1] == size, blocks
    return blocks[0][0]


def check_uaf_error(err, proc, src, case):
    access_tag, fn, op, offset, size, free_tag, free_fn, alloc_caller = CASES[case]
    assert err["kind"] == "use-after-free", u.describe_errors([err])
    assert u.frame_at(err["stack"][0], src, u.marker_line(src, access_tag), fn), \
        f"stack[0] {err['stack'][0]} is not '{access_tag}' in {fn}"
    assert err["stack"][1].get("function") == "main", err["stack"][:2]
    assert err.get("access") == {"op": op, "size": 1}, err.get("access")
    block = the_block(proc, size)
    assert u.address(err["address"]) == block + offset, \
        f"address {err['address']} != block {block:#x} + {offset}"
    assert err.get("block"), err
    assert (u.address(err["block"]["address"]), err["block"]["size"]) == (block, size)
    alloc = err.get("alloc_stack")
    assert alloc, err
    assert u.frame_at(alloc[0], src, u.marker_line(src, "alloc"), "make_block"), alloc[0]
    assert alloc[1].get("function") == alloc_caller, alloc[:2]
    free = err.get("free_stack")
    assert free, f"no free stack: {err}"
    assert u.frame_at(free[0], src, u.marker_line(src, free_tag), free_fn), \
        f"free_stack[0] {free[0]} is not '{free_tag}' in {free_fn}"
    names = [f.get("function") for f in free]
    if case == "thread_free_read":
        assert "free_on_thread" in names and "main" not in names, names
    else:
        assert fn in names, names
    for key in ("stack", "alloc_stack", "free_stack"):
        for frame in err[key]:
            assert not (frame.get("module") or "").endswith("/libmemtrace.so"), f"{key}: {frame}"
    assert err["suppressed"] is False


@pytest.mark.parametrize("case", sorted(CASES))
def test_use_after_free_faults(run_sample, marker, case):
    src = marker(SAMPLE, "alloc")[0]
    proc, report = run_sample(SAMPLE, case)
    assert proc.returncode == -signal.SIGSEGV, \
        f"memtrace should die of SIGSEGV, exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert report.get("exit") == {"signal": signal.SIGSEGV}
    lines = proc.stdout.splitlines()
    assert "accessed" not in lines and not any(l.startswith("value") for l in lines), proc.stdout
    if case.startswith("realloc"):
        assert "moved yes" in lines, f"realloc did not move the block:\n{proc.stdout}"
    errors = u.runtime_errors(report)
    assert len(errors) == 1, u.describe_errors(errors)
    check_uaf_error(errors[0], proc, src, case)
    assert report["summary"]["errors"] == 1
    assert u.parse_text_summary(proc.stderr).get("errors") == 1, proc.stderr


def test_use_after_free_text(run_sample):
    """The text report describes it in valgrind's words."""
    proc, _ = run_sample(SAMPLE, "read")
    lines = [u.strip_prefix(l) for l in proc.stderr.splitlines()]
    assert "Invalid read of size 1" in lines, proc.stderr
    assert any(l.endswith("is 5 bytes inside a block of size 40 free'd") for l in lines), proc.stderr
    assert "Block was alloc'd at" in lines, proc.stderr


@pytest.mark.parametrize("case", sorted(CASES))
def test_use_after_free_continue(run_sample, marker, case):
    src = marker(SAMPLE, "alloc")[0]
    proc, report = run_sample(SAMPLE, case, options=("--continue-after-fault=yes",))
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr}"
    assert report.get("exit") == {"status": 0}
    assert proc.stdout.splitlines()[-2:] == ["accessed", "done"], proc.stdout
    errors = u.runtime_errors(report)
    assert len(errors) == 1, u.describe_errors(errors)
    check_uaf_error(errors[0], proc, src, case)
    # Nothing leaked: the accesses did not stop the frees that follow them.
    assert [r for r in u.leak_records(report) if r["leak_kind"] != "reachable"] == []


@pytest.mark.parametrize("options", [("--guard=all",), ("--quarantine-size=1",),
                                     ("--quarantine-size=256",), ("--guard-side=underflow",)],
                         ids=["guard-all", "quarantine-1MB", "quarantine-256MB", "underflow-side"])
def test_use_after_free_other_options(run_sample, marker, options):
    """Whatever the guard side or quarantine size, the block freed just before is caught."""
    src = marker(SAMPLE, "alloc")[0]
    for case in ("write", "realloc_read"):
        proc, report = run_sample(SAMPLE, case, options=options)
        assert proc.returncode == -signal.SIGSEGV, f"{options} {case}: exit {proc.returncode}"
        errors = u.runtime_errors(report)
        assert len(errors) == 1, u.describe_errors(errors)
        check_uaf_error(errors[0], proc, src, case)


@pytest.mark.parametrize("options", [("--guard=none",), ("--guard=none", "--quarantine-size=0")],
                         ids=["quarantine", "no-quarantine"])
def test_guard_none_does_not_fault(run_sample, options):
    """Without guard pages nothing faults; the program reads what it left in the block, as
    under valgrind (a stale next pointer read after a free must not turn wild)."""
    proc, report = run_sample(SAMPLE, "read", options=options)
    assert proc.returncode == 0, proc.stderr
    assert "value 0x75" in proc.stdout.splitlines(), proc.stdout     # 'u', as make_block wrote
    assert proc.stdout.splitlines()[-2:] == ["accessed", "done"]


def test_write_after_free_redzoned(run_sample, marker):
    """An unguarded freed block waits in the quarantine as the program left it, with a hash
    of each of its first words (docs/corruption.md): a write into it is found when it
    leaves the quarantine or at exit, in its word, with its alloc and free stacks; the
    program is not stopped."""
    src = marker(SAMPLE, "alloc")[0]
    proc, report = run_sample(SAMPLE, "write", options=("--guard=none",))
    assert proc.returncode == 0, proc.stderr
    assert report.get("exit") == {"status": 0}
    errors = u.runtime_errors(report)
    assert len(errors) == 1, u.describe_errors(errors)
    err = errors[0]
    assert err["kind"] == "use-after-free", u.describe_errors(errors)
    block = the_block(proc, 40)
    assert u.address(err["address"]) == block, err      # byte 5 was written: word 0
    assert err.get("access") == {"op": "write", "size": 8}, err
    assert (u.address(err["block"]["address"]), err["block"]["size"]) == (block, 40)
    assert u.frame_at(err["alloc_stack"][0], src, u.marker_line(src, "alloc"), "make_block")
    assert u.frame_at(err["free_stack"][0], src, u.marker_line(src, "free"), "release")
    assert report["summary"]["errors"] == 1


# ---------------------------------------------------------------------------------------
# --free-fill / --malloc-fill
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("options", [("--guard=none",), ("--guard=none", "--quarantine-size=0"),
                                     ("--guard=all", "--continue-after-fault=yes")],
                         ids=["unguarded", "no-quarantine", "guarded-continue"])
def test_free_fill(run_sample, options):
    """A freed block holds the --free-fill byte: the read after free sees it (guarded or
    not; in a guarded block once the fault was reported and the page opened; without a
    quarantine until glibc hands the memory out again)."""
    proc, report = run_sample(SAMPLE, "read", options=(*options, "--free-fill=0xdd"))
    assert proc.returncode == 0, proc.stderr
    assert "value 0xdd" in proc.stdout.splitlines(), proc.stdout


@pytest.mark.parametrize("options", [(), ("--guard=all",), ("--guard=none",),
                                     ("--guard-side=underflow",)],
                         ids=["auto", "all", "none", "underflow"])
def test_malloc_fill(run_sample, options):
    proc, report = run_sample("malloc_fill", options=(*options, "--malloc-fill=0xab"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["malloc 13: ab", "malloc 64 x300: ab",
                                        "malloc 100000: ab"], proc.stdout
    assert u.runtime_errors(report) == []
    assert report["summary"]["errors"] == 0


@pytest.mark.parametrize("option", ["--malloc-fill=0xzz", "--free-fill=256", "--free-fill=",
                                    "--guard=sample:", "--guard=some", "--guard-side=left",
                                    "--guard-align=8", "--quarantine-size=-1",
                                    "--continue-after-fault=maybe"])
def test_bad_option_values(run_memtrace, paths, option):
    """A malformed value is a usage error: status 2, one line, the program never runs."""
    proc = run_memtrace(option, paths.sample_bin("malloc_fill"))
    assert proc.returncode == 2, f"{option}: exit {proc.returncode}\n{proc.stderr}"
    assert proc.stdout == "", proc.stdout
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("memtrace: "), proc.stderr


# ---------------------------------------------------------------------------------------
# uaf_list: free a node, then read its next pointer
# ---------------------------------------------------------------------------------------

def check_list_error(err, src):
    assert err["kind"] == "use-after-free", err
    assert u.frame_at(err["stack"][0], src, u.marker_line(src, "read next"), "main"), err["stack"][0]
    assert err.get("access") == {"op": "read", "size": 8}, err
    assert err["block"]["size"] == 16, err
    assert u.address(err["address"]) - u.address(err["block"]["address"]) == 8, err
    assert u.frame_at(err["alloc_stack"][0], src, u.marker_line(src, "alloc node"), "main")
    assert u.frame_at(err["free_stack"][0], src, u.marker_line(src, "free node"), "main")


def test_list_free_loop_default(run_sample, marker):
    """The loop reaches a guarded node (the first of a call site are guarded) through the
    next pointers of unguarded freed ones, which hold what the program left: there the
    read faults and is reported; the process then ends with SIGSEGV (the default)."""
    src = marker("uaf_list", "read next")[0]
    proc, report = run_sample("uaf_list")
    assert proc.returncode == -signal.SIGSEGV, proc.stderr
    errors = u.runtime_errors(report)
    assert len(errors) == 1, u.describe_errors(errors)
    check_list_error(errors[0], src)


def test_list_free_loop_continue(run_sample, marker):
    """With --continue-after-fault=yes the opened pages hold what the program left, so the
    loop frees every node and sums them as it does natively: no leak, one context."""
    src = marker("uaf_list", "read next")[0]
    proc, report = run_sample("uaf_list", options=("--continue-after-fault=yes",))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "sum 3\n"
    errors = u.runtime_errors(report)
    assert len(errors) == 1, u.describe_errors(errors)
    check_list_error(errors[0], src)
    assert errors[0]["count"] >= 1
    assert report["summary"]["leaked_bytes"]["definite"] == 0


# ---------------------------------------------------------------------------------------
# loop_blocks: the 11th of 20 blocks from one site, guarded as one of the program's first
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("case,kind,tag,offset", [
    ("overflow", "heap-overflow", "overflow read", 24),
    ("uaf", "use-after-free", "uaf read", 4),
])
def test_first_allocations_all_guarded(run_sample, marker, case, kind, tag, offset):
    """--guard=auto samples a site's blocks past its first two (the 11th of a loop is not
    among them), but guards every one of a program's first 128 allocations: a read past the
    end of the 11th block, or of it after its free, faults at the read, as valgrind reports
    it there."""
    proc, report = run_sample("loop_blocks", case)
    assert proc.returncode == -signal.SIGSEGV, f"exit {proc.returncode}\n{proc.stderr}"
    assert "accessed" not in proc.stdout, proc.stdout
    src, line = marker("loop_blocks", tag)
    err = u.error_at(report, kind, src, line)
    block = the_block(proc, 24)
    assert u.address(err["address"]) == block + offset, err
    assert err.get("access") == {"op": "read", "size": 1}, err
    assert (u.address(err["block"]["address"]), err["block"]["size"]) == (block, 24), err
    assert u.frame_at(err["alloc_stack"][0], src, u.marker_line(src, "alloc"), "make_blocks")
    if case == "uaf":
        assert u.frame_at(err["free_stack"][0], src, u.marker_line(src, "free"), "free_blocks")


def test_late_allocations_sampled(run_sample):
    """Past the first 128 allocations the same 11th block has redzones only: the read is
    not seen (the bound this costs), and the program runs on as natively."""
    proc, report = run_sample("loop_blocks", "late")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1:] == ["accessed 1", "done"], proc.stdout
    assert u.runtime_errors(report) == [], u.describe_errors(u.runtime_errors(report))
