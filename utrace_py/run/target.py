"""Pass 5, target side: start or attach the traced process, load the handlers into it, watch it."""
from __future__ import annotations

import os
import select
import shlex
from dataclasses import dataclass

from ..diag import UtraceError

_SHELL_CHARS = set("|&;<>()$`\\\"'*?[]{}~#=%\n")


def command_argv(cmd: str) -> list[str]:
    """Split like a shell; anything a shell must interpret goes through /bin/sh -c."""
    try:
        argv = shlex.split(cmd)
    except ValueError:
        argv = []
    if not argv or any(ch in _SHELL_CHARS for ch in cmd if ch not in "\"'\\"):
        return ["/bin/sh", "-c", cmd]
    return argv


@dataclass
class Identity:
    """Who the target is, captured while it lives, for probes run after it is gone."""
    pid: int
    ppid: int
    uid: int
    euid: int
    comm: str
    exe: str


def read_identity(pid: int) -> Identity:
    status = {}
    with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as f:
        for line in f:
            k, _, v = line.partition(":")
            status[k] = v.strip()
    uids = status.get("Uid", "0 0").split()
    try:
        exe = os.path.realpath(f"/proc/{pid}/exe")
    except OSError:
        exe = ""
    return Identity(pid, int(status.get("PPid", "0")), int(uids[0]), int(uids[1]),
                    status.get("Name", ""), exe)


class TargetError(UtraceError):
    pass


class TargetProcess:
    """One traced process: the handler library loaded, the region shared, its exit watched."""

    def __init__(self, so_path: str, memfd: int, size: int, root_pid: int = 0) -> None:
        self.so_path = so_path
        self.memfd = memfd
        self.size = size
        self.root_pid = root_pid  # target(): the -c/-x process (0: this one)
        self.pid = 0
        self.spawned = False
        self.identity: Identity | None = None
        self.exit_status: int | None = None
        self._pidfd: int | None = None
        self._region_addr = 0
        self._lib_handle = 0
        self.threads = 0
        self.force = False  # --force: trace despite a seccomp filter or non-dumpability (root)
        self.report = None
        self._tracee = None
        self._lib = None
        self.syms: dict[str, int] = {}  # library functions the tracer calls, by address
        self.tls_offset: int | None = None  # of the context TLS block from the thread pointer
        self._report_shared = False  # report is also a forked parent's or child's

    # -- start -------------------------------------------------------------------
    def spawn(self, cmd: str) -> None:
        from injector.errors import InjectorError
        from injector.tracee import Tracee
        argv = command_argv(cmd)
        try:
            tr = Tracee.spawn(argv)
        except (InjectorError, OSError) as e:
            raise TargetError(f"ERROR: cannot start '{cmd}': {e}") from None
        self.pid, self.spawned = tr.pid, True
        try:
            tr.run_to_entry()
            self._inject(tr)
        except BaseException:
            tr.kill()
            raise
        self._tracee = tr

    def attach(self, pid: int, force: bool = False) -> None:
        from injector.errors import InjectorError
        from injector.tracee import Tracee
        # Before any remote call: one returns through an int3, and the kernel
        # unblocks a blocked SIGTRAP to deliver it, hiding what T-16 looks for.
        from .functions import sigtrap_blocked
        self.sigtrap_note = sigtrap_blocked(pid)
        try:
            tr = Tracee.attach(pid, force=force)
        except (InjectorError, OSError) as e:
            raise TargetError(f"ERROR: cannot trace process {pid}: {e}") from None
        self.force = force
        self.pid = pid
        try:
            self._inject(tr)
        except BaseException:
            tr.detach()
            raise
        self._tracee = tr

    def _inject(self, tr) -> None:
        from injector import elfsyms, loader
        from injector.errors import InjectorError
        from ..cachedir import cache_dir
        elfsyms.set_cache_dir(str(cache_dir()))
        try:
            self.threads = len(tr.tids)
            self.identity = read_identity(tr.pid)
            lib = loader.load_library(tr, self.so_path)
            self._lib = lib
            self._lib_handle = lib.handle
            self._region_addr = loader.map_memfd(tr, self.memfd, self.size)
            if lib.call("utr_script_setup", self._region_addr, self.size, 0) != 0:
                raise TargetError(f"ERROR: the handler library failed to start in process {tr.pid}")
            lib.call("utr_set_target_pid", self.root_pid or tr.pid)
            # Addresses for the calls made while following (forks copy them unchanged),
            # from the object's symbol table: no dlsym, which takes the loader's lock.
            self.syms = self._symbols(tr, lib, ("utr_call_probe", "utr_tls_offset"))
            from injector.ptrace import to_signed
            self.tls_offset = to_signed(tr.call(self.syms["utr_tls_offset"], tid=lib.tid))
        except InjectorError as e:
            raise TargetError(f"ERROR: cannot load the handlers into process {tr.pid}: {e}") from None

    def _symbols(self, tr, lib, names) -> dict[str, int]:
        import re
        from injector import elfsyms
        obj = elfsyms.find_object(tr.pid, tr.maps(), re.escape(os.path.basename(self.so_path)) + "$")
        out = {}
        for name in names:
            hit = elfsyms.resolve(obj, name) if obj is not None else None
            out[name] = hit[0] if hit else lib.sym(name)
        return out

    def adopt_image(self, tr) -> None:
        """Load the handlers into a followed process's new image (after exec, at its entry)."""
        self.pid = tr.pid
        self._tracee = tr
        self._inject(tr)

    def share_report(self) -> None:
        """A fork copied this process's patches: its report is the child's too until either
        changes its own (rearm copies it first)."""
        self._report_shared = True

    def forked(self, tr, ident: Identity, report) -> "TargetProcess":
        """The copy a fork gives child tr: the same library, region and patches, same
        addresses; report: what was armed in the parent when it forked."""
        from injector import loader
        child = TargetProcess(self.so_path, self.memfd, self.size, self.root_pid)
        child.pid, child.identity, child.threads = tr.pid, ident, 1
        child._tracee = tr
        child._region_addr, child._lib_handle = self._region_addr, self._lib_handle
        child.report, child.syms, child.tls_offset = report, self.syms, self.tls_offset
        # One report for both until either changes its own (rearm at a dlopen): copy then.
        if report is self.report:
            self._report_shared = True
        child._report_shared = True
        if self._lib is not None:
            child._lib = loader.Library(tr, self._lib.api, self._lib.handle, self._lib.path, tr.pid)
        return child

    @property
    def region_addr(self) -> int:
        return self._region_addr

    def rearm(self, probes: list, table) -> list[str]:
        """At ld.so's _dl_debug_state stop: forget the sites of libraries that went
        away, arm those of libraries that came; the -v lines of the new sites."""
        from .functions import arm, forget_unmapped
        if self._report_shared:  # a forked copy's: this process's sites are its own now
            import copy
            self.report = copy.deepcopy(self.report)
            self._report_shared = False
        forget_unmapped(self.pid, self.report)
        before = len(self.report.sites)
        arm(self._tracee, self._lib, probes, self.identity, table,
            sigtrap_note=getattr(self, "sigtrap_note", None), prior=self.report)
        return self.report.lines()[before:-1] if len(self.report.sites) > before else []

    def arm(self, probes: list, table) -> list[str]:
        """Patch the process.function probes' sites while every thread is stopped."""
        from .functions import arm
        self.report = arm(self._tracee, self._lib, probes, self.identity, table,
                          sigtrap_note=getattr(self, "sigtrap_note", None))
        return self.report.lines() if self.report.sites else []

    def call_probe(self, index: int, tid: int | None = None) -> None:
        """Run one probe handler in the target, on thread tid (stopped) or a borrowed one."""
        self._tracee.call(self.syms["utr_call_probe"], index,
                          tid=self._lib.tid if tid is None else tid, timeout=30.0)

    def release(self) -> None:
        """Let the target run on its own; keep watching for its exit."""
        self._tracee.detach()
        self._tracee = None
        if not self.spawned:
            try:
                self._pidfd = os.pidfd_open(self.pid)
            except OSError:
                self._pidfd = None

    # -- watching ----------------------------------------------------------------
    def exited(self) -> bool:
        if self.exit_status is not None:
            return True
        if self.spawned:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.exit_status = 0
                return True
            if pid == 0:
                return False
            self.exit_status = os.waitstatus_to_exitcode(status)
            return True
        if self._pidfd is not None:
            r, _, _ = select.select([self._pidfd], [], [], 0)
            if r:
                self.exit_status = 0
                os.close(self._pidfd)
                self._pidfd = None
                return True
            return False
        try:
            os.kill(self.pid, 0)
            return False
        except ProcessLookupError:
            self.exit_status = 0
            return True
        except PermissionError:
            return False

    # -- end ------------------------------------------------------------------------
    def unload(self, tr=None) -> None:
        """Take our memory out of a target that outlives the session.

        tr: the process's Tracee when it is still attached with every thread stopped
        (a followed process); otherwise attach for the time it takes (-x).
        """
        if not self._region_addr or (tr is None and self.exited()):
            return
        from injector import elfsyms, loader
        from injector.errors import InjectorError
        from injector.tracee import Tracee
        own = tr is None
        if own:
            try:
                tr = Tracee.attach(self.pid, force=self.force)
            except (InjectorError, OSError):
                return  # gone or no longer ours: nothing of ours can be reached
        try:
            if self.report is not None and any(x.tier in ("jump", "trap", "ptrace")
                                               for x in self.report.sites):
                # Patched sites: put the code back, but keep the handlers and the region
                # mapped: a thread may still be inside a trampoline or a handler.
                from .functions import disarm
                disarm(tr, self.report)
                return
            loader.unmap(tr, self._region_addr, self.size)
            libc = elfsyms.find_object(tr.pid, tr.maps(), elfsyms.LIBC)
            dlclose = elfsyms.resolve(libc, "dlclose") if libc is not None else None
            if dlclose and self._lib_handle:
                tr.call(dlclose[0], self._lib_handle)
            from injector import remote
            remote.release_scratch(tr)
        except (InjectorError, OSError):
            pass
        finally:
            if own:
                tr.detach()
            self._region_addr = 0
