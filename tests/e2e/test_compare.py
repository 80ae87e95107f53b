"""test_compare.py — `memtrace compare MEMTRACE.json VALGRIND.xml`: one table of the findings
found by both tools, only by memtrace, only by valgrind; exit 0 when they agree, 1 when they
differ, 2 on bad input (one line).

Both tools run on the samples with every leak kind shown. Where they agree the comparison
says so; an engineered disagreement (one sample's report against another sample's valgrind
XML, or a record edited away) gives 1 and the right rows.
"""

import html
import json
import re
import subprocess

import pytest

import e2e_util as u

AGREE = [("leak_definite", ()), ("leak_indirect", ()), ("leak_possible", ()), ("leak_cpp", ()),
         ("clean", ()), ("clean_cpp", ()), ("threads", ()), ("bad_free", ()),
         ("mismatched_free", ()), ("alloc_apis", ()), ("deep_recursion", ()), ("leak_thread_cpp", ()),
         ("use_after_free", ("read",))]


class Pair:
    """One sample's memtrace JSON and valgrind XML, made once per module."""

    def __init__(self, memtrace, valgrind, prog, argv, workdir):
        self.json = workdir / "memtrace.json"
        self.xml = workdir / "valgrind.xml"
        subprocess.run([str(memtrace), "--show-leak-kinds=all", f"--json={self.json}", str(prog),
                        *argv], cwd=workdir, capture_output=True, timeout=u.TIMEOUT)
        u.run_valgrind(valgrind, [str(prog), *argv], str(self.xml), cwd=workdir)
        assert self.json.is_file() and self.xml.is_file()


@pytest.fixture(scope="module")
def pair_of(valgrind, paths, tmp_path_factory):
    cache = {}

    def get(sample, argv=()):
        key = (sample, argv)
        if key not in cache:
            cache[key] = Pair(paths.memtrace, valgrind, paths.sample_bin(sample), argv,
                              tmp_path_factory.mktemp(f"cmp-{sample}"))
        return cache[key]
    return get


def rows(stdout):
    """(found by, kind, bytes, stack) of each table row."""
    out = []
    for line in stdout.splitlines():
        m = re.match(r"(both|memtrace|valgrind)\s+(\S+)\s+(.*?)  (\S.*)$", line)
        if m:
            out.append((m[1], m[2], m[3].strip(), m[4]))
    return out


def compare(run_memtrace, a, b):
    return run_memtrace("compare", a, b)


@pytest.mark.parametrize("case", AGREE, ids=lambda c: "-".join((c[0],) + c[1]))
def test_samples_agree(run_memtrace, pair_of, case):
    p = pair_of(*case)
    proc = compare(run_memtrace, p.json, p.xml)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith("they agree"), proc.stdout
    assert all(r[0] == "both" for r in rows(proc.stdout)), proc.stdout


def test_rows_of_an_agreement(run_memtrace, pair_of):
    p = pair_of("leak_cpp")
    out = compare(run_memtrace, p.json, p.xml).stdout
    r = rows(out)
    assert ("both", "leak/definite", "64+81 in 1", "shop::make_widget < main") in r, out
    assert ("both", "leak/definite", "40 in 1", "shop::make_scores < main") in r, out
    p = pair_of("bad_free")
    r = rows(compare(run_memtrace, p.json, p.xml).stdout)
    assert ("both", "double-free", "-", "double_free < main") in r


def test_free_of_no_block_is_an_invalid_free(run_memtrace, pair_of, tmp_path):
    """valgrind's "not stack'd, malloc'd or (recently) free'd" names no freed block: an
    invalid free, not a double free."""
    p = pair_of("bad_free")
    xml = re.sub(r"is in a rw- \S+ segment", "is not stack'd, malloc'd or (recently) free'd",
                 p.xml.read_text())
    assert "(recently) free'd" in xml
    edited = tmp_path / "nowhere.xml"
    edited.write_text(xml)
    out = compare(run_memtrace, p.json, edited).stdout
    assert ("both", "invalid-free", "-", "free_never_allocated < main") in rows(out), out


def test_access_running_past_the_end(run_memtrace, pair_of, tmp_path):
    """valgrind names a wide access that starts inside a block and ends past it "N bytes
    inside a block of size S alloc'd": a heap overflow, as memtrace reports it."""
    p = pair_of("overflow", ("overflow_write_1",))
    xml = p.xml.read_text()
    xml = xml.replace("Invalid write of size 1", "Invalid write of size 8").replace(
        "is 0 bytes after a block of size 13 alloc'd", "is 8 bytes inside a block of size 13 alloc'd")
    assert "8 bytes inside a block of size 13" in xml
    edited = tmp_path / "wide.xml"
    edited.write_text(xml)
    out = compare(run_memtrace, p.json, edited).stdout
    assert any(x[0] == "both" and x[1] == "heap-overflow" for x in rows(out)), out


def dwarf_name(fn):
    """A function as valgrind names an inlined frame, from DWARF: no scope, return type,
    parameters, or integer suffixes in template arguments ("_M_invoke<0, 1>")."""
    name = re.sub(r"\((?:[^()]|\([^()]*\))*\)( const)?$", "", fn)
    depth, start = 0, 0
    for i, c in enumerate(name):
        depth += c in "<(" and 1 or c in ">)" and -1 or 0
        if depth == 0 and (name[i:i + 2] == "::" or c == " ") and not name.startswith("operator", i + 1):
            start = i + 2 if c == ":" else i + 1
    return re.sub(r"(\d)ul\b", r"\1", name[start:])


