"""test_hostile.py — programs that are hard on a tool living inside them, and hostile
surroundings for the reporter (memtrace issue 6, "Reliability"). samples/hostile.c documents
each mode; every mode leaks one 123-byte block ("leak definite hostile") first.

- vfork and posix_spawn: the child runs /bin/true or a sample, with and without
  --trace-children; the parent's report stays its own (its leaks, its exit status), the
  child's status reaches the parent unchanged; a vfork child that calls _exit without exec
  must not end the parent's log (it shares the parent's memory).
- siglongjmp out of SIGALRM and SIGUSR1 handlers while main allocates and frees: no hang,
  no false error, exact leaks, every allocation still tracked.
- RLIMIT_AS set low, then malloc until NULL: NULL reaches the program, same output and exit
  status as without memtrace, a complete report.
- SIGKILL after a double free: the error is in the log and the report, the report says the
  log is truncated because the process was killed, memtrace dies of the same signal.
- Output files: a full disk (/dev/full), a directory that does not exist, a path /proc
  refuses, a planted symlink, a file of another user: one line, exit status 2, nothing
  written through the link. The runtime's event log is not opened through a symlink.
"""

import os
import re
import signal

import pytest

import e2e_util as u

SAMPLE = "hostile"
RUN_TIMEOUT = 120
LEAK = 123            # leak_once()
LEAK_AFTER_CHILD = 77  # leak_after_child()


def memtrace_lines(stderr):
    """memtrace's own one-line messages (not the ==PID== report)."""
    return [l for l in stderr.splitlines() if l.startswith("memtrace:")]


def own_pid(stdout):
    m = re.search(r"^hostile (\d+)$", stdout, re.M)
    assert m, f"no 'hostile PID' line in the program's output:\n{stdout}"
    return int(m[1])


def check_parent(report, marker, exit_status, after_child):
    """The parent's own report: its leaks exactly, no runtime error, a complete log."""
    assert report.get("exit") == {"status": exit_status}, report.get("exit")
    assert report["summary"]["log_truncated"] is False
    errors = u.runtime_errors(report)
    assert not errors, u.describe_errors(errors)
    src, line = marker(SAMPLE, "leak definite hostile")
    expected = [u.record_at(report, "definite", src, line)]
    assert (expected[0]["bytes"], expected[0]["blocks"]) == (LEAK, 1)
    if after_child:
        src, line = marker(SAMPLE, "leak definite after child")
        rec = u.record_at(report, "definite", src, line)
        assert (rec["bytes"], rec["blocks"]) == (LEAK_AFTER_CHILD, 1), u.describe([rec])
        expected.append(rec)
    lost = u.leak_records(report, "definite") + u.leak_records(report, "indirect")
    assert sorted(map(id, lost)) == sorted(map(id, expected)), u.describe(lost)
    total = LEAK + (LEAK_AFTER_CHILD if after_child else 0)
    assert report["summary"]["leaked_bytes"]["definite"] == total
    assert report["summary"]["errors"] == len(expected)


# ---------------------------------------------------------------------------------------
# 1. vfork and posix_spawn
# ---------------------------------------------------------------------------------------

CHILDREN = {
    # name: (program, exit status, definite bytes in its own report when traced)
    "true": ("/bin/true", 0, None),
    "exit_status": ("exit_status", 3, 0),
    "leak_definite": ("leak_definite", 0, 164),
}


