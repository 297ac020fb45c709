"""Remote syscalls and remote function calls on a borrowed, stopped thread of a Tracee.

Borrowing a thread (the rules implemented, see also docs/injector.md):
1. The thread must be held in PTRACE_EVENT_STOP or a signal-delivery-stop;
   event stops inside a syscall (clone/fork/exec) are never borrowed,
   because the syscall's return value would overwrite the registers we set.
2. Save all general registers (incl. orig_rax) and, for calls, the full
   XSAVE state. Set orig_rax = -1 before changing rip: the kernel's restart
   logic (arch_do_signal_or_restart) keys on orig_rax >= 0 and would move rip
   back 2 bytes and reload rax if our registers looked like an interrupted
   syscall.
3. Restore everything exactly, including orig_rax, rax = -ERESTART* and rip.
   The thread's last stop is then a SIGTRAP signal-delivery-stop, which we
   resume with no signal, so the kernel applies the same restart it would
   have applied at the original stop: rip -= 2 and rax = orig_rax for
   -ERESTARTSYS/-ERESTARTNOINTR/-ERESTARTNOHAND (no handler runs), and
   rax = restart_syscall for -ERESTART_RESTARTBLOCK, whose restart block
   (nanosleep's absolute expiry, futex's deadline) nothing we run touches.
4. Asynchronous signals that arrive meanwhile are withheld (resumed with 0)
   and re-delivered, siginfo intact when possible, when the thread resumes.
   A synchronous fault (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS, a foreign
   SIGTRAP) aborts the call: the fault is suppressed, registers restored.
5. A call still running after a grace period may be blocked on a lock that
   another, stopped, thread holds (inside dlopen): the other threads are let
   run until it returns, then stopped again (T-30). A call that does not
   return in time is interrupted, the thread restored, and RemoteError raised
   (the callee may have left a lock held: say so).
"""
from __future__ import annotations

import errno
import os
import signal
import time
from contextlib import contextmanager

from . import procfs
from . import ptrace as pt
from .errors import InjectorError, InjectorTimeout, RemoteError, TraceeExited

SYS_read, SYS_write, SYS_close, SYS_mmap, SYS_mprotect, SYS_munmap = 0, 1, 3, 9, 10, 11
SYS_getpid, SYS_prctl, SYS_gettid, SYS_openat = 39, 157, 186, 257
PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
MAP_SHARED, MAP_PRIVATE, MAP_ANONYMOUS = 0x01, 0x02, 0x20
AT_FDCWD = -100

PAGE = 4096
SCRATCH_SIZE = 2 * PAGE  # page 0: code (r-x); page 1: data (rw-)
RET_TRAP_OFF = 0  # int3: the return address of remote calls
SYSCALL_OFF = 8  # syscall
DATA_OFF = PAGE
_CODE = b"\xcc" + b"\x90" * 7 + b"\x0f\x05\xcc"

_FAULTS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGSYS,
           signal.SIGTRAP}
_U64 = (1 << 64) - 1
EFLAGS_TF, EFLAGS_DF = 0x100, 0x400


def find_syscall_insn(tracee) -> int:
    """Address of a `syscall` instruction (bytes 0f 05) in an executable mapping.

    The bytes need not start an instruction of the original code: rip is set
    to them and exactly one instruction is single-stepped. The vdso comes
    first (always mapped, tiny), then ld.so and libc, then anything else.
    """
    if tracee._syscall_insn is not None:
        return tracee._syscall_insn
    maps = [m for m in tracee.maps() if m.executable and "r" in m.perms]

    def rank(m):
        name = m.path.rsplit("/", 1)[-1]
        return (m.path != "[vdso]", not name.startswith(("ld-", "libc")), m.start)

    for m in sorted(maps, key=rank):
        for off in range(0, min(m.end - m.start, 64 * PAGE), 4 * PAGE):
            try:
                data = tracee.read(m.start + off, min(4 * PAGE, m.end - m.start - off) + 1)
            except OSError:
                try:
                    data = tracee.read(m.start + off, min(4 * PAGE, m.end - m.start - off))
                except OSError:
                    break
            i = data.find(b"\x0f\x05")
            if i >= 0:
                tracee._syscall_insn = m.start + off + i
                return tracee._syscall_insn
    raise InjectorError(f"no syscall instruction found in process {tracee.pid}'s code")


