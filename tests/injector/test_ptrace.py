"""The thin ptrace layer: status decoding and error messages."""
from __future__ import annotations

import errno
import os
import signal

import pytest

from injector import ptrace as pt


def test_status_decoding():
    assert pt.WaitStatus(1, 3 << 8).exited and pt.WaitStatus(1, 3 << 8).exit_code == 3
    killed = pt.WaitStatus(1, signal.SIGKILL)
    assert killed.signaled and killed.term_signal == signal.SIGKILL and not killed.stopped
    interrupt = pt.WaitStatus(1, 0x7F | signal.SIGTRAP << 8 | pt.EVENT_STOP << 16)
    assert interrupt.stopped and interrupt.event == pt.EVENT_STOP
    assert interrupt.is_interrupt_stop and not interrupt.is_group_stop
    group = pt.WaitStatus(1, 0x7F | signal.SIGSTOP << 8 | pt.EVENT_STOP << 16)
    assert group.is_group_stop and not group.is_interrupt_stop
    clone = pt.WaitStatus(1, 0x7F | signal.SIGTRAP << 8 | pt.EVENT_CLONE << 16)
    assert clone.event == pt.EVENT_CLONE and not clone.is_signal_delivery_stop
    sig = pt.WaitStatus(1, 0x7F | signal.SIGUSR1 << 8)
    assert sig.is_signal_delivery_stop and sig.stop_signal == signal.SIGUSR1
    sysstop = pt.WaitStatus(1, 0x7F | (0x80 | signal.SIGTRAP) << 8)
    assert sysstop.is_syscall_stop and not sysstop.is_signal_delivery_stop


def test_error_names_op_pid_errno():
    pid = 2 ** 22 + 12345  # above pid_max: never a process
    with pytest.raises(pt.PtraceError) as info:
        pt.seize(pid)
    e = info.value
    assert e.errno == errno.ESRCH and e.op == "PTRACE_SEIZE" and e.pid == pid
    assert str(e) == f"PTRACE_SEIZE pid {pid}: {os.strerror(errno.ESRCH)} (errno 3)"


def test_waitpid_without_children():
    with pytest.raises(pt.PtraceError) as info:
        pt.waitpid(2 ** 22 + 12345, pt.WNOHANG)
    assert info.value.errno == errno.ECHILD and "waitpid" in str(info.value)


def test_to_signed():
    assert pt.to_signed(2 ** 64 - 512) == -512
    assert pt.to_signed(5) == 5