@pytest.mark.parametrize("trace", ["no", "yes"])
@pytest.mark.parametrize("child", sorted(CHILDREN))
@pytest.mark.parametrize("mode", ["vfork", "spawn"])
def test_vfork_and_posix_spawn(paths, run_watched, marker, tmp_path, mode, child, trace):
    prog_name, status, child_definite = CHILDREN[child]
    child_prog = prog_name if prog_name.startswith("/") else str(paths.sample_bin(prog_name))
    reports = tmp_path / "r"
    reports.mkdir()
    proc = run_watched([paths.memtrace, f"--trace-children={trace}", f"--json={reports}/%p.json",
                        f"--event-log={reports}/%p.log", paths.sample_bin(SAMPLE), mode,
                        child_prog], RUN_TIMEOUT, cwd=tmp_path, env=u.clean_env())
    stdout, stderr = u.texts(proc)
    assert proc.returncode == status, f"exit {proc.returncode}\n{stdout}\n{stderr[-4000:]}"
    pid = own_pid(stdout)
    m = re.search(rf"^{mode} child (\d+) status=(\d+)$", stdout, re.M)
    assert m and int(m[2]) == status, f"the child's status did not reach the parent:\n{stdout}"
    child_pid = int(m[1])
    assert not memtrace_lines(stderr), stderr[-4000:]

    files = {int(f.stem): f for f in reports.glob("*.json")}
    expected_pids = {pid, child_pid} if trace == "yes" else {pid}
    assert set(files) == expected_pids, f"reports {sorted(files)}, pids parent {pid} child {child_pid}"
    check_parent(u.load_report(files[pid], u.for_load(proc)), marker, status, after_child=True)
    # The child's exec is not the parent's: no `exec` record in the parent's log (a reader
    # takes a log that stops after one for a process that became an untraced program).
    assert "exec" not in (reports / f"{pid}.log").read_text().splitlines()
    if trace == "yes":
        report = u.load_report(files[child_pid], u.for_load(proc))
        assert report["command"] == [child_prog], report["command"]
        assert report.get("exit") == {"status": status}, report.get("exit")
        assert report["summary"]["log_truncated"] is False
        assert not u.runtime_errors(report), u.describe_errors(u.runtime_errors(report))
        if child_definite is not None:
            assert report["summary"]["leaked_bytes"]["definite"] == child_definite


@pytest.mark.parametrize("trace", ["no", "yes"])
def test_vfork_child_exits_without_exec(paths, run_watched, marker, tmp_path, trace):
    """The vfork child runs in the parent's memory: its _exit(5) must not run the parent's
    exit sequence (the parent's report would be written then, with status 5 and without
    what the parent does afterwards)."""
    reports = tmp_path / "r"
    reports.mkdir()
    proc = run_watched([paths.memtrace, f"--trace-children={trace}", f"--json={reports}/%p.json",
                        paths.sample_bin(SAMPLE), "vfork-exit", 5], RUN_TIMEOUT, cwd=tmp_path,
                       env=u.clean_env())
    stdout, stderr = u.texts(proc)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{stdout}\n{stderr[-4000:]}"
    pid = own_pid(stdout)
    assert re.search(r"^vfork-exit child \d+ status=5$", stdout, re.M), stdout
    files = {int(f.stem): f for f in reports.glob("*.json")}
    assert set(files) == {pid}, f"reports {sorted(files)} for parent {pid}"
    check_parent(u.load_report(files[pid], u.for_load(proc)), marker, 0, after_child=True)


# ---------------------------------------------------------------------------------------
# 2. siglongjmp out of signal handlers
# ---------------------------------------------------------------------------------------

JUMPS = u.scaled(3000, 30000)
JUMP_RUNS = u.scaled(3, 10)


def test_siglongjmp_from_signal_handlers(paths, run_watched, marker, tmp_path):
    prog = paths.sample_bin(SAMPLE)
    plain = run_watched([prog, "longjmp", JUMPS], 60, cwd=tmp_path, env=u.clean_env())
    assert plain.returncode == 0 and b"ok" in plain.stdout, u.texts(plain)
    for attempt in range(JUMP_RUNS):
        out = tmp_path / f"lj.{attempt}.json"
        proc = run_watched([paths.memtrace, f"--json={out}", prog, "longjmp", JUMPS], 60,
                           cwd=tmp_path, env=u.clean_env())
        stdout, stderr = u.texts(proc)
        assert proc.returncode == 0, f"exit {proc.returncode}\n{stdout}\n{stderr[-4000:]}"
        m = re.search(r"^longjmp jumps=(\d+) usr1=(\d+) rounds=(\d+) ok$", stdout, re.M)
        assert m and int(m[1]) >= JUMPS and int(m[2]) > 0, stdout
        rounds = int(m[3])
        report = u.load_report(out, u.for_load(proc))
        check_parent(report, marker, 0, after_child=False)
        heap = report["summary"]["total_heap_usage"]
        # Every round mallocs up to 16 blocks: a jump that left memtrace in a bad state
        # (a lock held, a thread marked busy) would hang or stop the counting here.
        assert heap["allocs"] >= rounds, (heap, rounds)
        assert heap["allocs"] - heap["frees"] == report["summary"]["in_use_at_exit"]["blocks"]


