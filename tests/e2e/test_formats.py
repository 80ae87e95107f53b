"""test_formats.py — the three report formats beside text and JSON (docs/formats.md):

- valgrind XML, protocol 4 (--xml=yes --xml-file=F): run on the same samples as valgrind's
  memcheck, both files are read with the same readers (the XML parsers of e2e_util, which the
  parity tests use on valgrind's XML, and a small ValgrindCI-style reader written here) and
  must have the same element structure: the same top-level tag sequence, the same child tags
  for errors of each kind, the same child order in frames; the same kinds at the same
  sample lines; the same loss records (kind, bytes, blocks, indirect bytes).
- SARIF 2.1.0 (--sarif=F): every object written has the properties the schema requires and
  no property the schema does not allow (the checks are the schema's `required` lists and
  property sets, written out below: no network, no jsonschema); URIs are relative to
  %SRCROOT%; partialFingerprints are the same across two runs whose addresses differ.
- Markdown (--markdown=F): the sections, the right line numbers, and the source excerpt
  around the faulting line, marked.

Where memtrace's XML legitimately differs from valgrind's (DIFFERENT_AUX, MEMTRACE_ONLY
below, and docs/formats.md), the test says so by name. valgrind missing is a failure.
"""

import json
import os
import platform
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import e2e_util as u

# (sample, argv case or None, memtrace options). The underflow case runs with the guard page
# before the block, the mode in which memtrace faults at the access as valgrind reports it.
RUNS = [
    ("leak_indirect", None, ()),
    ("leak_possible", None, ()),
    ("reachable", None, ()),
    ("leak_cpp", None, ()),
    ("bad_free", None, ()),
    ("mismatched_free", None, ()),
    ("invalid_size", None, ()),
    ("use_after_free", "read", ()),
    ("use_after_free", "write", ()),
    ("overflow", "overflow_write_1", ()),
    ("overflow", "thread_overflow_read_1", ()),
    ("overflow", "underflow_read_1", ("--guard-side=underflow",)),
]
LEAK_RUNS = [r for r in RUNS if r[0] in ("leak_indirect", "leak_possible", "reachable", "leak_cpp")]
RUNTIME_RUNS = [r for r in RUNS if r not in LEAK_RUNS]


def run_id(run):
    return run[0] + (f"-{run[1]}" if run[1] else "")


# Errors whose auxiliary description is legitimately shaped differently: valgrind describes a
# stack address with a second <auxwhat> naming the frame that owns it ("in frame #1, created
# by ..."); memtrace records no frame extents and says only "is on thread 1's stack".
# Keys: (sample, valgrind kind, file, line).
DIFFERENT_AUX = {("bad_free", "InvalidFree", "bad_free.c", 41)}

# Errors memtrace reports and valgrind does not, at (sample, file, line):
# - invalid_size's calloc cases: valgrind's calloc returns NULL for an overflowing or
#   "negative" element count without an error (memcheck checks only malloc-style sizes).
# - Still-reachable records of blocks the program never freed because it died of the fault
#   that memtrace stops at (valgrind lets it run on and free them), and libstdc++'s emergency
#   pool, which valgrind frees at exit with __gnu_cxx::__freeres.
MEMTRACE_ONLY = {("invalid_size", "invalid_size.c", 40), ("invalid_size", "invalid_size.c", 43)}

XML_FRAME_ORDER = ["ip", "obj", "fn", "dir", "file", "line"]

# SARIF rules: one per kind, always all of them, in this order (ruleIndex is stable).
RULE_IDS = ["memtrace/double-free", "memtrace/invalid-free", "memtrace/mismatched-free",
            "memtrace/invalid-size", "memtrace/heap-overflow", "memtrace/heap-underflow",
            "memtrace/use-after-free", "memtrace/invalid-munmap", "memtrace/overlap",
            "memtrace/leak-definite",
            "memtrace/leak-indirect", "memtrace/leak-possible", "memtrace/leak-reachable"]


# ---------------------------------------------------------------------------------------
# Running memtrace and valgrind once per run for the whole module
# ---------------------------------------------------------------------------------------

class Formats:
    """One memtrace run with every format written."""

    def __init__(self, paths, workdir, name, case, options, source_root, extra_args=()):
        workdir.mkdir(parents=True, exist_ok=True)
        self.xml = workdir / "report.xml"
        self.sarif_path = workdir / "report.sarif"
        self.md_path = workdir / "report.md"
        self.json_path = workdir / "report.json"
        prog = paths.sample_bin(name) if isinstance(name, str) else name
        argv = [str(prog)] + ([case] if case else []) + list(extra_args)
        cmd = [str(paths.memtrace), *options, "--show-leak-kinds=all", f"--json={self.json_path}",
               "--xml=yes", f"--xml-file={self.xml}", f"--sarif={self.sarif_path}",
               f"--markdown={self.md_path}", f"--source-root={source_root}",
               f"--log-file={workdir / 'report.txt'}", *argv]
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        env.pop("MEMTRACE_OPTIONS", None)
        self.proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True,
                                   timeout=u.TIMEOUT)
        self.argv = argv
        self.report = u.load_report(self.json_path, self.proc)
        for path in (self.xml, self.sarif_path, self.md_path):
            assert path.is_file(), f"memtrace wrote no {path.name}: {self.proc.stderr!r}"
        self.sarif = json.loads(self.sarif_path.read_text())
        self.md = self.md_path.read_text()  # strict UTF-8


@pytest.fixture(scope="module")
def memtrace_run(paths, tmp_path_factory):
    """memtrace_run(run, source_root=None) -> Formats, cached per run and root."""
    cache = {}

    def get(run, source_root=None):
        name, case, options = run
        root = str(source_root or paths.source)
        key = (run, root)
        if key not in cache:
            cache[key] = Formats(paths, tmp_path_factory.mktemp("mt-" + run_id(run)), name, case,
                                 options, root)
        return cache[key]
    return get


@pytest.fixture(scope="module")
def valgrind_xml(valgrind, paths, tmp_path_factory):
    """valgrind_xml(run) -> path of memcheck's XML for the run (memtrace options dropped)."""
    cache = {}

    def get(run):
        if run not in cache:
            name, case, _ = run
            workdir = tmp_path_factory.mktemp("vg-" + run_id(run))
            xml = workdir / "valgrind.xml"
            argv = [str(paths.sample_bin(name))] + ([case] if case else [])
            proc = u.run_valgrind(valgrind, argv, str(xml), cwd=workdir)
            assert xml.is_file(), f"valgrind wrote no XML (exit {proc.returncode}):\n{proc.stderr}"
            cache[run] = xml
        return cache[run]
    return get