def _borrowable(th) -> bool:
    st = th.last
    return th.stopped and st is not None and (st.event == pt.EVENT_STOP
                                              or st.is_signal_delivery_stop)


def default_thread(tracee) -> int:
    """The leader when borrowable, else the first borrowable thread (for syscalls)."""
    for tid in tracee.tids:
        if _borrowable(tracee.threads[tid]):
            return tid
    raise InjectorError(f"no stopped thread of process {tracee.pid} can be borrowed "
                        "(stop_all() first)")


@contextmanager
def borrowed(tracee, tid: int, fp: bool):
    """Save a thread's state, yield (saved, working copy), restore it whatever happens."""
    th = tracee.threads.get(tid)
    if th is None or not _borrowable(th):
        raise InjectorError(f"thread {tid} of process {tracee.pid} is not stopped in a stop "
                            "that can be borrowed")
    saved = pt.getregs(tid)
    fpstate = tracee.get_fpstate(tid) if fp else None
    work = saved.copy()
    work.orig_rax = _U64  # -1: no syscall restart for our registers
    work.eflags &= ~(EFLAGS_TF | EFLAGS_DF)
    try:
        yield saved, work
    finally:
        if tid in tracee.threads and tracee.threads[tid].stopped:
            pt.setregs(tid, saved)
            if fpstate is not None:
                tracee.set_fpstate(fpstate, tid)


def _describe_fault(tid: int, st: pt.WaitStatus) -> str:
    signo, _, code, addr = pt.siginfo_fields(pt.getsiginfo(tid))
    rip = pt.getregs(tid).rip
    name = signal.Signals(signo).name
    if signo == signal.SIGSYS:
        return f"{name} at pc {rip:#x}: a seccomp filter trapped the syscall"
    where = ""
    try:
        m = procfs.find_mapping(procfs.read_maps(tid), rip)
        if m is not None:
            where = f" ({m.path or 'anonymous ' + m.perms}+{rip - m.start + m.offset:#x})"
    except OSError:
        pass
    return f"{name} (code {code}) at pc {rip:#x}{where}, address {addr:#x}"


def _run(tracee, tid: int, step: bool, expect_pc: int, deadline: float, what: str,
         release_after: float | None = None) -> pt.Regs:
    """Resume tid until it traps at expect_pc; handle everything else on the way.

    With release_after, a callee still running after that many seconds is
    presumed blocked on a lock another (stopped) thread holds, typically
    ld.so's dl_load_lock held by a thread inside dlopen (T-30): the other
    threads are let run until the call returns, then stopped again.
    """
    th = tracee.threads[tid]
    resume = pt.singlestep if step else pt.cont
    resume(tid, 0)
    th.stopped = False
    release_at = None if release_after is None else time.monotonic() + release_after
    released = False
    try:
        return _run_loop(tracee, tid, th, resume, expect_pc, deadline, what, release_at)
    except _Released:
        released = True
        return _run_loop(tracee, tid, th, resume, expect_pc, deadline, what, None, serve=True)
    finally:
        if released and tracee.exit_status is None:
            tracee.stop_all()


class _Released(Exception):
    """The call outlived its grace period: the other threads have been resumed."""


def _serve_others(tracee, tid: int) -> None:
    """Account for the stops of the threads let run while tid's call finishes."""
    for other, oth in list(tracee.threads.items()):
        if other == tid or oth.stopped:
            continue
        try:
            st = pt.waitpid(other, pt.WNOHANG)
        except pt.PtraceError as e:
            if e.errno != errno.ECHILD:
                raise
            tracee.threads.pop(other, None)
            continue
        if st is not None:
            tracee.handle_status(st, hold=False)