# ---------------------------------------------------------------------------------------
# 3. malloc failing under RLIMIT_AS
# ---------------------------------------------------------------------------------------

RLIMIT_RE = re.compile(r"^rlimit big=(\d+) enomem=1 small=1$", re.M)


@pytest.mark.parametrize("megabytes", [64, 8])
def test_malloc_returns_null_under_rlimit_as(paths, run_watched, marker, tmp_path, megabytes):
    prog = paths.sample_bin(SAMPLE)
    plain = run_watched([prog, "rlimit", megabytes], RUN_TIMEOUT, cwd=tmp_path, env=u.clean_env())
    pstdout, pstderr = u.texts(plain)
    assert plain.returncode == 0 and RLIMIT_RE.search(pstdout), (pstdout, pstderr)

    out = tmp_path / "rlimit.json"
    proc = run_watched([paths.memtrace, f"--json={out}", prog, "rlimit", megabytes], RUN_TIMEOUT,
                       cwd=tmp_path, env=u.clean_env())
    stdout, stderr = u.texts(proc)
    assert proc.returncode == plain.returncode, f"exit {proc.returncode}\n{stdout}\n{stderr[-4000:]}"
    m = RLIMIT_RE.search(stdout)
    # The same lines, except how many 1 MB blocks fit (memtrace's redzones take room too).
    assert m and int(m[1]) >= 1, stdout
    assert RLIMIT_RE.sub("", stdout).replace(str(own_pid(stdout)), "PID") == \
        RLIMIT_RE.sub("", pstdout).replace(str(own_pid(pstdout)), "PID")
    assert not memtrace_lines(stderr), stderr[-4000:]
    check_parent(u.load_report(out, u.for_load(proc)), marker, 0, after_child=False)


# ---------------------------------------------------------------------------------------
# 4. SIGKILL mid-run
# ---------------------------------------------------------------------------------------

def test_sigkill_keeps_errors_found_before(paths, run_watched, marker, tmp_path):
    out, log = tmp_path / "k.json", tmp_path / "k.log"
    proc = run_watched([paths.memtrace, f"--json={out}", f"--event-log={log}",
                        paths.sample_bin(SAMPLE), "sigkill"], RUN_TIMEOUT, cwd=tmp_path,
                       env=u.clean_env())
    stdout, stderr = u.texts(proc)
    # memtrace dies of the program's signal (a shell shows 128 + 9 = 137).
    assert proc.returncode == -signal.SIGKILL, f"exit {proc.returncode}\n{stderr[-4000:]}"
    pid = own_pid(stdout)
    assert f"sigkill {pid}" in stdout

    # The double free is in the event log, written when it happened; no `end`.
    records = log.read_text().splitlines()
    assert any(r.startswith("error kind=double-free ") for r in records), records
    assert "end" not in records

    src, line = marker(SAMPLE, "double free before kill")
    report = u.load_report(out, u.for_load(proc))
    u.error_at(report, "double-free", src, line)
    assert report["summary"]["log_truncated"] is True
    assert report.get("exit") == {"signal": 9}
    assert report["summary"]["errors"] == 1
    # No leak check ran: unknown, not zeros that read as a clean run.
    for key in ("leaked_bytes", "leaked_blocks", "in_use_at_exit", "total_heap_usage"):
        assert report["summary"][key] is None, (key, report["summary"][key])

    text = [u.strip_prefix(l) for l in stderr.splitlines() if l.startswith(f"=={pid}==")]
    assert "Invalid free() / delete / delete[] / realloc()" in text, stderr
    assert ("warning: event log truncated (the process was killed by signal 9 (SIGKILL) before "
            "memtrace finished writing it); showing what was recorded") in text, stderr
    assert "LEAK SUMMARY: unknown (the process ended before the leak check could run)" in text
    assert "in use at exit: unknown (the process ended before memtrace's exit sequence)" in \
        [l.strip() for l in text]

    # `memtrace report` of the saved log says the same, from the log alone.
    again = run_watched([paths.memtrace, "report", log], RUN_TIMEOUT, cwd=tmp_path,
                        env=u.clean_env())
    _, again_err = u.texts(again)
    assert again.returncode == 0, again_err
    assert "Invalid free() / delete / delete[] / realloc()" in again_err
    assert "event log truncated" in again_err