def kind_of(vg_error):
    """u.memtrace_kind_of, except that an InvalidFree is a double free only when the address
    is in a free'd block: "not stack'd, malloc'd or (recently) free'd", which memcheck also
    writes, names no block (u.memtrace_kind_of reads it as a double free)."""
    if vg_error["vg_kind"] == "InvalidFree":
        aux = " ".join(vg_error["auxwhat"])
        return "double-free" if re.search(r"a block of size [\d,]+ free'd", aux) else "invalid-free"
    return u.memtrace_kind_of(vg_error)


def error_sites(errors, directory):
    """Sorted (kind, basename, line) of the errors, the site being the first frame of the
    error's stack in `directory` (u.valgrind_sites, with kind_of)."""
    out = []
    for e in errors:
        if e["vg_kind"] not in u.VALGRIND_RUNTIME_KINDS:
            continue
        frame = u.first_frame_in(e["stack"] or [], directory)
        out.append((kind_of(e), os.path.basename(frame["file"]) if frame else None,
                    frame.get("line") if frame else None))
    return sorted(out, key=repr)


def samples_dir(paths):
    return os.path.realpath(paths.samples_src)


# ---------------------------------------------------------------------------------------
# A ValgrindCI-style reader: what CI plugins take from memcheck's XML
# ---------------------------------------------------------------------------------------

def ci_read(path):
    """{"pid", "tool", "errors": [{"unique", "tid", "kind", "what", "frames": [(fn, file,
    line)], "aux": [(text, frames or None)]}], "counts": {unique: count}, "suppcounts": {name:
    count}} — the fields a consumer like ValgrindCI uses, read the way it reads them."""
    root = ET.parse(path).getroot()
    assert root.tag == "valgrindoutput"
    assert root.findtext("protocolversion") == "4"
    assert root.findtext("protocoltool") == "memcheck"

    def frames(stack):
        out = []
        for fr in stack.findall("frame"):
            d, f = fr.findtext("dir"), fr.findtext("file")
            out.append((fr.findtext("fn"), os.path.join(d, f) if d and f else f,
                        int(fr.findtext("line")) if fr.findtext("line") else None))
        return out

    errors = []
    for err in root.findall("error"):
        what = err.findtext("what")
        if what is None:
            what = err.find("xwhat").findtext("text")
        entry = {"unique": int(err.findtext("unique"), 16), "tid": int(err.findtext("tid")),
                 "kind": err.findtext("kind"), "what": what.strip(),
                 "frames": frames(err.find("stack")), "aux": []}
        children = list(err)
        for i, child in enumerate(children):
            if child.tag == "auxwhat":
                nxt = children[i + 1] if i + 1 < len(children) else None
                entry["aux"].append((child.text, frames(nxt) if nxt is not None
                                     and nxt.tag == "stack" else None))
        errors.append(entry)
    counts = {int(p.findtext("unique"), 16): int(p.findtext("count"))
              for p in root.find("errorcounts").findall("pair")}
    supp = {p.findtext("name"): int(p.findtext("count"))
            for p in root.find("suppcounts").findall("pair")}
    return {"pid": int(root.findtext("pid")), "tool": root.findtext("tool"), "errors": errors,
            "counts": counts, "suppcounts": supp}


def sample_site(err, directory):
    """(basename, line) of the first frame of an XML <error>'s main stack in `directory`."""
    for fr in err.find("stack").findall("frame"):
        d = fr.findtext("dir")
        if d and os.path.realpath(d) == directory and fr.findtext("line"):
            return fr.findtext("file"), int(fr.findtext("line"))
    return None


def top_level_shape(root):
    """The top-level tags with each run of <error> (possibly empty) after a <status> shown as
    one "error*": the shape protocol 4 prescribes, independent of how many errors there are."""
    shape = []
    for child in root:
        if child.tag == "error":
            continue
        shape.append(child.tag)
        if child.tag == "status":
            shape.append("error*")
    return shape


# ---------------------------------------------------------------------------------------
# valgrind XML
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("run", RUNS, ids=run_id)
def test_xml_top_level_like_valgrind(run, memtrace_run, valgrind_xml, paths):
    mt = ET.parse(memtrace_run(run).xml).getroot()
    vg = ET.parse(valgrind_xml(run)).getroot()
    assert top_level_shape(mt) == top_level_shape(vg), \
        f"memtrace {[c.tag for c in mt]}\nvalgrind {[c.tag for c in vg]}"
    assert [c.tag for c in mt][:8] == ["protocolversion", "protocoltool", "preamble", "pid",
                                       "ppid", "tool", "args", "status"]
    assert mt.findtext("tool") == vg.findtext("tool") == "memcheck"
    assert [s.findtext("state") for s in mt.findall("status")] == ["RUNNING", "FINISHED"]
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d:\d\d\.\d\d\d ", s.findtext("time"))
               for s in mt.findall("status"))
    assert any(line.text.startswith("memtrace-") for line in mt.find("preamble"))
    assert [c.tag for c in mt.find("args")] == [c.tag for c in vg.find("args")] == ["vargv", "argv"]
    assert mt.find("args/vargv").findtext("exe") == "memtrace"
    name, case, _ = run
    argv = mt.find("args/argv")
    assert argv.findtext("exe") == str(paths.sample_bin(name))
    assert [a.text for a in argv.findall("arg")] == ([case] if case else [])
    # runtime errors before FINISHED, loss records after it, in both files
    for root in (mt, vg):
        tags = [(c.tag, c.findtext("kind") or "") for c in root]
        finished = [i for i, c in enumerate(root) if c.tag == "status"][1]
        assert all(not k.startswith("Leak_") for t, k in tags[:finished] if t == "error")
        assert all(k.startswith("Leak_") for t, k in tags[finished:] if t == "error")


@pytest.mark.parametrize("run", RUNS, ids=run_id)
def test_xml_errors_shaped_like_valgrind(run, memtrace_run, valgrind_xml, paths):
    """Errors of the same kind at the same sample line have the same child tags, in order."""
    directory = samples_dir(paths)
    shapes = {}
    for tool, path in (("memtrace", memtrace_run(run).xml), ("valgrind", valgrind_xml(run))):
        for err in ET.parse(path).getroot().iter("error"):
            site = sample_site(err, directory)
            if site:
                shapes.setdefault((err.findtext("kind"), site), {})[tool] = [c.tag for c in err]
    compared = 0
    for (kind, site), by_tool in sorted(shapes.items()):
        if len(by_tool) < 2:
            continue
        if (run[0], kind, *site) in DIFFERENT_AUX:
            assert by_tool["memtrace"][:5] == by_tool["valgrind"][:5]
            continue
        assert by_tool["memtrace"] == by_tool["valgrind"], f"{kind} at {site}: {by_tool}"
        compared += 1
    assert compared, f"no error of {run_id(run)} is at the same sample line in both files"


