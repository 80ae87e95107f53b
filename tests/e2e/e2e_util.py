"""e2e_util.py — plain helpers shared by the end-to-end tests (fixtures live in conftest.py).

Reads the JSON contract of memtrace reports, the valgrind-shaped text report, valgrind's own
XML output, and the `/* expect: TAG */` markers in sample sources. Nothing here starts
memtrace; everything that runs a process takes an explicit timeout.
"""

import json
import os
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

LEAK_KINDS = ("definite", "indirect", "possible", "reachable")
RUNTIME_KINDS = ("double-free", "invalid-free", "mismatched-free", "heap-overflow",
                 "heap-underflow", "use-after-free", "invalid-munmap", "invalid-size", "overlap")

# `make test-long` sets MEMTRACE_LONG=1: the stress, real-program and hostile-program tests
# then run with bigger parameters (more threads, iterations, forks and repetitions).
LONG = os.environ.get("MEMTRACE_LONG") == "1"


def scaled(normal, long):
    """`long` under `make test-long`, `normal` otherwise."""
    return long if LONG else normal


# Seconds. Every subprocess call in the suite passes one of these.
TIMEOUT = 120
VALGRIND_TIMEOUT = 300

# ---------------------------------------------------------------------------------------
# Samples and markers
# ---------------------------------------------------------------------------------------

def marker_line(source, tag):
    """Line number (1-based) of the one line of `source` ending in `/* expect: TAG */`."""
    pattern = re.compile(r"/\*\s*expect:\s*" + re.escape(tag) + r"\s*\*/")
    hits = [n for n, line in enumerate(Path(source).read_text().splitlines(), 1)
            if pattern.search(line)]
    assert len(hits) == 1, f"marker 'expect: {tag}' found {len(hits)} times in {source}"
    return hits[0]


def same_file(reported, expected):
    """True when `reported` is an absolute path naming the same file as `expected`."""
    return (isinstance(reported, str) and os.path.isabs(reported)
            and os.path.realpath(reported) == os.path.realpath(expected))


# ---------------------------------------------------------------------------------------
# The JSON contract
# ---------------------------------------------------------------------------------------

def _check_frame(frame, where):
    assert isinstance(frame, dict), f"{where}: frame is not an object: {frame!r}"
    assert re.fullmatch(r"0x[0-9a-fA-F]+", str(frame.get("pc"))), f"{where}: bad pc in {frame}"
    for key, kind in (("function", str), ("file", str), ("line", int), ("module", str)):
        if frame.get(key) is not None:
            assert isinstance(frame[key], kind), f"{where}: {key} has the wrong type in {frame}"
    # "file" is absolute wherever the debug info allows it; that is checked on the samples'
    # own frames (same_file). System libraries may carry relative DW_AT_comp_dir paths.
    if frame.get("module") is not None:
        assert os.path.isabs(frame["module"]), f"{where}: module is not absolute in {frame}"


