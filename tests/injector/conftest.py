"""Injector test fixtures: testprogs built with gcc into a tmp dir; targets killed at teardown."""
from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, need

PROGS = ROOT / "tests" / "testprogs"


@pytest.fixture(scope="session")
def progs(tmp_path_factory) -> Path:
    """Build the injector testprogs and the test library once per session."""
    need(shutil.which("gcc") is not None, "gcc")
    out = tmp_path_factory.mktemp("injprogs")
    for name in ("inj_threads", "inj_wait", "inj_blocking", "inj_malloc", "inj_storm",
                 "inj_dlslow"):
        subprocess.run(["gcc", "-O1", "-g", "-pthread", "-o", str(out / name),
                        str(PROGS / f"{name}.c")], check=True, timeout=120)
    for lib in ("inj_lib", "inj_slowctor"):
        subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-o", str(out / f"{lib}.so"),
                        str(PROGS / f"{lib}.c")], check=True, timeout=120)
    out.chmod(0o755)
    return out


def read_line(stream, timeout: float = 10.0) -> str:
    """One line of a child's stdout, failing the test instead of hanging."""
    deadline = time.monotonic() + timeout
    buf = b""
    fd = stream.fileno()
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError(f"no line from the target within {timeout} s (got {buf!r})")
        ch = os.read(fd, 1)
        if not ch:
            break
        buf += ch
    return buf.decode()


class Target:
    """A running testprog: stdin and stdout are pipes; killed at teardown."""

    def __init__(self, argv, env=None):
        self.proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env)
        line = read_line(self.proc.stdout)
        assert line.startswith("ready"), line
        self.pid = self.proc.pid

    def finish(self, timeout: float = 10.0) -> tuple[int, str]:
        """Close stdin, wait for the exit (never while a Tracee holds it), return (rc, output)."""
        self.proc.stdin.close()
        out = b""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 0.1)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                out += chunk
        rc = self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        return rc, out.decode()

    def kill(self) -> None:
        if self.proc.returncode is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture
def target():
    """start(argv, env=None) -> Target; every target is SIGKILLed at teardown."""
    made = []

    def start(argv, env=None):
        t = Target(argv, env)
        made.append(t)
        return t
    yield start
    for t in made:
        t.kill()


def thread_states(pid: int) -> dict[int, str]:
    """State letter of each thread of pid."""
    from injector import procfs
    return {tid: procfs.task_state(pid, tid) for tid in procfs.list_tasks(pid)}


def assert_running(pid: int) -> None:
    """No thread of pid is stopped (t/T): detach left everything running."""
    deadline = time.monotonic() + 2
    while True:
        states = thread_states(pid)
        if states and all(s not in ("t", "T") for s in states.values()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"threads left stopped: {states}")
        time.sleep(0.01)