def test_xml_shapes_per_kind_are_valgrinds(memtrace_run, valgrind_xml):
    """Over all runs, every (kind, child tag sequence) memtrace writes is one valgrind writes;
    ClientCheck (invalid munmap, which memcheck has no check for) uses the shape of
    memcheck's other address errors."""
    def shapes(paths_):
        out = {}
        for path in paths_:
            for err in ET.parse(path).getroot().iter("error"):
                out.setdefault(err.findtext("kind"), set()).add(tuple(c.tag for c in err))
        return out
    vg = shapes(valgrind_xml(r) for r in RUNS)
    munmap = ("bad_munmap", None, ())
    mt = shapes([memtrace_run(r).xml for r in RUNS] + [memtrace_run(munmap).xml])
    assert set(mt) >= {"InvalidFree", "MismatchedFree", "FishyValue", "InvalidRead",
                       "InvalidWrite", "ClientCheck", "Leak_DefinitelyLost",
                       "Leak_IndirectlyLost", "Leak_PossiblyLost", "Leak_StillReachable"}
    all_vg = set().union(*vg.values())
    for kind, seqs in mt.items():
        allowed = all_vg if kind == "ClientCheck" else vg.get(kind, set())
        assert seqs <= allowed, f"{kind}: memtrace {seqs - allowed}, valgrind {allowed}"


@pytest.mark.parametrize("run", RUNS, ids=run_id)
def test_xml_frames_like_valgrind(run, memtrace_run, valgrind_xml, paths):
    """Frame children come in valgrind's order; frames in the sample carry all six."""
    directory = samples_dir(paths)
    for path in (memtrace_run(run).xml, valgrind_xml(run)):
        sample_frames = 0
        for frame in ET.parse(path).getroot().iter("frame"):
            tags = [c.tag for c in frame]
            assert tags == [t for t in XML_FRAME_ORDER if t in tags], f"{path}: {tags}"
            assert tags[0] == "ip" and re.fullmatch(r"0x[0-9A-F]+", frame.findtext("ip"))
            d = frame.findtext("dir")
            if d and os.path.realpath(d) == directory:
                assert tags == XML_FRAME_ORDER, f"{path}: {tags}"
                sample_frames += 1
        assert sample_frames, f"{path}: no frame in the sample"


@pytest.mark.parametrize("run", RUNTIME_RUNS, ids=run_id)
def test_xml_kinds_match_valgrind(run, memtrace_run, valgrind_xml, paths):
    """e2e_util's reader of valgrind's XML finds the same errors, by kind and sample line,
    in both files; and on memtrace's XML it recovers the kinds of the JSON report."""
    directory = samples_dir(paths)
    mt = memtrace_run(run)
    mt_errors = u.parse_valgrind_errors(mt.xml)
    vg_errors = u.parse_valgrind_errors(valgrind_xml(run))
    mt_sites = error_sites(mt_errors, directory)
    vg_sites = error_sites(vg_errors, directory)
    only = [s for s in mt_sites if (run[0], s[1], s[2]) in MEMTRACE_ONLY]
    assert sorted(set(mt_sites) - set(only)) == sorted(set(vg_sites)), \
        f"memtrace {mt_sites}\nvalgrind {vg_sites}"
    runtime = u.runtime_errors(mt.report)
    assert [kind_of(e) for e in mt_errors] == [e["kind"] for e in runtime]
    for xml_err, json_err in zip(mt_errors, runtime):
        size = (json_err.get("access") or {}).get("size")
        if xml_err["vg_kind"] in ("InvalidRead", "InvalidWrite"):
            assert xml_err["access_size"] == size
            assert xml_err["vg_kind"] == ("InvalidRead" if json_err["access"]["op"] == "read"
                                          else "InvalidWrite")
        for key in ("stack", "alloc_stack", "free_stack"):
            want = [(f.get("function"), f.get("line")) for f in json_err.get(key) or []]
            got = [(f["function"], f["line"]) for f in xml_err[key] or []]
            assert got == want, f"{key}: XML {got}\nJSON {want}"


@pytest.mark.parametrize("run", LEAK_RUNS, ids=run_id)
def test_xml_leaks_match_valgrind(run, memtrace_run, valgrind_xml, paths):
    """The loss records allocated in the sample are the same in both files (kind, direct and
    indirect bytes, blocks), read by e2e_util's parser of valgrind's XML."""
    directory = samples_dir(paths)
    kinds = ("definite", "indirect", "possible") + (("reachable",) if run[0] != "leak_cpp" else ())
    mt = memtrace_run(run)

    def keys(records):
        return sorted((u.site_key(r, directory) for r in records
                       if r["leak_kind"] in kinds and u.first_frame_in(r["stack"], directory)),
                      key=repr)
    mt_records = u.parse_valgrind_xml(mt.xml)
    assert keys(mt_records) == keys(u.parse_valgrind_xml(valgrind_xml(run)))
    assert keys(mt_records), "no loss record in the sample"
    # and the XML says what the JSON says
    assert keys(mt_records) == keys(u.leak_records(mt.report))
    root = ET.parse(mt.xml).getroot()
    for err in root.iter("error"):
        text = err.find("xwhat").findtext("text")
        m = re.match(r"([\d,]+) (?:\(.*\) )?bytes in ([\d,]+) blocks are (\w+ \w+) in loss "
                     r"record (\d+) of (\d+)$", text)
        assert m, text
        assert int(m[1].replace(",", "")) == int(err.find("xwhat").findtext("leakedbytes"))
        assert int(m[2].replace(",", "")) == int(err.find("xwhat").findtext("leakedblocks"))


@pytest.mark.parametrize("run", RUNS, ids=run_id)
def test_xml_read_alike_by_ci_reader(run, memtrace_run, valgrind_xml, paths):
    """A ValgrindCI-style reader gets the same things out of both files: for every error
    valgrind reports in the sample, memtrace's file has one of the same kind whose what, first
    sample frame (function, file, line) and auxiliary stacks read the same way."""
    directory = samples_dir(paths)
    mt, vg = ci_read(memtrace_run(run).xml), ci_read(valgrind_xml(run))
    for data in (mt, vg):  # (suppcounts: both tools' default suppressions may match)
        assert data["tool"] == "memcheck" and data["pid"] > 0
        assert all(name and count >= 1 for name, count in data["suppcounts"].items())
        uniques = [e["unique"] for e in data["errors"]]
        assert len(set(uniques)) == len(uniques)
        runtime = {e["unique"] for e in data["errors"] if not e["kind"].startswith("Leak_")}
        assert set(data["counts"]) == runtime

    def first_sample_frame(e):
        # (C++ functions: valgrind names them with their parameters, memtrace's symbolizer
        # by their DWARF name, without: compared without.)
        for fn, f, line in e["frames"]:
            if f and os.path.realpath(os.path.dirname(f)) == directory:
                return re.sub(r"\(.*\)$", "", fn or ""), os.path.basename(f), line
        return None

    def index(data):
        return {(e["kind"], first_sample_frame(e)): e for e in data["errors"]
                if first_sample_frame(e)}
    mt_index, vg_index = index(mt), index(vg)
    for key, vge in vg_index.items():
        if key[0] == "Leak_StillReachable" and run[0] == "leak_cpp":
            continue
        assert key in mt_index, f"valgrind's {key} not in memtrace's XML: {sorted(mt_index)}"
        mte = mt_index[key]
        assert mte["tid"] == vge["tid"]
        if not key[0].startswith("Leak_"):
            assert re.sub(r"0x[0-9a-f]+", "ADDR", mte["what"]) == \
                re.sub(r"0x[0-9a-f]+", "ADDR", vge["what"])
        if (run[0], key[0], key[1][1], key[1][2]) in DIFFERENT_AUX:
            continue
        assert [(a[1] is None) for a in mte["aux"]] == [(a[1] is None) for a in vge["aux"]]
        for (mt_text, mt_frames), (vg_text, vg_frames) in zip(mte["aux"], vge["aux"]):
            mask = re.compile(r"0x[0-9a-f]+")
            if mt_text.startswith("Address") and "block" in vg_text:
                assert mask.sub("A", mt_text) == mask.sub("A", vg_text)
            if mt_frames:  # the same first frame in the sample (valgrind's starts in free/malloc)
                assert first_sample_frame({"frames": mt_frames}) == \
                    first_sample_frame({"frames": vg_frames})


