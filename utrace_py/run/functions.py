"""Arm process.function probes in a stopped target: choose sites, place trampolines, patch."""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import NamedTuple

PROT_READ, PROT_EXEC = 1, 4
MAP_PRIVATE, MAP_ANONYMOUS, MAP_FIXED_NOREPLACE = 0x02, 0x20, 0x100000
SYS_MMAP = 9
PAGE = 4096
NEAR = (1 << 31) - (1 << 20)  # what a jmp rel32 reaches, with a margin
# Benchmarks and tests of the trap tier put every site on it.
FORCE_TRAP = os.environ.get("UTRACE_FORCE_TIER") == "trap"


@dataclass
class Site:
    probe: int
    name: str
    addr: int
    tier: str
    reason: str = ""
    original: bytes = b""
    patch: bytes = b""
    hook: bool = False  # an unwinder hook the return probes need, not a user's probe


@dataclass
class ArmReport:
    sites: list[Site] = field(default_factory=list)
    semaphores: list[int] = field(default_factory=list)  # SDT semaphores incremented
    armed: dict[int, int] = field(default_factory=dict)  # patched address -> its site
    ret_tramp: int = 0   # this process's return trampoline
    dl_hook: int = 0     # the int3 on ld.so's _dl_debug_state (libraries loaded later)
    seen: set = field(default_factory=set)  # (path, base) of the modules an arming saw
    pending_sems: list[tuple[int, int]] = field(default_factory=list)  # (semaphore, site)
    unmatched: list[str] = field(default_factory=list)  # probe points that found no function

    def lines(self) -> list[str]:
        """What -v prints: each site with its tier (and why), then a summary."""
        out = [f"site {s.name} at {s.addr:#x}: {s.tier}" + (f" ({s.reason})" if s.reason else "")
               for s in self.sites]
        jump = sum(1 for s in self.sites if s.tier == "jump")
        trap = sum(1 for s in self.sites if s.tier == "trap")
        ptr = sum(1 for s in self.sites if s.tier == "ptrace")
        out.append(f"{len(self.sites)} probe sites: {jump} on the jump tier, "
                   + (f"{trap} on the trap tier, " if trap else "")
                   + (f"{ptr} on the ptrace tier, " if ptr else "")
                   + f"{len(self.sites) - jump - trap - ptr} refused")
        return out


# Code reached by a jump, not a call: at its first byte [rsp] is no return address
# (at the ELF entry point it is argc; at the signal return trampoline, the frame).
_NOT_CALLED = frozenset({"_start", "__restore_rt"})
# Functions that return twice (C's returns_twice): a vfork child returns through the
# parent's frame and shadow stack first; setjmp and getcontext save the return address
# that a later longjmp or setcontext returns to again.  A taken address would be gone.
_RETURNS_TWICE = frozenset({"vfork", "__vfork", "setjmp", "_setjmp", "__setjmp", "sigsetjmp",
                            "__sigsetjmp", "getcontext", "__getcontext", "swapcontext",
                            "__swapcontext", "savectx"})


def _never_called(path: str, fn) -> bool:
    return fn.name in _NOT_CALLED or fn.address == _entry_point(path) != 0


@functools.lru_cache(maxsize=64)
def _entry_point(path: str) -> int:
    from ..binfo.elf import ElfError, ElfFile
    try:
        with ElfFile(path) as elf:
            return elf.entry
    except (ElfError, OSError):
        return 0


def _cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def _free_near(maps, addr: int, size: int) -> list[int]:
    """Candidate page-aligned starts of free gaps within jump range of addr, nearest first."""
    spans = sorted((m.start, m.end) for m in maps)
    gaps = []
    prev_end = 0x10000
    for start, end in spans:
        if start - prev_end >= size:
            gaps.append((prev_end, start))
        prev_end = max(prev_end, end)
    cands = []
    for lo, hi in gaps:
        # the end of a gap below addr, or its start above addr: as close as possible
        c = (hi - size) & ~(PAGE - 1) if hi <= addr else (lo + PAGE - 1) & ~(PAGE - 1)
        if lo <= c and c + size <= hi and abs(c - addr) < NEAR:
            cands.append(c)
    return sorted(cands, key=lambda c: abs(c - addr))