def _run_loop(tracee, tid, th, resume, expect_pc, deadline, what, release_at,
              serve: bool = False) -> pt.Regs:
    while True:
        try:
            if serve:
                st = tracee._wait(tid, deadline, lambda: _serve_others(tracee, tid))
            else:
                st = tracee._wait(tid, min(deadline, release_at or deadline))
        except InjectorTimeout:
            if release_at is not None and time.monotonic() < deadline:
                tracee.resume_all(but=tid)
                raise _Released() from None
            _recover(tracee, tid)
            raise RemoteError(f"{what} did not return within the time limit in thread {tid} "
                              f"of process {tracee.pid}; registers restored, but the callee may "
                              "have left a lock held") from None
        if st.exited or st.signaled:
            tracee._thread_gone(tid, st)
            raise TraceeExited(tracee.pid, f"process {tracee.pid} died during {what}: {st}",
                               st.raw)
        th.last = st
        ev = st.event
        if st.is_signal_delivery_stop:
            sig = st.stop_signal
            if sig == signal.SIGTRAP:
                regs = pt.getregs(tid)
                if regs.rip == expect_pc:
                    th.stopped = True
                    return regs
                if regs.rip - 1 in tracee.served_traps:
                    resume(tid, signal.SIGTRAP)  # a trap-tier probe site: the target's
                    continue                     # handler runs it and steps past it
            info = pt.getsiginfo(tid)
            if sig in _FAULTS and pt.siginfo_fields(info)[2] > 0:  # kernel-generated: a fault
                th.stopped = True
                raise RemoteError(f"{what} faulted in process {tracee.pid}: "
                                  f"{_describe_fault(tid, st)}")
            th.pending.append(info)  # asynchronous: re-delivered at resume/detach
        elif ev in (pt.EVENT_CLONE, pt.EVENT_FORK, pt.EVENT_VFORK):
            new = pt.geteventmsg(tid)
            if ev == pt.EVENT_CLONE:
                tracee.threads.setdefault(new, type(th)(new))
            else:
                tracee.new_children.append(new)
        elif ev == pt.EVENT_EXEC:
            tracee._exec_happened(pt.geteventmsg(tid))
            raise RemoteError(f"{what} made process {tracee.pid} exec a new program")
        resume(tid, 0)


def _recover(tracee, tid: int) -> None:
    """Stop a thread that overran its time so that its registers can be restored."""
    th = tracee.threads[tid]
    try:
        pt.interrupt(tid)
    except pt.PtraceError:
        return
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        st = tracee._wait(tid, deadline)
        if st.exited or st.signaled:
            tracee._thread_gone(tid, st)
            return
        th.last = st
        if st.event == pt.EVENT_STOP or st.is_signal_delivery_stop:
            if st.is_signal_delivery_stop:
                th.pending.append(pt.getsiginfo(tid))
            th.stopped = True
            return
        pt.cont(tid, 0)


def _settle_new_threads(tracee, deadline: float, before: set[int]) -> None:
    # Threads born during the call report their first stop on their own.
    new = [t for t in tracee.threads if t not in before and not tracee.threads[t].stopped]
    if new:
        tracee._wait_all_stopped(deadline)


def remote_syscall(tracee, nr: int, *args: int, tid: int | None = None,
                   timeout: float = 10.0) -> int:
    """Execute syscall nr(args...) in a stopped thread; returns the signed rax."""
    if len(args) > 6:
        raise ValueError("a syscall takes at most 6 arguments")
    tid = default_thread(tracee) if tid is None else tid
    insn = tracee.scratch + SYSCALL_OFF if tracee.scratch else find_syscall_insn(tracee)
    before = set(tracee.threads)
    deadline = time.monotonic() + timeout
    with borrowed(tracee, tid, fp=False) as (_, regs):
        regs.rax = nr
        for name, value in zip(("rdi", "rsi", "rdx", "r10", "r8", "r9"), args):
            setattr(regs, name, value & _U64)
        regs.rip = insn
        pt.setregs(tid, regs)
        out = _run(tracee, tid, True, insn + 2, deadline, f"syscall {nr}")
    _settle_new_threads(tracee, deadline, before)
    return pt.to_signed(out.rax)