def test_xml_thread_numbers(memtrace_run, valgrind_xml):
    """Threads are numbered like valgrind's: the main thread 1, the next one 2."""
    run = ("overflow", "thread_overflow_read_1", ())
    tids = [int(e.findtext("tid")) for e in ET.parse(memtrace_run(run).xml).getroot().iter("error")
            if not e.findtext("kind").startswith("Leak_")]
    vg_tids = [int(e.findtext("tid")) for e in ET.parse(valgrind_xml(run)).getroot().iter("error")
               if not e.findtext("kind").startswith("Leak_")]
    assert tids == vg_tids == [2]


def test_text_and_json_thread_numbers(memtrace_run):
    """The text report names the thread before an error of another thread than the last
    one shown ("Thread 2:", valgrind's line; the main thread's errors go unnamed until
    another thread's came first); the JSON carries the number and the kernel tid."""
    run = memtrace_run(("overflow", "thread_overflow_read_1", ()))
    lines = [u.strip_prefix(l) for l in (run.json_path.parent / "report.txt").read_text().splitlines()]
    at = lines.index("Invalid read of size 1")
    assert lines[at - 1] == "Thread 2:", lines[at - 3:at + 1]
    assert lines.count("Thread 2:") == 1 and "Thread 1:" not in lines
    err, = u.runtime_errors(run.report)
    assert err["thread"] == 2 and err["tid"] != run.report["pid"], err


def test_xml_invalid_munmap_is_client_check(memtrace_run):
    """memcheck has no munmap check; memtrace writes ClientCheck with a <what> that says it."""
    xml = memtrace_run(("bad_munmap", None, ())).xml
    errors = [e for e in ET.parse(xml).getroot().iter("error")
              if e.findtext("kind") == "ClientCheck"]
    assert errors
    for err in errors:
        assert err.findtext("what") == "Invalid munmap()"
        assert "not in a region the program mmap'd" in err.findtext("auxwhat")


def test_xml_escaping(paths, tmp_path):
    """Arguments with markup characters, quotes, control characters and bytes that are not
    UTF-8 still give well-formed XML, and read back as the text the program got."""
    weird = ["a<b>&c\"d'e", "tab\there", "ctl\x01x", os.fsdecode(b"bad\xffbyte")]
    run = Formats(paths, tmp_path / "weird", "leak_definite", None, (), str(paths.source),
                  extra_args=weird)
    root = ET.parse(run.xml).getroot()  # strict: fails on a stray & or a control character
    args = [a.text for a in root.find("args/argv").findall("arg")]
    assert args == ["a<b>&c\"d'e", "tab\there", "ctl\\x01x", "bad\\xffbyte"]
    command = [line.text for line in root.find("preamble") if line.text.startswith("Command:")]
    assert command and "a<b>&c\"d'e" in command[0]
    raw = run.xml.read_text()
    assert "a&lt;b&gt;&amp;c&quot;d'e" in raw
    # SARIF and Markdown keep them too
    assert run.sarif["runs"][0]["invocations"][0]["arguments"][1:3] == weird[:2]
    assert "a<b>&c\"d'e" in run.md


def test_xml_suppressed_errors(paths, tmp_path):
    """With a suppression matching the double free: the XML leaves it out and counts it in
    <suppcounts>, SARIF keeps it with an external suppression, Markdown leaves it out and
    counts it as the JSON does."""
    supp = tmp_path / "formats.supp"
    supp.write_text("{\n   formats-test-double-free\n   Memcheck:Free\n   ...\n"
                    "   fun:double_free\n}\n")
    run = Formats(paths, tmp_path / "supp", "bad_free", None, (f"--suppressions={supp}",),
                  str(paths.source))
    data = ci_read(run.xml)
    assert data["suppcounts"].get("formats-test-double-free") == 1, data["suppcounts"]
    assert run.report["summary"]["suppressed"]["errors"] == 1
    assert "Suppressed: 1 errors" in run.md
    kinds = [kind_of(e) for e in u.parse_valgrind_errors(run.xml)]
    assert kinds.count("double-free") == 0 and kinds.count("invalid-free") == 4
    results = run.sarif["runs"][0]["results"]
    suppressed = [r for r in results if r.get("suppressions")]
    assert [r["ruleId"] for r in suppressed] == ["memtrace/double-free"]
    assert suppressed[0]["suppressions"][0]["kind"] == "external"
    assert "(double-free)" not in run.md and run.md.count("(invalid-free)") == 4


# ---------------------------------------------------------------------------------------
# SARIF 2.1.0
# ---------------------------------------------------------------------------------------

