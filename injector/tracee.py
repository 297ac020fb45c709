"""Tracee: a process under ptrace — its threads, registers, memory, stops and detach.

Rules this module keeps (the why is next to the code):
- Every ptrace call comes from the thread that attached (the kernel binds a
  tracee to the tracer *thread*); use a Tracee from one Python thread only.
- Threads are seized, never PTRACE_ATTACHed, so PTRACE_INTERRUPT works and
  no SIGSTOP is ever injected. Attach loops over /proc/PID/task until a scan
  finds no thread we have not seized; threads born meanwhile arrive through
  PTRACE_O_TRACECLONE.
- While stopping threads, a signal-delivery-stop is held as the thread's
  stop and its siginfo kept for re-delivery; event stops inside a syscall
  (clone, fork, exec) are resumed and the thread interrupted again, since
  registers changed there would be clobbered by the syscall's return.
- At an interrupt stop, a syscall that the interruption itself made fail with
  EINTR (epoll_wait, semop, sigtimedwait, sockets with timeouts: the kernel
  does not restart those) is turned into a restart: rax = orig_rax and
  rip -= 2, unless a caught, unblocked signal is pending (then the EINTR is
  the program's own). -ERESTART* returns need nothing: the kernel restarts
  them when the thread resumes with those registers.
- Signals withheld while stopped or during a remote call are re-delivered
  on resume/detach (siginfo intact from a signal-delivery-stop).
"""
from __future__ import annotations

import errno
import os
import signal
import time
from dataclasses import dataclass, field

from . import checks, procfs
from . import ptrace as pt
from .errors import InjectorError, InjectorTimeout, TraceeExited

DEFAULT_OPTIONS = pt.O_TRACECLONE
EINTR = errno.EINTR
_SYSCALL_INSN = b"\x0f\x05"


@dataclass
class FpState:
    """Saved SIMD/FPU state of a thread: the XSAVE area, or the FXSAVE area as a fallback."""

    kind: str
    data: bytes


@dataclass
class Thread:
    """What we know of one traced thread."""

    tid: int
    stopped: bool = False
    last: pt.WaitStatus | None = None
    pending: list[bytes] = field(default_factory=list)  # withheld siginfos to re-deliver
    interrupted: bool = False  # a PTRACE_INTERRUPT of ours is not yet consumed
    eintr_restarted: bool = False

    @property
    def in_signal_delivery_stop(self) -> bool:
        return self.stopped and self.last is not None and self.last.is_signal_delivery_stop


def _poll_delays():
    # Most stops arrive within microseconds: spin briefly, then back off to 2 ms.
    yield from (0, 0, 0)
    delay = 0.00005
    while True:
        yield delay
        delay = min(delay * 2, 0.002)


