"""test_corruption_parity.py — memtrace and valgrind's memcheck find the same heap errors in
the corruption samples: for every run, the same errors by kind at the same file:line (the
first frame of the error's stack in the sample's source), the same first sample frame of
the allocation and free stacks when valgrind shows them, the same block size and access
size. valgrind's kinds map to memtrace's as:

    InvalidFree     -> double-free (valgrind: "... inside a block of size N free'd")
                       invalid-free (any other description)
    MismatchedFree  -> mismatched-free
    InvalidRead/InvalidWrite -> heap-overflow ("N bytes after a block"), heap-underflow
                       ("N bytes before a block"), use-after-free ("... free'd")
    FishyValue      -> invalid-size

The clean samples must be clean under both tools (valgrind: no error of any kind, no
definitely/indirectly/possibly lost bytes). Every corruption sample must hold only the
errors it was written for under valgrind too (no stray uninitialised-value errors).

Where the tools legitimately differ, DIFFERENCES below names each case and why; nothing else
may differ. valgrind missing is a failure, not a skip.
"""

import re
import signal

import pytest

import e2e_util as u

UNDER = ("--guard-side=underflow",)

# Each run: (sample, argv case or None, memtrace options). The overflow-side cases run in
# the default mode and the underflow-side ones with --guard-side=underflow: the mode in
# which memtrace faults at the access, as valgrind reports it (the other mode is compared
# in test_default_mode_underflow_differences).
def _overflow_case(name):
    return ("overflow", name, UNDER if "underflow" in name else ())


OVERFLOW_CASES = [f"{t}{a}{s}_{o}_{d}" for t in ("", "thread_") for a in ("", "aligned16_")
                  for s in ("overflow", "underflow") for o in ("write", "read") for d in (1, 300)]
UAF_CASES = ["read", "write", "realloc_read", "realloc_write", "thread_free_read"]

RUNS = ([("bad_free", None, ()), ("repeated_errors", None, ()), ("mismatched_free", None, ()),
         ("invalid_size", None, ()),
         ("bad_munmap", None, ()), ("overlap", None, ())]
        + [_overflow_case(c) for c in OVERFLOW_CASES]
        + [("use_after_free", c, ()) for c in UAF_CASES]
        + [("uaf_list", None, ("--continue-after-fault=yes",))])

CLEAN_SAMPLES = ["clean_alloc", "clean_edges", "clean_libc", "clean_containers",
                 "clean_swap_threads", "clean_mmap", "clean_environ"]

# ---------------------------------------------------------------------------------------
# The legitimate differences. Keys: (sample, case). Values:
#   memtrace_only:  marker tags where memtrace reports an error valgrind does not
#   memtrace_may:   marker tags where memtrace may or may not report (not compared)
#   vg_unclassified: {marker tag: memtrace kind} where valgrind reports an InvalidRead or
#                   InvalidWrite at the same line but its description does not say which
#                   block the address belongs to, so the kind is taken from memtrace
# ---------------------------------------------------------------------------------------

# valgrind's heap redzones are 16 bytes: 300 bytes past a block falls in the arena's
# unallocated space, which valgrind reports as "N bytes inside an unallocated block of size
# ... in arena "client"" — an invalid access at the same line, not tied to the block.
_FAR_OVERFLOW_W = {"vg_unclassified": {"write": "heap-overflow"}}
_FAR_OVERFLOW_R = {"vg_unclassified": {"read": "heap-overflow"}}
# 300 bytes before the block falls in memory valgrind considers addressable: on the main
# thread a mapping just below its client arena, on the second thread inside the TLS vector
# glibc calloc'd for that thread (a live 272-byte block). valgrind reports nothing; memtrace
# faults on its guard page.
_FAR_UNDERFLOW_W = {"memtrace_only": ("write",)}
_FAR_UNDERFLOW_R = {"memtrace_only": ("read",)}

