"""-c and -x sessions: process.begin runs in the target, process.end for it, state shared."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, need, run_utrace
from tests.injector.conftest import Target, read_line

PROGS = ROOT / "tests" / "testprogs"


@pytest.fixture(scope="module")
def progs(tmp_path_factory) -> Path:
    need(shutil.which("gcc") is not None, "gcc")
    out = tmp_path_factory.mktemp("attprogs")
    for name in ("att_hello", "att_waiter"):
        subprocess.run(["gcc", "-O1", "-o", str(out / name), str(PROGS / f"{name}.c")],
                       check=True, timeout=120)
    out.chmod(0o755)
    return out


def ours_in_maps(pid: int) -> list[str]:
    """Mappings utrace put into a process: the handler object and the shared region."""
    return [ln for ln in Path(f"/proc/{pid}/maps").read_text().splitlines()
            if "memfd:utrace-region" in ln or ("/utrace_" in ln and ln.endswith(".so"))]


BEGIN_END = ('probe begin { println("begin") } '
             'probe process.begin { printf("process.begin %d %d %s\\n", pid(), target(), execname()) } '
             'probe process.end { printf("process.end %d %s\\n", pid(), execname()) } '
             'probe end { println("end") }')


def test_c_runs_begin_in_the_target_and_end_for_it(progs):
    r = run_utrace(["-c", f"{progs / 'att_hello'} 3", "-e", BEGIN_END])
    assert r.returncode == 0, r.stderr  # the script's status, not the command's
    lines = r.stdout.splitlines()
    assert lines[0] == "begin"
    _, pid, target, name = lines[1].split()
    assert lines[1].startswith("process.begin") and pid == target and name == "att_hello"
    assert lines[2] == f"hello from {pid}"  # the command's own output, after process.begin
    assert lines[3] == f"process.end {pid} att_hello"
    assert lines[4:] == ["end"]


def test_c_with_shell_syntax_goes_through_sh(progs):
    r = run_utrace(["-c", f"{progs / 'att_hello'} | cat", "-e",
                    'probe process.begin { println(execname()) }'])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "sh"
    assert "hello from" in r.stdout


def test_process_path_filter(progs):
    script = (f'probe process("{progs / "att_hello"}").begin {{ println("mine") }} '
              'probe process("/bin/true").begin { println("not mine") }')
    r = run_utrace(["-c", str(progs / "att_hello"), "-e", script])
    assert r.returncode == 0, r.stderr
    assert "mine" in r.stdout.splitlines() and "not mine" not in r.stdout


def test_x_shares_globals_and_leaves_the_process_as_it_was(progs):
    t = Target([progs / "att_waiter"])
    try:
        script = ('global n; probe process.begin { n = pid() * 2 } '
                  'probe timer.ms(200) { exit() } '
                  'probe end { printf("n==2*target: %d\\n", n == 2 * target()) }')
        r = run_utrace(["-x", str(t.pid), "-e", script])
        assert r.returncode == 0, r.stderr
        assert r.stdout == "n==2*target: 1\n"
        status = Path(f"/proc/{t.pid}/status").read_text()
        assert "TracerPid:\t0" in status
        assert "State:\tS" in status or "State:\tR" in status
        assert not ours_in_maps(t.pid)
        rc, out = t.finish()
        assert (rc, out) == (0, "bye 2999997\n")
    finally:
        t.kill()


def test_x_refusals_are_clear():
    r = run_utrace(["-x", "999999999", "-e", "probe process.begin { }"])
    assert r.returncode == 1
    assert "999999999" in r.stderr and "Traceback" not in r.stderr


def test_seccomp_target_needs_force(tmp_path):
    """The refusal names --force, and --force really is an option that attaches."""
    exe = tmp_path / "inj_wait"
    subprocess.run(["gcc", "-O1", "-o", str(exe), str(PROGS / "inj_wait.c")], check=True,
                   timeout=120)
    t = Target([exe, "seccomp"])
    try:
        script = 'probe process.begin { println("in") } probe timer.ms(50) { exit() }'
        r = run_utrace(["-x", str(t.pid), "-e", script])
        assert r.returncode == 1 and "seccomp filter" in r.stderr and "--force" in r.stderr
        r = run_utrace(["--force", "-x", str(t.pid), "-e", script])
        assert (r.returncode, r.stdout) == (0, "in\n"), r.stderr
        rc, out = t.finish()
        assert rc == 0 and out.endswith("done\n")
    finally:
        t.kill()


def test_process_probes_need_a_target():
    r = run_utrace(["-e", "probe process.begin { }"])
    assert r.returncode == 1
    assert "need a process to trace" in r.stderr and "Traceback" not in r.stderr


def test_missing_command_is_clear():
    r = run_utrace(["-c", "/no/such/program", "-e", "probe process.begin { }"])
    assert r.returncode == 1
    assert "/no/such/program" in r.stderr and "Traceback" not in r.stderr


def start_x_session(pid: int, script: str) -> subprocess.Popen:
    """utrace -x pid running script; returns once its process.begin probe printed "in"."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen([sys.executable, "-m", "utrace_py", "-x", str(pid), "-e", script],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    assert read_line(p.stdout, timeout=60) == "in\n"
    return p


