"""test_baseline.py — --baseline=OLD.json, the CI gate (docs/ci.md): only errors that an
earlier memtrace JSON report did not have count toward summary.errors and --error-exitcode.

An error is known when OLD has one of the same kind and leak kind whose stack names the
same functions in the same files (base names), frame by frame; pcs, addresses and line
numbers are ignored. A broken OLD.json is one line and exit status 2.
"""

import json
import re

import pytest

import e2e_util as u

GATE = ("--error-exitcode=1",)


@pytest.fixture
def baseline_of(run_sample, tmp_path):
    """baseline_of(sample, *argv, options=()) -> path of that sample's JSON report."""
    def make(sample, *argv, options=()):
        proc, _ = run_sample(sample, *argv, options=options)
        path = tmp_path / f"baseline-{sample}.json"
        src = sorted(tmp_path.glob(f"{sample}.*.json"))[-1]
        path.write_text(src.read_text())
        return path
    return make


def rewrite(path, change):
    """Applies change(report) to the JSON report at path, in place."""
    report = json.loads(path.read_text())
    change(report)
    path.write_text(json.dumps(report))
    return path


@pytest.mark.parametrize("sample, argv", [
    ("leak_definite", ()), ("leak_indirect", ()), ("leak_cpp", ()), ("threads", ()),
    ("bad_free", ()), ("mismatched_free", ()), ("invalid_size", ()),
], ids=str)
def test_own_baseline_passes_the_gate(run_sample, baseline_of, sample, argv):
    old = baseline_of(sample, *argv)
    proc, report = run_sample(sample, *argv, options=GATE + (f"--baseline={old}",))
    assert proc.returncode == 0, proc.stderr
    s = report["summary"]
    assert s["errors"] == 0 and s["baseline"]["new"] == 0 and s["baseline"]["known"] > 0, s
    listed = report["errors"]
    assert listed and all(e["baseline"] == "known" for e in listed if not e["suppressed"])
    text = proc.stderr
    assert "(known: in the baseline)" in text
    assert re.search(r"BASELINE: [\d,]+ errors known from .* \(not counted\), 0 new$", text, re.M)


def test_without_baseline_the_gate_fails(run_sample):
    proc, report = run_sample("leak_definite", options=GATE)
    assert proc.returncode == 1
    assert all("baseline" not in e for e in report["errors"])
    assert "baseline" not in report["summary"]


def test_baseline_of_another_sample_fails_the_gate(run_sample, baseline_of):
    old = baseline_of("leak_cpp")
    proc, report = run_sample("leak_definite", options=GATE + (f"--baseline={old}",))
    assert proc.returncode == 1
    assert report["summary"]["errors"] == 2 and report["summary"]["baseline"] == {"known": 0, "new": 2}
    assert all(e["baseline"] == "new" for e in report["errors"])
    assert "(known: in the baseline)" not in proc.stderr


def test_one_record_removed_is_the_new_one(run_sample, baseline_of):
    old = baseline_of("leak_definite")
    rewrite(old, lambda r: r["errors"].pop(0))
    proc, report = run_sample("leak_definite", options=GATE + (f"--baseline={old}",))
    assert proc.returncode == 1
    assert report["summary"]["baseline"] == {"known": 1, "new": 1}
    new = [e for e in report["errors"] if e["baseline"] == "new"]
    assert len(new) == 1 and new[0]["stack"][0]["function"] == "make_message"
    assert re.search(r"ERROR SUMMARY: 1 errors from 1 contexts", proc.stderr)


def test_new_runtime_error(run_sample, baseline_of):
    old = baseline_of("bad_free")
    rewrite(old, lambda r: r.update(errors=[e for e in r["errors"] if e["kind"] != "double-free"]))
    proc, report = run_sample("bad_free", options=GATE + (f"--baseline={old}",))
    assert proc.returncode == 1
    new = [e for e in report["errors"] if e["baseline"] == "new"]
    assert [e["kind"] for e in new] == ["double-free"]


def test_line_drift_pcs_and_checkout_are_ignored(run_sample, baseline_of):
    """Code moved within its function, rebuilt elsewhere: still the same errors."""
    old = baseline_of("leak_cpp")

    def drift(report):
        for e in report["errors"]:
            for f in e["stack"]:
                f["pc"] = "0x1234"
                if "line" in f:
                    f["line"] += 7
                if "file" in f:
                    f["file"] = "/elsewhere/checkout/" + f["file"].rsplit("/", 1)[-1]
    rewrite(old, drift)
    proc, report = run_sample("leak_cpp", options=GATE + (f"--baseline={old}",))
    assert proc.returncode == 0, proc.stderr
    assert report["summary"]["baseline"]["new"] == 0