def check_report_shape(report):
    """Asserts the report follows the JSON contract's shape (not its numbers)."""
    assert report.get("tool") == "memtrace", report.get("tool")
    assert isinstance(report.get("version"), str) and report["version"]
    assert isinstance(report.get("command"), list) and report["command"]
    assert all(isinstance(a, str) for a in report["command"])
    # "exit" is required by the contract; its presence and value are asserted by the tests
    # that know how each process ended (so a missing one does not hide the other results).
    if "exit" in report:
        exit_info = report["exit"]
        assert isinstance(exit_info, dict) and len(exit_info) == 1 \
            and set(exit_info) <= {"status", "signal"}, f"bad exit: {exit_info!r}"
        assert isinstance(next(iter(exit_info.values())), int), f"bad exit: {exit_info!r}"

    assert isinstance(report.get("errors"), list)
    for i, err in enumerate(report["errors"]):
        where = f"errors[{i}]"
        assert err.get("kind") in ("leak",) + RUNTIME_KINDS, f"{where}: kind {err.get('kind')!r}"
        assert err.get("suppressed") is False or err.get("suppressed") is True, where
        assert isinstance(err.get("stack"), list), f"{where}: no stack"
        for frame in err["stack"]:
            _check_frame(frame, where)
        if err["kind"] == "leak":
            assert err.get("leak_kind") in LEAK_KINDS, f"{where}: leak_kind {err.get('leak_kind')!r}"
            for key in ("bytes", "blocks", "indirect_bytes"):
                assert isinstance(err.get(key), int) and err[key] >= 0, f"{where}: {key}"
            assert err["blocks"] >= 1, f"{where}: a loss record has at least one block"
        else:
            assert re.fullmatch(r"0x[0-9a-fA-F]+", str(err.get("address"))), where
            for key in ("alloc_stack", "free_stack"):
                for frame in err.get(key) or []:
                    _check_frame(frame, f"{where}.{key}")

    summary = report.get("summary")
    assert isinstance(summary, dict), "no summary"
    assert isinstance(summary.get("errors"), int)
    assert isinstance(summary.get("log_truncated"), bool)
    # null: unknown, when the process ended before memtrace's exit sequence (a truncated log)
    unknown = (None,) if summary["log_truncated"] else ()
    for key in ("leaked_bytes", "leaked_blocks"):
        if summary.get(key) in unknown:
            continue
        assert isinstance(summary.get(key), dict), f"summary.{key}"
        assert set(summary[key]) == set(LEAK_KINDS), f"summary.{key} keys: {sorted(summary[key])}"
        assert all(isinstance(v, int) and v >= 0 for v in summary[key].values()), f"summary.{key}"
    for key, fields in (("in_use_at_exit", {"bytes", "blocks"}),
                        ("total_heap_usage", {"allocs", "frees", "bytes"})):
        assert summary.get(key, {}) in unknown or set(summary.get(key, {})) >= fields, key


def load_report(path, proc=None):
    """Parses one JSON report and checks its shape; fails with memtrace's stderr if missing."""
    path = Path(path)
    if not path.is_file():
        detail = f"\nexit {proc.returncode}\nstderr:\n{proc.stderr}" if proc is not None else ""
        pytest.fail(f"no JSON report at {path}{detail}")
    try:
        report = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        pytest.fail(f"{path} is not valid JSON: {exc}\n{path.read_text()[:2000]}")
    check_report_shape(report)
    return report


def leak_records(report, kind=None):
    """The loss records of a report, optionally only those of one leak kind."""
    return [e for e in report["errors"]
            if e["kind"] == "leak" and (kind is None or e["leak_kind"] == kind)]


def describe(records):
    """Short text of loss records, for assertion messages."""
    out = []
    for r in records:
        top = r["stack"][0] if r["stack"] else {}
        out.append(f"{r.get('leak_kind')} {r.get('bytes')}B/{r.get('blocks')} "
                   f"(+{r.get('indirect_bytes')}) at {top.get('function')} "
                   f"{top.get('file')}:{top.get('line')}")
    return "\n  ".join(["records:"] + out)


def record_at(report, leak_kind, source, line):
    """The one loss record of `leak_kind` whose frame 0 is `source`:`line`."""
    hits = [r for r in leak_records(report, leak_kind)
            if r["stack"] and same_file(r["stack"][0].get("file"), source)
            and r["stack"][0].get("line") == line]
    assert len(hits) == 1, (f"expected one {leak_kind} record with frame 0 at "
                            f"{source}:{line}, found {len(hits)}; {describe(leak_records(report))}")
    return hits[0]


def first_frame_in(stack, directory):
    """The first frame whose file lies in `directory`, or None."""
    directory = os.path.realpath(directory)
    for frame in stack:
        f = frame.get("file")
        if f and os.path.dirname(os.path.realpath(f)) == directory:
            return frame
    return None


# ---------------------------------------------------------------------------------------
# The text report (valgrind's shape)
# ---------------------------------------------------------------------------------------

_NUM = r"([\d,]+)"
_TEXT_CLASSES = {"definitely lost": "definite", "indirectly lost": "indirect",
                 "possibly lost": "possible", "still reachable": "reachable"}


def _n(s):
    return int(s.replace(",", ""))


def parse_text_summary(text):
    """Numbers of the HEAP SUMMARY / LEAK SUMMARY / ERROR SUMMARY lines of one report.
    Returns {"in_use": (bytes, blocks), "total": (allocs, frees, bytes),
             "leaks": {kind: (bytes, blocks)}, "all_freed": bool, "errors": N}
    with keys missing when their line is missing. Fails if a line appears twice."""
    found = {}

    def once(key, value):
        assert key not in found, f"'{key}' line appears more than once in:\n{text}"
        found[key] = value

    leaks = {}
    for line in text.splitlines():
        m = re.search(r"in use at exit: " + _NUM + r" bytes in " + _NUM + r" blocks", line)
        if m:
            once("in_use", (_n(m[1]), _n(m[2])))
        m = re.search(r"total heap usage: " + _NUM + r" allocs, " + _NUM + r" frees, "
                      + _NUM + r" bytes allocated", line)
        if m:
            once("total", (_n(m[1]), _n(m[2]), _n(m[3])))
        m = re.search(r"(definitely lost|indirectly lost|possibly lost|still reachable): "
                      + _NUM + r" bytes in " + _NUM + r" blocks\s*$", line)
        if m:
            kind = _TEXT_CLASSES[m[1]]
            assert kind not in leaks, f"LEAK SUMMARY line for {kind} appears twice:\n{text}"
            leaks[kind] = (_n(m[2]), _n(m[3]))
        m = re.search(r"ERROR SUMMARY: " + _NUM + r" errors? from " + _NUM + r" contexts?", line)
        if m:
            once("errors", _n(m[1]))
        if "All heap blocks were freed" in line:
            once("all_freed", True)
        if "LEAK SUMMARY" in line:
            once("leak_summary", True)
    if leaks:
        found["leaks"] = leaks
    return found


def strip_prefix(line):
    """A text-report line without its `==PID==` prefix."""
    return re.sub(r"^==\d+==\s?", "", line).strip()


# ---------------------------------------------------------------------------------------
# valgrind
# ---------------------------------------------------------------------------------------

_VG_KINDS = {"Leak_DefinitelyLost": "definite", "Leak_IndirectlyLost": "indirect",
             "Leak_PossiblyLost": "possible", "Leak_StillReachable": "reachable"}


def run_valgrind(valgrind, argv, xml_pattern, cwd, timeout=VALGRIND_TIMEOUT, extra=()):
    """Runs argv under memcheck with every leak kind shown and XML output to `xml_pattern`
    (which may contain %p). Returns the CompletedProcess."""
    cmd = [valgrind, "--tool=memcheck", "--leak-check=full", "--show-leak-kinds=all",
           "--num-callers=40", "--xml=yes", f"--xml-file={xml_pattern}", *extra, *argv]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def parse_valgrind_xml(path):
    """Loss records of one valgrind XML file as dicts like memtrace's:
    {leak_kind, bytes (direct), blocks, indirect_bytes, stack: [{function, file, line, module}]}"""
    root = ET.parse(path).getroot()
    records = []
    for err in root.iter("error"):
        kind = _VG_KINDS.get(err.findtext("kind"))
        if kind is None:
            continue
        xwhat = err.find("xwhat")
        text = xwhat.findtext("text")
        total = int(xwhat.findtext("leakedbytes"))
        blocks = int(xwhat.findtext("leakedblocks"))
        m = re.match(r"([\d,]+) \(([\d,]+) direct, ([\d,]+) indirect\)", text)
        direct, indirect = (_n(m[2]), _n(m[3])) if m else (total, 0)
        stack = []
        for fr in err.find("stack").iter("frame"):
            d, f = fr.findtext("dir"), fr.findtext("file")
            stack.append({"function": fr.findtext("fn"),
                          "file": os.path.join(d, f) if d and f else None,
                          "line": int(fr.findtext("line")) if fr.findtext("line") else None,
                          "module": fr.findtext("obj")})
        records.append({"leak_kind": kind, "bytes": direct, "blocks": blocks,
                        "indirect_bytes": indirect, "stack": stack})
    return records


def totals(records):
    """{kind: (bytes, blocks)} summed over loss records."""
    out = {k: (0, 0) for k in LEAK_KINDS}
    for r in records:
        b, n = out[r["leak_kind"]]
        out[r["leak_kind"]] = (b + r["bytes"], n + r["blocks"])
    return out