# From sarif-schema-2.1.0.json: for each object memtrace writes, its `required` list (an
# "anyOf" of required lists where the schema has one), the properties it allows
# (additionalProperties is false everywhere but property bags), and which properties hold
# objects of which definition ("[]": an array of them, "{}": a map of them).
MFMS = "multiformatMessageString"
SARIF_SCHEMA = {
    "sarifLog": ([["version", "runs"]],
                 {"$schema", "version", "runs", "inlineExternalProperties", "properties"},
                 {"runs": ("run", "[]")}),
    "run": ([["tool"]],
            {"tool", "invocations", "conversion", "language", "versionControlProvenance",
             "originalUriBaseIds", "artifacts", "logicalLocations", "graphs", "results",
             "automationDetails", "runAggregates", "baselineGuid", "redactionTokens",
             "defaultEncoding", "defaultSourceLanguage", "newlineSequences", "columnKind",
             "externalPropertyFileReferences", "threadFlowLocations", "taxonomies", "addresses",
             "translations", "policies", "webRequests", "webResponses", "specialLocations",
             "properties"},
            {"tool": ("tool", ""), "invocations": ("invocation", "[]"),
             "results": ("result", "[]"), "originalUriBaseIds": ("artifactLocation", "{}")}),
    "tool": ([["driver"]], {"driver", "extensions", "properties"},
             {"driver": ("toolComponent", "")}),
    "toolComponent": ([["name"]],
                      {"guid", "name", "organization", "product", "productSuite",
                       "shortDescription", "fullDescription", "fullName", "version",
                       "semanticVersion", "dottedQuadFileVersion", "releaseDateUtc",
                       "downloadUri", "informationUri", "globalMessageStrings", "notifications",
                       "rules", "taxa", "locations", "language", "contents", "isComprehensive",
                       "localizedDataSemanticVersion",
                       "minimumRequiredLocalizedDataSemanticVersion", "associatedComponent",
                       "translationMetadata", "supportedTaxonomies", "properties"},
                      {"rules": ("reportingDescriptor", "[]"), "shortDescription": (MFMS, ""),
                       "fullDescription": (MFMS, "")}),
    "reportingDescriptor": ([["id"]],
                            {"id", "deprecatedIds", "guid", "deprecatedGuids", "name",
                             "deprecatedNames", "shortDescription", "fullDescription",
                             "messageStrings", "defaultConfiguration", "helpUri", "help",
                             "relationships", "properties"},
                            {"shortDescription": (MFMS, ""), "fullDescription": (MFMS, ""),
                             "help": (MFMS, ""),
                             "defaultConfiguration": ("reportingConfiguration", "")}),
    "reportingConfiguration": ([[]], {"enabled", "level", "rank", "parameters", "properties"}, {}),
    MFMS: ([["text"]], {"text", "markdown", "properties"}, {}),
    "invocation": ([["executionSuccessful"]],
                   {"commandLine", "arguments", "responseFiles", "startTimeUtc", "endTimeUtc",
                    "exitCode", "ruleConfigurationOverrides",
                    "notificationConfigurationOverrides", "toolExecutionNotifications",
                    "toolConfigurationNotifications", "exitCodeDescription", "exitSignalName",
                    "exitSignalNumber", "processStartFailureMessage", "executionSuccessful",
                    "machine", "account", "processId", "executableLocation", "workingDirectory",
                    "environmentVariables", "stdin", "stdout", "stderr", "stdoutStderr",
                    "properties"}, {}),
    "result": ([["message"]],
               {"ruleId", "ruleIndex", "rule", "kind", "level", "message", "analysisTarget",
                "locations", "guid", "correlationGuid", "occurrenceCount", "partialFingerprints",
                "fingerprints", "stacks", "codeFlows", "graphs", "graphTraversals",
                "relatedLocations", "suppressions", "baselineState", "rank", "attachments",
                "hostedViewerUri", "workItemUris", "provenance", "fixes", "taxa", "webRequest",
                "webResponse", "properties"},
               {"message": ("message", ""), "locations": ("location", "[]"),
                "relatedLocations": ("location", "[]"), "codeFlows": ("codeFlow", "[]"),
                "suppressions": ("suppression", "[]")}),
    "message": ([["text"], ["id"]], {"text", "markdown", "id", "arguments", "properties"}, {}),
    "location": ([[]], {"id", "physicalLocation", "logicalLocations", "message", "annotations",
                        "relationships", "properties"},
                 {"physicalLocation": ("physicalLocation", ""), "message": ("message", "")}),
    "physicalLocation": ([["address"], ["artifactLocation"]],
                         {"address", "artifactLocation", "region", "contextRegion", "properties"},
                         {"artifactLocation": ("artifactLocation", ""), "region": ("region", "")}),
    "artifactLocation": ([[]], {"uri", "uriBaseId", "index", "description", "properties"}, {}),
    "region": ([[]], {"startLine", "startColumn", "endLine", "endColumn", "charOffset",
                      "charLength", "byteOffset", "byteLength", "snippet", "message",
                      "sourceLanguage", "properties"}, {}),
    "codeFlow": ([["threadFlows"]], {"message", "threadFlows", "properties"},
                 {"threadFlows": ("threadFlow", "[]")}),
    "threadFlow": ([["locations"]], {"id", "message", "initialState", "immutableState",
                                     "locations", "properties"},
                   {"locations": ("threadFlowLocation", "[]")}),
    "threadFlowLocation": ([[]], {"index", "location", "stack", "kinds", "taxa", "module",
                                  "state", "nestingLevel", "executionOrder", "executionTimeUtc",
                                  "importance", "webRequest", "webResponse", "properties"},
                           {"location": ("location", "")}),
    "suppression": ([["kind"]], {"guid", "kind", "status", "justification", "location",
                                 "properties"}, {}),
}
# Arrays the schema gives a minimum length.
SARIF_MIN_ITEMS = {("codeFlow", "threadFlows"): 1, ("threadFlow", "locations"): 1}
SARIF_ENUMS = {
    ("result", "level"): {"none", "note", "warning", "error"},
    ("reportingConfiguration", "level"): {"none", "note", "warning", "error"},
    ("result", "baselineState"): {"new", "unchanged", "updated", "absent"},
    ("suppression", "kind"): {"inSource", "external"},
    ("suppression", "status"): {"accepted", "underReview", "rejected"},
    ("threadFlowLocation", "importance"): {"important", "essential", "unimportant"},
}


def check_sarif(obj, definition="sarifLog", where="$"):
    """Asserts OBJ follows DEFINITION's required lists, allowed properties, enums and
    minimum lengths, recursively through the properties listed in SARIF_SCHEMA."""
    required, allowed, children = SARIF_SCHEMA[definition]
    assert isinstance(obj, dict), f"{where}: not an object"
    assert any(all(k in obj for k in alt) for alt in required), \
        f"{where} ({definition}): needs one of {required}, has {sorted(obj)}"
    extra = set(obj) - allowed
    assert not extra, f"{where} ({definition}): properties the schema does not allow: {extra}"
    for (d, key), values in SARIF_ENUMS.items():
        if d == definition and key in obj:
            assert obj[key] in values, f"{where}.{key}: {obj[key]!r}"
    for (d, key), least in SARIF_MIN_ITEMS.items():
        if d == definition and key in obj:
            assert len(obj[key]) >= least, f"{where}.{key}: fewer than {least} items"
    for key, (child, shape) in children.items():
        if key not in obj:
            continue
        if shape == "[]":
            assert isinstance(obj[key], list), f"{where}.{key}: not an array"
            for i, item in enumerate(obj[key]):
                check_sarif(item, child, f"{where}.{key}[{i}]")
        elif shape == "{}":
            for name, item in obj[key].items():
                check_sarif(item, child, f"{where}.{key}.{name}")
        else:
            check_sarif(obj[key], child, f"{where}.{key}")