def test_other_function_or_kind_is_new(run_sample, baseline_of):
    old = baseline_of("leak_definite")
    rewrite(old, lambda r: r["errors"][0]["stack"][0].update(function="renamed"))
    _, report = run_sample("leak_definite", options=(f"--baseline={old}",))
    assert report["summary"]["baseline"] == {"known": 1, "new": 1}
    old = baseline_of("leak_definite")
    rewrite(old, lambda r: [e.update(leak_kind="possible") for e in r["errors"]])
    _, report = run_sample("leak_definite", options=(f"--baseline={old}",))
    assert report["summary"]["baseline"] == {"known": 0, "new": 2}


def test_unlisted_indirect_records_follow_their_owner(run_sample, baseline_of):
    """Under the default --show-leak-kinds the indirect records are not in the JSON, yet with
    --errors-for-leak-kinds counting them they count: they are known while the records they
    hang off are."""
    kinds = ("--errors-for-leak-kinds=definite,indirect",)
    old = baseline_of("leak_indirect", options=kinds)
    assert not u.leak_records(json.loads(old.read_text()), "indirect")
    proc, report = run_sample("leak_indirect", options=GATE + kinds + (f"--baseline={old}",))
    assert proc.returncode == 0 and report["summary"]["baseline"] == {"known": 3, "new": 0}
    rewrite(old, lambda r: r["errors"].clear())
    proc, report = run_sample("leak_indirect", options=GATE + kinds + (f"--baseline={old}",))
    assert proc.returncode == 1 and report["summary"]["baseline"] == {"known": 0, "new": 3}


def test_suppressed_errors_are_neither(run_sample, baseline_of, tmp_path):
    supp = tmp_path / "s.supp"
    supp.write_text("{\n   msg\n   Memcheck:Leak\n   fun:malloc\n   fun:make_message\n}\n")
    old = baseline_of("leak_cpp")
    proc, report = run_sample("leak_definite", options=GATE + (f"--baseline={old}",
                                                                f"--suppressions={supp}"))
    assert proc.returncode == 1
    s = report["summary"]
    assert (s["errors"], s["baseline"]["known"], s["suppressed"]["errors"]) == (1, 0, 1)


BROKEN = [
    ("garbage", "not JSON at all"),
    ("truncated", '{"tool": "memtrace", "errors": [{"kind": "leak", '),
    ("not-memtrace", '{"tool": "valgrind", "errors": []}'),
    ("errors-not-array", '{"tool": "memtrace", "errors": {}}'),
    ("error-not-object", '{"tool": "memtrace", "errors": [1]}'),
    ("no-stack", '{"tool": "memtrace", "errors": [{"kind": "double-free"}]}'),
    ("leak-without-kind", '{"tool": "memtrace", "errors": [{"kind": "leak", "stack": []}]}'),
    ("deep", "[" * 100000),
    ("nul-escape", '{"tool": "memtrace\\u0000", "errors": []}'),
    ("bad-surrogate", '{"tool": "\\ud800", "errors": []}'),
    ("trailing", '{"tool": "memtrace", "errors": []} x'),
    ("empty", ""),
    ("binary", "\x00\x01\x02\xff"),
]


@pytest.mark.parametrize("name, text", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_baseline_is_one_line_and_exit_2(run_memtrace, paths, tmp_path, name, text):
    old = tmp_path / "old.json"
    old.write_bytes(text.encode("latin-1"))
    proc = run_memtrace(*GATE, f"--baseline={old}", paths.sample_bin("leak_definite"))
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "", "the program ran before the baseline was read"
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"memtrace: --baseline={old}: "), proc.stderr


def test_missing_baseline(run_memtrace, paths, tmp_path):
    proc = run_memtrace(f"--baseline={tmp_path}/none.json", paths.sample_bin("leak_definite"))
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "No such file" in proc.stderr


def test_report_mode(run_memtrace, paths, tmp_path, baseline_of):
    log = tmp_path / "run.log"
    run_memtrace(f"--event-log={log}", paths.sample_bin("leak_definite"))
    old = baseline_of("leak_definite")
    proc = run_memtrace("report", *GATE, f"--baseline={old}", log)
    assert proc.returncode == 0, proc.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    proc = run_memtrace("report", f"--baseline={bad}", log)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr

