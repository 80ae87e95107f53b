"""test_cli.py — the memtrace command line: exit statuses, option errors, static binaries,
--help/--version, -q, --log-file, --leak-check, --show/--errors-for-leak-kinds,
--num-callers, `memtrace report LOG`, the LD_PRELOAD path without the wrapper, and an
installed tree."""

import os
import re
import shutil
import signal
import subprocess

import pytest

import e2e_util as u


def one_memtrace_line(stderr):
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert len(lines) == 1, f"expected exactly one line on stderr, got:\n{stderr}"
    assert lines[0].startswith("memtrace: "), f"line does not start with 'memtrace: ': {lines[0]!r}"
    return lines[0]


# ---------------------------------------------------------------------------------------
# Exit status
# ---------------------------------------------------------------------------------------

def test_exit_status_passthrough(run_sample):
    proc, report = run_sample("exit_status")
    assert proc.returncode == 3, proc.stderr
    assert report.get("exit") == {"status": 3}
    assert report["summary"]["errors"] == 0


def test_error_exitcode_on_leaks(run_sample):
    proc, report = run_sample("leak_definite", options=("--error-exitcode=42",))
    assert report["summary"]["errors"] == 2
    assert proc.returncode == 42, proc.stderr
    assert report.get("exit") == {"status": 0}       # the program's own status is still recorded


def test_error_exitcode_without_errors_keeps_program_status(run_sample):
    proc, report = run_sample("exit_status", options=("--error-exitcode=42",))
    assert report["summary"]["errors"] == 0
    assert proc.returncode == 3, proc.stderr
    proc, _ = run_sample("clean", options=("--error-exitcode=42",))
    assert proc.returncode == 0, proc.stderr
    # Reachable memory is not an error.
    proc, _ = run_sample("reachable", options=("--error-exitcode=42",))
    assert proc.returncode == 0, proc.stderr


def test_leak_errors_default_as_valgrind(run_sample):
    """valgrind's default --errors-for-leak-kinds, definite,possible: a possibly lost block
    gates, an indirectly lost one does not (its definite owner does)."""
    proc, report = run_sample("leak_possible", options=("--error-exitcode=42",))
    assert report["summary"]["errors"] == 1
    assert proc.returncode == 42, proc.stderr
    _, report = run_sample("leak_indirect")
    assert report["summary"]["errors"] == 1


def test_errors_for_leak_kinds(run_sample):
    proc, report = run_sample("leak_possible",
                              options=("--error-exitcode=42", "--errors-for-leak-kinds=possible"))
    assert report["summary"]["errors"] == 1
    assert proc.returncode == 42, proc.stderr

    proc, report = run_sample("leak_definite",
                              options=("--error-exitcode=42", "--errors-for-leak-kinds=none"))
    assert report["summary"]["errors"] == 0
    assert len(u.leak_records(report, "definite")) == 2   # still shown, just not counted
    assert proc.returncode == 0, proc.stderr

    _, report = run_sample("leak_indirect", options=("--errors-for-leak-kinds=definite",))
    assert report["summary"]["errors"] == 1
    _, report = run_sample("reachable", options=("--errors-for-leak-kinds=all",))
    assert report["summary"]["errors"] == 2


def test_show_leak_kinds(run_sample):
    _, report = run_sample("leak_indirect", options=("--show-leak-kinds=definite,indirect",))
    assert sorted(r["leak_kind"] for r in u.leak_records(report)) == \
        ["definite", "indirect", "indirect"], u.describe(u.leak_records(report))

    _, report = run_sample("leak_definite", options=("--show-leak-kinds=none",))
    assert u.leak_records(report) == []
    assert report["summary"]["errors"] == 2          # counted even though not shown
    assert report["summary"]["leaked_bytes"]["definite"] == 164

    _, report = run_sample("leak_possible", options=("--show-leak-kinds=definite",))
    assert u.leak_records(report) == []
    assert report["summary"]["leaked_bytes"]["possible"] == 64


def test_signal_is_reraised(run_sample, marker):
    proc, report = run_sample("leak_abort")
    assert proc.returncode == -signal.SIGABRT, f"exit {proc.returncode}\n{proc.stderr}"
    assert report.get("exit") == {"signal": signal.SIGABRT}
    # valgrind runs its leak check when the program dies by a signal, and finds the block.
    src, line = marker("leak_abort", "leak definite before abort")
    rec = u.record_at(report, "definite", src, line)
    assert (rec["bytes"], rec["blocks"]) == (32, 1)


