"""Starting a command under trace (stopped before its first instruction) and running it out."""
from __future__ import annotations

import os
import signal
import time

from . import checks, procfs
from . import ptrace as pt
from .errors import InjectorTimeout, SpawnError, TraceeExited


def spawn(cls, argv: list[str], env: dict[str, str] | None = None, *, options: int,
          cwd: str | None = None, stdin: int | None = None, stdout: int | None = None,
          stderr: int | None = None, timeout: float = 10.0):
    """Fork and exec argv; return a `cls` (Tracee) stopped before ld.so's first instruction.

    The child is seized, not PTRACE_TRACEME'd: only a seized tracee (and the
    threads and children it creates, which inherit that) can be stopped with
    PTRACE_INTERRUPT and reports group-stops as such. So the child blocks on
    a pipe until the parent has seized it, then execs; between fork and exec
    it only reads that pipe, dup2s the requested standard fds and chdirs.
    An exec failure travels back over a CLOEXEC pipe.
    """
    go_r, go_w = os.pipe()
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # child: nothing but the pipe read, dup2 and exec
        try:
            os.close(go_w)
            os.close(err_r)
            os.read(go_r, 1)
            os.close(go_r)
            for fd, std in ((stdin, 0), (stdout, 1), (stderr, 2)):
                if fd is not None:
                    os.dup2(fd, std)
            if cwd is not None:
                os.chdir(cwd)
            if env is None:
                os.execvp(argv[0], argv)
            else:
                os.execvpe(argv[0], argv, env)
        except BaseException as e:  # noqa: BLE001 - report anything, then die
            try:
                os.write(err_w, f"{getattr(e, 'errno', 0) or 0}:{e}".encode()[:512])
            finally:
                os._exit(127)
    os.close(go_r)
    os.close(err_w)
    from .tracee import Thread
    tracee = cls(pid, options | pt.O_TRACECLONE | pt.O_TRACEEXEC)
    tracee.spawned = True
    try:
        try:
            pt.seize(pid, tracee.options)
        except pt.PtraceError as e:
            raise checks.explain_seize_failure(pid, e) from None
        tracee.threads[pid] = Thread(pid)
        os.write(go_w, b"g")
        os.close(go_w)
        go_w = -1
        _wait_for_exec(tracee, time.monotonic() + timeout, err_r)
    except BaseException:
        if go_w >= 0:
            os.close(go_w)
        tracee.kill()
        raise
    finally:
        os.close(err_r)
    return tracee


def _wait_for_exec(tracee, deadline: float, err_r: int) -> None:
    pid = tracee.pid
    while True:
        st = tracee._wait(pid, deadline)
        if st.exited or st.signaled:
            tracee._thread_gone(pid, st)
            msg = os.read(err_r, 600).decode(errors="replace")
            raise SpawnError(f"cannot run {msg.partition(':')[2] or st}")
        if st.event == pt.EVENT_EXEC:
            # Registers changed at the exec event would be clobbered by
            # execve's return value: move on to an interrupt stop, taken on
            # the way back to user mode, before ld.so's first instruction.
            pt.interrupt(pid)
            pt.cont(pid)
            tracee.threads[pid].interrupted = True
            tracee._wait_all_stopped(deadline)
            return
        pt.cont(pid, st.stop_signal if st.is_signal_delivery_stop else 0)


def run_to_entry(tracee, timeout: float = 10.0) -> None:
    """Run a process stopped at exec until its AT_ENTRY: ld.so has loaded libc by then.

    A temporary int3 at the entry point, restored before returning; all
    threads are stopped afterwards.
    """
    pid = tracee.pid
    entry = procfs.read_auxv(pid)[procfs.AT_ENTRY]
    saved = tracee.read(entry, 1)
    tracee.write(entry, b"\xcc")
    deadline = time.monotonic() + timeout
    try:
        tracee.resume(pid)
        while True:
            st = tracee._wait(pid, deadline)
            if st.is_signal_delivery_stop and st.stop_signal == signal.SIGTRAP:
                regs = pt.getregs(pid)
                if regs.rip == entry + 1:
                    th = tracee.threads[pid]
                    th.stopped, th.last = True, st
                    regs.rip = entry
                    pt.setregs(pid, regs)
                    break
            if tracee.handle_status(st, hold=False):
                tracee.resume(st.pid)
            if tracee.exit_status is not None:
                raise TraceeExited(pid, f"process {pid} exited before its entry point: {st}")
        tracee.stop_all(timeout)
    finally:
        if tracee.threads:
            tracee.write(entry, saved)


def run_until_exit(tracee, timeout: float = 30.0) -> pt.WaitStatus:
    """Resume every thread and service ptrace events until the process is gone.

    Signals are passed through; a group-stop is kept with PTRACE_LISTEN so
    job control behaves as without a tracer.
    """
    deadline = time.monotonic() + timeout
    tracee.resume_all()
    while tracee.threads:
        progressed = False
        for tid in list(tracee.threads):
            try:
                st = pt.waitpid(tid, pt.WNOHANG)
            except pt.PtraceError:
                tracee.threads.pop(tid, None)
                continue
            if st is None:
                continue
            progressed = True
            if tracee.handle_status(st, hold=False):
                if st.is_group_stop:
                    pt.listen(st.pid)
                    tracee.threads[st.pid].stopped = False
                else:
                    tracee.resume(st.pid)
        if time.monotonic() > deadline:
            raise InjectorTimeout(f"process {tracee.pid} still running after {timeout} s")
        if not progressed:
            time.sleep(0.001)
    tracee._close()
    if tracee.exit_status is None:
        raise TraceeExited(tracee.pid, f"process {tracee.pid} is gone (status unknown)")
    return tracee.exit_status