def remote_call(tracee, func: int, *args: int, tid: int | None = None,
                timeout: float = 10.0) -> int:
    """Call func(args...) in a stopped thread with a crafted frame; returns rax.

    The frame: rsp = (rsp - 128 red zone) & ~15, then the return address
    (an int3 in the scratch page) is pushed, so rsp % 16 == 8 at entry as after
    a `call`. rax = 0 for variadic callees, DF clear, TLS (fs_base) kept.
    """
    if len(args) > 6:
        raise ValueError("a remote call takes at most 6 integer arguments")
    ensure_scratch(tracee)
    tid = pick_thread(tracee) if tid is None else tid
    ret = tracee.scratch + RET_TRAP_OFF
    before = set(tracee.threads)
    deadline = time.monotonic() + timeout
    with borrowed(tracee, tid, fp=True) as (saved, regs):
        sp = ((saved.rsp - 128) & ~0xF) - 8
        tracee.write(sp, ret.to_bytes(8, "little"))
        regs.rsp = sp
        regs.rip = func
        regs.rax = 0
        for name, value in zip(("rdi", "rsi", "rdx", "rcx", "r8", "r9"), args):
            setattr(regs, name, value & _U64)
        pt.setregs(tid, regs)
        out = _run(tracee, tid, False, ret + 1, deadline, f"call of {func:#x}",
                   release_after=min(1.0, timeout / 4))
    _settle_new_threads(tracee, deadline, before)
    return out.rax