# ---------------------------------------------------------------------------------------
# Usage errors
# ---------------------------------------------------------------------------------------

def test_unknown_option(run_memtrace, tmp_path):
    witness = tmp_path / "ran"
    proc = run_memtrace("--no-such-option", "/usr/bin/touch", witness)
    assert proc.returncode == 2, proc.stderr
    one_memtrace_line(proc.stderr)
    assert not witness.exists(), "the program ran despite the bad option"


def test_bad_option_value(run_memtrace, tmp_path):
    witness = tmp_path / "ran"
    proc = run_memtrace("--leak-check=sometimes", "/usr/bin/touch", witness)
    assert proc.returncode == 2, proc.stderr
    one_memtrace_line(proc.stderr)
    assert not witness.exists()


@pytest.mark.parametrize("args,env", [
    (("--xml=yes",), {}),                                  # valgrind: no XML destination
    ((), {"MEMTRACE_OPTIONS": "no-such-option=1"}),
    ((), {"MEMTRACE_OPTIONS": "leak-check=sometimes"}),
], ids=["xml-without-file", "env-unknown", "env-bad-value"])
def test_usage_errors_before_the_run(run_memtrace, tmp_path, args, env):
    witness = tmp_path / "ran"
    proc = run_memtrace(*args, "/usr/bin/touch", witness, env=env)
    assert proc.returncode == 2, proc.stderr
    one_memtrace_line(proc.stderr)
    assert not witness.exists()


def test_option_without_value(run_memtrace, tmp_path):
    witness = tmp_path / "ran"
    proc = run_memtrace("--error-exitcode", "/usr/bin/touch", witness)
    assert proc.returncode == 2, proc.stderr
    assert "'--error-exitcode' needs a value" in one_memtrace_line(proc.stderr)
    assert not witness.exists()


def test_script_command_as_given(run_memtrace, tmp_path):
    """A #! script runs under its interpreter, but the report names the command as the user
    gave it, as valgrind's does; the XML's vargv leaves out the event log memtrace chose."""
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho \"$@\"\n")
    script.chmod(0o755)
    out, xml = tmp_path / "r.json", tmp_path / "r.xml"
    proc = run_memtrace(f"--json={out}", "--xml=yes", f"--xml-file={xml}", "./run.sh", "a b",
                        "c", cwd=tmp_path)
    assert u.load_report(out, proc)["command"] == ["./run.sh", "a b", "c"]
    assert "Command: ./run.sh a b c" in proc.stderr, proc.stderr
    assert "event-log" not in xml.read_text()


def test_options_from_environment(run_memtrace, paths, tmp_path):
    """MEMTRACE_OPTIONS is read before the command line, for the launcher's options and
    the runtime's alike (--help says so); the command line wins where both set one."""
    out = tmp_path / "env.json"
    env = {"MEMTRACE_OPTIONS": f"json={out} guard=none show-leak-kinds=none"}
    proc = run_memtrace("--show-leak-kinds=all", paths.sample_bin("leak_definite"), env=env)
    report = u.load_report(out, proc)
    assert report["summary"]["guard"]["mode"] == "none"
    assert u.leak_records(report, "definite"), "the command line's show-leak-kinds lost"


@pytest.mark.parametrize("prog", ["/nonexistent/dir/prog", "no-such-program-memtrace-e2e"])
def test_missing_program(run_memtrace, prog):
    proc = run_memtrace(prog)
    assert proc.returncode == 2, proc.stderr
    one_memtrace_line(proc.stderr)


def test_static_binary_refused(run_memtrace, tmp_path):
    src = tmp_path / "static_prog.c"
    src.write_text("#include <stdlib.h>\nint main(void) { return malloc(10) == 0; }\n")
    exe = tmp_path / "static_prog"
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "no C compiler on PATH"
    build = subprocess.run([cc, "-static", "-o", str(exe), str(src)],
                           capture_output=True, text=True, timeout=u.TIMEOUT)
    if build.returncode != 0:
        pytest.skip(f"cannot link a static binary here (no static libc?): {build.stderr.strip()}")
    proc = run_memtrace(exe)
    assert proc.returncode == 2, proc.stderr
    line = one_memtrace_line(proc.stderr)
    assert "static" in line.lower(), line


