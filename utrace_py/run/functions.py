"""Arm process.function entry probes in a stopped target: choose sites, place trampolines, patch."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

PROT_READ, PROT_EXEC = 1, 4
MAP_PRIVATE, MAP_ANONYMOUS, MAP_FIXED_NOREPLACE = 0x02, 0x20, 0x100000
SYS_MMAP = 9
PAGE = 4096
NEAR = (1 << 31) - (1 << 20)  # what a jmp rel32 reaches, with a margin


@dataclass
class Site:
    probe: int
    name: str
    addr: int
    tier: str
    reason: str = ""
    original: bytes = b""
    patch: bytes = b""


@dataclass
class ArmReport:
    sites: list[Site] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)  # probe points that found no function

    def lines(self) -> list[str]:
        """What -v prints: each site with its tier (and why), then a summary."""
        out = [f"site {s.name} at {s.addr:#x}: {s.tier}" + (f" ({s.reason})" if s.reason else "")
               for s in self.sites]
        jump = sum(1 for s in self.sites if s.tier == "jump")
        out.append(f"{len(self.sites)} probe sites: {jump} on the jump tier, "
                   f"{len(self.sites) - jump} refused")
        return out


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


def arm(tr, lib, probes: list, ident, name_site) -> ArmReport:
    """Patch every matching function of the target's modules; all its threads are stopped.

    name_site(pp) records the probe point a site reports as pp() and returns its number.
    """
    from injector.x86_64 import sites as xsites
    from injector.x86_64 import trampoline as xtramp
    from injector.x86_64.relocator import Refusal

    from ..binfo import find_functions
    from ..binfo.procmaps import main_executable, modules

    report = ArmReport()
    wanted = [p for p in probes if p.kind == "process.function" and
              (p.target_pid is None or p.target_pid == ident.pid)]
    if not wanted:
        return report
    mods = modules(tr.pid)
    main = main_executable(tr.pid, mods)
    handler = lib.sym("utr_site_hit")
    simd = xtramp.SimdSave.for_entry(_cpu_flags())  # function entries: argument registers
    pcs = {tid: tr.get_regs(tid).rip for tid in tr.tids}
    done: dict[int, int] = {}  # address -> the probe whose trampoline is there
    for p in wanted:
        path = p.target_path or (main.path if main else None)
        mod = next((m for m in mods if m.kind == "elf" and m.path and
                    os.path.realpath(m.path) == path), None)
        found = find_functions(mod.readable_path, p.function) if mod is not None else []
        if not found:
            report.unmatched.append(f'process("{path}").function("{p.function}")')
        for fn in found:
            addr = mod.base + fn.address
            name = fn.name  # the alias the pattern matched
            if addr in done:
                if done[addr] != p.index:  # aliases of one probe share the patch silently
                    report.sites.append(Site(p.index, name, addr, "refused",
                                             "not supported yet: a second probe on a "
                                             "function another probe already patched"))
                continue
            done[addr] = p.index
            pp = f'process("{path}").function("{name}")'
            site_id = (name_site(pp) << 20) | p.index
            site = _arm_one(tr, site_id, name, addr, fn, handler, simd, pcs, xsites, xtramp,
                            Refusal)
            report.sites.append(site)
    return report


def _arm_one(tr, probe, name, addr, fn, handler, simd, pcs, xsites, xtramp, Refusal) -> Site:
    """probe is the site id the trampoline passes: (site << 20) | probe index."""
    if fn.ifunc:
        return Site(probe, name, addr, "refused", "IFUNC: resolving the selected "
                    "implementation is not supported yet")
    if fn.size <= 0:
        return Site(probe, name, addr, "refused", "no size in the symbol table")
    code = tr.read(addr, fn.size)
    choice = xsites.choose_entry_site(code, addr, fn.size)
    if not choice.ok:
        return Site(probe, name, addr, "refused", f"{choice.reason}; the trap tier is "
                    "not supported yet")
    lo, hi = choice.site_addr, choice.site_addr + choice.patch_len
    if any(lo < pc < hi for pc in pcs.values()):
        return Site(probe, name, addr, "refused", "a thread is stopped inside the patch")
    size = (xtramp.max_trampoline_size(choice.displaced_len, simd) + PAGE - 1) & ~(PAGE - 1)
    tramp_addr = _alloc_near(tr, choice.site_addr, size)
    if tramp_addr is None:
        return Site(probe, name, addr, "refused", "no free memory within +-2 GiB")
    body = xtramp.build_entry_trampoline(choice.site_addr, choice.displaced_bytes, tramp_addr,
                                         handler, probe, simd=simd)
    patch = xtramp.jump_patch(choice.site_addr, tramp_addr, choice.patch_len)
    if isinstance(body, Refusal) or isinstance(patch, Refusal):
        tr.syscall(11, tramp_addr, size)
        why = body.reason if isinstance(body, Refusal) else patch.reason
        return Site(probe, name, addr, "refused", why)
    original = tr.read(choice.site_addr, len(patch))
    tr.write(tramp_addr, body)        # the trampoline first,
    tr.write(choice.site_addr, patch)  # the jump into it last
    return Site(probe, name, choice.site_addr, "jump", "", original, patch)


def disarm(tr, report: ArmReport) -> None:
    """Put the original bytes back (trampolines stay mapped: a thread may still be in one)."""
    for s in report.sites:
        if s.tier == "jump" and tr.read(s.addr, len(s.patch)) == s.patch:
            tr.write(s.addr, s.original)