def ensure_scratch(tracee) -> int:
    """Map the two scratch pages (code r-x, data rw-) once per process image.

    Mapped r-x first and filled through /proc/PID/mem (which may write
    read-only pages), then the data page is made rw-: no page is ever
    writable and executable, and no mprotect adds PROT_EXEC (MDWE-safe).
    """
    if tracee.scratch:
        return tracee.scratch
    addr = remote_syscall(tracee, SYS_mmap, 0, SCRATCH_SIZE, PROT_READ | PROT_EXEC,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    if -4096 < addr < 0:
        raise RemoteError(f"mmap of a scratch page in process {tracee.pid} failed: "
                          f"{errno.errorcode.get(-addr, -addr)}")
    try:
        tracee.write(addr, _CODE)
        rc = remote_syscall(tracee, SYS_mprotect, addr + DATA_OFF, PAGE, PROT_READ | PROT_WRITE)
        if rc < 0:
            raise RemoteError(f"mprotect of the scratch data page failed: "
                              f"{errno.errorcode.get(-rc, -rc)}")
    except BaseException:
        remote_syscall(tracee, SYS_munmap, addr, SCRATCH_SIZE)
        raise
    tracee.scratch = addr
    return addr


def release_scratch(tracee) -> None:
    """Unmap the scratch pages (when no thread can still return into them)."""
    if tracee.scratch:
        remote_syscall(tracee, SYS_munmap, tracee.scratch, SCRATCH_SIZE)
        tracee.scratch = None


def put_data(tracee, data: bytes) -> int:
    """Write bytes into the scratch data page; returns their remote address."""
    if len(data) > PAGE:
        raise ValueError("scratch data is limited to one page")
    ensure_scratch(tracee)
    tracee.write(tracee.scratch + DATA_OFF, data)
    return tracee.scratch + DATA_OFF


# -- choosing the thread for a remote call (T-30) ------------------------------------

# Functions that hold a libc or loader lock while they run: malloc's arena
# locks, the loader's dl_load_lock / dl_load_write_lock, the stack cache lock.
LOCK_HOLDERS = ("malloc", "free", "calloc", "realloc", "reallocarray", "memalign",
                "aligned_alloc", "posix_memalign", "valloc", "pvalloc", "malloc_trim",
                "mallinfo", "mallinfo2", "malloc_info", "malloc_stats", "dlopen", "dlmopen",
                "dlclose", "dlsym", "dlvsym", "dladdr", "dladdr1", "dlinfo", "dlerror",
                "dl_iterate_phdr", "fork", "_Fork", "pthread_create", "pthread_join",
                "__libc_dlopen_mode", "__libc_dlsym", "__libc_dlclose")
STACK_SCAN = 16384  # bytes of stack above rsp searched for return addresses


def _lock_ranges(tracee, maps) -> list[tuple[int, int]]:
    from . import elfsyms
    ranges = []
    libc = elfsyms.find_object(tracee.pid, maps, elfsyms.LIBC)
    if libc is not None:
        for name in LOCK_HOLDERS:
            hit = elfsyms.resolve(libc, name)
            if hit and hit[1]:
                ranges.append((hit[0], hit[0] + hit[1]))
    ldso = elfsyms.find_object(tracee.pid, maps, elfsyms.LDSO)
    if ldso is not None:
        ranges += ldso.text_ranges()  # the loader runs under its own locks
    return ranges


def thread_report(tracee, tid: int, ranges, maps, exe_text) -> tuple[int, str]:
    """(score, reason) for borrowing tid: lower is safer; >= 100 means inside a lock holder."""
    regs = pt.getregs(tid)

    def inside(addr):
        return any(lo <= addr < hi for lo, hi in ranges)

    if inside(regs.rip):
        return 100, f"pc {regs.rip:#x} is inside malloc/dlopen/loader code"
    m = procfs.find_mapping(maps, regs.rsp)
    hits = 0
    if m is not None:
        size = min(STACK_SCAN, m.end - regs.rsp) & ~7
        try:
            data = tracee.read(regs.rsp, size)
        except OSError:
            data = b""
        for i in range(0, len(data), 8):
            if inside(int.from_bytes(data[i:i + 8], "little")):
                hits += 1
    if hits:
        return 10 + hits, f"{hits} stack words point into malloc/dlopen/loader code"
    in_syscall = pt.to_signed(regs.orig_rax) >= 0
    in_exe = any(lo <= regs.rip < hi for lo, hi in exe_text)
    if tid == tracee.pid and (in_exe or in_syscall):
        return 0, "main thread in program text or blocked in a syscall"
    if in_syscall or in_exe:
        return 1, "in program text or blocked in a syscall"
    return 2, "in library code, no lock holder on its stack"


def pick_thread(tracee) -> int:
    """Choose the stopped thread safest to borrow for a remote call (see thread_report).

    The main thread is preferred when its pc is in the program's own text or
    it is blocked in a syscall; a thread whose pc or any return-address-like
    word of the top 16 KiB of its stack is inside malloc & co., the dl*
    functions, fork/pthread_create or ld.so is avoided, since the callee
    (dlopen) takes the same locks. A stack word can be stale, so this errs
    towards avoiding threads; if every thread looks unsafe the best-scored
    one is used.
    """
    maps = tracee.maps()
    ranges = _lock_ranges(tracee, maps)
    try:
        exe = os.readlink(f"/proc/{tracee.pid}/exe")
    except OSError:
        exe = ""
    exe_text = [(m.start, m.end) for m in maps if m.executable and m.file_path == exe]
    best = None
    for tid in tracee.tids:
        th = tracee.threads[tid]
        if not _borrowable(th) or (th.last is not None and th.last.is_group_stop):
            continue
        score, _ = thread_report(tracee, tid, ranges, maps, exe_text)
        if best is None or score < best[0]:
            best = (score, tid)
        if score == 0:
            break
    if best is None:
        return default_thread(tracee)
    return best[1]