# ---------------------------------------------------------------------------------------
# 5. A daemon's start: every descriptor closed, files of its own on the low numbers
# ---------------------------------------------------------------------------------------

def test_closing_every_descriptor_leaves_the_programs_files_alone(paths, run_watched, marker,
                                                                  tmp_path):
    """libunwind checks stack words through a pipe of its own; left on descriptors 3 and 4,
    it was closed under the program, which reopened its files there, and then closed and
    reused again by libunwind: the program's records went into the pipe. Whether libunwind
    checks a word after the files are open depends on the layout (8 runs in 10): 3 runs."""
    expected = "".join(f"record {i:03d}\n" for i in range(200))
    for attempt in range(3):
        out, files = tmp_path / f"d{attempt}.json", tmp_path / f"files{attempt}"
        files.mkdir()
        proc = run_watched([paths.memtrace, f"--json={out}", paths.sample_bin(SAMPLE),
                            "closefds", files], RUN_TIMEOUT, cwd=tmp_path, env=u.clean_env())
        stdout, stderr = u.texts(proc)
        assert proc.returncode == 0 and "closefds ok" in stdout, \
            f"run {attempt}: exit {proc.returncode}\n{stdout}"
        assert (files / "a.txt").read_text() == expected
        assert (files / "b.txt").read_text() == expected
        check_parent(u.load_report(out, u.for_load(proc)), marker, 0, after_child=False)


def test_relative_event_log_stays_where_it_was_opened(paths, run_watched, marker, tmp_path):
    """The runtime reopens its log by name when the program closed its descriptor: a
    relative name must mean the directory memtrace started in, not the program's new one."""
    files = tmp_path / "files"
    files.mkdir()
    proc = run_watched([paths.memtrace, "--json=d.json", "--event-log=ev.%p.log",
                        paths.sample_bin(SAMPLE), "closefds", files], RUN_TIMEOUT, cwd=tmp_path,
                       env=u.clean_env())
    stdout, stderr = u.texts(proc)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{stdout}\n{stderr[-3000:]}"
    logs = list(tmp_path.glob("ev.*.log"))
    assert len(logs) == 1 and not list(files.glob("ev.*")), (logs, list(files.iterdir()))
    check_parent(u.load_report(tmp_path / "d.json", u.for_load(proc)), marker, 0,
                 after_child=False)


# ---------------------------------------------------------------------------------------
# 5. A full disk, a place that cannot be written
# ---------------------------------------------------------------------------------------

def run_exit_status(paths, run_watched, tmp_path, *options):
    """samples/exit_status (no errors, exit 3) under memtrace with OPTIONS."""
    return run_watched([paths.memtrace, *options, paths.sample_bin("exit_status")], RUN_TIMEOUT,
                       cwd=tmp_path, env=u.clean_env())


@pytest.mark.parametrize("option", ["--log-file=/dev/full", "--json=/dev/full",
                                    "--markdown=/dev/full", "--json=/proc/self/report.json"])