def test_help_and_version(run_memtrace, project_version):
    proc = run_memtrace("--help")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    for opt in ("--leak-check", "--show-leak-kinds", "--errors-for-leak-kinds",
                "--error-exitcode", "--num-callers", "--log-file", "--json", "--trace-children",
                "--event-log", "-q"):
        assert opt in out, f"--help does not mention {opt}"

    proc = run_memtrace("--version")
    assert proc.returncode == 0, proc.stderr
    assert project_version in proc.stdout + proc.stderr


def test_report_version_and_command(run_sample, project_version):
    _, report = run_sample("exit_status", "first arg", "2")
    assert report["version"] == project_version
    assert report.get("exit") == {"status": 3}


# ---------------------------------------------------------------------------------------
# Output options
# ---------------------------------------------------------------------------------------

def banner_lines(stderr):
    """Lines of a text report before the first heap/leak/error content."""
    out = []
    for line in stderr.splitlines():
        if re.search(r"HEAP SUMMARY|bytes in|ERROR SUMMARY|LEAK SUMMARY", line):
            break
        if u.strip_prefix(line):
            out.append(u.strip_prefix(line))
    return out


def test_quiet(run_sample):
    proc, _ = run_sample("clean")
    banner = banner_lines(proc.stderr)
    assert any("memtrace" in l.lower() for l in banner), f"no banner without -q:\n{proc.stderr}"

    proc, report = run_sample("clean", options=("-q",))
    assert proc.stderr == "", f"-q on a clean program printed:\n{proc.stderr}"
    assert report["summary"]["errors"] == 0

    proc, report = run_sample("leak_definite", options=("-q",))
    assert "definitely lost" in proc.stderr, proc.stderr      # errors are still shown
    for line in banner:
        assert line not in proc.stderr, f"banner line {line!r} printed with -q"
    assert "HEAP SUMMARY" not in proc.stderr and "LEAK SUMMARY" not in proc.stderr
    assert len(u.leak_records(report)) == 2


def test_log_file(run_sample, tmp_path):
    log = tmp_path / "report.txt"
    proc, report = run_sample("leak_definite", options=(f"--log-file={log}",))
    assert "LEAK SUMMARY" not in proc.stderr, "the report went to stderr despite --log-file"
    assert log.is_file(), f"{log} not written; stderr:\n{proc.stderr}"
    text = u.parse_text_summary(log.read_text())
    assert text.get("leaks", {}).get("definite") == (164, 5), log.read_text()
    assert text.get("errors") == report["summary"]["errors"] == 2


def test_log_file_pid(run_sample, tmp_path):
    proc, _ = run_sample("leak_definite", options=(f"--log-file={tmp_path}/log.%p",))
    logs = sorted(tmp_path.glob("log.*"))
    assert len(logs) == 1, f"{logs}\n{proc.stderr}"
    assert re.fullmatch(r"log\.\d+", logs[0].name), logs[0].name
    assert u.parse_text_summary(logs[0].read_text()).get("leaks", {}).get("definite") == (164, 5)


def test_leak_check_summary(run_sample):
    proc, report = run_sample("leak_indirect", options=("--leak-check=summary",))
    assert u.leak_records(report) == []
    s = report["summary"]
    assert (s["leaked_bytes"]["definite"], s["leaked_blocks"]["definite"]) == (16, 1)
    assert (s["leaked_bytes"]["indirect"], s["leaked_blocks"]["indirect"]) == (106, 4)
    assert s["in_use_at_exit"] == {"bytes": 122, "blocks": 5}
    text = u.parse_text_summary(proc.stderr)
    assert text.get("leaks", {}).get("definite") == (16, 1), proc.stderr
    assert "are definitely lost" not in proc.stderr, proc.stderr


def test_leak_check_no(run_sample):
    proc, report = run_sample("leak_definite", options=("--leak-check=no",))
    assert u.leak_records(report) == []
    assert report["summary"]["errors"] == 0
    assert proc.returncode == 0
    assert report["summary"]["in_use_at_exit"] == {"bytes": 164, "blocks": 5}


def test_num_callers(run_sample, marker):
    src, line = marker("deep_recursion", "leak definite bottom")
    _, report = run_sample("deep_recursion", options=("--num-callers=8",))
    rec = u.record_at(report, "definite", src, line)
    assert 1 <= len(rec["stack"]) <= 8, f"{len(rec['stack'])} frames with --num-callers=8"
    # The recursion is 200 deep, so nothing but the limit stops the stack (valgrind shows
    # exactly N frames here too); fewer would mean memtrace's own frames ate into the budget.
    assert len(rec["stack"]) == 8, f"{len(rec['stack'])} frames with --num-callers=8"
    assert all(f.get("function") == "descend" for f in rec["stack"]), rec["stack"]