def test_tracer_killed_mid_session_leaves_the_target_running(progs):
    t = Target([progs / "att_waiter"])
    try:
        p = start_x_session(t.pid, 'probe process.begin { println("in") }')
        p.kill()
        p.wait(timeout=30)
        time.sleep(0.2)
        assert "TracerPid:\t0" in Path(f"/proc/{t.pid}/status").read_text()
        rc, out = t.finish()
        assert (rc, out) == (0, "bye 2999997\n")
    finally:
        t.kill()


def test_sigint_with_x_ends_the_session_and_keeps_the_process(progs):
    t = Target([progs / "att_waiter"])
    try:
        p = start_x_session(t.pid, 'probe process.begin { println("in") } '
                                   'probe end { println("out") }')
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        assert (out, p.returncode) == (b"out\n", 0), err
        assert not ours_in_maps(t.pid)
        rc, out = t.finish()
        assert (rc, out) == (0, "bye 2999997\n")
    finally:
        t.kill()


def test_verbose_lines_reach_a_pipe_while_the_session_runs(progs):
    """-v and warnings are written through at once: a reader of stderr sees them live."""
    t = Target([progs / "att_waiter"])
    try:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        p = subprocess.Popen([sys.executable, "-m", "utrace_py", "-v", "-x", str(t.pid), "-e",
                              'probe process.library("libc.so.6").function("fgets") { }'],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
        try:
            seen = [read_line(p.stderr, timeout=60) for _ in range(6)]
            assert any(f"attached to process {t.pid}" in ln for ln in seen), seen
            assert p.poll() is None  # still running: the line came through live
        finally:
            p.send_signal(signal.SIGINT)
            p.communicate(timeout=30)
    finally:
        t.kill()


def run_cycles(target_exe: Path, cycles: int) -> None:
    """Repeated -x sessions on a busy 16-thread target: each runs a probe inside it and
    leaves it untraced, unpatched and running; at the end it finishes normally."""
    t = Target([target_exe, "16", "busy"])
    try:
        for i in range(cycles):
            r = run_utrace(["-x", str(t.pid), "-e",
                            f'probe process.begin {{ printf("%d {i}\\n", pid()) }} '
                            'probe timer.ms(1) { exit() }'])
            assert (r.returncode, r.stdout) == (0, f"{t.pid} {i}\n"), r.stderr
            states = [Path(f"/proc/{t.pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                      for tid in os.listdir(f"/proc/{t.pid}/task")]
            assert len(states) == 16 and not set(states) & {"t", "T"}, states
            assert "TracerPid:\t0" in Path(f"/proc/{t.pid}/status").read_text()
            assert not ours_in_maps(t.pid)
        rc, out = t.finish(timeout=30)
        assert (rc, out) == (0, "done value=7 usr1=0\n")
    finally:
        t.kill()


def test_repeated_sessions_on_a_busy_16_thread_target(tmp_path):
    need(shutil.which("gcc") is not None, "gcc")
    exe = tmp_path / "inj_threads"
    subprocess.run(["gcc", "-O1", "-pthread", "-o", str(exe), str(PROGS / "inj_threads.c")],
                   check=True, timeout=120)
    run_cycles(exe, 20)  # bench/torture_attach.py runs 200
