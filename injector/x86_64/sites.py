"""Choose the bytes a function-entry jump patch displaces, and prove nothing jumps into them."""
from __future__ import annotations

from dataclasses import dataclass, field

from capstone import x86_const as X

from .decoder import Insn, decode_all
from .relocator import Refusal, relocate_ex

JUMP_LEN = 5          # jmp rel32
PADDING_BYTES = frozenset({0xCC, 0x90})


@dataclass
class SiteChoice:
    """Result of site selection; tier is "jump" when the jump patch is proven safe."""

    func_addr: int
    site_addr: int
    tier: str                                   # "jump" or "trap"
    reason: str | None = None                   # why not "jump"
    displaced: list[Insn] = field(default_factory=list)
    patch_len: int = 0                          # bytes overwritten at site_addr
    inside_targets: list[tuple[int, int]] = field(default_factory=list)  # (from, to)
    indirect_jumps: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def displaced_len(self) -> int:
        return sum(i.length for i in self.displaced)

    @property
    def displaced_bytes(self) -> bytes:
        return b"".join(i.raw for i in self.displaced)

    @property
    def ok(self) -> bool:
        return self.tier == "jump"


def _is_unbounded_indirect_jump(i: Insn) -> bool:
    """A jmp through a register or non-RIP memory: jump tables and computed gotos.

    ``jmp [rip+d]`` (a GOT/PLT tail call) goes to a function, never into this one.
    """
    return i.is_jump and i.indirect and i.rip_disp_offset is None


def choose_entry_site(code: bytes, func_addr: int, func_size: int, *,
                      extra_targets: tuple[int, ...] = ()) -> SiteChoice:
    """Pick whole instructions (after endbr64) covering a jump patch at a function entry.

    code holds the function's bytes (at least func_size of them).  extra_targets are
    branch targets the caller knows of from elsewhere (other functions' tail jumps,
    exception landing pads); they are checked like the function's own.
    """
    code = code[:func_size]
    site = func_addr
    choice = SiteChoice(func_addr, site, "trap")
    insns, bad = decode_all(code, func_addr)
    if insns and insns[0].is_endbr64:
        # T-20: indirect calls must still land on endbr64, so the patch starts after it.
        site = choice.site_addr = insns[0].end
        insns = insns[1:]
    # Whole instructions covering JUMP_LEN bytes without crossing the function's end (T-1).
    taken: list[Insn] = []
    for i in insns:
        if sum(t.length for t in taken) >= JUMP_LEN:
            break
        taken.append(i)
    covered = sum(t.length for t in taken)
    if covered < JUMP_LEN:
        choice.reason = (f"too short: {covered} bytes from {site:#x} to the end of the "
                         f"function (T-1); a jump patch would overwrite the next function")
        return choice
    choice.displaced = taken
    choice.patch_len = covered
    end = site + covered
    for i in taken:
        if i.id == X.X86_INS_SYSCALL:
            choice.notes.append(f"syscall at {i.address:#x} in the displaced range: a thread "
                                "parked in it must be moved to the copy (T-6)")
        if i.is_call and i is not taken[-1]:
            choice.notes.append(f"call at {i.address:#x} returns inside the displaced range: "
                                "threads in the callee need their return address moved (T-7)")
    if bad is not None:
        choice.reason = f"undecodable bytes at {bad:#x}: cannot prove no branch lands in the patch"
        return choice
    # T-2: sweep the whole function for direct branches into (site, end).
    targets = [(i.address, i.branch_target) for i in insns if i.branch_target is not None]
    targets += [(0, t) for t in extra_targets]
    choice.inside_targets = [(a, t) for a, t in targets if site < t < end]
    choice.indirect_jumps = [i.address for i in insns if _is_unbounded_indirect_jump(i)]
    if choice.inside_targets:
        a, t = choice.inside_targets[0]
        choice.reason = (f"branch at {a:#x} targets {t:#x}, inside the displaced range "
                         f"{site:#x}..{end:#x} (T-2)")
        return choice
    if choice.indirect_jumps:
        choice.reason = (f"indirect jump at {choice.indirect_jumps[0]:#x} (jump table?) "
                         "may land inside the displaced range")
        return choice
    # The displaced instructions must be relocatable at all (any distance is checked later
    # by the trampoline builder; a near copy is the easiest case).
    probe = relocate_ex(choice.displaced_bytes, site, site + 4096)
    if isinstance(probe, Refusal):
        choice.reason = f"not relocatable: {probe.reason}"
        return choice
    choice.tier = "jump"
    return choice
