"""Thin ptrace layer (x86-64): one function per request; errors carry op, pid and errno."""
from __future__ import annotations

import errno as _errno
import os
from dataclasses import dataclass

import cffi

_CDEF = """
struct user_regs_struct {
    unsigned long long r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8,
                       rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags,
                       rsp, ss, fs_base, gs_base, ds, es, fs, gs;
};
struct iovec { void *iov_base; size_t iov_len; };
long ptrace(int request, int pid, void *addr, void *data);
int waitpid(int pid, int *status, int options);
long process_vm_readv(int pid, const struct iovec *local, unsigned long liovcnt,
                      const struct iovec *remote, unsigned long riovcnt, unsigned long flags);
long process_vm_writev(int pid, const struct iovec *local, unsigned long liovcnt,
                       const struct iovec *remote, unsigned long riovcnt, unsigned long flags);
long syscall(long number, ...);
"""

ffi = cffi.FFI()
ffi.cdef(_CDEF)
# glibc's ptrace() is variadic; on x86-64 the four fixed integer/pointer
# arguments travel in the same registers either way, so a fixed prototype is exact.
_libc = ffi.dlopen(None)

# Requests (linux/ptrace.h).
TRACEME = 0
CONT = 7
KILL = 8
SINGLESTEP = 9
GETREGS = 12
SETREGS = 13
GETFPREGS = 14
SETFPREGS = 15
DETACH = 17
SYSCALL = 24
SETOPTIONS = 0x4200
GETEVENTMSG = 0x4201
GETSIGINFO = 0x4202
SETSIGINFO = 0x4203
GETREGSET = 0x4204
SETREGSET = 0x4205
SEIZE = 0x4206
INTERRUPT = 0x4207
LISTEN = 0x4208
GETSIGMASK = 0x420A
SETSIGMASK = 0x420B

_NAMES = {v: "PTRACE_" + k for k, v in dict(
    TRACEME=TRACEME, CONT=CONT, KILL=KILL, SINGLESTEP=SINGLESTEP, GETREGS=GETREGS,
    SETREGS=SETREGS, GETFPREGS=GETFPREGS, SETFPREGS=SETFPREGS, DETACH=DETACH,
    SYSCALL=SYSCALL, SETOPTIONS=SETOPTIONS, GETEVENTMSG=GETEVENTMSG, GETSIGINFO=GETSIGINFO,
    SETSIGINFO=SETSIGINFO, GETREGSET=GETREGSET, SETREGSET=SETREGSET, SEIZE=SEIZE,
    INTERRUPT=INTERRUPT, LISTEN=LISTEN, GETSIGMASK=GETSIGMASK, SETSIGMASK=SETSIGMASK).items()}

# Options.
O_TRACESYSGOOD = 0x1
O_TRACEFORK = 0x2
O_TRACEVFORK = 0x4
O_TRACECLONE = 0x8
O_TRACEEXEC = 0x10
O_TRACEVFORKDONE = 0x20
O_TRACEEXIT = 0x40
O_TRACESECCOMP = 0x80
O_EXITKILL = 0x100000

# Events (status >> 16).
EVENT_FORK = 1
EVENT_VFORK = 2
EVENT_CLONE = 3
EVENT_EXEC = 4
EVENT_VFORK_DONE = 5
EVENT_EXIT = 6
EVENT_SECCOMP = 7
EVENT_STOP = 128

NT_PRSTATUS = 1
NT_PRFPREG = 2
NT_X86_XSTATE = 0x202

WNOHANG = 1
WALL = 0x40000000  # __WALL: report clone children (threads) too

REG_NAMES = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
             "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags",
             "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs")
_STOP_SIGNALS = {19, 20, 21, 22}  # SIGSTOP SIGTSTP SIGTTIN SIGTTOU
XSTATE_MAX = 16384  # above the largest XSAVE area (AMX ~11 KiB); the kernel truncates


