"""T-31/T-28: clear refusals that leave the target untouched and running."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import time

import pytest

from injector import checks, procfs, remote
from injector import ptrace as pt
from injector.errors import AttachRefused
from injector.tracee import Tracee

from tests.conftest import ROOT

from .conftest import assert_running


def _still_fine(t) -> None:
    assert_running(t.pid)
    assert procfs.read_status(t.pid)["TracerPid"] == "0"
    rc, out = t.finish()
    assert rc == 0 and "done" in out


def test_already_traced_by_us(progs, target):
    t = target([progs / "inj_wait"])
    first = Tracee.attach(t.pid)
    try:
        with pytest.raises(AttachRefused) as info:
            Tracee.attach(t.pid)
        assert info.value.reason == "already-traced"
        assert "already traced by this utrace process" in str(info.value)
    finally:
        first.detach()
    _still_fine(t)


def test_already_traced_by_another_tracer(progs, target):
    t = target([progs / "inj_wait"])
    strace = shutil.which("strace")
    if strace is not None:
        argv, comm = [strace, "-qq", "-o", os.devnull, "-p", str(t.pid)], "strace"
    else:  # another process holding the target with our own Tracee
        code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from injector.tracee "
                f"import Tracee; t = Tracee.attach({t.pid}); t.resume_all(); input()")
        argv, comm = [sys.executable, "-c", code], os.path.basename(sys.executable)[:15]
    tracer = subprocess.Popen(argv, stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while procfs.read_status(t.pid)["TracerPid"] == "0":
            assert time.monotonic() < deadline, "strace did not attach"
            time.sleep(0.02)
        with pytest.raises(AttachRefused) as info:
            Tracee.attach(t.pid)
        assert info.value.reason == "already-traced"
        assert f"already traced by process {tracer.pid} ({comm})" in str(info.value)
    finally:
        tracer.terminate()
        tracer.wait(timeout=10)
    _still_fine(t)


def test_seccomp_refused_unless_forced(progs, target):
    t = target([progs / "inj_wait", "seccomp"])
    assert procfs.read_status(t.pid)["Seccomp"] == "2"
    with pytest.raises(AttachRefused) as info:
        Tracee.attach(t.pid)
    assert info.value.reason == "seccomp"
    assert "seccomp filter" in str(info.value) and "--force" in str(info.value)
    assert_running(t.pid)
    tr = Tracee.attach(t.pid, force=True)
    try:
        assert tr.syscall(remote.SYS_getpid) == t.pid
        assert tr.syscall(135, 0xFFFFFFFF) == -errno.EPERM  # personality: the filter's EPERM
    finally:
        tr.detach()
    _still_fine(t)


def test_nondumpable_refused(progs, target):
    t = target([progs / "inj_wait", "nodump"])
    with pytest.raises(AttachRefused) as info:
        Tracee.attach(t.pid)
    assert info.value.reason == "non-dumpable"
    assert "not dumpable" in str(info.value) and "PR_SET_DUMPABLE" in str(info.value)
    _still_fine(t)


def test_other_users_process_refused(monkeypatch):
    if os.getuid() == 0:
        other = subprocess.Popen(["sleep", "30"], user=65534, group=65534, extra_groups=[])
        monkeypatch.setattr(procfs, "has_cap_sys_ptrace", lambda: False)
        pid = other.pid
        time.sleep(0.1)
    else:
        other, pid = None, 1
    try:
        with pytest.raises(AttachRefused) as info:
            Tracee.attach(pid)
        assert info.value.reason == "other-user"
        assert "utrace traces only your own processes" in str(info.value)
        assert procfs.task_state(pid, pid) not in ("t", "T")
    finally:
        if other is not None:
            other.kill()
            other.wait(timeout=10)


@pytest.mark.parametrize("scope", [1, 2, 3])
def test_yama_messages(progs, target, tmp_path, monkeypatch, scope):
    t = target([progs / "inj_wait"])
    yama = tmp_path / "ptrace_scope"
    yama.write_text(f"{scope}\n")
    monkeypatch.setattr(procfs, "has_cap_sys_ptrace", lambda: False)
    if scope == 1:
        # Scope 1 is the kernel's decision (PR_SET_PTRACER): explain its EPERM.
        refusal = checks.explain_seize_failure(
            t.pid, pt.PtraceError("PTRACE_SEIZE", t.pid, errno.EPERM), yama_path=str(yama))
    else:
        with pytest.raises(AttachRefused) as info:
            Tracee.attach(t.pid, yama_path=str(yama))
        refusal = info.value
    assert refusal.reason == "yama"
    msg = str(refusal)
    assert f"kernel.yama.ptrace_scope is {scope}" in msg
    if scope == 1:
        assert "utrace -c" in msg and "PR_SET_PTRACER" in msg and "echo 0 >" in msg
    elif scope == 2:
        assert "CAP_SYS_PTRACE" in msg and "root" in msg
    else:
        assert "reboot" in msg.lower()
    _still_fine(t)


def test_no_such_process():
    with pytest.raises(AttachRefused) as info:
        Tracee.attach(2 ** 22 + 4321)
    assert info.value.reason == "no-such-process"
