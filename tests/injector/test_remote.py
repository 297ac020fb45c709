"""Remote syscalls, remote calls, remote dlopen and memfd sharing in a live target."""
from __future__ import annotations

import mmap
import os
import signal

import time

import pytest

from injector import loader, procfs, remote
from injector.errors import LoadError, RemoteError
from injector.tracee import Tracee

from .conftest import assert_running


@pytest.fixture
def attached(progs, target):
    """(Target, Tracee) for a 4-thread idle inj_threads; detached at teardown."""
    marker = progs.parent / f"marker-{os.getpid()}-{id(progs)}"
    env = dict(os.environ, INJ_MARKER=str(marker))
    t = target([progs / "inj_threads", 4], env=env)
    tr = Tracee.attach(t.pid)
    t.marker = marker
    yield t, tr
    if tr.threads:
        tr.detach()


def test_remote_syscalls(attached):
    t, tr = attached
    assert tr.syscall(remote.SYS_getpid) == t.pid
    other = tr.tids[-1]
    assert tr.syscall(remote.SYS_gettid, tid=other) == other
    addr = tr.syscall(remote.SYS_mmap, 0, 4096, remote.PROT_READ | remote.PROT_WRITE,
                      remote.MAP_PRIVATE | remote.MAP_ANONYMOUS, -1, 0)
    assert addr > 0 and procfs.find_mapping(tr.maps(), addr) is not None
    tr.write(addr, b"hello")
    assert tr.read(addr, 5) == b"hello"
    assert tr.syscall(remote.SYS_munmap, addr, 4096) == 0
    assert procfs.find_mapping(tr.maps(), addr) is None
    assert tr.syscall(remote.SYS_close, 987654) == -9  # -EBADF comes back signed


def test_registers_and_simd_state_restored_exactly(attached, progs):
    _, tr = attached
    before = {tid: (tr.get_regs(tid), tr.get_fpstate(tid)) for tid in tr.tids}
    lib = loader.load_library(tr, str(progs / "inj_lib.so"))
    assert lib.call("inj_answer") == 42
    tr.syscall(remote.SYS_getpid)
    for tid in tr.tids:
        regs, fp = before[tid]
        assert tr.get_regs(tid) == regs
        assert tr.get_fpstate(tid) == fp


def test_dlopen_constructor_dlsym_and_call(attached, progs):
    t, tr = attached
    lib = loader.load_library(tr, str(progs / "inj_lib.so"))
    assert lib.handle
    assert t.marker.read_text() == "loaded\n"
    assert lib.call("inj_answer") == 42
    assert lib.call("inj_sum6", 1, 2, 3, 4, 5, 6) == 91
    assert loader.load_library(tr, str(progs / "inj_lib.so")).handle == lib.handle
    tr.detach()
    assert_running(t.pid)
    rc, out = t.finish()
    assert rc == 0 and "done value=7 usr1=0" in out


def test_dlopen_and_dlsym_errors_carry_dlerror(attached, progs):
    _, tr = attached
    with pytest.raises(LoadError) as info:
        loader.load_library(tr, str(progs / "no-such-lib.so"))
    assert "no-such-lib.so" in str(info.value) and "No such file" in str(info.value)
    lib = loader.load_library(tr, str(progs / "inj_lib.so"))
    with pytest.raises(LoadError) as info:
        lib.sym("inj_missing")
    assert "undefined symbol: inj_missing" in str(info.value)


def test_fault_in_remote_call_is_contained(attached, progs):
    t, tr = attached
    lib = loader.load_library(tr, str(progs / "inj_lib.so"))
    regs = tr.get_regs(lib.tid)
    with pytest.raises(RemoteError) as info:
        lib.call("inj_crash")
    assert "SIGSEGV" in str(info.value)
    assert tr.get_regs(lib.tid) == regs
    assert lib.call("inj_answer") == 42
    tr.detach()
    rc, out = t.finish()
    assert rc == 0 and "done" in out


