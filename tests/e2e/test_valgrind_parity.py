"""test_valgrind_parity.py — memtrace and valgrind's memcheck classify the same samples the
same way: equal definite and indirect totals always, equal possible and reachable totals
where the two tools should agree, and the same loss records (kind, bytes, blocks, indirect
bytes, first allocation frame in the sample) for every allocation the sample makes itself.

Both tools run glibc's __libc_freeres and libstdc++'s __gnu_cxx::__freeres at exit when the
process ends on its only thread (memtrace in a copy of the process), so libstdc++'s
emergency exception pool and glibc's caches are freed under both: the C++ samples compare
every class and the heap totals too. Where the tools may legitimately differ, and why:
- The TLS vectors (dtv) glibc callocs for each thread in pthread_create are sized by how
  many TLS modules are loaded, which a preloaded runtime changes: for the threaded samples
  the total bytes allocated differ, and where the process ends on a second thread (no
  freeres under either tool) the classes where the vectors land (reachable; possible under
  valgrind) are compared without those records.
Everything else must match exactly, and so must the HEAP SUMMARY, LEAK SUMMARY and ERROR
SUMMARY lines of a few installed programs (ls, sort, date). valgrind missing is a failure,
not a skip.
"""

import subprocess

import pytest

import e2e_util as u

# sample -> (kinds whose summary totals must equal valgrind's,
#            kinds compared on the records' totals without glibc's own thread-setup blocks,
#            whether in-use-at-exit and total heap usage must equal valgrind's)
C_ALL = ("definite", "indirect", "possible", "reachable")
CPP = ("definite", "indirect", "possible")
SAMPLES = {
    "leak_definite":    (C_ALL, (), True),
    "leak_indirect":    (C_ALL, (), True),
    "leak_possible":    (C_ALL, (), True),
    "leak_possible_far": (C_ALL, (), True),
    "leak_dead_frame":  (C_ALL, (), True),
    "crash_leak":       (C_ALL, (), True),
    "reachable":        (C_ALL, (), True),
    "sbrk_arena":       (C_ALL, (), True),
    "sysv_shm":         (C_ALL, (), True),
    "clean":            (C_ALL, (), True),
    "buffered_stdio":   (C_ALL, (), True),
    "alloc_apis":       (C_ALL, (), True),
    "deep_recursion":   (C_ALL, (), True),
    "exit_status":      (C_ALL, (), True),
    "leak_abort":       (C_ALL, (), True),
    "threads":          (C_ALL, (), False),
    "exit_from_thread": (("definite", "indirect"), ("possible", "reachable"), False),
    "blocked_signals_thread": (("definite", "indirect"), ("possible", "reachable"), False),
    "ended_threads":    (("definite", "indirect"), ("possible", "reachable"), False),
    "leak_cpp":         (C_ALL, (), True),
    "clean_cpp":        (C_ALL, (), True),
    "reachable_heuristics": (C_ALL, (), True),
}


class Valgrind:
    """One sample's results under valgrind: exit status, loss records (from --xml) and the
    HEAP SUMMARY numbers (from a text run: the XML has no heap summary)."""

    def __init__(self, valgrind, prog, workdir):
        xml = workdir / "valgrind.xml"
        run = u.run_valgrind(valgrind, [str(prog)], str(xml), cwd=workdir)
        assert xml.is_file(), f"valgrind wrote no XML (exit {run.returncode}):\n{run.stderr}"
        self.returncode = run.returncode
        self.records = u.parse_valgrind_xml(xml)
        text = workdir / "valgrind.txt"
        subprocess.run([valgrind, "--leak-check=full", "--show-leak-kinds=all",
                        f"--log-file={text}", str(prog)], cwd=workdir, capture_output=True,
                       timeout=u.VALGRIND_TIMEOUT)
        self.text = u.parse_text_summary(text.read_text())


@pytest.fixture(scope="module")
def valgrind_of(valgrind, paths, tmp_path_factory):
    """valgrind_of(sample) -> Valgrind, run once per sample for the whole module."""
    cache = {}

    def get(sample):
        if sample not in cache:
            cache[sample] = Valgrind(valgrind, paths.sample_bin(sample),
                                     tmp_path_factory.mktemp(f"vg-{sample}"))
        return cache[sample]
    return get


