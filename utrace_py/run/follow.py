"""Pass 5, following: the traced process tree while a -c/-x session runs.

The tracer stays attached (ptrace) to every process of the tree with
PTRACE_O_TRACECLONE/FORK/VFORK/EXEC, and services their stops from the
session's main loop, which sleeps on a SIGCHLD wake-up pipe so that a stop is
answered within microseconds, not at the next 20 ms drain.

- A new thread stops once before running: process.thread.begin probes run in
  it (remote call on that thread), then it goes on.  Its exit runs
  process.thread.end in the tracer with the thread's identity (it can run
  nothing any more).
- A new process (fork, vfork, posix_spawn, clone without CLONE_THREAD) stops
  once before running: it inherited our library, region and patches.  A
  forked child gets its context TLS block zeroed (one write of its memory: it
  claims its own context slot at its first hit, never its parent's); a
  CLONE_VM child (vfork, posix_spawn) shares the TLS of its parent thread,
  which is blocked until the child execs or exits: the tracer claims that
  thread's slot for it beforehand, so the child borrows the parent's context
  and never leaves one registered to itself.  process.begin runs in the child.
- exec: process.thread.end for the threads exec killed, process.end for the
  old image (as stap's task finder), then the new image is run to its entry
  point, gets the handlers loaded and its function probes armed when any
  probe applies to it, and process.begin runs in it.
- A process's exit runs process.end in the tracer with that process's identity.

At the end (the -c command exited, exit(), Ctrl-C, -x) every followed process
is stopped, its patches are put back (and the region and library taken out
when nothing was patched), and it is detached and left running.
"""
from __future__ import annotations

import ctypes
import errno
import os
import select
import signal
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from injector import ptrace as pt
from injector.errors import InjectorError, TraceeExited
from injector.tracee import Thread, Tracee

from .target import Identity, TargetError, TargetProcess, read_identity

FOLLOW_OPTIONS = pt.O_TRACECLONE | pt.O_TRACEFORK | pt.O_TRACEVFORK | pt.O_TRACEEXEC
EARLY_GRACE = 0.2   # s a new task's first stop waits for its creator's event
FINISH_TIME = 3.0   # s to stop everything at the end of the session
SPIN_AFTER_STOP = 0.0001  # s poll() keeps looking for the next stop after one
SPIN_MAX = 0.01           # s poll() may run before the main loop drains output again
SYS_KCMP, KCMP_VM = 312, 1
TLS_BLOCK = 24  # ctx.c's _utr_tls: context, region base, cached tid

_libc = ctypes.CDLL(None, use_errno=True)


def _status_ids(tid: int) -> tuple[int, int] | None:
    """(Tgid, PPid) of a task, None when it is gone."""
    try:
        with open(f"/proc/{tid}/status", encoding="utf-8", errors="replace") as f:
            vals = {}
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Tgid", "PPid"):
                    vals[k] = int(v)
                    if len(vals) == 2:
                        break
        return vals["Tgid"], vals["PPid"]
    except (OSError, KeyError, ValueError):
        return None


def _shares_vm(a: int, b: int, default: bool) -> bool:
    """Whether processes a and b share one address space (kcmp KCMP_VM)."""
    r = _libc.syscall(SYS_KCMP, a, b, KCMP_VM, 0, 0)
    return default if r < 0 else r == 0


def function_probes(probes: list, ident: Identity, root_exe: str) -> list:
    """The function and mark probes for a process image: those for its executable (a probe
    without a path is for the -c/-x program's, as stap resolves it when it compiles the
    script) and those for a library path it has mapped."""
    mine = [p for p in probes if p.kind in ("process.function", "process.mark")
            and (p.target_pid is None or p.target_pid == ident.pid)]
    if any(p.target_path and p.target_path != ident.exe for p in mine):
        mapped = _mapped_paths(ident.pid)
    return [p for p in mine if (p.target_path or root_exe) == ident.exe
            or (p.target_path and p.target_path in mapped)]


def _mapped_paths(pid: int) -> set[str]:
    paths = set()
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) == 6 and parts[5].startswith("/"):
                    paths.add(parts[5].rstrip("\n"))
    except OSError:
        pass
    return {os.path.realpath(x) for x in paths}