class PtraceError(OSError):
    """A ptrace or wait request failed; the message names the request, the pid and errno."""

    def __init__(self, op: str, pid: int, err: int):
        self.op = op
        self.pid = pid
        super().__init__(err, f"{op} pid {pid}: {os.strerror(err)} (errno {err})")

    def __str__(self) -> str:
        return self.strerror


def _check(op: str, pid: int, ret: int) -> int:
    if ret == -1:
        raise PtraceError(op, pid, ffi.errno)
    return ret


def _req(request: int, pid: int, addr=ffi.NULL, data=ffi.NULL) -> int:
    ffi.errno = 0
    ret = _libc.ptrace(request, pid, addr, data)
    return _check(_NAMES[request], pid, ret)


def _ptr(value: int):
    return ffi.cast("void *", value)


def to_signed(value: int) -> int:
    """Read a 64-bit register value as a signed integer."""
    value &= 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value & (1 << 63) else value


class Regs:
    """General registers of one thread (struct user_regs_struct), as plain unsigned ints."""

    __slots__ = REG_NAMES

    def __init__(self, **values: int):
        for name in REG_NAMES:
            setattr(self, name, values.get(name, 0))

    def copy(self) -> "Regs":
        return Regs(**{n: getattr(self, n) for n in REG_NAMES})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Regs) and all(
            getattr(self, n) == getattr(other, n) for n in REG_NAMES)

    def __repr__(self) -> str:
        return "Regs(" + ", ".join(f"{n}={getattr(self, n):#x}" for n in
                                   ("rip", "rsp", "rax", "orig_rax", "rdi", "rsi")) + ", ...)"


def traceme() -> None:
    """PTRACE_TRACEME: make the calling process a tracee of its parent."""
    _req(TRACEME, 0)


def seize(pid: int, options: int = 0) -> None:
    """PTRACE_SEIZE: attach without stopping, with the given PTRACE_O_* options."""
    _req(SEIZE, pid, ffi.NULL, _ptr(options))


def interrupt(pid: int) -> None:
    """PTRACE_INTERRUPT: stop a seized thread (reported as PTRACE_EVENT_STOP)."""
    _req(INTERRUPT, pid)


def cont(pid: int, sig: int = 0) -> None:
    """PTRACE_CONT, delivering sig (0: none) when stopped in signal-delivery-stop."""
    _req(CONT, pid, ffi.NULL, _ptr(sig))


def syscall(pid: int, sig: int = 0) -> None:
    """PTRACE_SYSCALL: continue to the next syscall entry or exit."""
    _req(SYSCALL, pid, ffi.NULL, _ptr(sig))


def singlestep(pid: int, sig: int = 0) -> None:
    """PTRACE_SINGLESTEP: run one instruction."""
    _req(SINGLESTEP, pid, ffi.NULL, _ptr(sig))


def listen(pid: int) -> None:
    """PTRACE_LISTEN: leave a group-stopped seized thread stopped but watch for events."""
    _req(LISTEN, pid)


def detach(pid: int, sig: int = 0) -> None:
    """PTRACE_DETACH, delivering sig when the thread is in signal-delivery-stop."""
    _req(DETACH, pid, ffi.NULL, _ptr(sig))


def kill(pid: int) -> None:
    """PTRACE_KILL (deprecated by the kernel; prefer os.kill(pid, SIGKILL))."""
    _req(KILL, pid)


def setoptions(pid: int, options: int) -> None:
    """PTRACE_SETOPTIONS."""
    _req(SETOPTIONS, pid, ffi.NULL, _ptr(options))


def geteventmsg(pid: int) -> int:
    """PTRACE_GETEVENTMSG: new tid for clone/fork events, exit status for exit events."""
    out = ffi.new("unsigned long *")
    _req(GETEVENTMSG, pid, ffi.NULL, out)
    return int(out[0])