# Functions of glibc's thread setup whose allocations (the per-thread TLS vector) valgrind
# frees at exit through __libc_freeres, and whose size depends on how many TLS modules are
# loaded (a preloaded runtime adds some). Records allocated through them are glibc's, not the
# sample's.
# glibc's own bookkeeping: thread setup (the DTV pthread_create callocs) and what the
# dynamic loader keeps for a library it loaded on the program's behalf (pthread_exit
# dlopens libgcc_s to unwind the exiting thread).
GLIBC_INTERNAL_FUNCTIONS = ("allocate_dtv", "_dl_allocate_tls", "__GI__dl_allocate_tls",
                            "dl_open_worker_begin", "dl_open_worker")


def is_glibc_internal(record):
    return any((f.get("function") or "").split("(")[0] in GLIBC_INTERNAL_FUNCTIONS
               for f in record["stack"])


def site_key(record, sample_dir):
    """(kind, bytes, blocks, indirect_bytes, site) where site is the first frame in the
    samples directory as (basename, line), or None for allocations made elsewhere."""
    frame = first_frame_in(record["stack"], sample_dir)
    site = (os.path.basename(frame["file"]), frame.get("line")) if frame else None
    return (record["leak_kind"], record["bytes"], record["blocks"], record["indirect_bytes"], site)


# ---------------------------------------------------------------------------------------
# Runtime errors (memtrace issue 3: bad frees, guarded-heap faults, munmap)
# ---------------------------------------------------------------------------------------

def runtime_errors(report, kind=None):
    """The runtime errors (everything but loss records) of a report, optionally of one kind."""
    return [e for e in report["errors"]
            if e["kind"] != "leak" and (kind is None or e["kind"] == kind)]


def _frame_text(frame):
    return f"{frame.get('function')} {frame.get('file')}:{frame.get('line')}"


def describe_errors(errors):
    """Short text of runtime errors, for assertion messages."""
    out = []
    for e in errors:
        top = e["stack"][0] if e.get("stack") else {}
        line = f"{e.get('kind')} at {e.get('address')} in {_frame_text(top)}"
        if e.get("access"):
            line += f" {e['access'].get('op')}/{e['access'].get('size')}"
        if e.get("block"):
            line += f" block {e['block'].get('address')}+{e['block'].get('size')}"
        for key in ("alloc_stack", "free_stack"):
            if e.get(key):
                line += f" {key}[0]={_frame_text(e[key][0])}"
        out.append(line)
    return "\n  ".join(["runtime errors:"] + out)


def frame_at(frame, source, line, function=None):
    """True when `frame` is `source`:`line` (and in `function`, when given)."""
    return (same_file(frame.get("file"), source) and frame.get("line") == line
            and (function is None or frame.get("function") == function))


def error_at(report, kind, source, line):
    """The one runtime error of `kind` whose stack[0] is `source`:`line`."""
    hits = [e for e in runtime_errors(report, kind)
            if e["stack"] and frame_at(e["stack"][0], source, line)]
    assert len(hits) == 1, (f"expected one {kind} error with stack[0] at {source}:{line}, found "
                            f"{len(hits)}; {describe_errors(runtime_errors(report))}")
    return hits[0]


def error_sites(report, directory):
    """Sorted (kind, basename, line) of every runtime error, where the site is the first
    frame of its stack in `directory` ((kind, None, None) when there is none)."""
    out = []
    for e in runtime_errors(report):
        frame = first_frame_in(e.get("stack") or [], directory)
        out.append((e["kind"], os.path.basename(frame["file"]) if frame else None,
                    frame.get("line") if frame else None))
    return sorted(out, key=repr)


def address(value):
    """An address from the JSON ("0x...") or from a sample's output ("0x..."), as an int."""
    assert isinstance(value, str) and re.fullmatch(r"0x[0-9a-fA-F]+", value), value
    return int(value, 16)


def printed_blocks(stdout):
    """[(address, size)] of the "block 0xADDR size N" lines a sample printed."""
    return [(int(m[1], 16), int(m[2]))
            for m in re.finditer(r"^block (0x[0-9a-fA-F]+) size (\d+)$", stdout, re.M)]


def printed_address(stdout, label):
    """The address printed on the one stdout line "LABEL 0xADDR..."."""
    hits = re.findall(r"^" + re.escape(label) + r" (0x[0-9a-fA-F]+)\b", stdout, re.M)
    assert len(hits) == 1, f"expected one line '{label} 0x...' in the output, got:\n{stdout}"
    return int(hits[0], 16)


