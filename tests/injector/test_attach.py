"""Spawn stopped at exec, attach to all threads, stop, detach: nothing left stopped."""
from __future__ import annotations

import os
import time

import pytest
from elftools.elf.elffile import ELFFile

from injector import procfs
from injector.errors import SpawnError
from injector.tracee import Tracee

from .conftest import assert_running, thread_states


def _symbol_addr(tr: Tracee, exe: str, name: str) -> int:
    with open(exe, "rb") as f:
        sym = ELFFile(f).get_section_by_name(".symtab").get_symbol_by_name(name)[0]
    base = min(m.start - m.offset for m in tr.maps() if m.file_path == os.path.realpath(exe))
    return base + sym["st_value"]


def test_spawn_stopped_at_exec_then_runs(progs):
    exe = str(progs / "inj_threads")
    r, w = os.pipe()
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        tr = Tracee.spawn([exe, "1"], stdin=devnull, stdout=w)
    finally:
        os.close(w)
        os.close(devnull)
    try:
        regs = tr.get_regs()
        here = procfs.find_mapping(tr.maps(), regs.rip)
        assert here is not None and "ld-linux" in here.path  # no code of the program ran
        assert not any("libc.so" in m.path for m in tr.maps())
        tr.run_to_entry()
        regs = tr.get_regs()
        assert regs.rip == procfs.read_auxv(tr.pid)[procfs.AT_ENTRY]
        # Registers: write one, read it back, put it back.
        changed = regs.copy()
        changed.r12 = 0x1122334455667788
        tr.set_regs(changed)
        assert tr.get_regs().r12 == 0x1122334455667788
        tr.set_regs(regs)
        assert tr.get_regs() == regs
        # Memory: the program's global, and its read-only text.
        addr = _symbol_addr(tr, exe, "value")
        assert int.from_bytes(tr.read(addr, 4), "little") == 7
        tr.write(addr, (1234).to_bytes(4, "little"))
        main = _symbol_addr(tr, exe, "main")
        text = tr.read(main, 4)
        tr.write(main, text)  # /proc/PID/mem writes read-only text too
        st = tr.run_until_exit(timeout=20)
    except BaseException:
        tr.kill()
        raise
    out = os.read(r, 4096).decode()
    os.close(r)
    assert st.exited and st.exit_code == 0, str(st)
    assert "done value=1234" in out


def test_spawn_missing_command():
    with pytest.raises(SpawnError) as info:
        Tracee.spawn(["/nonexistent/prog"])
    assert "No such file" in str(info.value)


@pytest.mark.parametrize("nthreads", [1, 16, 64])
def test_attach_all_threads_and_detach(progs, target, nthreads):
    t = target([progs / "inj_threads", nthreads])
    tr = Tracee.attach(t.pid)
    try:
        assert sorted(tr.threads) == procfs.list_tasks(t.pid)
        assert len(tr.threads) == nthreads
        states = thread_states(t.pid)
        assert all(s == "t" for s in states.values()), states
        for tid in tr.tids:
            assert tr.get_regs(tid).rip
    finally:
        tr.detach()
    assert_running(t.pid)
    rc, out = t.finish()
    assert rc == 0 and "done value=7" in out


def test_attach_detach_50_times_busy_16_threads(progs, target):
    t = target([progs / "inj_threads", 16, "busy"])
    t0 = time.monotonic()
    for _ in range(50):
        tr = Tracee.attach(t.pid)
        assert len(tr.threads) == 16
        tr.detach()
        assert_running(t.pid)
    assert time.monotonic() - t0 < 60
    rc, out = t.finish()
    assert rc == 0 and "done" in out


def test_stop_resume_keeps_attached(progs, target):
    t = target([progs / "inj_threads", 4, "busy"])
    tr = Tracee.attach(t.pid)
    try:
        for _ in range(10):
            tr.resume_all()
            time.sleep(0.005)
            tr.stop_all()
            assert all(th.stopped for th in tr.threads.values())
    finally:
        tr.detach()
    assert_running(t.pid)
    rc, _ = t.finish()
    assert rc == 0


def test_attach_during_thread_storm(progs, target):
    """T-22 (reduced): threads created and joined continuously while we attach/detach."""
    t = target([progs / "inj_storm"])
    for _ in range(30):
        tr = Tracee.attach(t.pid)
        assert set(tr.threads) == set(procfs.list_tasks(t.pid))
        assert tr.syscall(39) == t.pid
        tr.detach()
        assert_running(t.pid)
    rc, out = t.finish()
    assert rc == 0 and "done born=" in out
