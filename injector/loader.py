"""Load a shared object into a tracee with a remote dlopen, call into it, share memfds with it."""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from . import elfsyms, remote
from .errors import LoadError, RemoteError

RTLD_LAZY, RTLD_NOW, RTLD_GLOBAL = 0x1, 0x2, 0x100
_RTLD_DLOPEN = 0x80000000  # glibc < 2.34: __libc_dlopen_mode needs it
O_RDWR, O_CLOEXEC = 0o2, 0o2000000


@dataclass(frozen=True)
class DlApi:
    """Addresses of the loader entry points in the target."""

    dlopen: int
    dlsym: int
    dlerror: int | None  # None for the __libc_dl* fallbacks of old glibc
    libc_dlopen_mode: bool = False


def dl_api(tracee) -> DlApi:
    """Find dlopen/dlsym/dlerror in the target's libc (glibc >= 2.34) or libdl."""
    maps = tracee.maps()
    libc = elfsyms.find_object(tracee.pid, maps, elfsyms.LIBC)
    if libc is None:
        raise LoadError(f"libc.so.6 is not mapped in process {tracee.pid}: a static program, "
                        "or one stopped before ld.so loaded it (use Tracee.run_to_entry())")
    for obj in (libc, elfsyms.find_object(tracee.pid, maps, elfsyms.LIBDL)):
        if obj is None:
            continue
        syms = [elfsyms.resolve(obj, n) for n in ("dlopen", "dlsym", "dlerror")]
        if all(syms):
            return DlApi(syms[0][0], syms[1][0], syms[2][0])
    old = [elfsyms.resolve(libc, n) for n in ("__libc_dlopen_mode", "__libc_dlsym")]
    if all(old):
        return DlApi(old[0][0], old[1][0], None, libc_dlopen_mode=True)
    raise LoadError(f"no dlopen in process {tracee.pid}: glibc < 2.34 without libdl loaded")


def _path_for_target(tracee, path: str) -> tuple[str, int | None]:
    """The path the target must open; through /proc/<us>/fd when mount namespaces differ."""
    path = os.path.abspath(path)
    try:
        same_ns = os.readlink("/proc/self/ns/mnt") == os.readlink(f"/proc/{tracee.pid}/ns/mnt")
    except OSError:
        same_ns = True
    if same_ns:
        return path, None
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    return f"/proc/{os.getpid()}/fd/{fd}", fd


def _check_path(tracee, path: bytes) -> int:
    if len(path) >= remote.PAGE:
        raise LoadError(f"path too long: {path[:60]!r}...")
    return remote.put_data(tracee, path + b"\0")


class Library:
    """A library loaded into a tracee: its dlopen handle and symbol calls."""

    def __init__(self, tracee, api: DlApi, handle: int, path: str, tid: int):
        self.tracee = tracee
        self.api = api
        self.handle = handle
        self.path = path
        self.tid = tid
        self._syms: dict[str, int] = {}

    def sym(self, name: str) -> int:
        """dlsym(handle, name) in the target; LoadError with dlerror() text when missing.

        Remembered: a remote dlsym runs the C library's code, which may by then
        carry probe sites of the script's own (function("*") on libc)."""
        addr = self._syms.get(name)
        if addr is not None:
            return addr
        addr = self.tracee.call(self.api.dlsym, self.handle,
                                _check_path(self.tracee, name.encode()), tid=self.tid)
        if addr == 0:
            raise LoadError(f"dlsym({name}) in {self.path} failed in process "
                            f"{self.tracee.pid}: {dlerror(self.tracee, self.api, self.tid)}")
        self._syms[name] = addr
        return addr

    def call(self, name: str, *args: int, timeout: float = 10.0) -> int:
        """Call the library's function `name` with up to 6 integer arguments; returns rax."""
        return self.tracee.call(self.sym(name), *args, tid=self.tid, timeout=timeout)


def dlerror(tracee, api: DlApi, tid: int) -> str:
    """dlerror() of thread tid as text (it is per thread: ask the failing one)."""
    if api.dlerror is None:
        return "unknown error (old glibc has no dlerror for __libc_dlopen_mode)"
    ptr = tracee.call(api.dlerror, tid=tid)
    if not ptr:
        return "unknown error"
    return tracee.read_cstring(ptr).decode(errors="replace")


def load_library(tracee, path: str, flags: int = RTLD_NOW, *, tid: int | None = None,
                 timeout: float = 30.0) -> Library:
    """dlopen(path, flags) in the target; on failure LoadError carries dlerror()."""
    api = dl_api(tracee)
    target_path, fd = _path_for_target(tracee, path)
    try:
        addr = _check_path(tracee, target_path.encode())
        tid = remote.pick_thread(tracee) if tid is None else tid
        mode = flags | (_RTLD_DLOPEN if api.libc_dlopen_mode else 0)
        handle = tracee.call(api.dlopen, addr, mode, tid=tid, timeout=timeout)
    finally:
        if fd is not None:
            os.close(fd)
    if handle == 0:
        raise LoadError(f"dlopen({path}) in process {tracee.pid} failed: "
                        f"{dlerror(tracee, api, tid)}")
    return Library(tracee, api, handle, path, tid)


def map_memfd(tracee, fd: int, size: int, prot: int = remote.PROT_READ | remote.PROT_WRITE,
              *, tid: int | None = None) -> int:
    """Map our memfd `fd` MAP_SHARED into the target; returns the remote address.

    The target opens /proc/<our pid>/fd/<fd> (O_RDWR|O_CLOEXEC) with a remote
    openat, maps it and closes its descriptor again; nothing named is left
    that another process could open.
    """
    path = f"/proc/{os.getpid()}/fd/{fd}".encode()
    rfd = tracee.syscall(remote.SYS_openat, remote.AT_FDCWD, _check_path(tracee, path),
                         O_RDWR | O_CLOEXEC, 0, tid=tid)
    if rfd < 0:
        raise RemoteError(f"process {tracee.pid} could not open our memfd {path.decode()}: "
                          f"{os.strerror(-rfd)}")
    try:
        addr = tracee.syscall(remote.SYS_mmap, 0, size, prot, remote.MAP_SHARED, rfd, 0,
                              tid=tid)
    finally:
        tracee.syscall(remote.SYS_close, rfd, tid=tid)
    if -4096 < addr < 0:
        raise RemoteError(f"mmap of the shared region in process {tracee.pid} failed: "
                          f"{errno.errorcode.get(-addr, -addr)}")
    return addr


def unmap(tracee, addr: int, size: int, *, tid: int | None = None) -> None:
    """munmap in the target."""
    rc = tracee.syscall(remote.SYS_munmap, addr, size, tid=tid)
    if rc < 0:
        raise RemoteError(f"munmap({addr:#x}, {size}) in process {tracee.pid}: "
                          f"{os.strerror(-rc)}")