def _alloc_near(tr, addr: int, size: int) -> int | None:
    """Map r-x memory within rel32 reach of addr (written through /proc/PID/mem, never w+x)."""
    for hint in _free_near(tr.maps(), addr, size)[:8]:
        got = tr.syscall(SYS_MMAP, hint, size, PROT_READ | PROT_EXEC,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0)
        if got == hint:
            return got
        if got > 0:  # an old kernel ignoring NOREPLACE put it elsewhere: give it back
            tr.syscall(11, got, size)
    return None


UNWIND_HOOKS = {  # unwinder entry points that walk return addresses (retprobe.c)
    "_Unwind_RaiseException": 1, "_Unwind_ForcedUnwind": 1, "_Unwind_Resume_or_Rethrow": 1,
    "__cxa_begin_catch": 2,
}


@dataclass
class _Group:
    """Everything one patched address runs: entry probes, return probes, a hook."""

    fn: object
    path: str
    name: str
    addr: int
    size: int = 0
    note: str = ""  # shown with the tier: how an IFUNC was resolved
    kind: str = "function"  # or "plt": pp() says process(...).plt("NAME"); or "mark"
    func: tuple[int, int] | None = None  # a mark: the containing function (start, size)
    extra: tuple[int, ...] = ()          # a mark: branches from the module into its patch
    readable: str = ""  # the module's file as this process sees it, and its load bias:
    base: int = 0       # for the other code's branches into it (_foreign_targets)
    entry: list[int] = field(default_factory=list)
    ret: list[int] = field(default_factory=list)
    hook: int = 0


def _probe_module(p, mods, main):
    """The module a process.function probe is for, and its path as pp() names it."""
    if p.library:
        from ..binfo.procmaps import find_module
        found = [m for m in find_module(mods, p.library) if m.kind == "elf" and m.readable_path]
        return (found[0] if found else None), p.library
    path = p.target_path or (main.path if main else None)
    return _module_at_path(mods, path), path


def _module_at_path(mods, path: str | None):
    """The readable ELF module whose file is path (by real path), or None."""
    return next((m for m in mods if m.kind == "elf" and m.path and m.readable_path and
                 os.path.realpath(m.path) == path), None)