def test_memfd_shared_both_ways(attached, progs):
    _, tr = attached
    size = 8192
    fd = os.memfd_create("utrace-test", os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, size)
        local = mmap.mmap(fd, size)
        pattern = bytes(range(256)) * (size // 256)
        local[:] = pattern
        addr = loader.map_memfd(tr, fd, size)
        assert tr.read(addr, 16) == pattern[:16]
        links = [os.readlink(f"/proc/{tr.pid}/fd/{n}") for n in os.listdir(f"/proc/{tr.pid}/fd")]
        assert not any("utrace-test" in link for link in links)  # its fd was closed again
        lib = loader.load_library(tr, str(progs / "inj_lib.so"))
        assert lib.call("inj_touch", addr, size) == sum(pattern)
        assert local[:] == bytes((b + 1) & 0xFF for b in pattern)
        loader.unmap(tr, addr, size)
        local.close()
    finally:
        os.close(fd)


def test_spawned_target_loads_library_at_entry(progs):
    marker = progs.parent / f"marker-spawn-{os.getpid()}"
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        tr = Tracee.spawn([str(progs / "inj_threads"), "2"], env=dict(os.environ,
                          INJ_MARKER=str(marker)), stdin=devnull, stdout=devnull)
    finally:
        os.close(devnull)
    try:
        with pytest.raises(LoadError) as info:
            loader.load_library(tr, str(progs / "inj_lib.so"))
        assert "run_to_entry" in str(info.value)
        tr.run_to_entry()
        lib = loader.load_library(tr, str(progs / "inj_lib.so"))
        assert lib.call("inj_answer") == 42 and marker.read_text() == "loaded\n"
        st = tr.run_until_exit(timeout=20)
    except BaseException:
        tr.kill()
        raise
    assert st.exited and st.exit_code == 0


def test_pick_thread_avoids_malloc(progs, target):
    """T-30: a thread stopped inside malloc/free is not borrowed for dlopen."""
    t = target([progs / "inj_malloc"])
    seen_inside = False
    for _ in range(200):
        tr = Tracee.attach(t.pid)
        try:
            maps = tr.maps()
            ranges = remote._lock_ranges(tr, maps)
            score, _ = remote.thread_report(tr, t.pid, ranges, maps, [])
            if score >= 100:
                seen_inside = True
                assert remote.pick_thread(tr) != t.pid
                lib = loader.load_library(tr, str(progs / "inj_lib.so"), timeout=5)
                assert lib.call("inj_answer") == 42
                break
        finally:
            tr.detach()
    assert seen_inside, "the main thread was never caught inside malloc/free"
    rc, out = t.finish()
    assert rc == 0 and "done" in out


def test_dlopen_while_another_thread_is_inside_dlopen(progs, target):
    """T-30: a thread stopped inside dlopen holds ld.so's load lock; ours must not deadlock.

    The other thread is inside a 3 s library constructor (dlopen holds the lock while
    constructors run); the injector lets it run out of the loader, then stops it again.
    """
    t = target([progs / "inj_dlslow", progs / "inj_slowctor.so"])
    tr = Tracee.attach(t.pid)
    try:
        t0 = time.monotonic()
        lib = loader.load_library(tr, str(progs / "inj_lib.so"), timeout=8)
        took = time.monotonic() - t0
        assert all(th.stopped for th in tr.threads.values())  # stopped again afterwards
        assert lib.call("inj_answer") == 42
    finally:
        tr.detach()
    assert 0.5 < took < 5, f"{took:.1f} s: the load lock was never released to us"
    rc, out = t.finish()
    assert rc == 0 and "opened ok" in out and out.rstrip().endswith("done")


def test_signal_arriving_during_remote_work_is_redelivered(progs, target):
    """A signal dequeued while we borrow a thread reaches the program after detach."""
    t = target([progs / "inj_threads", 1])
    tr = Tracee.attach(t.pid)
    try:
        os.kill(t.pid, signal.SIGUSR1)  # pending while stopped; dequeued when we run code
        assert tr.syscall(remote.SYS_getpid) == t.pid
        lib = loader.load_library(tr, str(progs / "inj_lib.so"))
        assert lib.call("inj_answer") == 42
    finally:
        tr.detach()
    assert_running(t.pid)
    rc, out = t.finish()
    assert rc == 0 and "usr1=1" in out, out