class Tracee:
    """A traced process. Create with attach(), spawn() or adopt()."""

    def __init__(self, pid: int, options: int):
        self.pid = pid
        self.options = options
        self.threads: dict[int, Thread] = {}
        self.new_children: list[int] = []  # pids auto-attached by fork/vfork events
        self.exec_count = 0
        self.exit_status: pt.WaitStatus | None = None
        self.spawned = False
        self.scratch: int | None = None  # set by injector.remote
        # int3s the tracer placed whose SIGTRAP the program's own (injected) handler
        # serves: a remote call that runs into one passes the signal on.
        self.served_traps: set[int] = set()
        self._mem_fd: int | None = None
        self._syscall_insn: int | None = None

    # -- construction -------------------------------------------------------------
    @classmethod
    def attach(cls, pid: int, *, options: int = DEFAULT_OPTIONS, force: bool = False,
               timeout: float = 5.0, yama_path: str = checks.YAMA_PATH) -> "Tracee":
        """Seize every thread of a running process and stop them all."""
        checks.precheck(pid, force, yama_path=yama_path)
        self = cls(pid, options | pt.O_TRACECLONE)
        deadline = time.monotonic() + timeout
        try:
            while True:
                tids = procfs.list_tasks(pid)
                if not tids:
                    raise TraceeExited(pid, f"process {pid} exited during attach")
                new = sorted((t for t in tids if t not in self.threads), key=lambda t: t != pid)
                if not new:
                    break
                for tid in new:
                    self._seize_one(tid, yama_path)
                self._wait_all_stopped(deadline)
            if not self.threads:
                raise TraceeExited(pid, f"process {pid} has no live threads")
            self._open_mem()
            self._check_dumpable(force)
        except BaseException:
            self._abandon()
            raise
        return self

    def _seize_one(self, tid: int, yama_path: str) -> None:
        try:
            pt.seize(tid, self.options)
        except pt.PtraceError as e:
            if e.errno == errno.ESRCH:
                return  # the thread exited meanwhile
            if e.errno == errno.EPERM:
                # A zombie leader cannot be seized, and a thread born after its
                # parent was seized is ours already (TRACECLONE; its clone event
                # is on the way): both are fine.
                try:
                    st = procfs.read_status(self.pid, tid)
                except OSError:
                    return
                if st.get("State", "").startswith(("Z", "X")) or (
                        tid != self.pid and int(st.get("TracerPid", 0)) == os.getpid()):
                    return
            raise checks.explain_seize_failure(self.pid, e, yama_path=yama_path) from None
        self.threads[tid] = Thread(tid)
        try:
            pt.interrupt(tid)
            self.threads[tid].interrupted = True
        except pt.PtraceError as e:
            if e.errno != errno.ESRCH:
                raise

    def _check_dumpable(self, force: bool) -> None:
        # Root may seize a non-dumpable process of its own uid, and /proc does
        # not show that state then; ask the process itself (PR_GET_DUMPABLE).
        if force or not procfs.has_cap_sys_ptrace():
            return
        from . import remote
        if remote.remote_syscall(self, remote.SYS_prctl, 3) == 0:  # PR_GET_DUMPABLE
            raise checks.AttachRefused(self.pid, "non-dumpable",
                                       checks.nondumpable_message(self.pid))

    @classmethod
    def spawn(cls, argv: list[str], env: dict[str, str] | None = None, *,
              options: int = DEFAULT_OPTIONS, cwd: str | None = None,
              stdin: int | None = None, stdout: int | None = None, stderr: int | None = None,
              timeout: float = 10.0) -> "Tracee":
        """Fork and exec argv, returning it stopped before ld.so runs (see injector.spawn)."""
        from . import spawn
        return spawn.spawn(cls, argv, env, options=options, cwd=cwd, stdin=stdin,
                           stdout=stdout, stderr=stderr, timeout=timeout)

    @classmethod
    def adopt(cls, pid: int, *, options: int = DEFAULT_OPTIONS, timeout: float = 5.0
              ) -> "Tracee":
        """Take over a process auto-attached by a fork/vfork event (see new_children)."""
        self = cls(pid, options | pt.O_TRACECLONE)
        self.threads[pid] = Thread(pid)
        self._wait_all_stopped(time.monotonic() + timeout)
        self._open_mem()
        return self

    def _mem(self) -> int:
        if self._mem_fd is None:
            if not self.threads:
                raise InjectorError(f"process {self.pid} is not traced any more")
            self._open_mem()
        return self._mem_fd

    def _open_mem(self) -> None:
        if self._mem_fd is not None:
            os.close(self._mem_fd)
        self._mem_fd = os.open(f"/proc/{self.pid}/mem", os.O_RDWR | os.O_CLOEXEC)

    # -- waiting ---------------------------------------------------------------------
    def _wait(self, tid: int, deadline: float, serve=None) -> pt.WaitStatus:
        """The next wait status of tid, polling until the deadline (calling serve()
        before each poll, for other threads that must be kept going meanwhile)."""
        for delay in _poll_delays():
            if serve is not None:
                serve()
            try:
                st = pt.waitpid(tid, pt.WNOHANG)
            except pt.PtraceError as e:
                if e.errno == errno.ECHILD:
                    self._thread_gone(tid, None)
                    raise TraceeExited(self.pid, f"thread {tid} of {self.pid} is gone") from None
                raise
            if st is not None:
                return st
            if time.monotonic() > deadline:
                raise InjectorTimeout(f"thread {tid} of process {self.pid} did not stop in time")
            if delay:
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _thread_gone(self, tid: int, st: pt.WaitStatus | None) -> None:
        self.threads.pop(tid, None)
        if tid == self.pid and st is not None:
            # With __WALL the leader's death is reported last: the process is gone.
            self.exit_status = st
            self.threads.clear()

    def handle_status(self, st: pt.WaitStatus, hold: bool = True) -> bool:
        """Account for a wait status of one of our threads.

        Returns True when the thread is now held stopped in a stop where it may
        be borrowed (PTRACE_EVENT_STOP or a signal-delivery-stop), False when it
        was resumed or is gone. With hold, a signal-delivery-stop is held and its
        signal kept for re-delivery, and a thread resumed from an event stop is
        interrupted again (any ptrace stop consumes a pending interrupt). Event
        stops inside a syscall (clone, fork, exec) are never held: the syscall's
        return value is written after them, so registers changed there would be
        clobbered.
        """
        tid = st.pid
        th = self.threads.get(tid)
        if st.exited or st.signaled:
            self._thread_gone(tid, st)
            return False
        if th is None:  # a clone whose event we have not seen yet
            th = self.threads[tid] = Thread(tid)
        th.last = st
        ev = st.event
        if ev == pt.EVENT_STOP:
            th.stopped, th.interrupted = True, False
            if st.is_interrupt_stop and hold:
                self._fix_eintr(th)
            return True
        if st.is_signal_delivery_stop and hold:
            th.pending.append(pt.getsiginfo(tid))
            th.stopped, th.interrupted = True, False
            return True
        again = hold and ev != pt.EVENT_EXIT
        if ev in (pt.EVENT_CLONE, pt.EVENT_FORK, pt.EVENT_VFORK):
            new = pt.geteventmsg(tid)
            if ev == pt.EVENT_CLONE:
                self.threads.setdefault(new, Thread(new))
            else:
                self.new_children.append(new)
        elif ev == pt.EVENT_EXEC:
            self._exec_happened(pt.geteventmsg(tid))
            tid = self.pid
            th = self.threads[tid]
        sig = st.stop_signal if st.is_signal_delivery_stop else 0
        pt.cont(tid, sig)
        th.stopped = False
        if again:
            pt.interrupt(tid)
            th.interrupted = True
        return False

    def _exec_happened(self, former_tid: int) -> None:
        # The exec'ing thread now has the leader's tid; the other threads are
        # dead (de_thread waited for them) and only need reaping.
        self.exec_count += 1
        for other in self.threads:
            if other not in (self.pid, former_tid):
                try:
                    pt.waitpid(other, pt.WNOHANG)
                except pt.PtraceError:
                    pass
        self.threads = {self.pid: Thread(self.pid)}
        self.scratch = None
        self.served_traps = set()  # the old image's int3s are gone with it
        self._syscall_insn = None
        self._open_mem()

    def _fix_eintr(self, th: Thread) -> None:
        regs = pt.getregs(th.tid)
        if pt.to_signed(regs.orig_rax) < 0 or pt.to_signed(regs.rax) != -EINTR:
            return
        if procfs.pending_caught_signals(self.pid, th.tid):
            return  # a real signal interrupted it: the program sees its EINTR
        try:
            if self.read(regs.rip - 2, 2) != _SYSCALL_INSN:
                return
        except OSError:
            return
        regs.rax = regs.orig_rax
        regs.rip -= 2
        pt.setregs(th.tid, regs)
        th.eintr_restarted = True

    def _wait_all_stopped(self, deadline: float) -> None:
        delays = _poll_delays()
        while True:
            waiting = [t for t, th in self.threads.items() if not th.stopped]
            if not waiting:
                return
            progressed = False
            for tid in waiting:
                try:
                    st = pt.waitpid(tid, pt.WNOHANG)
                except pt.PtraceError as e:
                    if e.errno != errno.ECHILD:
                        raise
                    self.threads.pop(tid, None)
                    progressed = True
                    continue
                if st is not None:
                    progressed = True
                    self.handle_status(st)
                    if self.exit_status is not None:
                        raise TraceeExited(self.pid, f"process {self.pid} exited: {st}",
                                           st.raw)
            if progressed:
                delays = _poll_delays()
                continue
            if time.monotonic() > deadline:
                raise InjectorTimeout(
                    f"threads {waiting[:8]} of process {self.pid} did not stop in time "
                    "(uninterruptible sleep, or a vfork parent waiting for its child?)")
            d = next(delays)
            if d:
                time.sleep(d)

    # -- stop / resume / detach -----------------------------------------------------------
    def stop_all(self, timeout: float = 5.0) -> None:
        """Interrupt every running thread and wait until all are stopped."""
        for th in list(self.threads.values()):
            if not th.stopped and not th.interrupted:
                try:
                    pt.interrupt(th.tid)
                    th.interrupted = True
                except pt.PtraceError as e:
                    if e.errno != errno.ESRCH:
                        raise
        self._wait_all_stopped(time.monotonic() + timeout)

    def _deliver_pending(self, th: Thread) -> int:
        """Queue withheld signals again; return the one to pass with the resume request."""
        if not th.pending:
            return 0
        infos, th.pending = th.pending, []
        sig = 0
        if th.in_signal_delivery_stop:
            # Injected from a signal-delivery-stop, a signal keeps its siginfo.
            pt.setsiginfo(th.tid, infos[0])
            sig = pt.siginfo_fields(infos[0])[0]
            infos = infos[1:]
        for info in infos:
            pt.tgkill(self.pid, th.tid, pt.siginfo_fields(info)[0])
        return sig

    def resume(self, tid: int) -> None:
        """PTRACE_CONT one stopped thread, re-delivering withheld signals."""
        th = self.threads[tid]
        pt.cont(tid, self._deliver_pending(th))
        th.stopped = False

    def resume_all(self, but: int | None = None) -> None:
        """Let every stopped thread (but one) run, staying attached."""
        for tid, th in list(self.threads.items()):
            if th.stopped and tid != but:
                try:
                    self.resume(tid)
                except pt.PtraceError as e:
                    if e.errno != errno.ESRCH:
                        raise
                    self.threads.pop(tid, None)

    def detach(self, timeout: float = 5.0) -> None:
        """Detach from every thread, leaving each running with nothing of ours pending."""
        try:
            if any(not th.stopped for th in self.threads.values()):
                self.stop_all(timeout)
        except TraceeExited:
            pass
        for tid, th in list(self.threads.items()):
            try:
                pt.detach(tid, self._deliver_pending(th))
            except pt.PtraceError as e:
                if e.errno != errno.ESRCH:
                    raise
        self.threads.clear()
        self._close()

    def _abandon(self) -> None:
        """Best-effort detach after a failed attach (threads may be half-stopped)."""
        try:
            self._wait_all_stopped(time.monotonic() + 2.0)
        except InjectorError:
            pass
        for tid in list(self.threads):
            try:
                pt.detach(tid, 0)
            except pt.PtraceError:
                pass
        self.threads.clear()
        self._close()

    def kill(self) -> None:
        """SIGKILL the process and reap what we can."""
        if self.exit_status is not None:
            self.threads.clear()
            self._close()
            return  # already reaped: the pid may belong to someone else now
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 5
        for tid in sorted(self.threads, key=lambda t: t == self.pid) or [self.pid]:
            while time.monotonic() < deadline:
                try:
                    st = pt.waitpid(tid, pt.WNOHANG)
                except pt.PtraceError:
                    break
                if st is not None and (st.exited or st.signaled):
                    break
                time.sleep(0.001)
        self.threads.clear()
        self._close()

    def _close(self) -> None:
        if self._mem_fd is not None:
            os.close(self._mem_fd)
            self._mem_fd = None

    def __enter__(self) -> "Tracee":
        return self

    def __exit__(self, *exc) -> None:
        if self.threads:
            self.detach()

    def run_until_exit(self, timeout: float = 30.0) -> pt.WaitStatus:
        """Resume everything and service events until the process is gone."""
        from . import spawn
        return spawn.run_until_exit(self, timeout)

    # -- registers and memory -------------------------------------------------------------
    @property
    def tids(self) -> list[int]:
        """Thread ids, the leader first."""
        return sorted(self.threads, key=lambda t: (t != self.pid, t))

    def _stopped(self, tid: int | None) -> int:
        tid = self.pid if tid is None else tid
        th = self.threads.get(tid)
        if th is None or not th.stopped:
            raise InjectorError(f"thread {tid} of process {self.pid} is not stopped")
        return tid

    def get_regs(self, tid: int | None = None) -> pt.Regs:
        """General registers (incl. orig_rax) of a stopped thread (default: the leader)."""
        return pt.getregs(self._stopped(tid))

    def set_regs(self, regs: pt.Regs, tid: int | None = None) -> None:
        """Write general registers of a stopped thread."""
        pt.setregs(self._stopped(tid), regs)

    def get_fpstate(self, tid: int | None = None) -> FpState:
        """Full SIMD state (XSAVE area; FXSAVE when the kernel lacks the regset)."""
        tid = self._stopped(tid)
        try:
            return FpState("xstate", pt.getregset(tid, pt.NT_X86_XSTATE))
        except pt.PtraceError as e:
            if e.errno not in (errno.EINVAL, errno.ENODEV, errno.EIO):
                raise
            return FpState("fx", pt.getfpregs(tid))

    def set_fpstate(self, state: FpState, tid: int | None = None) -> None:
        """Restore what get_fpstate saved."""
        tid = self._stopped(tid)
        if state.kind == "xstate":
            pt.setregset(tid, pt.NT_X86_XSTATE, state.data)
        else:
            pt.setfpregs(tid, state.data)

    def read(self, addr: int, size: int) -> bytes:
        """Read target memory through /proc/PID/mem (any readable or ptrace-forced page)."""
        data = os.pread(self._mem(), size, addr)
        if len(data) != size:
            raise OSError(errno.EIO, f"short read of {size} bytes at {addr:#x} in {self.pid}")
        return data

    def write(self, addr: int, data: bytes) -> None:
        """Write target memory through /proc/PID/mem (works on read-only text too)."""
        n = os.pwrite(self._mem(), data, addr)
        if n != len(data):
            raise OSError(errno.EIO, f"short write of {len(data)} bytes at {addr:#x}")

    def read_cstring(self, addr: int, limit: int = 4096) -> bytes:
        """A NUL-terminated string, read page by page so an unmapped tail does not fail it."""
        out = b""
        while len(out) < limit:
            chunk = min(4096 - (addr + len(out)) % 4096, limit - len(out))
            data = self.read(addr + len(out), chunk)
            nul = data.find(b"\0")
            if nul >= 0:
                return out + data[:nul]
            out += data
        return out

    def maps(self) -> list[procfs.Mapping]:
        """The target's current /proc/PID/maps."""
        return procfs.read_maps(self.pid)

    def run_to_entry(self, timeout: float = 10.0) -> None:
        """From the exec stop, run ld.so until the program's entry point (libc ready)."""
        from . import spawn
        spawn.run_to_entry(self, timeout)

    # -- remote execution (see injector.remote) ---------------------------------------------
    def syscall(self, nr: int, *args: int, tid: int | None = None,
                timeout: float = 10.0) -> int:
        """Run one syscall in a stopped thread; the signed result (-errno on error)."""
        from . import remote
        return remote.remote_syscall(self, nr, *args, tid=tid, timeout=timeout)

    def call(self, func: int, *args: int, tid: int | None = None,
             timeout: float = 10.0) -> int:
        """Call func(args...) (up to 6 integers) in a stopped thread; returns rax."""
        from . import remote
        return remote.remote_call(self, func, *args, tid=tid, timeout=timeout)