def arm(tr, lib, probes: list, ident, table, sigtrap_note: str | None = None,
        prior: ArmReport | None = None) -> ArmReport:
    """Patch every matching function of the target's modules; all its threads are stopped.

    lib is the handler library in the target.  table writes the site table in the shared
    region (from the tracer: no remote call per site): table.name(pp) records the probe
    point a site reports as pp() and returns its number (0 when full); add(site, probe),
    set_return(site, ret_site) and set_hook(site, hook) fill in what it runs.
    sigtrap_note is sigtrap_blocked(pid) from before the injector's first remote call.
    With prior (a library appeared), what prior armed is left alone and the new sites
    are added to it; the process's other threads may be running then, none of them
    in code that was not mapped before.
    """
    from ..binfo import find_functions
    from ..binfo.procmaps import main_executable, modules

    report = prior if prior is not None else ArmReport()
    wanted = [p for p in probes if p.kind in ("process.function", "process.mark") and
              (p.target_pid is None or p.target_pid == ident.pid)]
    if not wanted:
        return report
    mods = modules(tr.pid)
    main = main_executable(tr.pid, mods)
    groups: dict[int, _Group] = {}
    for p in wanted:
        if p.kind == "process.mark":
            _group_mark(tr, p, mods, main, groups, report)
            continue
        mod, path = _probe_module(p, mods, main)
        kind = "plt" if p.plt else "function"
        found = ((_plt_stubs(mod.readable_path, p.function) if p.plt else
                  find_functions(mod.readable_path, p.function)) if mod is not None else [])
        if not found:
            suffix = ".return" if p.ret else ""
            report.unmatched.append(f'process("{path}").{kind}("{p.function}"){suffix}')
        if p.ret and found and _is_go(mod.readable_path):
            # T-13: goroutines move their stacks (copying them to grow) and switch
            # between them; a hijacked return address would be carried off.
            report.sites.append(Site(p.index, found[0].name, mod.base + found[0].address,
                                     "refused", "not supported yet: return probes in a Go "
                                     "binary (.gopclntab): goroutine stacks move"))
            continue
        for fn in found:
            if p.ret and _never_called(mod.readable_path, fn):
                report.sites.append(Site(p.index, fn.name, mod.base + fn.address, "refused",
                                         "entered by a jump, never called: no return address "
                                         "to take (the entry probe works)"))
                continue
            if p.ret and fn.name in _RETURNS_TWICE:
                report.sites.append(Site(p.index, fn.name, mod.base + fn.address, "refused",
                                         "returns twice: the return address is used again "
                                         "after the first return (the entry probe works)"))
                continue
            addr, size, note = mod.base + fn.address, fn.size, ""
            if fn.ifunc:
                addr, size, note = _resolve_ifunc(tr, mod, fn)
            elif size <= 0:  # an assembler symbol without a size: the unwind info has it
                from ..binfo.ehframe import function_extent
                ext = function_extent(mod.readable_path, fn.address)
                size = ext[1] if ext is not None and ext[0] == fn.address else 0
            g = groups.setdefault(addr, _Group(fn, path, fn.name, addr, size, note, kind,
                                               readable=mod.readable_path, base=mod.base))
            lst = g.ret if p.ret else g.entry
            if p.index not in lst:  # aliases of one probe: one patch, one hit
                lst.append(p.index)
    if prior is not None:
        report.unmatched.clear()  # said at the first arming; a library may come later
        for addr in list(groups):
            if addr in report.armed:
                del groups[addr]
    if any(g.ret for g in groups.values()) and not report.ret_tramp:
        if not _place_return_trampoline(tr, lib, report):
            for g in groups.values():
                g.ret.clear()
    hooks_ok = True
    if report.ret_tramp:  # also for a library that came later (libgcc_s by dlopen)
        for mod in mods:
            if mod.kind != "elf" or not mod.path or mod.readable_path is None:
                continue  # unreadable: a mapping, not code (the session's memfd)
            old = prior is not None and (mod.path, mod.base) in report.seen
            for name, hook in UNWIND_HOOKS.items():
                for fn in find_functions(mod.readable_path, name):
                    addr = mod.base + fn.address
                    if addr in report.armed:
                        continue
                    if old:  # other threads run: never patch code that may be running
                        hooks_ok = False
                        continue
                    groups.setdefault(addr, _Group(fn, mod.path, name, addr,
                                                   fn.size)).hook = hook
    report.seen.update((m.path, m.base) for m in mods if m.kind == "elf" and m.path)
    ctx = _ArmContext(tr, lib, sigtrap_note)
    sites: dict[int, int] = {}  # armed address -> its site
    for g in sorted(groups.values(), key=lambda g: (g.hook == 0, g.addr)):  # hooks first
        if not g.entry and not g.ret and not g.hook:
            continue
        if not hooks_ok and g.ret:
            # Without the unwinder hooks an exception through a hijacked frame
            # would end the program in std::terminate: no return probes then.
            report.sites.append(Site(g.ret[0], g.name, g.addr, "refused",
                                     "return probes need the unwinder hooks, which could "
                                     "not be placed"))
            g.ret.clear()
            if not g.entry:
                continue
        result = _arm_group(tr, g, table, ctx, sites)
        if g.hook and result.tier == "refused":
            hooks_ok = False
            result.reason += f" (unwinder hook {g.name}: return probes disabled)"
        report.sites.append(result)
    if any(s.tier == "trap" for s in report.sites):
        _arm_signal_hooks(tr, mods, table, ctx, sites, report)
    report.armed.update(sites)
    # Is-enabled markers (PROVIDER_NAME_ENABLED()) fire only while their semaphore
    # is non-zero: count ourselves in, once per semaphore, for armed markers only.
    for sem in dict.fromkeys(sem for sem, at in report.pending_sems if at in sites):
        _add_semaphore(tr, sem, +1)
        report.semaphores.append(sem)
    return report


