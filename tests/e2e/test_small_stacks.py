"""test_small_stacks.py — threads with 64 KiB stacks (pthread_attr_setstacksize, and
stacks the program maps itself) run under memtrace as they do without it: memtrace keeps
its per-thread state out of static TLS, which glibc takes from every thread's stack.
samples/small_stacks.c documents the expected leak."""

import e2e_util as u

SAMPLE = "small_stacks"


def test_small_stack_threads_start_and_leak_is_found(run_sample, run_plain, marker):
    plain = run_plain(SAMPLE)
    assert plain.returncode == 0 and plain.stdout == "done\n", plain.stdout
    proc, report = run_sample(SAMPLE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == plain.stdout
    assert u.runtime_errors(report) == [], u.describe_errors(u.runtime_errors(report))
    src, line = marker(SAMPLE, "leak")
    record = u.record_at(report, "definite", src, line)
    assert (record["bytes"], record["blocks"]) == (320, 8), u.describe([record])
    others = [r for r in u.leak_records(report, "definite") if r is not record]
    assert others == [], u.describe(others)