def test_report_rerenders_event_log(run_sample, run_memtrace, tmp_path):
    log = tmp_path / "events.log"
    proc, first = run_sample("leak_indirect", options=(f"--event-log={log}", "--show-leak-kinds=all"))
    assert log.is_file() and log.stat().st_size > 0, f"no event log kept\n{proc.stderr}"
    assert log.read_text().startswith("memtrace-log "), "event log lacks its magic line"

    again = tmp_path / "again.json"
    proc2 = run_memtrace("report", log, f"--json={again}", "--show-leak-kinds=all")
    assert proc2.returncode == 0, proc2.stderr
    second = u.load_report(again, proc2)
    assert second["errors"] == first["errors"]
    assert second["command"] == first["command"]
    for key in ("errors", "leaked_bytes", "leaked_blocks", "in_use_at_exit", "total_heap_usage",
                "log_truncated"):
        assert second["summary"][key] == first["summary"][key], key
    text = u.parse_text_summary(proc2.stderr)
    assert text.get("leaks", {}).get("definite") == (16, 1), proc2.stderr
    assert text.get("leaks", {}).get("indirect") == (106, 4), proc2.stderr

    # The rendering options apply at report time.
    third = tmp_path / "third.json"
    proc3 = run_memtrace("report", log, f"--json={third}")
    assert proc3.returncode == 0, proc3.stderr
    assert u.leak_records(u.load_report(third, proc3), "indirect") == []


def test_report_bad_log(run_memtrace, tmp_path):
    bogus = tmp_path / "not-a-log"
    bogus.write_text("hello\n")
    proc = run_memtrace("report", bogus)
    assert proc.returncode == 2, proc.stderr
    one_memtrace_line(proc.stderr)
    proc = run_memtrace("report", tmp_path / "missing.log")
    assert proc.returncode == 2, proc.stderr
    one_memtrace_line(proc.stderr)


def test_preload_without_wrapper(paths, tmp_path, marker):
    out = tmp_path / "preload.json"
    env = dict(os.environ)
    env["LD_PRELOAD"] = str(paths.runtime)
    env["MEMTRACE_OPTIONS"] = f"json={out} leak-check=full"
    prog = paths.sample_bin("leak_definite")
    proc = subprocess.run([str(prog)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=u.TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    report = u.load_report(out, proc)
    src, line = marker("leak_definite", "leak definite message")
    rec = u.record_at(report, "definite", src, line)
    assert (rec["bytes"], rec["blocks"]) == (100, 1)
    assert report["summary"]["leaked_bytes"]["definite"] == 164
    assert report["summary"]["errors"] == 2
    text = u.parse_text_summary(proc.stderr)
    assert text.get("leaks", {}).get("definite") == (164, 5), proc.stderr
    assert report.get("exit") == {"status": 0}


def test_installed_tree(paths, tmp_path, marker):
    prefix = tmp_path / "prefix"
    inst = subprocess.run(["cmake", "--install", str(paths.build), "--prefix", str(prefix)],
                          capture_output=True, text=True, timeout=u.TIMEOUT)
    assert inst.returncode == 0, inst.stdout + inst.stderr
    memtrace = prefix / "bin" / "memtrace"
    assert memtrace.is_file() and os.access(memtrace, os.X_OK), sorted(prefix.rglob("*"))
    assert (prefix / "lib" / "memtrace" / "libmemtrace.so").is_file(), sorted(prefix.rglob("*"))

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = elsewhere / "r.json"
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MEMTRACE_OPTIONS")}
    proc = subprocess.run([str(memtrace), f"--json={out}", str(paths.sample_bin("leak_definite"))],
                          cwd=elsewhere, env=env, capture_output=True, text=True,
                          timeout=u.TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    report = u.load_report(out, proc)
    src, line = marker("leak_definite", "leak definite token")
    rec = u.record_at(report, "definite", src, line)
    assert (rec["bytes"], rec["blocks"]) == (64, 4)

    # A relative --json path is relative to the cwd, like the program's own files.
    proc = subprocess.run([str(memtrace), "--json=rel.json", str(paths.sample_bin("clean"))],
                          cwd=elsewhere, env=env, capture_output=True, text=True,
                          timeout=u.TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert u.load_report(elsewhere / "rel.json", proc)["summary"]["errors"] == 0