def _add_semaphore(tr, addr: int, delta: int) -> None:
    """An SDT semaphore is an unsigned short the program reads."""
    v = int.from_bytes(tr.read(addr, 2), "little")
    tr.write(addr, ((v + delta) & 0xFFFF).to_bytes(2, "little"))


SIGNAL_HOOKS = {"sigprocmask": 3, "pthread_sigmask": 3, "__libc_sigaction": 4}


def _arm_signal_hooks(tr, mods, table, ctx, sites: dict[int, int], report: ArmReport) -> None:
    """With int3 sites armed, the C library's signal-mask calls must never block or
    take over SIGTRAP (T-16): hook them (trap.c rewrites their arguments)."""
    from ..binfo import find_functions
    for mod in mods:
        if (mod.kind != "elf" or not mod.path or mod.readable_path is None
                or not os.path.basename(mod.path).startswith("libc.")):
            continue
        for name, hook in SIGNAL_HOOKS.items():
            for fn in find_functions(mod.readable_path, name):
                addr = mod.base + fn.address
                if addr in report.armed and addr not in sites:
                    continue  # hooked at an earlier arming
                if addr in sites:  # a user's probe is there already: add the hook to it
                    table.set_hook(sites[addr], hook)
                    continue
                g = _Group(fn, mod.path, name, addr, fn.size, hook=hook)
                result = _arm_group(tr, g, table, ctx, sites)
                result.hook = True
                report.sites.append(result)


def _arm_group(tr, g: _Group, table, ctx: _ArmContext, sites: dict[int, int]) -> Site:
    """Fill the site table for one address and patch it."""
    pp = f'process("{g.path}").{g.kind}("{g.name}")'
    if g.kind == "mark":
        pp = g.note
        g.note = ""
    site = table.name(pp)
    ret_site = table.name(pp + ".return") if g.ret else 0
    first = (g.entry or g.ret or [-1])[0]
    if site == 0 or (g.ret and ret_site == 0) or len(g.entry) > 13 or len(g.ret) > 13:
        return Site(first, g.name, g.addr, "refused", "not supported yet: more than 13 "
                    "probes on one function, or more than 16383 sites")
    for idx in g.entry:
        table.add(site, idx)
    for idx in g.ret:
        table.add(ret_site, idx)
    if ret_site:
        table.set_return(site, ret_site)
    if g.hook:
        table.set_hook(site, g.hook)
    if g.kind == "mark":
        result = _arm_mark(tr, site, g, ctx)
    else:
        result = _arm_one(tr, site, g.name, g.addr, g.size, ctx,
                          _foreign_targets(g.readable, g.base, g.addr) if g.readable else ())
    if g.note:
        result.reason = g.note + ("; " + result.reason if result.reason else "")
    result.probe = first
    result.hook = bool(g.hook and not g.entry and not g.ret)
    if result.tier != "refused":
        sites[g.addr] = site
    return result


