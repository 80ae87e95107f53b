"""conftest.py — fixtures for the end-to-end tests: where memtrace and the samples are, and
how to run a sample under memtrace and read its JSON report.

Paths come from the environment CTest sets: MEMTRACE_BUILD_DIR (default <repo>/build) and
MEMTRACE_SOURCE_DIR (default the repository root). A missing build is a failure, not a skip.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import e2e_util as u  # noqa: E402

_REPO = Path(__file__).resolve().parents[2]
SOURCE_DIR = Path(os.environ.get("MEMTRACE_SOURCE_DIR") or _REPO).resolve()
BUILD_DIR = Path(os.environ.get("MEMTRACE_BUILD_DIR") or SOURCE_DIR / "build").resolve()


class Paths:
    source = SOURCE_DIR
    build = BUILD_DIR
    memtrace = BUILD_DIR / "memtrace"
    runtime = BUILD_DIR / "libmemtrace.so"
    samples_src = SOURCE_DIR / "samples"
    samples_bin = BUILD_DIR / "samples"

    @classmethod
    def sample_bin(cls, name):
        path = cls.samples_bin / name
        if not path.is_file():
            pytest.fail(f"sample binary {path} is missing: build the tree first "
                        f"(cmake --build {cls.build})")
        return path

    @classmethod
    def sample_src(cls, name):
        for ext in (".c", ".cpp"):
            path = cls.samples_src / (name + ext)
            if path.is_file():
                return path
        pytest.fail(f"no source for sample {name} in {cls.samples_src}")


@pytest.fixture(scope="session", autouse=True)
def debug_cache(tmp_path_factory):
    """Reports cache inflated debug files (report/debugcache.h) in a directory of the test
    session's own, not in the home of whoever runs the tests."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))


@pytest.fixture(scope="session")
def paths():
    if not Paths.memtrace.is_file():
        pytest.fail(f"{Paths.memtrace} does not exist: build memtrace first "
                    f"(cmake -S {SOURCE_DIR} -B {BUILD_DIR} && cmake --build {BUILD_DIR}), "
                    f"or point MEMTRACE_BUILD_DIR at a build")
    return Paths


@pytest.fixture(scope="session")
def project_version():
    """The VERSION of project() in CMakeLists.txt."""
    import re
    text = (SOURCE_DIR / "CMakeLists.txt").read_text()
    m = re.search(r"project\(\s*memtrace\s+VERSION\s+([0-9.]+)", text)
    assert m, "no project(memtrace VERSION ...) in CMakeLists.txt"
    return m[1]


@pytest.fixture
def run_memtrace(paths, tmp_path):
    """run_memtrace(*args, env=None, cwd=None, memtrace=None) -> CompletedProcess.
    Runs `memtrace args...` (text mode, output captured, timeout)."""
    def run(*args, env=None, cwd=None, memtrace=None, timeout=u.TIMEOUT):
        full_env = dict(os.environ)
        full_env.pop("LD_PRELOAD", None)
        full_env.pop("MEMTRACE_OPTIONS", None)
        full_env.update(env or {})
        cmd = [str(memtrace or paths.memtrace), *map(str, args)]
        return subprocess.run(cmd, cwd=cwd or tmp_path, env=full_env, capture_output=True,
                              text=True, errors="replace", timeout=timeout)
    return run


@pytest.fixture
def run_sample(paths, run_memtrace, tmp_path):
    """run_sample(name, *prog_args, options=(), json_name=...) -> (CompletedProcess, report).
    Runs samples/<name> under memtrace with --json=<tmp>/<json_name> plus `options`."""
    counter = [0]

    def run(name, *prog_args, options=(), cwd=None, env=None):
        counter[0] += 1
        json_path = tmp_path / f"{name}.{counter[0]}.json"
        prog = paths.sample_bin(name)
        proc = run_memtrace(*options, f"--json={json_path}", prog, *prog_args, cwd=cwd, env=env)
        report = u.load_report(json_path, proc)
        assert report["command"] == [str(prog), *map(str, prog_args)], report["command"]
        return proc, report
    return run


@pytest.fixture
def marker(paths):
    """marker(sample, tag) -> (absolute source path, line of `/* expect: tag */`)."""
    def find(sample, tag):
        src = paths.sample_src(sample)
        return src, u.marker_line(src, tag)
    return find


@pytest.fixture(scope="session")
def valgrind():
    exe = shutil.which("valgrind")
    if exe is None:
        pytest.fail("valgrind is not installed: the parity tests need it "
                    "(apt-get install valgrind); they are not skipped on purpose")
    return exe


@pytest.fixture
def run_plain(paths, tmp_path):
    """run_plain(name, *prog_args) -> CompletedProcess: samples/<name> run directly, without
    memtrace (text mode, output captured, timeout), for comparing the program's own output."""
    def run(name, *prog_args, cwd=None, timeout=u.TIMEOUT):
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        env.pop("MEMTRACE_OPTIONS", None)
        return subprocess.run([str(paths.sample_bin(name)), *map(str, prog_args)],
                              cwd=cwd or tmp_path, env=env, capture_output=True, text=True,
                              errors="replace", timeout=timeout)
    return run


@pytest.fixture
def run_watched():
    """run_watched(cmd, timeout, input=b"", cwd=None, env=None) -> CompletedProcess (bytes).
    Like subprocess.run(capture_output=True, timeout=...), for runs that might hang: the
    command runs in its own session, and when it outlives `timeout` the test fails with the
    stacks of every process still in that session (`gdb -batch -p PID -ex 'thread apply all
    bt'`; without gdb installed, only their names and states), after which the session's
    process group is killed."""
    import signal

    def session_members(sid):
        members = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[3]) == sid:              # field 6 of stat: the session id
                members.append(int(entry))
        return sorted(members)

    def describe(pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace")
            state = next((l for l in Path(f"/proc/{pid}/status").read_text().splitlines()
                          if l.startswith("State:")), "")
        except OSError:
            return f"--- pid {pid}: gone"
        text = f"--- pid {pid}: {cmdline.strip()} ({state.strip()})"
        gdb = shutil.which("gdb")
        if gdb is None:
            return text + "\n(gdb is not installed: no backtrace)"
        try:
            bt = subprocess.run([gdb, "-batch", "-nx", "-p", str(pid), "-ex",
                                 "thread apply all bt"], capture_output=True, text=True,
                                errors="replace", timeout=60).stdout
        except subprocess.TimeoutExpired:
            bt = "(gdb timed out)"
        return text + "\n" + "\n".join(l for l in bt.splitlines()
                                       if l.startswith(("#", "Thread ")))

    def run(cmd, timeout, input=b"", cwd=None, env=None):
        cmd = [str(c) for c in cmd]
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            out, err = proc.communicate(input, timeout=timeout)
            hung = False
        except subprocess.TimeoutExpired:
            hung = True
        if hung:
            stacks = "\n".join(describe(pid) for pid in session_members(proc.pid))
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            out, err = proc.communicate(timeout=60)
            pytest.fail(f"{' '.join(cmd)} did not finish within {timeout} s (a hang?)\n"
                        f"stacks of the run's processes:\n{stacks}\n"
                        f"stderr (tail):\n{err[-3000:].decode(errors='replace')}",
                        pytrace=False)
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    return run