def test_output_cannot_be_written_after_the_run(paths, run_watched, marker, tmp_path, option):
    """The program runs to its end untouched (its output, its leaks in the JSON when that
    still can be written); memtrace then says in one line which file it could not write,
    and exits with 2 (docs/options.md)."""
    json = tmp_path / "ok.json"
    extra = [] if option.startswith("--json") else [f"--json={json}"]
    proc = run_watched([paths.memtrace, *extra, option, paths.sample_bin(SAMPLE), "vfork",
                        "/bin/true"], RUN_TIMEOUT, cwd=tmp_path, env=u.clean_env())
    stdout, stderr = u.texts(proc)
    assert proc.returncode == 2, f"exit {proc.returncode}\n{stderr[-4000:]}"
    assert re.search(r"^vfork child \d+ status=0$", stdout, re.M), stdout
    path = option.split("=", 1)[1]
    reason = "No space left on device" if path == "/dev/full" else "No such file or directory"
    assert memtrace_lines(stderr) == [f"memtrace: cannot write {path}: {reason}"], stderr[-4000:]
    if extra:
        check_parent(u.load_report(json, u.for_load(proc)), marker, 0, after_child=True)


@pytest.mark.parametrize("option", ["--json", "--log-file", "--sarif", "--event-log"])
def test_missing_directory_refused_before_the_run(paths, run_watched, tmp_path, option):
    """Known before the program starts: one line, exit 2, the program does not run."""
    path = tmp_path / "no-such-dir" / "out"
    proc = run_exit_status(paths, run_watched, tmp_path, f"{option}={path}")
    stdout, stderr = u.texts(proc)
    assert proc.returncode == 2, f"exit {proc.returncode}\n{stderr}"
    assert stderr.splitlines() == [f"memtrace: cannot write {path}: No such file or directory"]
    assert stdout == ""


def test_event_log_on_full_device_refused(paths, run_watched, tmp_path):
    """The reporter reads the event log back after the run: a device cannot be it."""
    proc = run_exit_status(paths, run_watched, tmp_path, "--event-log=/dev/full")
    stderr = u.texts(proc)[1]
    assert proc.returncode == 2
    assert stderr.splitlines() == ["memtrace: cannot write /dev/full: not a regular file "
                                   "(memtrace reads the event log back)"]


def test_runtime_alone_on_full_device(paths, run_watched, tmp_path):
    """Without the launcher the runtime writes where it is told; a log it cannot write
    must not change the program (same output, same exit status), and the runtime says so
    once, in one line."""
    env = u.clean_env()
    env["LD_PRELOAD"] = str(paths.runtime)
    env["MEMTRACE_OPTIONS"] = "event-log=/dev/full"
    proc = run_watched([paths.sample_bin(SAMPLE), "longjmp", 200], RUN_TIMEOUT, cwd=tmp_path,
                       env=env)
    stdout, stderr = u.texts(proc)
    assert proc.returncode == 0, stderr
    assert re.search(r"^longjmp jumps=\d+ usr1=\d+ rounds=\d+ ok$", stdout, re.M), stdout
    said = [l for l in stderr.splitlines() if "cannot write the event log" in l]
    assert said == ["memtrace: cannot write the event log /dev/full: no space left on device; "
                    "the report will be incomplete"], stderr


def test_report_files_to_own_descriptors(paths, run_watched, tmp_path):
    """/dev/stdout names memtrace's own stdout: written through it, not reopened."""
    proc = run_exit_status(paths, run_watched, tmp_path, "--json=/dev/stdout")
    stdout, stderr = u.texts(proc)
    assert proc.returncode == 3, stderr
    import json
    report = json.loads(stdout)
    assert report["exit"] == {"status": 3}


# ---------------------------------------------------------------------------------------
# 6. Report files and the event log are created safely
# ---------------------------------------------------------------------------------------

OUTPUT_OPTIONS = ["--json", "--log-file", "--sarif", "--markdown", "--xml-file", "--event-log"]