class _ArmContext:
    """The target-side facts every site needs: the handler entry, the SIMD save and
    the threads' PCs."""

    def __init__(self, tr, lib, sigtrap_note: str | None = None) -> None:
        from injector.x86_64 import trampoline as xtramp
        self.tr, self.lib = tr, lib
        self.sigtrap_note = sigtrap_note  # what sigtrap_blocked said before injection
        self.handler = lib.sym("utr_site_hit")
        self.simd = xtramp.SimdSave.for_entry(_cpu_flags())
        # Threads that run (a library appeared) cannot be in code that was not there.
        self.pcs = {tid: tr.get_regs(tid).rip for tid in tr.tids
                    if tr.threads[tid].stopped}
        self.trap_ready: bool | str | None = None  # True, or why the trap tier is closed
        self.ool_pages: list[list[int]] = []       # [address, bytes used] of copy pages

    def trap_tier(self) -> str | None:
        """None when int3 sites can be armed in this process, else the reason not."""
        if self.trap_ready is None:
            why = self.sigtrap_note or sigtrap_blocked(self.tr.pid)
            if why is None and self.lib.call("utr_trap_install") != 0:
                why = "installing the SIGTRAP handler failed"
            self.trap_ready = True if why is None else why
        return None if self.trap_ready is True else str(self.trap_ready)

    def ool(self, near: int, size: int) -> int | None:
        """Room for an out-of-line instruction copy within rel32 reach of near."""
        for page in self.ool_pages:
            if page[1] + size <= PAGE and abs(page[0] - near) < NEAR:
                at = page[0] + page[1]
                page[1] += (size + 15) & ~15
                return at
        addr = _alloc_near(self.tr, near, PAGE)
        if addr is None:
            return None
        self.ool_pages.append([addr, (size + 15) & ~15])
        return addr


def sigtrap_blocked(pid: int) -> str | None:
    """T-16: a thread blocking or ignoring SIGTRAP dies at an int3 (the kernel forces
    the default action), so the trap tier stays closed for the whole process."""
    from injector import procfs
    bit = 1 << (5 - 1)
    tids = procfs.list_tasks(pid)
    if not tids:
        return f"cannot read the threads of process {pid}"
    for tid in tids:
        try:
            fields = procfs.read_status(pid, tid)
        except OSError:
            continue  # gone
        for key, what in (("SigBlk", "blocks"), ("SigIgn", "ignores")):
            if int(fields.get(key, "0"), 16) & bit:
                return f"thread {tid} {what} SIGTRAP: an int3 would kill the process (T-16)"
    return None


def _place_return_trampoline(tr, lib, report: ArmReport) -> bool:
    """One return trampoline per process; hijacked return addresses point at it."""
    from injector.x86_64 import trampoline as xtramp
    simd = xtramp.SimdSave.for_entry(_cpu_flags())
    size = (xtramp.return_trampoline_size(simd) + PAGE - 1) & ~(PAGE - 1)
    addr = tr.syscall(SYS_MMAP, 0, size, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
                      -1, 0)
    if addr <= 0 or addr >= 2**64 - 4096:
        report.sites.append(Site(-1, "<return trampoline>", 0, "refused",
                                 "cannot map memory for the return trampoline"))
        return False
    tr.write(addr, xtramp.build_return_trampoline(lib.sym("utr_return_hit"), simd))
    tr.write(lib.sym("utr_ret_tramp_addr"), addr.to_bytes(8, "little"))
    report.ret_tramp = addr
    return True


def _group_mark(tr, p, mods, main, groups: dict, report: ArmReport) -> None:
    """A mark probe's site: the marker's nop, checked to still be one."""
    from ..binfo import symbol_table
    mod = _module_at_path(mods, p.target_path)
    where = f'process("{p.target_path}").mark("{p.function}")'
    if mod is None:
        report.unmatched.append(where)
        return
    addr = mod.base + p.mark_pc
    if addr in report.armed:
        return  # armed before a library came
    if tr.read(addr, 1) != b"\x90":
        report.sites.append(Site(p.index, p.function, addr, "refused", "no nop at the marker's "
                                 "address: the binary changed since the script was compiled"))
        return
    if p.mark_sem:
        report.pending_sems.append((mod.base + p.mark_sem, addr))
    g = groups.get(addr)
    if g is None:
        func = None
        fn = symbol_table(mod.readable_path).containing(p.mark_pc)
        if fn is not None and fn.size > 0:
            func = (mod.base + fn.address, fn.size)
        else:  # a stripped binary (Debian's): the unwind table knows the function
            from ..binfo.ehframe import function_extent
            ext = function_extent(mod.readable_path, p.mark_pc)
            if ext is not None:
                func = (mod.base + ext[0], ext[1])
        g = groups[addr] = _Group(None, p.target_path, p.function, addr, 1, where, "mark",
                                  func=func, extra=_foreign_targets(mod.readable_path, mod.base,
                                                                    addr))
    if p.index not in g.entry:
        g.entry.append(p.index)


