"""Refusals checked before attaching, and the explanation of a refused PTRACE_SEIZE.

Everything here only reads /proc, so a refusal leaves the target untouched.
The kernel is the final judge: `explain_seize_failure` turns its EPERM into the
same actionable messages when a pre-check could not foresee it (yama scope 1
with a PR_SET_PTRACER exception, capabilities, LSMs).
"""
from __future__ import annotations

import errno
import os
import pwd

from . import procfs
from .errors import AttachRefused

YAMA_PATH = "/proc/sys/kernel/yama/ptrace_scope"


def yama_scope(path: str = YAMA_PATH) -> int | None:
    """kernel.yama.ptrace_scope, or None when Yama is not active."""
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (FileNotFoundError, ValueError, PermissionError):
        return None


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def yama_message(pid: int, scope: int) -> str:
    """The actionable explanation of a Yama refusal for each ptrace_scope value."""
    head = f"cannot attach to process {pid}: kernel.yama.ptrace_scope is {scope}"
    if scope == 1:
        return (f"{head} (restricted: a process may only trace its own descendants). "
                "Start the program under utrace instead (utrace -c CMD), or let the program "
                "allow it with prctl(PR_SET_PTRACER, <utrace pid> or PR_SET_PTRACER_ANY), "
                f"or as root: echo 0 > {YAMA_PATH}")
    if scope == 2:
        return (f"{head} (admin-only: tracing needs CAP_SYS_PTRACE, even for your own "
                f"children). Run utrace as root, or as root: echo 1 > {YAMA_PATH} "
                "(then utrace -c CMD works) or echo 0 for -x")
    return (f"{head} (no attach: ptrace is disabled until reboot). Reboot with "
            "kernel.yama.ptrace_scope set lower in sysctl.conf")


def _refuse(pid: int, reason: str, msg: str) -> AttachRefused:
    return AttachRefused(pid, reason, msg)


def precheck(pid: int, force: bool = False, *, yama_path: str = YAMA_PATH,
             spawned: bool = False) -> None:
    """Raise AttachRefused when attaching to pid would be refused or unsafe.

    Checked: the process exists; it belongs to us (uids and gids, as the kernel
    requires) unless we hold CAP_SYS_PTRACE; Yama's ptrace_scope; dumpability
    (seen as /proc/PID owned by root while the process runs as another uid);
    an existing tracer (TracerPid); a seccomp mode in any thread (refused
    unless force; strict mode always).
    """
    try:
        st = procfs.read_status(pid)
        # Files under /proc/PID belong to root while the process is not
        # dumpable (the directory's own inode can lag behind: use a file).
        owner = os.stat(f"/proc/{pid}/status").st_uid
    except (FileNotFoundError, ProcessLookupError):
        raise _refuse(pid, "no-such-process", f"no process {pid}") from None
    if st.get("State", "").startswith(("Z", "X")):
        raise _refuse(pid, "no-such-process", f"process {pid} has exited (zombie)")
    privileged = procfs.has_cap_sys_ptrace()
    uids = {int(x) for x in st["Uid"].split()}
    gids = {int(x) for x in st["Gid"].split()}
    euid = int(st["Uid"].split()[1])
    # The kernel's rule: our real uid and gid equal all of the target's
    # real, effective and saved ids, or we hold CAP_SYS_PTRACE.
    if not privileged and (uids != {os.getuid()} or gids != {os.getgid()}):
        who = (f"user {_user(euid)} (uid {euid})" if uids != {os.getuid()}
               else f"group id {int(st['Gid'].split()[1])}")
        raise _refuse(pid, "other-user",
                      f"process {pid} ({_comm(pid)}) belongs to {who}, not to you "
                      f"({_user(os.getuid())}): utrace traces only your own processes; "
                      "run utrace as that user (or as root)")
    scope = yama_scope(yama_path)
    # Scope 1 is not refused here: PR_SET_PTRACER exceptions are invisible in
    # /proc, so the kernel decides and explain_seize_failure words its EPERM.
    if scope is not None and not spawned and (scope >= 3 or (scope == 2 and not privileged)):
        raise _refuse(pid, "yama", yama_message(pid, scope))
    if owner != euid and not (privileged and force):
        raise _refuse(pid, "non-dumpable", nondumpable_message(pid))
    tracer = int(st.get("TracerPid", "0"))
    if tracer:
        who = "this utrace process" if tracer == os.getpid() else \
            f"process {tracer} ({_comm(tracer)})"
        raise _refuse(pid, "already-traced",
                      f"process {pid} ({_comm(pid)}) is already traced by {who}: a process "
                      "can have only one tracer; detach the other tool (gdb, strace, "
                      "another utrace) first")
    check_seccomp(pid, force)


def nondumpable_message(pid: int) -> str:
    """Why a non-dumpable process cannot be traced, and what to do."""
    return (f"process {pid} ({_comm(pid)}) is not dumpable (it called "
            "prctl(PR_SET_DUMPABLE, 0), or runs a set-uid/set-gid or file-capability "
            "program): the kernel protects its memory from tracers. Start it under "
            "utrace -c CMD (before it drops dumpability), or as root use --force")


def check_seccomp(pid: int, force: bool) -> None:
    """Refuse a target with a seccomp mode in any thread (filters: unless force)."""
    modes = set()
    for tid in procfs.list_tasks(pid) or [pid]:
        try:
            modes.add(int(procfs.read_status(pid, tid).get("Seccomp", "0")))
        except (OSError, ValueError):
            continue
    if 1 in modes:
        raise _refuse(pid, "seccomp",
                      f"process {pid} ({_comm(pid)}) runs in seccomp strict mode "
                      "(Seccomp: 1): only read/write/exit are allowed, so any injected "
                      "syscall would kill it; it cannot be traced by utrace")
    if 2 in modes and not force:
        raise _refuse(pid, "seccomp",
                      f"process {pid} ({_comm(pid)}) runs under a seccomp filter "
                      f"(Seccomp: 2 in /proc/{pid}/status): the syscalls utrace injects "
                      "(mmap, mprotect, openat, ...) may be refused or kill the process; "
                      "refusing. Use --force to try anyway (a refused syscall then fails "
                      "the injection cleanly; a filter that kills would kill the target)")


def explain_seize_failure(pid: int, err: OSError, *, yama_path: str = YAMA_PATH
                          ) -> AttachRefused | OSError:
    """Turn a failed PTRACE_SEIZE of pid into an AttachRefused when we can say why."""
    if err.errno == errno.ESRCH:
        return _refuse(pid, "no-such-process", f"no process {pid}")
    if err.errno != errno.EPERM:
        return err
    try:
        precheck(pid, force=True, yama_path=yama_path)
    except AttachRefused as refusal:
        return refusal
    scope = yama_scope(yama_path)
    if scope:
        return _refuse(pid, "yama", yama_message(pid, scope))
    return _refuse(pid, "permission",
                   f"cannot attach to process {pid} ({_comm(pid)}): {err} — a security "
                   "module or missing CAP_SYS_PTRACE denies it")