DIFFERENCES = {
    ("overflow", "overflow_write_300"): _FAR_OVERFLOW_W,
    ("overflow", "overflow_read_300"): _FAR_OVERFLOW_R,
    ("overflow", "aligned16_overflow_write_300"): _FAR_OVERFLOW_W,
    ("overflow", "aligned16_overflow_read_300"): _FAR_OVERFLOW_R,
    ("overflow", "thread_overflow_write_300"): _FAR_OVERFLOW_W,
    ("overflow", "thread_overflow_read_300"): _FAR_OVERFLOW_R,
    ("overflow", "thread_aligned16_overflow_write_300"): _FAR_OVERFLOW_W,
    ("overflow", "thread_aligned16_overflow_read_300"): _FAR_OVERFLOW_R,
    ("overflow", "underflow_write_300"): _FAR_UNDERFLOW_W,
    ("overflow", "underflow_read_300"): _FAR_UNDERFLOW_R,
    ("overflow", "aligned16_underflow_write_300"): _FAR_UNDERFLOW_W,
    ("overflow", "aligned16_underflow_read_300"): _FAR_UNDERFLOW_R,
    ("overflow", "thread_underflow_write_300"): _FAR_UNDERFLOW_W,
    ("overflow", "thread_underflow_read_300"): _FAR_UNDERFLOW_R,
    ("overflow", "thread_aligned16_underflow_write_300"): _FAR_UNDERFLOW_W,
    ("overflow", "thread_aligned16_underflow_read_300"): _FAR_UNDERFLOW_R,
    # valgrind's calloc returns NULL on an overflowing count * size without a report (it only
    # checks malloc's size for "fishy" values); memtrace reports both callocs.
    ("invalid_size", None): {"memtrace_only": ("invalid-size calloc negative",
                                               "invalid-size calloc overflow")},
    # memcheck does not check munmap (nor mprotect) arguments at all. memtrace reports both
    # munmaps; whether it flags the mprotect of a heap page is left open.
    ("bad_munmap", None): {"memtrace_only": ("invalid-munmap unmapped", "invalid-munmap heap"),
                           "memtrace_may": ("mprotect heap",)},
}

# By default memtrace stops the program at the first faulting access (SIGSEGV) while
# valgrind reports it and lets the program run on to its end with status 0: for these
# samples memtrace's output is valgrind's, cut just before the line the access would be
# followed by ("accessed"). With --continue-after-fault=yes both run to the end
# (test_continue_matches_valgrind).
FATAL_SAMPLES = ("overflow", "use_after_free")


def program_lines(stdout):
    """A sample's output for comparing runs: addresses masked, and without the "value 0xNN"
    lines of a read after free (what a freed block holds is each tool's own business)."""
    return [l for l in u.mask_addresses(stdout) if not l.startswith("value ")]


class ValgrindRun:
    def __init__(self, valgrind, prog, args, workdir):
        xml = workdir / "valgrind.xml"
        run = u.run_valgrind(valgrind, [str(prog), *args], str(xml), cwd=workdir)
        assert xml.is_file(), f"valgrind wrote no XML (exit {run.returncode}):\n{run.stderr}"
        self.returncode = run.returncode
        self.stdout = run.stdout
        self.errors = u.parse_valgrind_errors(xml)
        self.leaks = u.parse_valgrind_xml(xml)


@pytest.fixture(scope="module")
def valgrind_of(valgrind, paths, tmp_path_factory):
    """valgrind_of(sample, case) -> ValgrindRun, once per (sample, case) for the module."""
    cache = {}

    def get(sample, case):
        key = (sample, case)
        if key not in cache:
            workdir = tmp_path_factory.mktemp(f"vg-{sample}-{case or 'main'}")
            cache[key] = ValgrindRun(valgrind, paths.sample_bin(sample),
                                     [case] if case else [], workdir)
        return cache[key]
    return get


def run_id(run):
    sample, case, options = run
    return f"{sample}-{case}" if case else sample


def _tag_lines(paths, sample, tags):
    src = paths.sample_src(sample)
    return {u.marker_line(src, t): t for t in tags}


def _first_sample_frame(stack, paths):
    frame = u.first_frame_in(stack or [], paths.samples_src)
    return (frame["file"].rsplit("/", 1)[-1], frame.get("line")) if frame else None


def compare_sites(paths, sample, case, report, vg):
    """The comparison itself: returns (memtrace sites, valgrind sites) after applying the
    table, plus the matched pairs for the detail checks."""
    diff = DIFFERENCES.get((sample, case), {})
    src = paths.sample_src(sample)
    base = src.name
    mine = u.error_sites(report, paths.samples_src)
    theirs = u.valgrind_sites(vg.errors, paths.samples_src)

    for tag, kind in diff.get("vg_unclassified", {}).items():
        line = u.marker_line(src, tag)
        if (None, base, line) in theirs:
            theirs[theirs.index((None, base, line))] = (kind, base, line)
    for tag in diff.get("memtrace_only", ()):
        line = u.marker_line(src, tag)
        assert not any(l == line for _, _, l in theirs), \
            f"the table says valgrind reports nothing at '{tag}', but it does: {theirs}"
        mine = [s for s in mine if s[2] != line]
    for tag in diff.get("memtrace_may", ()):
        line = u.marker_line(src, tag)
        mine = [s for s in mine if s[2] != line]
    return sorted(mine, key=repr), sorted(theirs, key=repr)