def _arm_mark(tr, site_id: int, g: _Group, ctx: _ArmContext) -> Site:
    """A marker's nop: the jump tier when its function is known and the patch provably
    safe; else an int3 over the nop itself, which covers no other instruction."""
    from injector.x86_64 import sites as xsites
    if g.func is None:
        return _arm_trap(tr, site_id, g.name, g.addr, tr.read(g.addr, 16),
                         "the containing function is unknown (no symbol and no unwind "
                         "entry): its branches cannot be swept", ctx)
    start, size = g.func
    code = tr.read(start, size)
    choice = xsites.choose_site_at(code, start, size, g.addr, extra_targets=g.extra)
    return _place(tr, site_id, g.name, g.addr, choice, code, start, ctx)


def _is_go(path: str) -> bool:
    from ..binfo.elf import ElfError, ElfFile
    try:
        with ElfFile(path) as elf:
            return elf.section(".gopclntab") is not None or elf.section(".go.buildinfo") is not None
    except (ElfError, OSError):
        return False


class _Stub(NamedTuple):
    """A PLT stub as a probe site (the Function fields arm() reads)."""

    name: str
    address: int
    size: int
    ifunc: bool = False


def _plt_stubs(path: str, pattern: str) -> list[_Stub]:
    from ..binfo import plt_entries
    return [_Stub(e.name.split("@")[0], e.address, e.size) for e in plt_entries(path, pattern)]


def _resolve_ifunc(tr, mod, fn) -> tuple[int, int, str]:
    """The implementation an IFUNC selects in this process, as the dynamic linker does:
    its resolver called with no arguments (x86_64), run in the stopped target."""
    from injector.errors import InjectorError

    from ..binfo import symbol_table
    from ..binfo.ehframe import function_extent
    try:
        impl = tr.call(mod.base + fn.address)
    except InjectorError as e:
        return 0, 0, f"IFUNC {fn.name}: calling its resolver failed: {e}"
    vaddr = impl - mod.base
    named = symbol_table(mod.readable_path).containing(vaddr)
    if named is not None and named.address == vaddr and named.size > 0:
        return impl, named.size, f"IFUNC resolved to {named.name}"
    ext = function_extent(mod.readable_path, vaddr)  # stripped: the unwind info's extent
    if ext is not None and ext[0] == vaddr:
        return impl, ext[1], f"IFUNC resolved to {impl:#x}"
    return impl, 0, f"IFUNC resolved to {impl:#x}, whose extent is unknown"


def _arm_one(tr, site_id: int, name: str, addr: int, size: int, ctx: _ArmContext,
             extra: tuple[int, ...] = ()) -> Site:
    """Place the trampoline for one function entry and patch the jump into it."""
    from injector.x86_64 import sites as xsites

    if addr == 0:
        return Site(site_id, name, addr, "refused", "")
    if size <= 0:
        return Site(site_id, name, addr, "refused", "no size in the symbol table")
    code = tr.read(addr, size)
    key = (code, size, tuple(t - addr for t in extra))
    hit = _entry_choices.get(key)
    if hit is not None:
        site_off, patch_len, displaced = hit
        choice = xsites.SiteChoice(addr, addr + site_off, "jump", displaced=displaced,
                                   patch_len=patch_len)
    else:
        choice = xsites.choose_entry_site(code, addr, size, extra_targets=extra)
        if choice.ok:
            _entry_choices[key] = (choice.site_addr - addr, choice.patch_len, choice.displaced)
    return _place(tr, site_id, name, addr, choice, code, addr, ctx)


