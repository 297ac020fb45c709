"""Pass 5 (tracer side): map the shared region, run begin/timer/end/error probes, drain output."""
from __future__ import annotations

import heapq
import mmap
import os
import random
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..diag import SystemFailure
from ..paths import native_dir

ST_STARTING, ST_RUNNING, ST_STOPPING, ST_ERROR, ST_DONE = range(5)
ERR = 2  # stream tag of stderr records (enum utr_stream)

_ffi = None


def ffi():
    """cffi in ABI mode, declared from the header's CDEF block (one source of truth).

    The declarations are compiled once into an out-of-line ABI module in the
    cache (cffi's own format), so a run never imports cffi's C parser.
    """
    global _ffi
    if _ffi is None:
        import hashlib
        import importlib.util
        from ..cachedir import cache_dir, check_owned
        text = (native_dir() / "include" / "utrace_rt.h").read_text()
        start = text.index("/* UTR_CDEF_BEGIN */") + len("/* UTR_CDEF_BEGIN */")
        cdef = text[start:text.index("/* UTR_CDEF_END */")]
        name = "_utr_abi_" + hashlib.sha256(cdef.encode()).hexdigest()[:16]
        path = cache_dir() / f"{name}.py"
        if not path.exists():
            import cffi
            builder = cffi.FFI()
            builder.cdef(cdef)
            builder.set_source(name, None)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            import contextlib
            import io
            with contextlib.redirect_stdout(io.StringIO()):  # cffi announces "generating ..."
                builder.emit_python_code(str(tmp))
            os.replace(tmp, path)
        check_owned(path)
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        _ffi = mod.ffi
    return _ffi


@dataclass
class ProbeInfo:
    index: int
    kind: str
    order: int
    interval_ns: int = 0
    randomize_ns: int = 0
    target_path: str | None = None
    target_pid: int | None = None
    function: str | None = None
    ret: bool = False            # process.function(...).return
    library: str | None = None   # process(...).library("NAME").function(...)
    plt: bool = False            # process(...).plt("NAME"): function names PLT stubs
    thread: bool = False         # process.thread.begin/.end (kind process.begin/.end)
    mark_pc: int = 0             # process.mark: the marker's link-time address
    mark_sem: int = 0            # and its semaphore's (0: none)

    @property
    def family(self) -> str:
        """The kind, with process.thread.begin/.end told apart from process.begin/.end."""
        return self.kind.replace("process.", "process.thread.", 1) if self.thread else self.kind

    def matches(self, ident) -> bool:
        return ((self.target_path is None or self.target_path == ident.exe)
                and (self.target_pid is None or self.target_pid == ident.pid))


class _Unbuffered:
    """stderr's bytes, written through at once: a pipe's block buffering would hold -v and
    warning lines back until exit, and a reader waiting for them would wait for ever."""

    def __init__(self, raw) -> None:
        self.raw = raw

    def write(self, data: bytes) -> int:
        n = self.raw.write(data)
        self.raw.flush()
        return n

    def flush(self) -> None:
        self.raw.flush()


class SiteTable:
    """The shared region's table of patched sites, written from the tracer."""

    def __init__(self, session: "Session") -> None:
        self.session = session
        self.count = 0  # sites named so far (site 0 means "as written")

    def name(self, pp: str) -> int:
        """Record the pp() of a site about to be armed; its number (0: the table is full)."""
        if self.session.lib.utr_set_site_pp(self.count + 1, pp.encode()) != 0:
            return 0
        self.count += 1
        return self.count

    def add(self, site: int, probe: int) -> None:
        self.session.lib.utr_site_add_probe(site, probe)

    def set_return(self, site: int, ret_site: int) -> None:
        self.session.lib.utr_site_set_return(site, ret_site)

    def set_hook(self, site: int, hook: int) -> None:
        self.session.lib.utr_site_set_hook(site, hook)