def output_args(option, path):
    return ["--xml=yes", f"--xml-file={path}"] if option == "--xml-file" else [f"{option}={path}"]


@pytest.mark.parametrize("option", OUTPUT_OPTIONS)
def test_planted_symlink_not_followed(paths, run_watched, tmp_path, option):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "report.out"
    link.symlink_to(victim)
    proc = run_exit_status(paths, run_watched, tmp_path, *output_args(option, link))
    stdout, stderr = u.texts(proc)
    assert proc.returncode == 2, f"exit {proc.returncode}\n{stderr}"
    assert stderr.splitlines() == [f"memtrace: cannot write {link}: it is a symbolic link "
                                   "(not followed)"]
    assert victim.read_text() == "precious\n"
    assert link.is_symlink()


@pytest.mark.parametrize("option", ["--json", "--log-file"])
def test_symlink_planted_during_the_run(paths, run_watched, tmp_path, option):
    """The check before the run is not the only one: the file is opened with O_NOFOLLOW.
    The program itself plants the link (sh -c), after memtrace checked the path."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "late.out"
    proc = run_watched([paths.memtrace, f"{option}={link}", "/bin/sh", "-c",
                        f"ln -s {victim} {link}"], RUN_TIMEOUT, cwd=tmp_path, env=u.clean_env())
    stderr = u.texts(proc)[1]
    assert proc.returncode == 2, f"exit {proc.returncode}\n{stderr}"
    assert memtrace_lines(stderr) == [f"memtrace: cannot write {link}: it is a symbolic link "
                                      "(not followed)"], stderr
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("option", ["--json", "--markdown"])
def test_other_users_file_not_clobbered(paths, run_watched, tmp_path, option):
    theirs = tmp_path / "theirs.out"
    theirs.write_text("someone else's\n")
    os.chown(theirs, 65534, 65534)     # tests run as root; as another user chown fails
    proc = run_exit_status(paths, run_watched, tmp_path, f"{option}={theirs}")
    stderr = u.texts(proc)[1]
    assert proc.returncode == 2, f"exit {proc.returncode}\n{stderr}"
    assert stderr.splitlines() == [f"memtrace: cannot write {theirs}: the file belongs to "
                                   "another user"]
    assert theirs.read_text() == "someone else's\n"


def test_own_file_replaced_with_mode_0644(paths, run_watched, tmp_path):
    old = tmp_path / "old.json"
    old.write_text("x" * 100000)
    new = tmp_path / "new.json"
    proc = run_exit_status(paths, run_watched, tmp_path, f"--json={old}", f"--sarif={new}")
    assert proc.returncode == 3, u.texts(proc)[1]
    u.load_report(old, u.for_load(proc))            # truncated, then the report alone
    assert (new.stat().st_mode & 0o777) == 0o644 & ~current_umask()


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_runtime_event_log_not_through_symlink(paths, run_watched, tmp_path):
    """The runtime's own open of the event log (LD_PRELOAD without the launcher) does not
    follow a planted link; a log it creates is readable by its owner only."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "event.log"
    link.symlink_to(victim)
    env = u.clean_env()
    env["LD_PRELOAD"] = str(paths.runtime)
    env["MEMTRACE_OPTIONS"] = f"event-log={link}"
    prog = paths.sample_bin("exit_status")
    proc = run_watched([prog], RUN_TIMEOUT, cwd=tmp_path, env=env)
    assert proc.returncode == 3
    assert victim.read_text() == "precious\n"
    assert link.is_symlink()
    assert f"memtrace: cannot create the event log {link}" in u.texts(proc)[1]

    real = tmp_path / "real.log"
    env["MEMTRACE_OPTIONS"] = f"event-log={real}"
    proc = run_watched([prog], RUN_TIMEOUT, cwd=tmp_path, env=env)
    assert proc.returncode == 3
    assert real.read_text().startswith("memtrace-log 1\n")
    assert (real.stat().st_mode & 0o777) == 0o600