@pytest.mark.parametrize("run", RUNS + [("bad_munmap", None, ())], ids=run_id)
def test_sarif_follows_the_schema(run, memtrace_run):
    sarif = memtrace_run(run).sarif
    check_sarif(sarif)
    assert sarif["version"] == "2.1.0"
    assert sarif["$schema"].endswith("sarif-2.1.0.json")
    assert len(sarif["runs"]) == 1
    for result in sarif["runs"][0]["results"]:
        assert result["locations"], "code scanning needs a location on every result"
        for loc in result["locations"] + result.get("relatedLocations", []):
            physical = loc["physicalLocation"]
            if "region" in physical:
                assert physical["region"]["startLine"] >= 1
            else:  # no frame has a source file: the module, as an absolute file: URI
                assert physical["artifactLocation"]["uri"].startswith("file:///")


def test_sarif_rules(memtrace_run, project_version):
    run = memtrace_run(("bad_free", None, ())).sarif["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "memtrace" and driver["version"] == project_version
    assert re.match(r"https?://", driver["informationUri"])
    rules = driver["rules"]
    ids = [r["id"] for r in rules]
    assert ids == RULE_IDS
    for rule in rules:
        assert rule["name"] and rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
        assert rule["help"]["text"]
        assert rule["defaultConfiguration"]["level"] in ("error", "warning", "note")
        tags = rule["properties"]["tags"]
        assert 0 < len(tags) <= 10 and any(t.startswith("external/cwe/cwe-") for t in tags)
        assert 0.0 < float(rule["properties"]["security-severity"]) <= 10.0
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] == rules[result["ruleIndex"]]["defaultConfiguration"]["level"]
    # the same rules, in the same order, whatever the run found
    other = memtrace_run(("leak_indirect", None, ())).sarif["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in other] == ids


def test_sarif_locations_relative_to_source_root(memtrace_run, marker, paths):
    run = memtrace_run(("bad_free", None, ())).sarif["runs"][0]
    root = run["originalUriBaseIds"]["%SRCROOT%"]["uri"]
    assert root == Path(os.path.realpath(paths.source)).as_uri() + "/"
    results = run["results"]
    assert [r["ruleId"] for r in results] == \
        ["memtrace/double-free"] + ["memtrace/invalid-free"] * 4
    expected = ["double-free", "invalid-free stack", "invalid-free global",
                "invalid-free interior", "invalid-free mmap"]
    for result, tag in zip(results, expected):
        src, line = marker("bad_free", tag)
        loc = result["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"] == {"uri": "samples/bad_free.c", "uriBaseId": "%SRCROOT%"}
        assert loc["region"]["startLine"] == line
    # the double free: related locations for the first free and the malloc, linked from the message
    double = results[0]
    related = {r["id"]: r for r in double["relatedLocations"]}
    assert sorted(related) == [1, 2]
    assert re.search(r"\[freed\]\(1\).*\[allocated\]\(2\)", double["message"]["text"])
    for rid, tag in ((1, "first free"), (2, "alloc double")):
        loc = related[rid]["physicalLocation"]
        assert loc["artifactLocation"]["uri"] == "samples/bad_free.c"
        assert loc["region"]["startLine"] == marker("bad_free", tag)[1]
    for result in results:
        for loc in result["locations"] + result.get("relatedLocations", []):
            uri = loc["physicalLocation"]["artifactLocation"]["uri"]
            assert not uri.startswith("/") and "://" not in uri, uri


def test_sarif_leak_location_and_code_flow(memtrace_run, marker):
    mt = memtrace_run(("leak_indirect", None, ()))
    results = mt.sarif["runs"][0]["results"]
    leaks = u.leak_records(mt.report)
    assert [r["ruleId"] for r in results] == [f"memtrace/leak-{l['leak_kind']}" for l in leaks]
    definite = results[0]
    assert definite["ruleId"] == "memtrace/leak-definite"
    assert definite["message"]["text"].startswith(
        "122 (16 direct, 106 indirect) bytes in 1 blocks are definitely lost in loss record 1 of")
    assert definite["locations"][0]["physicalLocation"]["region"]["startLine"] == \
        marker("leak_indirect", "leak definite list")[1]
    # the codeFlow is the allocation stack, outermost call first
    for result, leak in zip(results, leaks):
        flow = result["codeFlows"][0]["threadFlows"][0]["locations"]
        names = [loc["location"]["message"]["text"].split(" (")[0] for loc in flow]
        assert names == [f.get("function", "???") for f in reversed(leak["stack"])]
        assert [loc["nestingLevel"] for loc in flow] == list(range(len(flow)))
        inside = [loc for loc in flow if loc["importance"] == "essential"]
        assert inside and all(loc["location"]["physicalLocation"]["artifactLocation"]["uri"]
                              .startswith("samples/") for loc in inside)


def test_sarif_fingerprints_stable_across_runs(paths, tmp_path):
    """Two runs of the same samples: different addresses (ASLR), same fingerprints."""
    for name, case in (("bad_free", None), ("leak_indirect", None), ("use_after_free", "read")):
        runs = [Formats(paths, tmp_path / f"{name}-{i}", name, case, (), str(paths.source))
                for i in range(2)]
        pcs = [[f["pc"] for e in r.report["errors"] for f in e["stack"]] for r in runs]
        if Path("/proc/sys/kernel/randomize_va_space").read_text().strip() != "0":
            assert pcs[0] != pcs[1], "ASLR is on, yet the two runs have the same addresses"
        prints = [[(res["ruleId"], res["partialFingerprints"]["memtraceStackHash/v1"])
                   for res in r.sarif["runs"][0]["results"]] for r in runs]
        assert prints[0] == prints[1]
        assert all(re.fullmatch(r"[0-9a-f]{16}:\d+", fp) for _, fp in prints[0])
        assert len(set(prints[0])) == len(prints[0]), f"{name}: two results share a fingerprint"


def test_sarif_invocation(memtrace_run):
    ok = memtrace_run(("leak_indirect", None, ())).sarif["runs"][0]["invocations"][0]
    assert ok["executionSuccessful"] is True and ok["exitCode"] == 0
    assert "exitSignalNumber" not in ok
    crashed = memtrace_run(("use_after_free", "read", ())).sarif["runs"][0]["invocations"][0]
    assert crashed["executionSuccessful"] is True
    assert crashed["exitSignalNumber"] == 11 and crashed["exitSignalName"] == "SIGSEGV"
    assert "exitCode" not in crashed


def test_sarif_outside_source_root(memtrace_run, tmp_path_factory, paths):
    """No frame inside the source root: the first frame with an absolute file, as a file: URI."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    run = memtrace_run(("bad_free", None, ()), source_root=elsewhere).sarif["runs"][0]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == \
        Path(os.path.realpath(elsewhere)).as_uri() + "/"
    loc = run["results"][0]["locations"][0]["physicalLocation"]
    assert "uriBaseId" not in loc["artifactLocation"]
    assert loc["artifactLocation"]["uri"] == \
        Path(os.path.realpath(paths.samples_src / "bad_free.c")).as_uri()


def test_odd_source_paths(paths, tmp_path):
    """A source file whose directory and name need escaping: percent-encoded in SARIF, split
    into dir and file in the XML, excerpted in Markdown."""
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "no C compiler"
    src_dir = tmp_path / "odd dir #1"
    src_dir.mkdir()
    src = src_dir / "leak ü.c"
    src.write_text("#include <stdlib.h>\n"
                   "void *volatile keep;\n"
                   "__attribute__((noinline)) static void lose(void)\n"
                   "{\n"
                   "    keep = malloc(24); /* the leak */\n"
                   "    keep = 0;\n"
                   "}\n"
                   "int main(void)\n"
                   "{\n"
                   "    lose();\n"
                   "    return 0;\n"
                   "}\n")
    prog = tmp_path / "odd"
    subprocess.run([cc, "-g", "-O0", "-fno-omit-frame-pointer", "-o", str(prog), str(src)],
                   check=True, timeout=u.TIMEOUT)
    run = Formats(paths, tmp_path / "out", prog, None, (), str(tmp_path))
    result = run.sarif["runs"][0]["results"][0]
    loc = result["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "odd%20dir%20%231/leak%20%C3%BC.c",
                                       "uriBaseId": "%SRCROOT%"}
    assert loc["region"]["startLine"] == 5
    frame = next(ET.parse(run.xml).getroot().iter("frame"))
    assert frame.findtext("file") == "leak ü.c"
    assert os.path.realpath(frame.findtext("dir")) == os.path.realpath(src_dir)
    assert "lose — odd dir #1/leak ü.c:5" in run.md
    assert "> 5 |     keep = malloc(24); /* the leak */" in run.md


def build_cxx(tmp_path, name, flags, source):
    """tmp_path/name built from the C++ source with g++ and flags."""
    cxx = shutil.which("g++")
    assert cxx, "no C++ compiler"
    src, prog = tmp_path / f"{name}.cpp", tmp_path / name
    src.write_text(source)
    subprocess.run([cxx, *flags, "-o", str(prog), str(src)], check=True, timeout=u.TIMEOUT)
    return prog


def test_no_line_for_code_without_debug_info(paths, run_memtrace, tmp_path):
    """At -O2 g++ puts main first in .text, and crt1's _start (no debug info) right after
    it: _start has no file:line, not one of the inlined code that ends main."""
    prog = build_cxx(tmp_path, "o2", ("-g", "-O2"),
                     "#include <cstdio>\n#include <cstring>\n#include <vector>\n"
                     "static void leak_vector() {\n"
                     "    auto *v = new std::vector<int>(9);\n"
                     "    v->push_back(1);\n"
                     "    std::printf(\"%zu\\n\", v->size());\n"
                     "}\n"
                     "int main(int argc, char **argv) {\n"
                     "    if (argc > 1 && !std::strcmp(argv[1], \"x\")) {\n"
                     "        std::vector<int> w(3);\n"
                     "        std::printf(\"%d\\n\", w[0]);\n"
                     "    }\n"
                     "    leak_vector();\n"
                     "    return 0;\n"
                     "}\n")
    out = tmp_path / "o2.json"
    proc = run_memtrace(f"--json={out}", prog)
    report = u.load_report(out, proc)
    frames = [f for r in u.leak_records(report) for f in r["stack"]]
    starts = [f for f in frames if f.get("function") == "_start"]
    assert starts and frames[0].get("file"), u.describe(u.leak_records(report))
    assert all(not f.get("file") and not f.get("line") for f in starts), starts


def test_relative_source_paths_are_made_absolute(paths, run_memtrace, tmp_path):
    """A unit compiled as `cc -g src/x.c` from its project directory names its file
    relative to that directory: frames carry the absolute path (valgrind's <dir> is the
    joined one too), so SARIF finds the file under --source-root and Markdown quotes it."""
    cc = shutil.which("gcc")
    assert cc, "no C compiler"
    project = tmp_path / "proj"
    (project / "src").mkdir(parents=True)
    (project / "src" / "lost.c").write_text(
        "#include <stdlib.h>\n#include <string.h>\n"
        "static void *volatile keep;\n"
        "int main(void) {\n"
        "    char *p = malloc(21);\n"
        "    memset(p, 1, 21);\n"
        "    keep = p + 3;\n"
        "    keep = 0;\n"
        "    return 0;\n"
        "}\n"
        "__attribute__((always_inline)) static inline void *make(void) {\n"
        "    return malloc(33);\n"
        "}\n"
        "__attribute__((constructor)) static void early(void) {\n"
        "    keep = make();\n"
        "    keep = 0;\n"
        "}\n")
    subprocess.run([cc, "-g", "-O0", "-o", "lost", "src/lost.c"], cwd=project, check=True,
                   timeout=u.TIMEOUT)
    proc = run_memtrace("--json=r.json", "--sarif=r.sarif", "--markdown=r.md",
                        f"--source-root={project}", "./lost", cwd=project)
    report = u.load_report(project / "r.json", proc)
    record, = [r for r in u.leak_records(report) if r["bytes"] == 21]
    assert record["stack"][0].get("file") == str(project / "src" / "lost.c"), record["stack"][0]
    assert record["stack"][0].get("line") == 5
    inlined, = [r for r in u.leak_records(report) if r["bytes"] == 33]   # the call site's file
    assert [(f.get("function"), f.get("file"), f.get("line")) for f in inlined["stack"][:2]] == \
        [("make", str(project / "src" / "lost.c"), 12),
         ("early", str(project / "src" / "lost.c"), 15)], inlined["stack"][:2]
    sarif = json.loads((project / "r.sarif").read_text())
    result, = [r for r in sarif["runs"][0]["results"] if r["message"]["text"].startswith("21 ")]
    loc = result["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "src/lost.c" and loc["region"]["startLine"] == 5, loc
    assert "char *p = malloc(21);" in (project / "r.md").read_text()


def test_markdown_counts_suppressed_loss_records(paths, tmp_path):
    """A suppressed loss record that would have counted is a suppressed error in Markdown
    too, as in the text's ERROR SUMMARY and the JSON's summary.suppressed."""
    supp = tmp_path / "leak.supp"
    supp.write_text("{\n   formats-test-leak\n   Memcheck:Leak\n   ...\n   fun:main\n}\n")
    run = Formats(paths, tmp_path / "leak", "leak_definite", None, (f"--suppressions={supp}",),
                  str(paths.source))
    suppressed = run.report["summary"]["suppressed"]["errors"]
    assert suppressed >= 1
    assert f"Suppressed: {suppressed} errors" in run.md, run.md


# ---------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------

def md_table(md):
    """The first table of the report as {first cell: second cell}."""
    rows = {}
    for line in md.splitlines():
        m = re.match(r"^\| ([^|]+) \| (.*) \|$", line)
        if m and m[1].strip():
            rows.setdefault(m[1].strip(), m[2].strip())
    return rows


def test_markdown_sections(memtrace_run, paths, project_version):
    md = memtrace_run(("bad_free", None, ())).md
    lines = md.splitlines()
    assert lines[0] == "# memtrace report: `bad_free` — 5 errors"
    table = md_table(md)
    assert table["Command"] == f"`{paths.sample_bin('bad_free')}`"
    assert table["memtrace"] == project_version
    assert table["Kernel"] == f"`{platform.system()} {platform.release()}`"
    assert table["glibc"] == os.confstr("CS_GNU_LIBC_VERSION").split()[-1]
    assert table["Exit"] == "status 0"
    assert "## Summary" in lines and "## Errors" in lines
    assert "| double-free | 1 | 1 |" in lines and "| invalid-free | 4 | 4 |" in lines
    assert "| definitely lost | 0 | 0 |" in lines
    headings = [l for l in lines if l.startswith("### ")]
    assert [re.sub(r"^### \d+\. ", "", h) for h in headings] == \
        ["Invalid free() / delete / delete\\[\\] / realloc() (double-free)"] + \
        ["Invalid free() / delete / delete\\[\\] / realloc() (invalid-free)"] * 4
    assert [int(re.match(r"### (\d+)\.", h)[1]) for h in headings] == [1, 2, 3, 4, 5]
    fences = [l for l in lines if l.startswith("```")]
    assert len(fences) % 2 == 0


def excerpt(md, heading_number):
    """The lines of the source excerpt of error HEADING_NUMBER, and its caption."""
    section = re.split(r"^### ", md, flags=re.M)[heading_number]
    m = re.search(r"^(Source, .*):\n\n```\w*\n(.*?)\n```", section, flags=re.M | re.S)
    assert m, f"no source excerpt in:\n{section}"
    return m[1], m[2].splitlines()


def test_markdown_line_numbers_and_source(memtrace_run, marker):
    md = memtrace_run(("bad_free", None, ())).md
    src, line = marker("bad_free", "double-free")
    section = re.split(r"^### ", md, flags=re.M)[1]
    stacks = re.findall(r"^```\n(.*?)\n```", section, flags=re.M | re.S)
    assert stacks[0].splitlines()[0] == f"double_free — samples/bad_free.c:{line}"
    assert stacks[1].splitlines()[0] == \
        f"double_free — samples/bad_free.c:{marker('bad_free', 'first free')[1]}"
    assert stacks[2].splitlines()[0] == \
        f"double_free — samples/bad_free.c:{marker('bad_free', 'alloc double')[1]}"
    assert "is 0 bytes inside a block of size 32 free'd:" in section
    caption, lines = excerpt(md, 1)
    assert caption == f"Source, `samples/bad_free.c` line {line} (double\\_free)"
    source = Path(src).read_text().splitlines()
    assert lines == [f"{'>' if n == line else ' '} {n:>2} | {source[n - 1]}"
                     for n in range(line - 3, line + 4)]
    assert "```c" in md


def test_markdown_leaks(memtrace_run, marker):
    md = memtrace_run(("leak_indirect", None, ())).md
    assert "### 1. 122 (16 direct, 106 indirect) bytes in 1 blocks are definitely lost in loss " \
           "record 1 of 3 (leak)" in md
    _, line = marker("leak_indirect", "leak definite list")
    _, lines = excerpt(md, 1)
    marked = [l for l in lines if l.startswith(">")]
    assert len(marked) == 1 and marked[0].startswith(f"> {line} | ")
    assert "/* expect: leak definite list */" in marked[0]
    assert "| definitely lost | 16 | 1 |" in md and "| indirectly lost | 106 | 4 |" in md


def test_markdown_signal_and_threads(memtrace_run):
    md = memtrace_run(("use_after_free", "read", ())).md
    assert md_table(md)["Exit"] == "killed by signal 11 (SIGSEGV)"
    assert "### 1. Invalid read of size 1 (use-after-free)" in md
    assert "is 5 bytes inside a block of size 40 free'd:" in md
    assert "Block was alloc'd at:" in md


def test_baseline_states(paths, tmp_path):
    """With --baseline, SARIF's baselineState and the Markdown headings say which errors
    are new: against a baseline of leak_indirect, its own loss record is known and
    bad_free's errors are new."""
    base = Formats(paths, tmp_path / "base", "leak_indirect", None, (), str(paths.source))
    option = (f"--baseline={base.json_path}",)
    same = Formats(paths, tmp_path / "same", "leak_indirect", None, option, str(paths.source))
    other = Formats(paths, tmp_path / "other", "bad_free", None, option, str(paths.source))
    definite = [r for r in same.sarif["runs"][0]["results"]
                if r["ruleId"] == "memtrace/leak-definite"]
    assert [r["baselineState"] for r in definite] == ["unchanged"]
    assert {r.get("baselineState") for r in other.sarif["runs"][0]["results"]} == {"new"}
    assert same.md.splitlines()[0].startswith("# memtrace report: `leak_indirect` — 0 new errors")
    assert "definitely lost in loss record 1 of 3 (leak) — known (in the baseline)" in same.md
    assert other.md.count("— new (not in the baseline)") == 5


def test_cxx_local_function_names_as_valgrind(paths, run_memtrace, valgrind, tmp_path):
    """Lambdas, functions of an anonymous namespace or of a local class and static functions
    have only a short name in DWARF: their frames are named as their symbols demangle, the
    qualified name with its parameters, as valgrind names them."""
    prog = build_cxx(tmp_path, "names", ("-g", "-O0"),
                     "#include <cstdlib>\n"
                     "static void *volatile keep;\n"
                     "namespace { struct Anon { __attribute__((noinline)) void alloc() { keep = malloc(11); } }; }\n"
                     "__attribute__((noinline)) static void static_fn(int n) { keep = malloc(n); }\n"
                     "int main() {\n"
                     "    auto lambda = [](int n) __attribute__((noinline)) { keep = malloc(n); };\n"
                     "    lambda(13);\n"
                     "    Anon().alloc();\n"
                     "    static_fn(17);\n"
                     "    keep = 0;\n"
                     "    return 0;\n"
                     "}\n")
    out = tmp_path / "names.json"
    report = u.load_report(out, run_memtrace(f"--json={out}", prog))
    memtrace_names = {r["bytes"]: r["stack"][0].get("function") for r in u.leak_records(report)
                      if r["bytes"] in (11, 13, 17)}
    u.run_valgrind(valgrind, [str(prog)], str(tmp_path / "vg.xml"), cwd=tmp_path)
    valgrind_names = {r["bytes"]: next(f["function"] for f in r["stack"]
                                       if f["function"] not in ("malloc",))
                      for r in u.parse_valgrind_xml(tmp_path / "vg.xml") if r["bytes"] in (11, 13, 17)}
    assert memtrace_names == valgrind_names, (memtrace_names, valgrind_names)
    assert memtrace_names[17] == "static_fn(int)"