def test_inlined_frames_named_as_dwarf_does(run_memtrace, pair_of, tmp_path):
    """valgrind names an inlined frame by its DWARF name, memtrace by the demangled symbol:
    one function, two spellings, still the same stack."""
    p = pair_of("leak_thread_cpp")
    xml = p.xml.read_text()
    edited = tmp_path / "valgrind.xml"
    edited.write_text(re.sub(r"<fn>(.*?)</fn>", lambda m: "<fn>%s</fn>" % html.escape(
        dwarf_name(html.unescape(m[1])), quote=False), xml))
    assert "<fn>_M_invoke&lt;0, 1&gt;</fn>" in edited.read_text()
    proc = compare(run_memtrace, p.json, edited)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ("both", "leak/definite", "64 in 2") in [r[:3] for r in rows(proc.stdout)], proc.stdout


def test_another_samples_valgrind_differs(run_memtrace, pair_of):
    mine, theirs = pair_of("leak_definite"), pair_of("leak_cpp")
    proc = compare(run_memtrace, mine.json, theirs.xml)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    r = rows(proc.stdout)
    assert ("memtrace", "leak/definite", "100 in 1", "make_message < main") in r, proc.stdout
    assert ("memtrace", "leak/definite", "64 in 4", "make_token < main") in r, proc.stdout
    assert ("valgrind", "leak/definite", "40 in 1", "shop::make_scores < main") in r
    assert not [x for x in r if x[0] == "both"]
    assert proc.stdout.rstrip().endswith("they differ")


def test_a_missing_record_and_different_bytes(run_memtrace, pair_of, tmp_path):
    p = pair_of("leak_definite")
    report = json.loads(p.json.read_text())
    report["errors"] = [e for e in report["errors"] if e["stack"][0]["function"] != "make_token"]
    report["errors"][0]["bytes"] += 1
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(report))
    proc = compare(run_memtrace, edited, p.xml)
    assert proc.returncode == 1
    r = rows(proc.stdout)
    assert ("valgrind", "leak/definite", "64 in 4", "make_token < main") in r, proc.stdout
    assert any(x[0] == "both" and x[2] == "101 in 1 vs 100 in 1" for x in r), proc.stdout
    assert "bytes differ" in proc.stdout


def test_runtime_errors_differ(run_memtrace, pair_of):
    proc = compare(run_memtrace, pair_of("bad_free").json, pair_of("mismatched_free").xml)
    assert proc.returncode == 1
    kinds = {(x[0], x[1]) for x in rows(proc.stdout)}
    assert ("memtrace", "double-free") in kinds and ("valgrind", "mismatched-free") in kinds


def test_kinds_only_one_tool_looks_for(run_memtrace, pair_of, tmp_path):
    """valgrind's uninitialised-value errors are named and left out, not a disagreement."""
    p = pair_of("leak_definite")
    xml = p.xml.read_text().replace("</valgrindoutput>", """
<error>
  <unique>0x99</unique>
  <tid>1</tid>
  <kind>UninitCondition</kind>
  <what>Conditional jump or move depends on uninitialised value(s)</what>
  <stack><frame><ip>0x1</ip><fn>main</fn></frame></stack>
</error>
</valgrindoutput>""")
    edited = tmp_path / "uninit.xml"
    edited.write_text(xml)
    proc = compare(run_memtrace, p.json, edited)
    assert proc.returncode == 0, proc.stdout
    assert "UninitCondition (memtrace does not look for these)" in proc.stdout


def test_leak_kinds_not_listed_by_both(run_memtrace, pair_of, paths, tmp_path):
    """A report made with the default --show-leak-kinds lists no indirect records: that kind
    is left out of the comparison, and said so."""
    out = tmp_path / "default.json"
    run_memtrace(f"--json={out}", paths.sample_bin("leak_indirect"))
    proc = compare(run_memtrace, out, pair_of("leak_indirect").xml)
    assert proc.returncode == 0, proc.stdout
    assert re.search(r"not compared: indirect loss records", proc.stdout), proc.stdout


BAD_INPUT = [
    ("missing-json", None, "xml"),
    ("missing-xml", "json", None),
    ("garbage-json", "this is not json", "xml"),
    ("not-memtrace-json", '{"tool": "other", "errors": []}', "xml"),
    ("truncated-xml", "json", "<?xml version=\"1.0\"?>\n<valgrindoutput>\n<error><kind>Leak"),
    ("garbage-xml", "json", "\x00\x01 not xml <<<"),
    ("mismatched-tags", "json", "<valgrindoutput><a></b></valgrindoutput>"),
    ("bad-entity", "json", "<valgrindoutput>&bogus;</valgrindoutput>"),
    ("not-memcheck", "json", "<valgrindoutput><protocoltool>helgrind</protocoltool></valgrindoutput>"),
    ("deep-xml", "json", "<a>" * 100000),
    ("swapped", "xml", "json"),
]


@pytest.mark.parametrize("name, json_text, xml_text", BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_bad_input_is_one_line_and_exit_2(run_memtrace, pair_of, tmp_path, name, json_text,
                                          xml_text):
    p = pair_of("leak_definite")
    real = {"json": p.json.read_text(), "xml": p.xml.read_text()}

    def make(fname, text):
        path = tmp_path / fname
        if text is not None:
            path.write_bytes(real.get(text, text).encode("latin-1", "replace"))
        return path
    proc = compare(run_memtrace, make("a.json", json_text), make("b.xml", xml_text))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("memtrace: compare: "), proc.stderr


@pytest.mark.parametrize("args", [(), ("one.json",), ("a", "b", "c")], ids=str)
def test_usage(run_memtrace, args):
    proc = run_memtrace("compare", *args)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["memtrace: usage: memtrace compare MEMTRACE.json VALGRIND.xml"]
