"""Pass 5 for --runtime=kmod: insert the module, stream its output, stop it, remove it.

The module (native/kmod/kmain.c) offers /proc/NAME.ctl (write start/stop, read
the state and counters) and /proc/NAME.out (read the output records).  The
module is removed in every case this process survives: the script's exit(),
an error, -T, Ctrl-C, SIGTERM or SIGHUP, or an exception here.
"""
from __future__ import annotations

import ctypes
import os
import signal
import struct
import sys
import time
from pathlib import Path

from ..diag import UtraceError

ST_ERROR, ST_DONE = 3, 4
ERR = 2
SYS_FINIT_MODULE, SYS_DELETE_MODULE = 313, 176
O_NONBLOCK = 0o4000


def check_privilege(kver: str | None) -> None:
    """Refuse, naming what is missing, when this process cannot load a module now."""
    running = os.uname().release
    if kver is not None and kver != running:
        raise UtraceError(f"ERROR: the module would be built for kernel {kver} but {running} is "
                          f"running: stop after pass 4 (-p4) and run it there with "
                          f"`utrace --run-module=FILE.ko`")
    if os.geteuid() != 0:
        raise UtraceError("ERROR: --runtime=kmod needs root: inserting a kernel module needs "
                          f"CAP_SYS_MODULE and you are uid {os.geteuid()}; run it as root, or "
                          "trace your own processes with --runtime=user")
    if not Path("/proc/modules").exists():
        raise UtraceError(f"ERROR: the running kernel ({running}) cannot load modules (no "
                          "/proc/modules: it was built without CONFIG_MODULES); "
                          "use --runtime=user")
    try:
        if Path("/proc/sys/kernel/modules_disabled").read_text().strip() == "1":
            raise UtraceError("ERROR: module loading is disabled on this system "
                              "(kernel.modules_disabled=1); use --runtime=user")
    except OSError:
        pass


_libc = None


def _syscall(nr: int, *args) -> int:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    r = _libc.syscall(ctypes.c_long(nr), *args)
    return 0 if r == 0 else -ctypes.get_errno()


def insert(ko: Path) -> str:
    """Load the module; its name.  A leftover of the same module is removed first."""
    name = ko.stem
    for attempt in range(2):
        fd = os.open(ko, os.O_RDONLY)
        try:
            rc = _syscall(SYS_FINIT_MODULE, ctypes.c_int(fd), ctypes.c_char_p(b""), ctypes.c_int(0))
        finally:
            os.close(fd)
        if rc == -17 and attempt == 0:  # EEXIST: an earlier run of it was killed
            remove(name)
            continue
        if rc:
            raise UtraceError(f"ERROR: cannot insert module {ko}: {os.strerror(-rc)} "
                              "(see dmesg)")
        return name
    raise UtraceError(f"ERROR: module {name} is loaded and cannot be removed")


def remove(name: str) -> int:
    rc = 0
    for _ in range(100):  # busy while a reader still holds its files
        rc = _syscall(SYS_DELETE_MODULE, ctypes.c_char_p(name.encode()), ctypes.c_int(O_NONBLOCK))
        if rc != -11 and rc != -16:
            return rc
        time.sleep(0.05)
    return rc


class ModuleSession:
    def __init__(self, name: str, out, timeout: float | None, verbose: int) -> None:
        self.name = name
        self.out = out
        self.err = sys.stderr.buffer
        self.timeout = timeout
        self.verbose = verbose
        self.ctl = os.open(f"/proc/{name}.ctl", os.O_RDWR)
        self.data = os.open(f"/proc/{name}.out", os.O_RDONLY)
        self.interrupted = False
        self.saw_error = False

    def status(self) -> list[int]:
        return [int(x) for x in os.pread(self.ctl, 200, 0).split()]

    def command(self, cmd: str) -> None:
        os.write(self.ctl, cmd.encode())

    def drain(self) -> None:
        while True:
            buf = os.read(self.data, 65536)
            if not buf:
                break
            at = 0
            while at + 5 <= len(buf):
                n, stream = struct.unpack_from("<IB", buf, at)
                rec = buf[at + 5:at + 5 + n]
                at += 5 + n
                if stream == ERR:
                    if rec.startswith(b"ERROR:"):
                        self.saw_error = True
                    self.out.flush()
                    self.err.write(rec)
                    self.err.flush()
                else:
                    self.out.write(rec)
        self.out.flush()

    def _on_signal(self, signum, frame) -> None:  # noqa: ARG002
        self.interrupted = True

    def run(self) -> int:
        old = {s: signal.signal(s, self._on_signal)
               for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            start = time.monotonic()
            self.command("start")
            while True:
                self.drain()
                st, exit_req = self.status()[:2]
                if self.interrupted or exit_req or st in (ST_ERROR, ST_DONE):
                    break
                if self.timeout and time.monotonic() - start >= self.timeout:
                    break
                time.sleep(0.02)
            self.command("stop")
            self.drain()
            return self._final()
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def _final(self) -> int:
        st, exit_req, errors, skipped, dropped, _ = self.status()
        if dropped:
            self.err.write(f"WARNING: There were {dropped} transport failures "
                           "(output records dropped on a full ring).\n".encode())
        if errors or skipped:
            self.err.write(f"WARNING: Number of errors: {errors}, skipped probes: "
                           f"{skipped}\n".encode())
        self.err.flush()
        return 1 if (self.saw_error or errors) else 0

    def close(self) -> None:
        for fd in (self.ctl, self.data):
            try:
                os.close(fd)
            except OSError:
                pass


def run_module(ko: Path, opts) -> int:
    """Pass 5 of the kernel runtime (also `utrace --run-module=FILE.ko`, like staprun)."""
    check_privilege(None)
    if not ko.exists():
        raise UtraceError(f"ERROR: module file '{ko}' not found")
    out = sys.stdout.buffer if opts.output is None else open(opts.output, "wb")
    if opts.verbose:
        sys.stderr.write("Pass 5: starting run.\n")
    # Signals before the module is in must not leave it loaded either.
    pending: list[int] = []
    old = {s: signal.signal(s, lambda n, f: pending.append(n))
           for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    name = None
    sess = None
    rc = 1
    try:
        name = insert(ko)
        sess = ModuleSession(name, out, opts.timeout, opts.verbose)
        rc = sess.run() if not pending else _stopped(sess)
    finally:
        if sess is not None:
            sess.close()
        if name is not None:
            err = remove(name)
            if err:
                sys.stderr.write(f"WARNING: cannot remove module {name}: {os.strerror(-err)}\n")
        for s, h in old.items():
            signal.signal(s, h)
        if out is not sys.stdout.buffer:
            out.close()
    if rc:
        sys.stderr.write("Pass 5: run failed.  [man error::pass5]\n")
    return rc


def _stopped(sess: ModuleSession) -> int:
    """Interrupted before the start: begin probes never ran, so neither do end probes."""
    sess.drain()
    return sess._final()