# A function's proof depends only on its bytes and on where other branches land
# relative to it, so the same library in the next process of the tree (the shell, then
# the program it starts) reuses it: the sweep is most of arming libc's ~2000
# functions. Only proofs that succeeded are kept; their displaced instructions are
# used for their bytes alone.
_entry_choices: dict[tuple, tuple] = {}


# Code jumps into other functions: hand-written assembly into another's first
# instructions (glibc's __mempcpy_*_erms is `mov; add; jmp` to just past the first
# instruction of the __memmove_* that follows it), GCC's f.cold back into f.  So a
# site is checked against the direct branches of the whole module (binfo/branchindex).
_PATCH_MAX = 16  # no patch covers more: a jmp rel32 over whole instructions


def _foreign_targets(readable: str, base: int, addr: int) -> tuple[int, ...]:
    """Direct branch targets inside [addr+1, addr+16) from anywhere in the module."""
    from ..binfo.branchindex import targets_between
    from ..binfo.elf import ElfError
    link = addr - base
    try:
        return tuple(base + t for t in targets_between(readable, link, link + _PATCH_MAX))
    except (ElfError, OSError):
        return ()


def _place(tr, site_id: int, name: str, addr: int, choice, code: bytes, start: int,
           ctx: _ArmContext) -> Site:
    """The jump tier when choice proves it safe, else the trap tier at the chosen
    instruction (code holds the function's bytes from start)."""
    if FORCE_TRAP and choice.ok:
        choice.tier, choice.reason = "trap", "UTRACE_FORCE_TIER=trap"
    if not choice.ok:
        return _arm_trap(tr, site_id, name, choice.site_addr,
                         code[choice.site_addr - start:], choice.reason, ctx)
    return _place_jump(tr, site_id, name, addr, choice, ctx)


def _place_jump(tr, site_id: int, name: str, addr: int, choice, ctx: _ArmContext) -> Site:
    """Trampoline first, then the jump patch over the chosen instructions."""
    from injector.x86_64 import trampoline as xtramp
    from injector.x86_64.relocator import Refusal
    lo, hi = choice.site_addr, choice.site_addr + choice.patch_len
    if any(lo < pc < hi for pc in ctx.pcs.values()):
        return Site(site_id, name, addr, "refused", "a thread is stopped inside the patch")
    simd = ctx.simd
    size = (xtramp.max_trampoline_size(choice.displaced_len, simd) + PAGE - 1) & ~(PAGE - 1)
    tramp_addr = _alloc_near(tr, choice.site_addr, size)
    if tramp_addr is None:
        return Site(site_id, name, addr, "refused", "no free memory within +-2 GiB")
    body = xtramp.build_entry_trampoline(choice.site_addr, choice.displaced_bytes, tramp_addr,
                                         ctx.handler, site_id, simd=simd)
    patch = xtramp.jump_patch(choice.site_addr, tramp_addr, choice.patch_len)
    if isinstance(body, Refusal) or isinstance(patch, Refusal):
        tr.syscall(11, tramp_addr, size)
        why = body.reason if isinstance(body, Refusal) else patch.reason
        return Site(site_id, name, addr, "refused", why)
    original = tr.read(choice.site_addr, len(patch))
    tr.write(tramp_addr, body)        # the trampoline first,
    tr.write(choice.site_addr, patch)  # the jump into it last
    return Site(site_id, name, choice.site_addr, "jump", "", original, patch)