@dataclass
class Proc:
    """One followed process (image)."""

    tracee: Tracee
    ident: Identity
    tp: TargetProcess | None        # the handlers in this image; None: not loaded here
    vm_parent: "Proc | None" = None  # vfork/posix_spawn child: in its parent's memory
    root: bool = False
    fault: str = ""  # the last fatal-looking signal it received, said if it dies of it

    @property
    def pid(self) -> int:
        return self.tracee.pid


_CRASHES = {signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT, signal.SIGTRAP,
            signal.SIGSYS}


def _describe_fault(pid: int, tid: int, sig: int) -> str:
    """"SIGSEGV at pc 0x... in /path" for a thread stopped with a fatal signal."""
    try:
        pc = pt.getregs(tid).rip
    except pt.PtraceError:
        return signal.Signals(sig).name
    where = "unmapped memory"
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.split(maxsplit=5)
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                if lo <= pc < hi:
                    where = fields[5].strip() if len(fields) > 5 else "an anonymous mapping"
                    break
    except (OSError, ValueError, IndexError):
        where = "?"
    return f"{signal.Signals(sig).name} at pc {pc:#x} in {where}"


class _NotOurs(Exception):
    """An exec'ed image none of whose probes apply, seen once its libraries are mapped."""


@dataclass
class _Birth:
    """A task announced by its creator's event whose first stop is not handled yet."""

    kind: str  # thread | fork | vfork | clone (a process from clone without CLONE_THREAD)
    parent: Proc
    parent_tid: int
    tp: TargetProcess | None = None  # the parent's handlers and armed sites at the fork
    report: object = None


