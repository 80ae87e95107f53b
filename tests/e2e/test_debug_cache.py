"""test_debug_cache.py — the cache of inflated debug files (report/debugcache.h). libc6-dbg
ships libc's DWARF compressed: the first report that shows a libc frame writes the inflated
copy, named by build-id, and later reports read that copy instead; what they say does not
change. A broken copy is replaced, never trusted, a copy unused for 30 days goes when another
is written, and --debug-cache=no writes nothing."""

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

import e2e_util as u


def build_id(path):
    out = subprocess.run(["readelf", "-n", str(path)], capture_output=True, text=True, check=True)
    m = re.search(r"Build ID: ([0-9a-f]+)", out.stdout)
    assert m, f"no build-id in {path}"
    return m[1]


def has_compressed_dwarf(path):
    out = subprocess.run(["readelf", "-SW", str(path)], capture_output=True, text=True, check=True)
    return any(re.search(r"\] \.debug_\S+ .* [A-Z]*C[A-Z]* ", line) for line in out.stdout.splitlines())


def stacks(report):
    """Each record's frames without their addresses (ASLR moves them from run to run)."""
    return [[{k: v for k, v in f.items() if k != "pc"} for f in r["stack"]] for r in u.leak_records(report)]


def libc_frame(report):
    for stack in stacks(report):
        for frame in stack:
            if frame.get("function") == "__libc_start_call_main":
                return frame
    pytest.fail(f"no __libc_start_call_main frame in {u.describe(u.leak_records(report))}")


@pytest.fixture
def libc_debug(run_sample, tmp_path):
    """(libc's build-id, its debug file) once a run showed where libc is; skips when libc6-dbg
    is not installed or its DWARF is not compressed (then there is nothing to cache)."""
    _, report = run_sample("leak_definite", options=("--debug-cache=no",))
    libc = libc_frame(report)["module"]
    bid = build_id(libc)
    debug = Path("/usr/lib/debug/.build-id") / bid[:2] / (bid[2:] + ".debug")
    if not debug.is_file() or not has_compressed_dwarf(debug):
        pytest.skip(f"{debug}: no compressed DWARF for libc (libc6-dbg not installed)")
    return bid, report


def test_copy_written_then_read(run_sample, tmp_path, libc_debug):
    bid, uncached = libc_debug
    cache = tmp_path / "cache" / "debug"
    options = (f"--debug-cache={cache}",)

    _, first = run_sample("leak_definite", options=options)
    copy = cache / (bid + ".debug")
    assert copy.is_file(), sorted(p.name for p in cache.parent.rglob("*"))
    assert build_id(copy) == bid and not has_compressed_dwarf(copy)
    assert stacks(first) == stacks(uncached)
    assert libc_frame(first)["file"].endswith("libc_start_call_main.h") and libc_frame(first)["line"] > 0

    # Renaming a file name inside the copy shows that the next report reads the copy.
    data = copy.read_bytes()
    assert b"libc_start_call_main.h" in data
    copy.write_bytes(data.replace(b"libc_start_call_main.h", b"libc_start_call_mAIn.h"))
    _, second = run_sample("leak_definite", options=options)
    assert libc_frame(second)["file"].endswith("libc_start_call_mAIn.h"), libc_frame(second)


def test_broken_copy_replaced(run_sample, tmp_path, libc_debug):
    bid, uncached = libc_debug
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / (bid + ".debug")).write_bytes(b"\x7fELF not really" * 100)
    _, report = run_sample("leak_definite", options=(f"--debug-cache={cache}",))
    assert stacks(report) == stacks(uncached)
    assert build_id(cache / (bid + ".debug")) == bid


def test_cache_off_writes_nothing(run_sample, tmp_path, libc_debug):
    _, uncached = libc_debug
    home = tmp_path / "home"
    home.mkdir()
    _, report = run_sample("leak_definite", options=("--debug-cache=no",),
                           env={"HOME": str(home), "XDG_CACHE_HOME": str(home / "xdg")})
    assert stacks(report) == stacks(uncached)
    assert list(home.rglob("*")) == []


def test_default_place(run_sample, tmp_path, libc_debug):
    bid, _ = libc_debug
    xdg = tmp_path / "xdg"
    run_sample("leak_definite", env={"XDG_CACHE_HOME": str(xdg)})
    assert (xdg / "memtrace" / "debug" / (bid + ".debug")).is_file()
    home = tmp_path / "home"
    run_sample("leak_definite", env={"XDG_CACHE_HOME": "", "HOME": str(home)})
    assert (home / ".cache" / "memtrace" / "debug" / (bid + ".debug")).is_file()


def test_program_debug_file_by_debuglink(paths, run_memtrace, tmp_path):
    """A program whose DWARF was moved to a compressed file beside it, found through its
    .gnu_debuglink (no libc6-dbg needed): cached the same way, the copy read next time."""
    src = paths.sample_src("leak_definite")
    prog, debug, cache = tmp_path / "prog", tmp_path / "prog.debug", tmp_path / "cache"
    subprocess.run(["gcc", "-g", "-O0", f"-I{src.parent}", "-o", str(prog), str(src)], check=True)
    subprocess.run(["objcopy", "--only-keep-debug", "--compress-debug-sections=zlib", str(prog), str(debug)],
                   check=True)
    subprocess.run(["objcopy", "--strip-debug", f"--add-gnu-debuglink={debug}", str(prog)], check=True, cwd=tmp_path)
    assert has_compressed_dwarf(debug)

    def run(n):
        json_path = tmp_path / f"r{n}.json"
        proc = run_memtrace(f"--debug-cache={cache}", f"--json={json_path}", prog)
        report = u.load_report(json_path, proc)
        return u.record_at(report, "definite", src, u.marker_line(src, "leak definite message"))

    cache.mkdir()
    month_ago = time.time() - 31 * 86400
    planted = {name: cache / name for name in ("0ld.debug", "fresh.debug", "x.debug.99.tmp")}
    for path in planted.values():
        path.write_bytes(b"old")
    for name in ("0ld.debug", "x.debug.99.tmp"):
        os.utime(planted[name], (month_ago, month_ago))

    first = run(1)
    assert first["stack"][0]["function"] == "make_message"
    copy = cache / (build_id(prog) + ".debug")
    assert copy.is_file() and not has_compressed_dwarf(copy)
    left = {p.name for p in cache.iterdir()}   # libc's copy too, with libc6-dbg
    assert {copy.name, "fresh.debug"} <= left and not {"0ld.debug", "x.debug.99.tmp"} & left, left
    os.utime(copy, (month_ago, month_ago))       # a copy read is marked used
    run(2)
    assert copy.stat().st_mtime > time.time() - 3600

    data = copy.read_bytes()
    assert b"leak_definite.c" in data
    copy.write_bytes(data.replace(b"leak_definite.c", b"leak_dEfinite.c"))
    json_path = tmp_path / "r3.json"
    proc = run_memtrace(f"--debug-cache={cache}", f"--json={json_path}", prog)
    frames = [f for r in u.leak_records(u.load_report(json_path, proc)) for f in r["stack"]]
    assert any((f.get("file") or "").endswith("leak_dEfinite.c") for f in frames), frames