@pytest.mark.parametrize("run", RUNS, ids=[run_id(r) for r in RUNS])
def test_same_errors_as_valgrind(paths, run_sample, valgrind_of, run):
    sample, case, options = run
    proc, report = run_sample(sample, *([case] if case else []), options=options)
    vg = valgrind_of(sample, case)
    mine, theirs = compare_sites(paths, sample, case, report, vg)
    assert mine == theirs, (f"memtrace: {mine}\nvalgrind: {theirs}\n"
                            f"{u.describe_errors(u.runtime_errors(report))}")


MEMTRACE_ONLY_RUNS = [r for r in RUNS if DIFFERENCES.get(r[:2], {}).get("memtrace_only")]


@pytest.mark.parametrize("run", MEMTRACE_ONLY_RUNS, ids=[run_id(r) for r in MEMTRACE_ONLY_RUNS])
def test_memtrace_only_differences_are_reported(paths, run_sample, run):
    """The table's memtrace_only entries are not excuses: memtrace must report there."""
    sample, case, options = run
    diff = DIFFERENCES[(sample, case)]
    _, report = run_sample(sample, *([case] if case else []), options=options)
    lines = _tag_lines(paths, sample, diff["memtrace_only"])
    src = paths.sample_src(sample)
    hit = {lines[e["stack"][0]["line"]] for e in u.runtime_errors(report)
           if e["stack"] and u.same_file(e["stack"][0].get("file"), src)
           and e["stack"][0].get("line") in lines}
    assert hit == set(diff["memtrace_only"]), \
        f"reported at {sorted(hit)}; {u.describe_errors(u.runtime_errors(report))}"


@pytest.mark.parametrize("run", RUNS, ids=[run_id(r) for r in RUNS])
def test_same_details_as_valgrind(paths, run_sample, valgrind_of, run):
    """For every error both tools report at the same place: the allocation and free stacks'
    first sample frames, the block size and the access size agree with valgrind's."""
    sample, case, options = run
    _, report = run_sample(sample, *([case] if case else []), options=options)
    vg = valgrind_of(sample, case)
    mine = {}
    for e in u.runtime_errors(report):
        mine.setdefault(_first_sample_frame(e["stack"], paths), []).append(e)
    for v in vg.errors:
        if v["vg_kind"] not in u.VALGRIND_RUNTIME_KINDS:
            continue
        site = _first_sample_frame(v["stack"], paths)
        if site not in mine:
            continue                      # a listed difference; test_same_errors_as_valgrind
        assert len(mine[site]) == 1, u.describe_errors(mine[site])
        e = mine[site][0]
        for key in ("alloc_stack", "free_stack"):
            if v[key] is not None:
                assert _first_sample_frame(e.get(key), paths) == \
                    _first_sample_frame(v[key], paths), \
                    f"{key} at {site}: memtrace {e.get(key, [])[:2]}, valgrind {v[key][:3]}"
        # "N bytes after/before/inside a block of size S" (not "inside an unallocated
        # block of size ... in arena", which is valgrind's arena, not the program's block).
        sizes = [m for m in (re.search(r"(?:after|before|inside) a block of size ([\d,]+)", a)
                             for a in v["auxwhat"]) if m]
        if sizes:
            want = int(sizes[0][1].replace(",", ""))
            assert e.get("block", {}).get("size") == want, f"block at {site}: {e.get('block')}"
        if v["access_size"] is not None:
            assert e.get("access", {}).get("size") == v["access_size"], \
                f"access at {site}: {e.get('access')}"


@pytest.mark.parametrize("run", RUNS, ids=[run_id(r) for r in RUNS])
def test_exit_and_output_vs_valgrind(run_sample, valgrind_of, run):
    sample, case, options = run
    proc, report = run_sample(sample, *([case] if case else []), options=options)
    vg = valgrind_of(sample, case)
    assert vg.returncode == 0, f"valgrind run ended with {vg.returncode}"
    theirs, mine = program_lines(vg.stdout), program_lines(proc.stdout)
    if sample == "invalid_size":
        # valgrind's calloc leaves errno alone on overflow; memtrace keeps glibc's ENOMEM
        # (test_bad_frees.py compares memtrace with the program run on its own).
        theirs = [l.replace("errno=other", "errno=ENOMEM") for l in theirs]
    fatal = sample in FATAL_SAMPLES and any(e["kind"] != "leak" for e in report["errors"])
    if fatal:
        assert proc.returncode == -signal.SIGSEGV, proc.stderr
        assert report.get("exit") == {"signal": signal.SIGSEGV}
        assert "accessed" in theirs
        assert mine == theirs[:theirs.index("accessed")], f"memtrace {mine}\nvalgrind {theirs}"
    else:
        assert proc.returncode == 0, proc.stderr
        assert mine == theirs, f"memtrace {mine}\nvalgrind {theirs}"