def mask_addresses(text):
    """`text` as lines with every 0x... address replaced by ADDR (for comparing outputs)."""
    return [re.sub(r"0x[0-9a-fA-F]+", "ADDR", line) for line in text.splitlines()]


# valgrind's error kinds (XML <kind>) that correspond to memtrace's runtime error kinds.
VALGRIND_RUNTIME_KINDS = ("InvalidFree", "MismatchedFree", "InvalidRead", "InvalidWrite",
                          "FishyValue", "Overlap")


def _vg_frame(fr):
    d, f = fr.findtext("dir"), fr.findtext("file")
    return {"function": fr.findtext("fn"),
            "file": os.path.join(d, f) if d and f else None,
            "line": int(fr.findtext("line")) if fr.findtext("line") else None,
            "module": fr.findtext("obj")}


def parse_valgrind_errors(path):
    """The non-leak errors of one valgrind XML file, in order, as dicts:
    {vg_kind, what, auxwhat: [text...], stack, alloc_stack, free_stack, access_size}
    (alloc_stack / free_stack from the auxiliary stacks that follow an auxwhat naming
    "alloc'd" / "free'd"; None when absent)."""
    root = ET.parse(path).getroot()
    errors = []
    for err in root.iter("error"):
        kind = err.findtext("kind")
        if kind is None or kind.startswith("Leak_"):
            continue
        entry = {"vg_kind": kind, "what": (err.findtext("what") or "").strip(), "auxwhat": [],
                 "stack": None, "alloc_stack": None, "free_stack": None}
        pending = None
        for child in err:
            if child.tag == "auxwhat":
                text = child.text or ""
                entry["auxwhat"].append(text)
                pending = ("free_stack" if "free'd" in text
                           else "alloc_stack" if "alloc'd" in text else None)
            elif child.tag == "stack":
                frames = [_vg_frame(fr) for fr in child.iter("frame")]
                if entry["stack"] is None:
                    entry["stack"] = frames
                elif pending is not None and entry[pending] is None:
                    entry[pending] = frames
                pending = None
        m = re.search(r"of size (\d+)", entry["what"])
        entry["access_size"] = int(m[1]) if m and kind in ("InvalidRead", "InvalidWrite") else None
        errors.append(entry)
    return errors


def memtrace_kind_of(vg_error):
    """The memtrace kind a valgrind error corresponds to, or None when valgrind's own
    description does not say (e.g. an InvalidRead "inside an unallocated block")."""
    kind, aux = vg_error["vg_kind"], " ".join(vg_error["auxwhat"])
    if kind == "InvalidFree":
        return "double-free" if "free'd" in aux else "invalid-free"
    if kind == "MismatchedFree":
        return "mismatched-free"
    if kind == "FishyValue":
        return "invalid-size"
    if kind == "Overlap":
        return "overlap"
    if kind in ("InvalidRead", "InvalidWrite"):
        if "free'd" in aux:
            return "use-after-free"
        if re.search(r"bytes after a block of size", aux):
            return "heap-overflow"
        if re.search(r"bytes before a block of size", aux):
            return "heap-underflow"
        return None
    return None


def valgrind_sites(errors, directory):
    """Sorted (memtrace kind, basename, line) of valgrind errors of the kinds memtrace also
    has, the site being the first frame of the error's stack in `directory`."""
    out = []
    for e in errors:
        if e["vg_kind"] not in VALGRIND_RUNTIME_KINDS:
            continue
        frame = first_frame_in(e["stack"] or [], directory)
        out.append((memtrace_kind_of(e), os.path.basename(frame["file"]) if frame else None,
                    frame.get("line") if frame else None))
    return sorted(out, key=repr)


def clean_env():
    """The environment without a memtrace of the caller's own (LD_PRELOAD, options)."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env.pop("MEMTRACE_OPTIONS", None)
    return env


def texts(proc):
    """stdout and stderr of a binary-mode run, as text."""
    return (proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))


def for_load(proc):
    """What load_report wants for its failure message, from a binary-mode run."""
    return SimpleNamespace(returncode=proc.returncode, stderr=texts(proc)[1][-4000:])
