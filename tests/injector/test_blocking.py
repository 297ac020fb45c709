"""T-29: threads blocked in syscalls during attach + remote call + detach see no EINTR."""
from __future__ import annotations

import re
import time

from injector import loader, remote
from injector.tracee import Tracee

from .conftest import assert_running

SLEEP_MS = 2000
RELEASE_MS = 1500


def _check_report(out: str) -> None:
    lines = dict(line.split(" ", 1) for line in out.strip().splitlines())
    for name in ("read", "futex", "epoll", "accept"):
        assert lines.get(name) == "ok", out
    for name, want in (("nanosleep", SLEEP_MS), ("clock_nanosleep", SLEEP_MS),
                       ("main", RELEASE_MS)):
        m = re.match(r"(?:nanosleep )?ok elapsed_ms=([\d.]+)$", lines[name])
        assert m, out
        assert abs(float(m.group(1)) - want) <= 50, f"{name} missed its deadline: {out}"


def test_blocked_threads_resume_without_eintr(progs, target):
    t = target([progs / "inj_blocking", SLEEP_MS, RELEASE_MS])
    time.sleep(0.2)  # let every thread block
    tr = Tracee.attach(t.pid)
    try:
        assert len(tr.threads) == 7
        lib = loader.load_library(tr, str(progs / "inj_lib.so"))
        for tid in tr.tids:  # borrow every blocked thread once
            assert tr.syscall(remote.SYS_gettid, tid=tid) == tid
            assert tr.call(lib.sym("inj_answer"), tid=tid) == 42
        time.sleep(0.3)  # stay attached a while: deadlines must still hold
    finally:
        tr.detach()
    assert_running(t.pid)
    rc, out = t.finish(timeout=15)
    assert rc == 0
    _check_report(out)


def test_repeated_attach_during_waits(progs, target):
    t = target([progs / "inj_blocking", SLEEP_MS, RELEASE_MS])
    time.sleep(0.1)
    for _ in range(10):
        tr = Tracee.attach(t.pid)
        tr.syscall(remote.SYS_getpid)
        tr.detach()
        time.sleep(0.05)
    rc, out = t.finish(timeout=15)
    assert rc == 0
    _check_report(out)