@pytest.mark.parametrize("run", RUNS, ids=[run_id(r) for r in RUNS])
def test_valgrind_sees_only_the_intended_errors(valgrind_of, run):
    """Sanity of the samples: under valgrind they hold no other kind of error."""
    sample, case, _ = run
    vg = valgrind_of(sample, case)
    stray = [(e["vg_kind"], e["what"]) for e in vg.errors if e["vg_kind"] not in u.VALGRIND_RUNTIME_KINDS]
    assert stray == [], stray


CONTINUE_CASES = ["overflow_write_1", "thread_aligned16_overflow_read_1", "read",
                  "realloc_write", "thread_free_read"]


@pytest.mark.parametrize("case", CONTINUE_CASES)
def test_continue_matches_valgrind(paths, run_sample, valgrind_of, case):
    """With --continue-after-fault=yes memtrace, like valgrind, reports the access and lets
    the program finish: same output (addresses and read values aside), same exit, same error."""
    sample = "use_after_free" if case in UAF_CASES else "overflow"
    proc, report = run_sample(sample, case, options=("--continue-after-fault=yes",))
    vg = valgrind_of(sample, case)
    assert (proc.returncode, report.get("exit")) == (vg.returncode, {"status": vg.returncode})
    assert program_lines(proc.stdout) == program_lines(vg.stdout)
    mine, theirs = compare_sites(paths, sample, case, report, vg)
    assert mine == theirs, f"memtrace: {mine}\nvalgrind: {theirs}"


# In the default mode (guard page after the block) an underflow WRITE is found when the
# block is freed, so memtrace reports it at the free where valgrind reports the write; an
# underflow READ changes nothing and is not seen at all. (valgrind: see DIFFERENCES for the
# 300-byte cases, which it does not report.)
DEFAULT_MODE_UNDERFLOW = {
    # case:              (valgrind's marker, memtrace's marker or None)
    "underflow_write_1":                  ("write", "free"),
    "aligned16_underflow_write_1":        ("write", "free"),
    "thread_underflow_write_1":           ("write", "free"),
    "thread_aligned16_underflow_write_1": ("write", "free"),
    "underflow_read_1":                   ("read", None),
    "aligned16_underflow_read_1":         ("read", None),
    "thread_underflow_read_1":            ("read", None),
    "thread_aligned16_underflow_read_1":  ("read", None),
}


@pytest.mark.parametrize("case", sorted(DEFAULT_MODE_UNDERFLOW))
def test_default_mode_underflow_differences(paths, run_sample, valgrind_of, case):
    vg_tag, mt_tag = DEFAULT_MODE_UNDERFLOW[case]
    src = paths.sample_src("overflow")
    proc, report = run_sample("overflow", case)
    vg = valgrind_of("overflow", case)
    assert u.valgrind_sites(vg.errors, paths.samples_src) == \
        [("heap-underflow", src.name, u.marker_line(src, vg_tag))]
    want = [("heap-underflow", src.name, u.marker_line(src, mt_tag))] if mt_tag else []
    assert u.error_sites(report, paths.samples_src) == want, \
        u.describe_errors(u.runtime_errors(report))
    assert proc.returncode == vg.returncode == 0, proc.stderr


@pytest.mark.parametrize("sample", CLEAN_SAMPLES)
def test_clean_under_both(paths, run_sample, valgrind_of, sample):
    vg = valgrind_of(sample, None)
    assert vg.returncode == 0
    assert vg.errors == [], [(e["vg_kind"], e["what"]) for e in vg.errors]
    vg_lost = [r for r in vg.leaks if r["leak_kind"] != "reachable"]
    assert vg_lost == [], u.describe(vg_lost)
    proc, report = run_sample(sample, options=("--show-leak-kinds=all",))
    assert u.runtime_errors(report) == []
    assert [r for r in u.leak_records(report)
            if r["leak_kind"] != "reachable" and not r.get("suppressed")] == []
    strip = u.mask_addresses
    assert (proc.returncode, strip(proc.stdout)) == (vg.returncode, strip(vg.stdout))


def test_difference_table_names_real_runs(paths):
    """Every entry of DIFFERENCES is a run of this module, and every tag a real marker."""
    runs = {r[:2] for r in RUNS}
    for (sample, case), diff in DIFFERENCES.items():
        assert (sample, case) in runs, (sample, case)
        src = paths.sample_src(sample)
        for tag in [*diff.get("memtrace_only", ()), *diff.get("memtrace_may", ()),
                    *diff.get("vg_unclassified", {})]:
            u.marker_line(src, tag)