def getregs(pid: int) -> Regs:
    """PTRACE_GETREGS."""
    c = ffi.new("struct user_regs_struct *")
    _req(GETREGS, pid, ffi.NULL, c)
    return Regs(**{n: getattr(c, n) for n in REG_NAMES})


def setregs(pid: int, regs: Regs) -> None:
    """PTRACE_SETREGS."""
    c = ffi.new("struct user_regs_struct *")
    for n in REG_NAMES:
        setattr(c, n, getattr(regs, n) & 0xFFFFFFFFFFFFFFFF)
    _req(SETREGS, pid, ffi.NULL, c)


def getfpregs(pid: int) -> bytes:
    """PTRACE_GETFPREGS: the 512-byte FXSAVE area (x87 and SSE, not AVX)."""
    buf = ffi.new("unsigned char[512]")
    _req(GETFPREGS, pid, ffi.NULL, buf)
    return bytes(ffi.buffer(buf))


def setfpregs(pid: int, data: bytes) -> None:
    """PTRACE_SETFPREGS."""
    buf = ffi.new("unsigned char[512]", data[:512])
    _req(SETFPREGS, pid, ffi.NULL, buf)


def getregset(pid: int, note: int, size: int = XSTATE_MAX) -> bytes:
    """PTRACE_GETREGSET: the register set `note` (e.g. NT_X86_XSTATE), as the kernel sized it."""
    buf = ffi.new("unsigned char[]", size)
    iov = ffi.new("struct iovec *", {"iov_base": buf, "iov_len": size})
    _req(GETREGSET, pid, _ptr(note), iov)
    return bytes(ffi.buffer(buf, iov.iov_len))


def setregset(pid: int, note: int, data: bytes) -> None:
    """PTRACE_SETREGSET; XSTATE needs exactly the size GETREGSET returned."""
    buf = ffi.new("unsigned char[]", data)
    iov = ffi.new("struct iovec *", {"iov_base": buf, "iov_len": len(data)})
    _req(SETREGSET, pid, _ptr(note), iov)


def getsiginfo(pid: int) -> bytes:
    """PTRACE_GETSIGINFO: the raw 128-byte siginfo_t of the current signal-delivery-stop."""
    buf = ffi.new("unsigned char[128]")
    _req(GETSIGINFO, pid, ffi.NULL, buf)
    return bytes(ffi.buffer(buf))


def setsiginfo(pid: int, info: bytes) -> None:
    """PTRACE_SETSIGINFO."""
    buf = ffi.new("unsigned char[128]", info[:128])
    _req(SETSIGINFO, pid, ffi.NULL, buf)


def getsigmask(pid: int) -> int:
    """PTRACE_GETSIGMASK: the thread's blocked-signal mask (bit n-1 for signal n)."""
    out = ffi.new("unsigned long long *")
    _req(GETSIGMASK, pid, _ptr(8), out)
    return int(out[0])


def setsigmask(pid: int, mask: int) -> None:
    """PTRACE_SETSIGMASK (note: clears a pending TIF_RESTORE_SIGMASK of pselect/ppoll)."""
    val = ffi.new("unsigned long long *", mask)
    _req(SETSIGMASK, pid, _ptr(8), val)


def siginfo_fields(info: bytes) -> tuple[int, int, int, int]:
    """(si_signo, si_errno, si_code, si_addr) of a raw x86-64 siginfo_t."""
    signo, err, code = (int.from_bytes(info[i:i + 4], "little", signed=True) for i in (0, 4, 8))
    return signo, err, code, int.from_bytes(info[16:24], "little")