@pytest.fixture
def memtrace_of(paths, run_memtrace, tmp_path):
    """memtrace_of(sample) -> (CompletedProcess, report) with every leak kind shown."""
    def get(sample):
        out = tmp_path / "memtrace.json"
        proc = run_memtrace("--show-leak-kinds=all", f"--json={out}", paths.sample_bin(sample))
        return proc, u.load_report(out, proc)
    return get


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_leak_totals_match_valgrind(memtrace_of, valgrind_of, sample):
    exact, filtered, _ = SAMPLES[sample]
    proc, mt = memtrace_of(sample)
    vg = valgrind_of(sample)
    assert proc.returncode == vg.returncode, \
        f"exit status: memtrace {proc.returncode}, valgrind {vg.returncode}\n{proc.stderr}"
    vg_totals = u.totals(vg.records)
    s = mt["summary"]
    for kind in exact:
        got = (s["leaked_bytes"][kind], s["leaked_blocks"][kind])
        assert got == vg_totals[kind], (
            f"{kind}: memtrace {got} (bytes, blocks), valgrind {vg_totals[kind]}\n"
            f"memtrace {u.describe(u.leak_records(mt))}\nvalgrind {u.describe(vg.records)}")
    mine = u.totals(r for r in u.leak_records(mt) if not u.is_glibc_internal(r))
    theirs = u.totals(r for r in vg.records if not u.is_glibc_internal(r))
    for kind in filtered:
        assert mine[kind] == theirs[kind], (
            f"{kind} without glibc's thread blocks: memtrace {mine[kind]}, valgrind {theirs[kind]}"
            f"\nmemtrace {u.describe(u.leak_records(mt))}\nvalgrind {u.describe(vg.records)}")


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_loss_records_match_valgrind(paths, memtrace_of, valgrind_of, sample):
    """Records of allocations made by the sample's own code: same kind, bytes, blocks,
    indirect bytes and first sample frame (file:line) under both tools."""
    _, mt = memtrace_of(sample)
    vg = valgrind_of(sample)
    def keys(records):
        return sorted(k for k in (u.site_key(r, paths.samples_src) for r in records
                                  if not u.is_glibc_internal(r))
                      if k[4] is not None)
    mine, theirs = keys(u.leak_records(mt)), keys(vg.records)
    assert mine == theirs, f"memtrace: {mine}\nvalgrind: {theirs}"


@pytest.mark.parametrize("sample", sorted(s for s, (_, _, heap) in SAMPLES.items() if heap))
def test_heap_usage_matches_valgrind(memtrace_of, valgrind_of, sample):
    """Single-threaded C samples: in use at exit and total heap usage are identical
    (valgrind counts realloc as one alloc plus one free; so must memtrace)."""
    _, mt = memtrace_of(sample)
    vg = valgrind_of(sample)
    s = mt["summary"]
    assert (s["in_use_at_exit"]["bytes"], s["in_use_at_exit"]["blocks"]) == vg.text["in_use"]
    heap = s["total_heap_usage"]
    assert (heap["allocs"], heap["frees"], heap["bytes"]) == vg.text["total"]


def test_fork_matches_valgrind(paths, run_memtrace, valgrind, tmp_path):
    """Both processes of the fork sample: valgrind's per-pid XML and memtrace's per-pid JSON
    hold the same records."""
    prog = paths.sample_bin("fork_leak")
    mt_dir, vg_dir = tmp_path / "mt", tmp_path / "vg"
    mt_dir.mkdir()
    vg_dir.mkdir()
    proc = run_memtrace("--show-leak-kinds=all", f"--json={mt_dir}/%p.json", prog)
    assert proc.returncode == 0, proc.stderr
    vg = u.run_valgrind(valgrind, [str(prog)], f"{vg_dir}/%p.xml", cwd=tmp_path)
    assert vg.returncode == 0, vg.stderr

    def keyset(records):
        return sorted(u.site_key(r, paths.samples_src) for r in records)

    mine = sorted(keyset(u.leak_records(u.load_report(f, proc)))
                  for f in mt_dir.glob("*.json"))
    theirs = sorted(keyset(u.parse_valgrind_xml(f)) for f in vg_dir.glob("*.xml"))
    assert len(theirs) == 2, f"valgrind wrote {len(theirs)} XML files"
    assert mine == theirs, f"memtrace: {mine}\nvalgrind: {theirs}"


# Installed programs: their own allocations and glibc's locale, time zone and stdio caches,
# which both tools free (freeres) before they count.
REAL_PROGRAMS = {
    "ls": ["/bin/ls", "/"],
    "sort": ["/usr/bin/sort", "/etc/passwd"],
    "date": ["/bin/date", "+%Y"],
}


@pytest.mark.parametrize("name", sorted(REAL_PROGRAMS))
def test_real_program_heap_matches_valgrind(valgrind, run_memtrace, tmp_path, name):
    """The HEAP SUMMARY and LEAK SUMMARY of an installed program read the same under both
    tools, line for line."""
    argv = REAL_PROGRAMS[name]
    log = tmp_path / "valgrind.txt"
    subprocess.run([valgrind, "--leak-check=full", f"--log-file={log}", *argv], cwd=tmp_path,
                   capture_output=True, timeout=u.VALGRIND_TIMEOUT)
    theirs = u.parse_text_summary(log.read_text())
    proc = run_memtrace(*argv, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    mine = u.parse_text_summary(proc.stderr)
    for key in ("in_use", "total", "leaks", "all_freed", "errors"):
        assert mine.get(key) == theirs.get(key), \
            f"{key}: memtrace {mine.get(key)}, valgrind {theirs.get(key)}\n{proc.stderr}"