class Session:
    def __init__(self, so_path: Path, probes: list[ProbeInfo], out: BinaryIO,
                 script_args: list[str], timeout: float | None, verbose: int = 0,
                 command: str | None = None, pid: int | None = None,
                 force: bool = False) -> None:
        self.so_path = so_path
        self.force = force
        self.command, self.target_pid = command, pid
        self.target = None
        self.follower = None  # the followed process tree (run/follow.py)
        self._sites = SiteTable(self)
        self.f = ffi()
        self.lib = self.f.dlopen(str(so_path))
        self.probes = probes
        self.out = out
        self.err = _Unbuffered(sys.stderr.buffer)
        self.timeout = timeout
        self.verbose = verbose
        self.interrupted = False
        size = int(self.lib.utr_script_region_size())
        self.size = (size + 4095) & ~4095
        try:
            fd = os.memfd_create("utrace-region", os.MFD_CLOEXEC)
            os.ftruncate(fd, self.size)
            self.mm = mmap.mmap(fd, self.size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as e:
            raise SystemFailure("creating the shared region (memfd_create/mmap)", e.errno,
                                os.getpid()) from None
        self.fd = fd
        self.base = self.f.from_buffer(self.mm)
        if self.lib.utr_script_setup(self.base, self.size, 1) != 0:
            raise SystemFailure("initialising the shared region", None, os.getpid(),
                                f"{self.size} bytes")
        self._argv = [self.f.new("char[]", a.encode()) for a in script_args]
        argv = self.f.new("const char *[]", self._argv or [self.f.NULL])
        self.lib.utr_set_script_args(len(script_args), argv)
        self.drainbuf = self.f.new("char[]", 1 << 20)
        self._drain_stream = self.f.new("int32_t *")
        self.saw_error = False
        from .usyms import Symbolizer
        self.usyms = Symbolizer()  # symbol text of the tokens handlers print

    # -- output ---------------------------------------------------------------
    def fold_to(self, folded: str | None, flamegraph: str | None) -> None:
        """Collect the stacks the script's fold probes hand over; written at the end."""
        from .flamegraph import Folded
        self._folded = Folded()
        self._fold_files = (folded, flamegraph)
        self.usyms.fold = self._folded.add

    def _write_folds(self) -> None:
        from .flamegraph import svg
        folded, flamegraph = self._fold_files
        try:
            if folded:
                Path(folded).write_text(self._folded.text())
            if flamegraph:
                Path(flamegraph).write_text(svg(self._folded.counts))
        except OSError as e:
            raise SystemFailure("writing the folded stacks or the flame graph", e.errno,
                                os.getpid(), e.filename) from None

    def drain(self, final: bool = False) -> None:
        """Write what the rings hold: runs of stdout records in one write each (the
        runtime strips their headers), error records one at a time, in order.
        Symbol tokens (usyms.py) become text here."""
        stream = self._drain_stream
        self.usyms.publish(self.lib, self.mm)
        for _ in range(256):  # a target writing faster than this drains: back next turn
            n = int(self.lib.utr_drain_stream(self.drainbuf, len(self.drainbuf), stream))
            if stream[0] == 0:
                break
            data = self.f.buffer(self.drainbuf, n)[:]
            if b"\x1d" in data or self.usyms.pending:
                data = self.usyms.expand(data, final=stream[0] == ERR)
            if stream[0] == ERR:
                if data.startswith(b"ERROR:"):
                    self.saw_error = True
                self.out.flush()
                self.err.write(data)
                self.err.flush()
            else:
                self.out.write(data)
        if final and self.usyms.pending:
            self.out.write(self.usyms.expand(b"", final=True))
        self.out.flush()

    # -- probes ---------------------------------------------------------------
    def _run_kind(self, kind: str, state: int) -> None:
        for p in self._ordered(kind):
            self.lib.utr_set_state(state)
            self.lib.utr_call_probe(p.index)
            self.drain()
            st = self.lib.utr_state()
            if kind == "begin" and (st == ST_ERROR or self.lib.utr_exit_requested()):
                # exit() ends the starting phase: stap runs later begin probes only
                # while the session is still starting.
                return
            if kind == "end" and st == ST_ERROR:
                self.lib.utr_set_state(ST_STOPPING)

    def _on_signal(self, signum, frame) -> None:  # noqa: ARG002
        self.interrupted = True

    def run(self) -> int:
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM,
                                                            signal.SIGHUP)}
        try:
            return self._run()
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def _run(self) -> int:
        lib = self.lib
        start = time.monotonic()
        if self.target_pid is not None:
            lib.utr_set_target_pid(self.target_pid)  # target() in begin probes, as stap -x
        self._run_kind("begin", ST_STARTING)
        if lib.utr_state() != ST_ERROR and not lib.utr_exit_requested():
            lib.utr_set_state(ST_RUNNING)
            if (self.command is None and self.target_pid is None) or self._start_target():
                try:
                    self._main_loop(start)
                finally:
                    if self.follower is not None:
                        self.follower.finish()
        if self.follower is None and self.target is not None and not self.target.exited():
            self.target.unload()
        if lib.utr_state() == ST_ERROR:
            self._run_kind("error", ST_ERROR)
        else:
            self._run_kind("end", ST_STOPPING)
        lib.utr_set_state(ST_DONE)
        self.drain(final=True)
        if self.usyms.fold is not None:
            self._write_folds()
        self._final_warnings()
        return 1 if (self.saw_error or lib.utr_error_count() > 0) else 0

    def _start_target(self) -> bool:
        """Start (-c) or attach (-x) the target and run its process.begin probes in it."""
        from .target import TargetError, TargetProcess
        t = TargetProcess(str(self.so_path), self.fd, self.size)
        t0 = time.monotonic()
        try:
            if self.command is not None:
                t.spawn(self.command)
            else:
                t.attach(self.target_pid, force=self.force)
            if self.verbose:
                self.err.write(f"Pass 5: {'started' if self.command else 'attached to'} process "
                               f"{t.pid} ({t.threads} threads) and loaded the handlers in "
                               f"{(time.monotonic() - t0) * 1000:.1f} ms\n".encode())
            self.target = t
            self.lib.utr_set_target_pid(t.pid)
            self.usyms.note_pid(t.pid)
            from .follow import function_probes
            lines = t.arm(function_probes(self.probes, t.identity, t.identity.exe), self._sites)
            self.usyms.publish(self.lib, self.mm, force=True)
            if self.verbose:
                for ln in lines:
                    self.err.write(f"Pass 5: {ln}\n".encode())
            for what in t.report.unmatched:
                self.err.write(f"WARNING: {what} matched no function in process {t.pid}\n".encode())
            for s in t.report.sites:
                if s.reason.startswith("not supported yet"):
                    self.err.write(f"WARNING: {s.name}: {s.reason}\n".encode())
            for p in self._ordered("process.begin"):
                if p.matches(t.identity):
                    t.call_probe(p.index)
                    self.drain()
            if any(p.kind.startswith("process.") for p in self.probes):
                from injector.errors import InjectorError
                from .follow import Follower
                try:
                    self.follower = Follower(self, t)  # stays attached: forks, threads, exec
                except (InjectorError, OSError) as e:
                    try:
                        t.release()
                    except (InjectorError, OSError):
                        pass
                    raise TargetError(f"ERROR: cannot follow process {t.pid}: {e}") from None
            else:
                t.release()
        except TargetError as e:
            self.drain()
            self.err.write((str(e) + "\n").encode())
            self.saw_error = True
            return False
        return True

    def _ordered(self, kind: str) -> list[ProbeInfo]:
        return sorted((p for p in self.probes if p.family == kind), key=lambda p: (p.order, p.index))

    def _target_ended(self) -> None:
        """process.end probes, run here on the target's behalf: it can no longer run code."""
        ident = self.target.identity
        self.lib.utr_set_identity(ident.pid, ident.pid, ident.ppid, ident.uid, ident.euid,
                                  ident.comm.encode())
        try:
            for p in self._ordered("process.end"):
                if p.matches(ident):
                    self.lib.utr_call_probe(p.index)
                    self.drain()
        finally:
            self.lib.utr_clear_identity()

    def _main_loop(self, start: float) -> None:
        lib = self.lib
        deadline = start + self.timeout if self.timeout else None
        heap: list[tuple[float, int, int]] = []
        now = time.monotonic()
        timers = [p for p in self.probes if p.kind == "timer"]
        for p in timers:
            heapq.heappush(heap, (now + self._interval(p), p.index, p.index))
        byidx = {p.index: p for p in timers}
        while True:
            if self.interrupted or lib.utr_exit_requested() or lib.utr_state() == ST_ERROR:
                return
            if self.follower is not None:
                self.follower.poll()
                if self.follower.root_status is not None and self.command is not None:
                    self.drain()
                    return  # stap ends a -c session when its command exits
            elif self.target is not None and self.target.exit_status is None and self.target.exited():
                self.drain()
                self._target_ended()
                if self.command is not None:
                    return  # stap ends a -c session when its command exits
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return
            while heap and heap[0][0] <= now:
                due, _, idx = heapq.heappop(heap)
                lib.utr_call_probe(idx)
                p = byidx[idx]
                nxt = due + self._interval(p)
                if nxt < now:  # fell behind: skip missed ticks rather than bursting
                    nxt = now + self._interval(p)
                heapq.heappush(heap, (nxt, idx, idx))
                if lib.utr_exit_requested() or lib.utr_state() == ST_ERROR:
                    break
            self.drain()
            if lib.utr_exit_requested() or lib.utr_state() == ST_ERROR:
                return
            wake = now + (0.02 if self.target is not None else 0.2)
            if heap:
                wake = min(wake, heap[0][0])
            if deadline is not None:
                wake = min(wake, deadline)
            delay = wake - time.monotonic()
            if delay > 0:
                if self.follower is not None:
                    self.follower.wait(delay)
                else:
                    time.sleep(delay)

    @staticmethod
    def _interval(p: ProbeInfo) -> float:
        ns = p.interval_ns
        if p.randomize_ns:
            ns += random.randint(-p.randomize_ns, p.randomize_ns)
        return max(ns, 1) / 1e9

    def _final_warnings(self) -> None:
        lib = self.lib
        dropped = int(lib.utr_dropped_count())
        if dropped:
            self.err.write(f"WARNING: There were {dropped} transport failures "
                           f"(output records dropped on a full ring).\n".encode())
        overflow = int(lib.utr_ret_overflow_count())
        if overflow:
            self.err.write(f"WARNING: {overflow} return probes skipped: a thread's shadow "
                           "stack was full (-D UTR_SHADOW_DEPTH=N raises the limit).\n".encode())
        unwound = int(lib.utr_ret_unwound_count())
        if unwound and self.verbose:
            self.err.write(f"Pass 5: {unwound} return probes did not run: their frames were "
                           "unwound by longjmp or an exception.\n".encode())
        nested = int(lib.utr_reentrant_count())
        if nested and self.verbose:
            self.err.write(f"Pass 5: {nested} hits of probed functions called by utrace's own "
                           "code (a handler, errno, memcpy) ran no probe.\n".encode())
        errors, skipped = int(lib.utr_error_count()), int(lib.utr_skipped_count())
        if errors or skipped:
            self.err.write(f"WARNING: Number of errors: {errors}, skipped probes: {skipped}\n".encode())
        self.err.flush()

    def close(self) -> None:
        try:
            del self.base
            self.mm.close()
            os.close(self.fd)
        except (OSError, BufferError):
            pass