@dataclass(frozen=True)
class WaitStatus:
    """A decoded wait status of one thread."""

    pid: int
    raw: int

    @property
    def exited(self) -> bool:
        return (self.raw & 0x7F) == 0

    @property
    def exit_code(self) -> int:
        return (self.raw >> 8) & 0xFF

    @property
    def signaled(self) -> bool:
        return ((self.raw & 0x7F) + 1) >> 1 > 0 and not self.stopped

    @property
    def term_signal(self) -> int:
        return self.raw & 0x7F

    @property
    def stopped(self) -> bool:
        return (self.raw & 0xFF) == 0x7F

    @property
    def stop_signal(self) -> int:
        """The stop signal without the 0x80 syscall-stop marker."""
        return (self.raw >> 8) & 0x7F

    @property
    def event(self) -> int:
        """PTRACE_EVENT_* of an event stop, 0 otherwise."""
        return (self.raw >> 16) & 0xFF if self.stopped else 0

    @property
    def is_syscall_stop(self) -> bool:
        """Syscall-enter/exit stop (needs PTRACE_O_TRACESYSGOOD)."""
        return self.stopped and ((self.raw >> 8) & 0xFF) == (0x80 | 5)

    @property
    def is_group_stop(self) -> bool:
        """Group-stop of a seized tracee: PTRACE_EVENT_STOP with a stopping signal."""
        return self.event == EVENT_STOP and self.stop_signal in _STOP_SIGNALS

    @property
    def is_interrupt_stop(self) -> bool:
        """PTRACE_EVENT_STOP that is not a group-stop (PTRACE_INTERRUPT, new clone)."""
        return self.event == EVENT_STOP and self.stop_signal not in _STOP_SIGNALS

    @property
    def is_signal_delivery_stop(self) -> bool:
        """A signal is about to be delivered; resuming with 0 suppresses it."""
        return self.stopped and self.event == 0 and not self.is_syscall_stop

    def __str__(self) -> str:
        if self.exited:
            return f"pid {self.pid} exited with {self.exit_code}"
        if self.signaled:
            return f"pid {self.pid} killed by signal {self.term_signal}"
        if self.stopped:
            ev = f" event {self.event}" if self.event else ""
            return f"pid {self.pid} stopped by signal {self.stop_signal}{ev}"
        return f"pid {self.pid} status {self.raw:#x}"


def waitpid(pid: int, flags: int = WALL) -> WaitStatus | None:
    """waitpid(pid, flags | __WALL); None when WNOHANG finds nothing. EINTR is retried."""
    status = ffi.new("int *")
    while True:
        ffi.errno = 0
        ret = _libc.waitpid(pid, status, flags | WALL)
        if ret == -1 and ffi.errno == _errno.EINTR:
            continue
        _check("waitpid", pid, ret)
        if ret == 0:
            return None
        return WaitStatus(ret, int(status[0]) & 0xFFFFFFFF)


def tgkill(tgid: int, tid: int, sig: int) -> None:
    """tgkill(2): send sig to one thread."""
    ffi.errno = 0
    ret = _libc.syscall(ffi.cast("long", 234), ffi.cast("long", tgid), ffi.cast("long", tid),
                        ffi.cast("long", sig))
    _check("tgkill", tid, ret)


def vm_read(pid: int, addr: int, size: int) -> bytes:
    """process_vm_readv of one range (fails on unreadable pages; /proc/PID/mem does not)."""
    buf = ffi.new("unsigned char[]", size)
    local = ffi.new("struct iovec *", {"iov_base": buf, "iov_len": size})
    remote = ffi.new("struct iovec *", {"iov_base": _ptr(addr), "iov_len": size})
    ffi.errno = 0
    n = _libc.process_vm_readv(pid, local, 1, remote, 1, 0)
    _check("process_vm_readv", pid, n)
    return bytes(ffi.buffer(buf, n))


def vm_write(pid: int, addr: int, data: bytes) -> int:
    """process_vm_writev of one range (writable pages only)."""
    buf = ffi.new("unsigned char[]", data)
    local = ffi.new("struct iovec *", {"iov_base": buf, "iov_len": len(data)})
    remote = ffi.new("struct iovec *", {"iov_base": _ptr(addr), "iov_len": len(data)})
    ffi.errno = 0
    n = _libc.process_vm_writev(pid, local, 1, remote, 1, 0)
    return _check("process_vm_writev", pid, n)