class Follower:
    """Every process of the session's tree, attached, their stops serviced."""

    def __init__(self, session, root: TargetProcess) -> None:
        self.s = session
        self.lib = session.lib
        self.procs: dict[int, Proc] = {}
        self.owner: dict[int, Proc] = {}     # tid -> its process
        self.births: dict[int, _Birth] = {}
        self.early: dict[int, tuple[pt.WaitStatus, float]] = {}
        self.vfork_waiting: dict[int, int] = {}  # child pid -> parent tid blocked in vfork
        self.root_pid = root.pid
        self.root_exe = root.identity.exe
        self.root_status: pt.WaitStatus | None = None
        self.forks = self.execs = self.threads_seen = 0
        self._warned: set[str] = set()
        self._done = False
        tr = root._tracee
        proc = Proc(tr, root.identity, root, root=True)
        self._add(proc)
        self._note_traps(proc)
        for tid in tr.tids:
            pt.setoptions(tid, FOLLOW_OPTIONS)
        tr.options = FOLLOW_OPTIONS
        # SIGCHLD (sent to a tracer for every stop of its tracees) wakes the main loop.
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            self._old_chld = signal.signal(signal.SIGCHLD, _ignore)
            self._old_wakeup = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        except ValueError:  # not the main thread: poll on the timer only
            self._old_chld = self._old_wakeup = None
        self._place_dl_hook(proc)
        if not root.spawned:
            # stap's task finder runs the begin callbacks of every thread it finds at
            # start: thread.begin for each thread but the leader.
            for tid in tr.tids:
                if tid != tr.pid:
                    self._thread_begin(proc, tid)
        tr.resume_all()

    # -- the main loop's part --------------------------------------------------------------
    def wait(self, delay: float) -> None:
        """Sleep up to delay seconds, waking at once when a traced task stops (SIGCHLD)."""
        try:
            select.select([self._wake_r], [], [], max(delay, 0))
        except InterruptedError:
            pass
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def poll(self) -> None:
        """Service every stop and exit the kernel has for us (never blocks).

        Statuses are taken in batches, exits first: waitpid reports the newest tracees
        first, and a dead thread is a zombie holding its context slot until it is
        reaped, so reaping must not wait behind the remote calls new threads need.
        """
        start = time.monotonic()
        last = None
        while True:
            batch = self._collect_statuses()
            now = time.monotonic()
            if not batch:
                # Stops come in bursts (a trap-tier probe in a loop, a fork storm): after
                # one, look for the next a little while awake rather than through SIGCHLD
                # and the main loop, but let the main loop drain output every 10 ms.
                if last is not None and now - last < SPIN_AFTER_STOP and now - start < SPIN_MAX:
                    continue
                break
            last = now
            batch.sort(key=lambda st: not (st.exited or st.signaled))
            for st in batch:
                self._dispatch_safe(st)
            if time.monotonic() - start >= SPIN_MAX:
                break  # a storm of stops: let timers and the drain run, then come back
        if self.early:
            self._settle_early()

    def _dispatch_safe(self, st: pt.WaitStatus) -> None:
        try:
            self._dispatch(st)
        except (InjectorError, OSError, KeyError) as e:
            self._task_trouble(st.pid, e)

    @staticmethod
    def _collect_statuses() -> list[pt.WaitStatus]:
        out = []
        while True:
            try:
                st = pt.waitpid(-1, pt.WNOHANG)
            except pt.PtraceError as e:
                if e.errno == errno.ECHILD:
                    return out
                raise
            if st is None:
                return out
            out.append(st)

    # -- events ---------------------------------------------------------------------------------
    def _dispatch(self, st: pt.WaitStatus) -> None:
        tid = st.pid
        if tid in self.births:
            self._first_stop(tid, st, self.births.pop(tid))
            return
        proc = self.owner.get(tid)
        if proc is None:
            if st.stopped:  # a new task whose creator's event has not come yet
                self.early[tid] = (st, time.monotonic())
            return
        if st.exited or st.signaled:
            self._exited(proc, tid, st)
            return
        tr = proc.tracee
        th = tr.threads.get(tid)
        if th is None:
            th = tr.threads[tid] = Thread(tid)
        th.last, th.stopped, th.interrupted = st, True, False
        ev = st.event
        if ev in (pt.EVENT_CLONE, pt.EVENT_FORK, pt.EVENT_VFORK):
            self._born(proc, tid, ev, pt.geteventmsg(tid))
            tr.resume(tid)
        elif ev == pt.EVENT_EXEC:
            self._exec(proc, tid)
        elif st.is_group_stop:
            pt.listen(tid)  # job control as without us: stay stopped until SIGCONT
            th.stopped = False
        elif st.is_signal_delivery_stop:
            if st.stop_signal == signal.SIGTRAP and self._dl_event(proc, tid):
                pt.cont(tid, 0)  # our int3: never delivered
            else:
                if st.stop_signal in _CRASHES:
                    proc.fault = _describe_fault(proc.pid, tid, st.stop_signal)
                pt.cont(tid, st.stop_signal)
            th.stopped = False
        else:
            tr.resume(tid)

    def _born(self, proc: Proc, tid: int, ev: int, new: int) -> None:
        if ev == pt.EVENT_CLONE:
            ids = _status_ids(new)
            kind = "thread" if ids is None or ids[0] == proc.pid else "clone"
        else:
            kind = "fork" if ev == pt.EVENT_FORK else "vfork"
        birth = _Birth(kind, proc, tid)
        if kind != "thread" and proc.tp is not None:
            # The child's memory is its parent's as of now: keep what was armed as of now
            # (the parent may arm a library it loads before the child's first stop).
            birth.tp, birth.report = proc.tp, proc.tp.report
            proc.tp.share_report()
        if kind == "thread":
            proc.tracee.threads.setdefault(new, Thread(new))
            self.owner[new] = proc
        elif kind == "vfork":
            self.vfork_waiting[new] = tid
        self.births[new] = birth
        early = self.early.pop(new, None)
        if early is not None:
            del self.births[new]
            self._first_stop_safe(new, early[0], birth)

    def _first_stop_safe(self, tid: int, st: pt.WaitStatus, birth: _Birth) -> None:
        """_first_stop from another task's event: trouble there is the new task's."""
        try:
            self._first_stop(tid, st, birth)
        except (InjectorError, OSError, KeyError) as e:
            self._task_trouble(tid, e)

    def _first_stop(self, tid: int, st: pt.WaitStatus, birth: _Birth) -> None:
        """A new task's first stop: before it ran any of its own code."""
        parent = birth.parent
        if st.exited or st.signaled:  # killed before it ever ran
            if birth.kind == "thread":
                parent.tracee.threads.pop(tid, None)
                self.owner.pop(tid, None)
            self.vfork_waiting.pop(tid, None)
            return
        if birth.kind == "thread":
            tr = parent.tracee
            th = tr.threads.setdefault(tid, Thread(tid))
            self.owner[tid] = parent
            self._hold(th, st)
            self.threads_seen += 1
            if not self._done:
                self._thread_begin(parent, tid)
            if not self._done:
                tr.resume(tid)
            return
        self.forks += 1
        tr = Tracee(tid, FOLLOW_OPTIONS)  # its /proc/PID/mem is opened when first needed
        th = tr.threads[tid] = Thread(tid)
        self._hold(th, st)
        shares = (birth.kind != "fork"
                  and _shares_vm(parent.pid, tid, default=birth.kind == "vfork"))
        # A copy of its parent: same credentials, comm and executable (no /proc reads).
        pi = parent.ident
        ident = Identity(tid, parent.pid, pi.uid, pi.euid, pi.comm, pi.exe)
        proc = Proc(tr, ident, None, vm_parent=parent if shares else None)
        ptp = birth.tp if birth.tp is not None else parent.tp
        if ptp is not None and ptp.region_addr:
            tr.scratch = parent.tracee.scratch  # the same pages: copied, or shared
            tr._syscall_insn = parent.tracee._syscall_insn
            if shares:
                self._claim_for_parent_thread(tr, tid, ptp, birth)
            else:
                self._reset_context(tr, tid, ptp)
            proc.tp = ptp.forked(tr, ident, birth.report if birth.tp is not None else ptp.report)
        self._add(proc)
        if not self._done:
            self._process_begin(proc)
            tr.resume(tid)

    @staticmethod
    def _hold(th: Thread, st: pt.WaitStatus) -> None:
        th.last, th.stopped, th.interrupted = st, True, False
        if st.is_signal_delivery_stop:
            th.pending.append(pt.getsiginfo(th.tid))

    def _reset_context(self, tr: Tracee, tid: int, tp: TargetProcess) -> None:
        """A forked child forgets its parent thread's context and tid (raw fork syscalls
        run no pthread_atfork handler): zero its TLS block before it runs."""
        if tp.tls_offset is None:
            return
        fs = pt.getregs(tid).fs_base
        pt.vm_write(tid, fs + tp.tls_offset, bytes(TLS_BLOCK))

    def _claim_for_parent_thread(self, tr: Tracee, tid: int, tp: TargetProcess,
                                 birth: _Birth) -> None:
        """A CLONE_VM child runs on its parent thread's TLS: make sure the context there is
        the parent thread's own slot, so that nothing stays registered to the child, and
        that the cached tid is the parent thread's (the child acts for it)."""
        if tp.tls_offset is None:
            return
        addr = pt.getregs(tid).fs_base + tp.tls_offset
        ctx, base, _ = struct.unpack("<QQq", pt.vm_read(tid, addr, TLS_BLOCK))
        if not (ctx and base == tp.region_addr):
            off = int(self.lib.utr_ctx_claim_for(birth.parent_tid, birth.parent.pid))
            if off < 0:
                return
            ctx, base = tp.region_addr + off, tp.region_addr
        pt.vm_write(tid, addr, struct.pack("<QQq", ctx, base, birth.parent_tid))

    def _exited(self, proc: Proc, tid: int, st: pt.WaitStatus) -> None:
        tr = proc.tracee
        self.owner.pop(tid, None)
        if tid != proc.pid:
            tr.threads.pop(tid, None)
            self._run_here("process.thread.end", proc.ident, tid)
            return
        # The leader's status comes last (__WALL): the process is gone.
        tr.threads.clear()
        tr.exit_status = st
        tr._close()
        for t in [t for t, p in self.owner.items() if p is proc]:
            del self.owner[t]
        self.procs.pop(proc.pid, None)
        self.vfork_waiting.pop(proc.pid, None)
        self._run_here("process.end", proc.ident, proc.pid)
        if st.signaled and st.term_signal in _CRASHES:
            # A crash must never pass unnoticed: the handlers run in this process.
            where = proc.fault or f"signal {st.term_signal}"
            self.s.err.write(f"WARNING: process {proc.pid} ({proc.ident.comm}) was killed by "
                             f"{where}\n".encode())
        if proc.root:
            self.root_status = st

    def _exec(self, proc: Proc, tid: int) -> None:
        tr = proc.tracee
        pid = proc.pid
        former = pt.geteventmsg(tid)
        old = proc.ident
        gone = [t for t in tr.threads if t != former]
        tr._exec_happened(former)
        for t in list(self.owner):
            if self.owner[t] is proc and t != pid:
                del self.owner[t]
        self.owner[pid] = proc
        self.vfork_waiting.pop(pid, None)
        self.execs += 1
        for t in gone:  # de_thread killed them (the old leader too when another thread exec'd)
            self._run_here("process.thread.end", old, t)
        self._run_here("process.end", old, pid)
        proc.vm_parent = None
        proc.tp = None
        th = tr.threads[pid]
        th.stopped = True
        # Registers set at the exec event would be overwritten by execve's return value:
        # go on to an interrupt stop, before ld.so's first instruction.
        pt.interrupt(pid)
        pt.cont(pid)
        th.stopped, th.interrupted = False, True
        tr._wait_all_stopped(time.monotonic() + 10)
        try:
            proc.ident = read_identity(pid)
        except OSError:
            pass
        if self._done:
            return
        later = self._library_probes(proc.ident)
        if later or self._needs_handlers(proc.ident):
            try:
                tr.run_to_entry()
                # A probe on a library by its path (process("/lib/.../libc.so.6")) is this
                # image's if ld.so mapped the library: known only at the entry point.
                if later and not self._needs_handlers(proc.ident):
                    raise _NotOurs()
                tp = TargetProcess(str(self.s.so_path), self.s.fd, self.s.size, self.root_pid)
                tp.adopt_image(tr)
                tp.identity = proc.ident
                proc.tp = tp
                self._arm(proc)
            except _NotOurs:
                pass
            except (TargetError, InjectorError, OSError) as e:
                self._warn(f"exec:{proc.ident.exe}",
                           f"WARNING: process {pid} ({proc.ident.exe}): the handlers could not "
                           f"be loaded after exec, its probes that run in it are off: {e}")
        self._absorb(proc)
        self._process_begin(proc)
        tr.resume_all()

    def _absorb(self, proc: Proc) -> None:
        """Tasks the Tracee met on its own while we drove it (exec, loading the handlers)."""
        tr = proc.tracee
        for t in tr.threads:
            self.owner.setdefault(t, proc)
        for child in tr.new_children:
            kind = "vfork" if _shares_vm(proc.pid, child, False) else "fork"
            self.births[child] = _Birth(kind, proc, proc.pid)
            early = self.early.pop(child, None)
            if early is not None:
                self._first_stop_safe(child, early[0], self.births.pop(child))
        tr.new_children.clear()

    def _settle_early(self) -> None:
        """First stops whose creator's event never came (it was killed meanwhile)."""
        now = time.monotonic()
        for tid, (st, t0) in list(self.early.items()):
            if now - t0 < EARLY_GRACE:
                continue
            del self.early[tid]
            ids = _status_ids(tid)
            if ids is None:
                continue
            tgid, ppid = ids
            if tgid != tid and tgid in self.procs:
                parent = self.procs[tgid]
                parent.tracee.threads.setdefault(tid, Thread(tid))
                self._first_stop_safe(tid, st, _Birth("thread", parent, tgid))
            elif tgid == tid and ppid in self.procs:
                parent = self.procs[ppid]
                kind = "vfork" if _shares_vm(ppid, tid, False) else "fork"
                self._first_stop_safe(tid, st, _Birth(kind, parent, ppid))
            else:
                try:
                    pt.detach(tid, 0)
                except pt.PtraceError:
                    pass

    def _task_trouble(self, tid: int, e: Exception) -> None:
        """A task vanished or misbehaved while we handled its stop: account for what the
        Tracee saw on its own (an exit it reaped), let the rest go on if it can."""
        proc = self.owner.get(tid) or self.procs.get(tid)
        if proc is not None:
            tr = proc.tracee
            if tr.exit_status is not None and proc.pid in self.procs:
                self._exited(proc, proc.pid, tr.exit_status)
            elif tid != proc.pid and tid not in tr.threads and self.owner.get(tid) is proc:
                del self.owner[tid]  # a remote call in it reaped its death
                self._run_here("process.thread.end", proc.ident, tid)
            else:
                th = tr.threads.get(tid)
                if th is not None and th.stopped and not self._done:
                    try:
                        tr.resume(tid)
                    except (pt.PtraceError, InjectorError, KeyError):
                        pass
        if self.s.verbose:
            self.s.err.write(f"Pass 5: following task {tid}: {e}\n".encode())

    # -- probes ---------------------------------------------------------------------------------
    def _matching(self, family: str, ident: Identity) -> list:
        return [p for p in self.s._ordered(family) if p.matches(ident)]

    def _function_probes(self, ident: Identity) -> list:
        return function_probes(self.s.probes, ident, self.root_exe)

    def _library_probes(self, ident: Identity) -> bool:
        """Probes on a path other than this image's executable (a library's, or another
        program's: which it is shows once ld.so has mapped the libraries)."""
        return any(p.kind in ("process.function", "process.mark") and p.target_path
                   and p.target_path != ident.exe
                   and (p.target_pid is None or p.target_pid == ident.pid)
                   for p in self.s.probes)

    def _needs_handlers(self, ident: Identity) -> bool:
        return bool(self._function_probes(ident) or self._matching("process.begin", ident)
                    or self._matching("process.thread.begin", ident))

    def _arm(self, proc: Proc) -> None:
        tp = proc.tp
        lines = tp.arm(self._function_probes(proc.ident), self.s._sites)
        if self.s.verbose:
            for ln in lines:
                self.s.err.write(f"Pass 5: process {proc.pid}: {ln}\n".encode())
        for what in tp.report.unmatched:
            self._warn(f"unmatched:{proc.ident.exe}:{what}",
                       f"WARNING: {what} matched no function in process {proc.pid}")
        for site in tp.report.sites:
            if site.reason.startswith("not supported yet"):
                self._warn(f"site:{site.name}", f"WARNING: {site.name}: {site.reason}")
        self._place_dl_hook(proc)
        self._note_traps(proc)

    def _dl_event(self, proc: Proc, tid: int) -> bool:
        """ld.so changed its link map (dlopen/dlclose): probes for the libraries that came,
        none left on those that went.  The thread waits in _dl_debug_state meanwhile."""
        from .functions import dl_event
        tp = proc.tp
        if tp is None or tp.report is None or not tp.report.dl_hook:
            return False
        if not dl_event(proc.tracee, tid, tp.report):
            return False
        try:
            lines = tp.rearm(self._function_probes(proc.ident), self.s._sites)
        except (InjectorError, OSError) as e:
            self._warn(f"dl:{proc.pid}", f"WARNING: process {proc.pid}: probes of a library "
                                         f"loaded later could not be placed: {e}")
            return True
        if self.s.verbose:
            for ln in lines:
                self.s.err.write(f"Pass 5: process {proc.pid}: {ln}\n".encode())
        if proc.pid == self.s.usyms.default_pid:  # its symbols, before the library runs
            self.s.usyms.note_pid(proc.pid)
            self.s.usyms.publish(self.s.lib, self.s.mm, force=True)
        return True

    def _place_dl_hook(self, proc: Proc) -> None:
        """Watch for libraries when a probe names one (it may be dlopen'ed later)."""
        from .functions import place_dl_hook
        tp = proc.tp
        if tp is None or tp.report is None:
            return
        if any(p.kind in ("process.function", "process.mark") and
               (p.library or (p.target_path and ".so" in os.path.basename(p.target_path)))
               for p in self.s.probes):
            place_dl_hook(proc.tracee, tp.report)
            if self.s.verbose and tp.report.dl_hook:
                self.s.err.write(f"Pass 5: site _dl_debug_state at {tp.report.dl_hook:#x}: ptrace "
                                 "(libraries loaded later get their probes)\n".encode())

    def _note_traps(self, proc: Proc) -> None:
        report = proc.tp.report if proc.tp is not None else None
        traps = sum(1 for x in report.sites if x.tier == "trap") if report is not None else 0
        if traps and self.s.verbose:
            self.s.err.write(f"Pass 5: process {proc.pid}: {traps} trap-tier sites; while the "
                             "process tree is followed each hit is also a ptrace stop "
                             "(tens of us)\n".encode())

    def _in_target(self, proc: Proc, family: str, tid: int) -> None:
        """Run the family's probes matching proc in thread tid (stopped), or here when the
        handlers are not loaded in that image."""
        probes = self._matching(family, proc.ident)
        if not probes:
            return
        if proc.tp is None or not proc.tp.region_addr:
            self._run_here(family, proc.ident, tid)
            return
        for p in probes:
            try:
                proc.tp.call_probe(p.index, tid)
            except (InjectorError, OSError) as e:
                if not _killed(e):
                    self._warn(f"call:{family}",
                               f"WARNING: {family} probe could not run in process {proc.pid} "
                               f"(thread {tid}): {e}")
                break
        self.s.drain()

    def _process_begin(self, proc: Proc) -> None:
        self._in_target(proc, "process.begin", proc.pid)

    def _thread_begin(self, proc: Proc, tid: int) -> None:
        self._in_target(proc, "process.thread.begin", tid)

    def _run_here(self, family: str, ident: Identity, tid: int) -> None:
        """Run probes in the tracer on the behalf of a task that can run nothing any more."""
        probes = self._matching(family, ident)
        if not probes:
            return
        self.lib.utr_set_identity(ident.pid, tid, ident.ppid, ident.uid, ident.euid,
                                  ident.comm.encode())
        try:
            for p in probes:
                self.lib.utr_call_probe(p.index)
        finally:
            self.lib.utr_clear_identity()
        self.s.drain()

    def _warn(self, key: str, msg: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.s.err.write((msg + "\n").encode())

    def _add(self, proc: Proc) -> None:
        self.procs[proc.pid] = proc
        for tid in proc.tracee.threads:
            self.owner[tid] = proc

    # -- the end -------------------------------------------------------------------------------
    def finish(self) -> None:
        """Leave every followed process running untraced, our code taken out of it."""
        if self._done:
            return
        self._done = True
        if self.s.verbose:
            self.s.err.write(f"Pass 5: followed {self.forks} new processes, {self.execs} execs "
                             f"and {self.threads_seen} new threads\n".encode())
        try:
            self._stop_everything(time.monotonic() + FINISH_TIME)
            self._release_all(time.monotonic() + FINISH_TIME)
        finally:
            if self._old_chld is not None:
                signal.set_wakeup_fd(self._old_wakeup)
                signal.signal(signal.SIGCHLD, self._old_chld)
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _quiet(self, proc: Proc, tid: int) -> bool:
        """Stopped, or blocked in vfork until its child (stopped, ours) execs or exits."""
        th = proc.tracee.threads.get(tid)
        return th is None or th.stopped or tid in self.vfork_waiting.values()

    def _interrupt_running(self) -> None:
        """PTRACE_INTERRUPT every thread that runs (a vfork parent: once its child is gone)."""
        waiting = set(self.vfork_waiting.values())
        for proc in list(self.procs.values()):
            for tid, th in list(proc.tracee.threads.items()):
                if not th.stopped and not th.interrupted and tid not in waiting:
                    try:
                        pt.interrupt(tid)
                        th.interrupted = True
                    except pt.PtraceError:
                        pass

    def _stop_everything(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            self._interrupt_running()
            if not self.births and all(self._quiet(p, t) for p in self.procs.values()
                                       for t in p.tracee.threads):
                return
            try:
                st = pt.waitpid(-1, pt.WNOHANG)
            except pt.PtraceError as e:
                if e.errno == errno.ECHILD:
                    return
                raise
            if st is None:
                time.sleep(0.0005)
                continue
            try:
                self._collect(st)
            except (InjectorError, OSError, KeyError) as e:
                self._task_trouble(st.pid, e)
        if self.s.verbose:
            busy = [f"{t} (process {p.pid}, state {_proc_state(t)})" for p in self.procs.values()
                    for t in p.tracee.threads if not self._quiet(p, t)]
            self.s.err.write(f"Pass 5: did not stop in time: {', '.join(busy) or '-'}; "
                             f"first stops awaited: {sorted(self.births) or '-'}\n".encode())

    def _collect(self, st: pt.WaitStatus) -> None:
        """A stop while everything is being stopped: hold it (signals kept for detach)."""
        tid = st.pid
        if tid in self.births:
            self._first_stop(tid, st, self.births.pop(tid))  # held, no begin probes
            return
        proc = self.owner.get(tid)
        if proc is None:
            if st.stopped:
                self.early[tid] = (st, time.monotonic())
            return
        if st.exited or st.signaled:
            self._exited(proc, tid, st)
            return
        tr = proc.tracee
        th = tr.threads.get(tid) or tr.threads.setdefault(tid, Thread(tid))
        ev = st.event
        if ev in (pt.EVENT_CLONE, pt.EVENT_FORK, pt.EVENT_VFORK):
            self._born(proc, tid, ev, pt.geteventmsg(tid))
        elif ev == pt.EVENT_EXEC:
            former = pt.geteventmsg(tid)
            tr._exec_happened(former)
            for t in list(self.owner):
                if self.owner[t] is proc and t != proc.pid:
                    del self.owner[t]
            self.owner[proc.pid] = proc
            self.vfork_waiting.pop(proc.pid, None)
            self._run_here("process.end", proc.ident, proc.pid)
            proc.tp, proc.vm_parent = None, None  # nothing of ours in the new image
            th = tr.threads[proc.pid]
        if (st.is_signal_delivery_stop and st.stop_signal == signal.SIGTRAP
                and self._our_dl_trap(proc, th, st)):
            return  # held at our _dl_debug_state int3, its ret done: nothing to deliver
        if ev == pt.EVENT_STOP or (st.is_signal_delivery_stop and ev == 0):
            self._hold(th, st)
            if st.is_interrupt_stop:
                tr._fix_eintr(th)  # a syscall our interrupt broke is restarted
            return
        # an event stop inside a syscall: let it finish, stop right after
        pt.cont(th.tid, 0)
        pt.interrupt(th.tid)
        th.stopped, th.interrupted = False, True

    @staticmethod
    def _our_dl_trap(proc: Proc, th: Thread, st: pt.WaitStatus) -> bool:
        report = proc.tp.report if proc.tp is not None else None
        if report is None or not report.dl_hook:
            return False
        from .functions import dl_event
        th.last, th.stopped, th.interrupted = st, True, False
        return dl_event(proc.tracee, th.tid, report)

    def _release_all(self, deadline: float) -> None:
        """Take our code out of every image that has it, then detach everything.

        A process whose only thread is blocked in vfork has no thread to lend to the
        remote calls that unmap the region: its CLONE_VM child is let go first, and it
        is unloaded once that thread is out of vfork and stopped."""
        later = [p for p in self.procs.values()
                 if p.tp is not None and p.vm_parent is None and not self._unload_now(p)]
        # CLONE_VM children first: their parent thread can only stop once they are gone.
        for proc in sorted(self.procs.values(), key=lambda p: p.vm_parent is None):
            if proc not in later:
                self._detach_stopped(proc)
        if later:
            self.vfork_waiting.clear()
            self._stop_everything(deadline)
            for proc in later:
                self._unload_now(proc)
                self._detach_stopped(proc)
        # Threads that did not stop in time: the kernel lets them go when the tracer exits
        # (a pending PTRACE_INTERRUPT dies with the tracer).
        for proc in self.procs.values():
            proc.tracee._close()
        for tid in self.early:
            try:
                pt.detach(tid, 0)
            except pt.PtraceError:
                pass

    def _unload_now(self, proc: Proc) -> bool:
        """Unload proc's image if it can be done now; False when it must wait for a thread."""
        tr = proc.tracee
        if not all(self._quiet(proc, t) for t in tr.threads):
            return True  # a thread would not stop: leave our code where it is
        report = proc.tp.report
        patched = report is not None and any(x.tier in ("jump", "trap", "ptrace")
                                                    for x in report.sites)
        if not patched and not any(th.stopped for th in tr.threads.values()):
            return False  # every thread is blocked in vfork: no thread for remote calls
        try:
            proc.tp.unload(tr)
        except (TargetError, InjectorError, OSError) as e:
            self._warn(f"unload:{proc.pid}", f"WARNING: process {proc.pid}: could not "
                       f"take the handlers out: {e}")
        return True

    def _detach_stopped(self, proc: Proc) -> None:
        tr = proc.tracee
        for tid, th in list(tr.threads.items()):
            if not th.stopped:
                continue
            try:
                pt.detach(tid, tr._deliver_pending(th))
            except pt.PtraceError:
                pass
            del tr.threads[tid]


def _killed(e: Exception) -> bool:
    """Whether a failed call only means that its task died meanwhile (SIGKILL)."""
    return isinstance(e, TraceeExited) or getattr(e, "errno", None) == errno.ESRCH


def _ignore(signum, frame) -> None:  # noqa: ARG001 - SIGCHLD only wakes the main loop
    pass


def _proc_state(tid: int) -> str:
    try:
        return Path(f"/proc/{tid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
