"""test_clean_corruption.py — correct programs that a heap-corruption checker must leave
alone: aligned allocations of every alignment, realloc chains, calloc, malloc(0),
malloc_usable_size; every byte of 1..64-byte blocks up to the last one (with libc's
vectorised string functions); libc functions that allocate for the caller; C++ containers,
owners, exceptions and std::thread; two threads freeing each other's blocks; a program
managing its own mappings (one still mapped at exit). Under every guard placement they must
run exactly as without memtrace and report ZERO errors, and with --show-leak-kinds=all no
loss record other than still-reachable ones."""

import pytest

import e2e_util as u

CLEAN_SAMPLES = ["clean_alloc", "clean_edges", "clean_libc", "clean_containers",
                 "clean_swap_threads", "clean_mmap", "clean_environ"]

OPTIONS = {
    "default": (),
    "all-kinds": ("--show-leak-kinds=all",),
    "guard-all": ("--guard=all", "--show-leak-kinds=all"),
    "guard-all-underflow": ("--guard=all", "--guard-side=underflow"),
    "guard-all-align16": ("--guard=all", "--guard-align=16"),
    "guard-none": ("--guard=none",),
    "fills": ("--malloc-fill=0xa5", "--free-fill=0x5a"),
}


@pytest.mark.parametrize("opts", sorted(OPTIONS))
@pytest.mark.parametrize("sample", CLEAN_SAMPLES)
def test_clean_has_no_errors(run_sample, sample, opts):
    proc, report = run_sample(sample, options=OPTIONS[opts])
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert report.get("exit") == {"status": 0}
    assert proc.stdout == f"{sample}: ok\n", proc.stdout
    errors = u.runtime_errors(report)
    assert errors == [], u.describe_errors(errors)
    lost = [r for r in u.leak_records(report)
            if r["leak_kind"] != "reachable" and not r.get("suppressed")]
    assert lost == [], u.describe(lost)
    s = report["summary"]
    assert s["errors"] == 0
    assert (s["leaked_bytes"]["definite"], s["leaked_bytes"]["indirect"],
            s["leaked_bytes"]["possible"]) == (0, 0, 0), s["leaked_bytes"]
    text = u.parse_text_summary(proc.stderr)
    assert text.get("errors") == 0, proc.stderr


@pytest.mark.parametrize("sample", CLEAN_SAMPLES)
def test_clean_same_output_as_without_memtrace(run_sample, run_plain, sample):
    plain = run_plain(sample)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    proc, _ = run_sample(sample)
    assert (proc.returncode, proc.stdout) == (plain.returncode, plain.stdout)


@pytest.mark.parametrize("sample", ["clean_alloc", "clean_edges", "clean_libc"])
def test_clean_c_all_freed(run_sample, sample):
    """These free everything they allocate, libc's own buffers included (stdout is
    unbuffered): nothing in use at exit, as under valgrind ("All heap blocks were freed")."""
    proc, report = run_sample(sample, options=("--show-leak-kinds=all",))
    assert report["summary"]["in_use_at_exit"] == {"bytes": 0, "blocks": 0}, \
        u.describe(u.leak_records(report))
    assert u.leak_records(report) == []
    assert u.parse_text_summary(proc.stderr).get("in_use") == (0, 0), proc.stderr


def test_clean_mmap_region_kept_at_exit(run_sample):
    """The region still mapped at exit is no error, and the heap block whose only pointer
    is stored there is reachable (the program's own mappings are leak-scan roots)."""
    proc, report = run_sample("clean_mmap", options=("--show-leak-kinds=all",))
    assert report["summary"]["errors"] == 0
    reachable = u.leak_records(report, "reachable")
    assert any(r["bytes"] == 77 and r["blocks"] == 1 for r in reachable), u.describe(reachable)
    # A block whose second page the program made PROT_NONE: read where it can be, no
    # fault; the pointer in its first page makes the 55-byte block reachable.
    assert any(r["bytes"] == 55 and r["blocks"] == 1 for r in reachable), u.describe(reachable)
    assert proc.returncode == 0 and "clean_mmap: ok" in proc.stdout, proc.stdout