def _arm_trap(tr, site_id: int, name: str, at: int, code: bytes, why_not_jump: str,
              ctx: _ArmContext) -> Site:
    """The trap tier: int3 over the first byte of the instruction at `at`, whose
    relocated copy (and a jump back) runs when the SIGTRAP handler returns."""
    from injector.x86_64.decoder import decode_all
    from injector.x86_64.relocator import Refusal, jmp_to, relocate_ex

    closed = ctx.trap_tier()
    if closed is not None:
        return Site(site_id, name, at, "refused", f"{why_not_jump}; trap tier: {closed}")
    insns, _ = decode_all(code[:16], at)
    if not insns:
        return Site(site_id, name, at, "refused", f"{why_not_jump}; no instruction at {at:#x}")
    insn = insns[0]
    ool = ctx.ool(at, 64)
    if ool is None:
        return Site(site_id, name, at, "refused", f"{why_not_jump}; no memory for the "
                    "out-of-line copy within +-2 GiB")
    rel = relocate_ex(insn.raw, at, ool)
    if isinstance(rel, Refusal):
        return Site(site_id, name, at, "refused", f"{why_not_jump}; trap tier: {rel.reason}")
    body = rel.code + jmp_to(ool + len(rel.code), at + insn.length)
    tr.write(ool, body)
    if ctx.lib.call("utr_trap_add", at, ool, site_id) != 0:
        return Site(site_id, name, at, "refused", f"{why_not_jump}; the trap table is full")
    original = tr.read(at, 1)
    tr.write(at, b"\xcc")
    tr.served_traps.add(at)
    return Site(site_id, name, at, "trap", why_not_jump, original, b"\xcc")


def disarm(tr, report: ArmReport) -> None:
    """Put the original bytes back (trampolines stay mapped: a thread may still be in one)."""
    for sem in report.semaphores:  # the program is unchanged afterwards
        if int.from_bytes(tr.read(sem, 2), "little") > 0:
            _add_semaphore(tr, sem, -1)
    for s in report.sites:
        if s.tier in ("jump", "trap", "ptrace") and tr.read(s.addr, len(s.patch)) == s.patch:
            tr.write(s.addr, s.original)
        tr.served_traps.discard(s.addr)


def place_dl_hook(tr, report: ArmReport) -> None:
    """Libraries dlopen'ed later: ld.so calls _dl_debug_state (r_brk) after each change
    of its link map; an int3 over its `ret`, seen by the tracer that follows the
    process with ptrace (never delivered), lets it arm the new library's probes
    before dlopen returns.  Only while the tracer is attached."""
    from ..binfo import find_functions
    from ..binfo.procmaps import modules
    if report.dl_hook:
        return
    for mod in modules(tr.pid):
        if mod.kind != "elf" or not mod.readable_path or \
                not os.path.basename(mod.path).startswith("ld-linux"):
            continue
        for fn in find_functions(mod.readable_path, "_dl_debug_state"):
            addr = mod.base + fn.address
            code = tr.read(addr, 8)
            at = addr + (4 if code[:4] == b"\xf3\x0f\x1e\xfa" else 0)  # after endbr64
            if tr.read(at, 1) != b"\xc3":
                return  # not the one-instruction function it has always been: leave it
            tr.write(at, b"\xcc")
            report.dl_hook = at
            report.sites.append(Site(-1, "_dl_debug_state", at, "ptrace",
                                     "libraries loaded later get their probes", b"\xc3",
                                     b"\xcc", hook=True))
            return


def dl_event(tr, tid: int, report: ArmReport) -> bool:
    """A stop at our _dl_debug_state int3: finish its `ret` for the thread; True if ours."""
    regs = tr.get_regs(tid)
    if not report.dl_hook or regs.rip - 1 != report.dl_hook:
        return False
    regs.rip = int.from_bytes(tr.read(regs.rsp, 8), "little")
    regs.rsp += 8
    tr.set_regs(regs, tid)
    return True


def forget_unmapped(pid: int, report: ArmReport) -> None:
    """A library was dlclose'd: its sites are gone with it and must never be written."""
    from ..binfo.procmaps import read_maps
    maps = [m for m in read_maps(pid) if m.executable]

    def mapped(a: int) -> bool:
        return any(m.start <= a < m.end for m in maps)
    report.sites = [s for s in report.sites if s.tier == "refused" or mapped(s.addr)]
    report.armed = {a: site for a, site in report.armed.items() if mapped(a)}
