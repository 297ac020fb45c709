"""Choose the bytes a jump patch displaces (at a function entry, or at an SDT marker or
statement inside a function), and prove nothing jumps into them."""
from __future__ import annotations

from dataclasses import dataclass, field

from capstone import x86_const as X

from .decoder import Insn, branch_targets, decode_all
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


_TABLE_LOADS = frozenset({"mov", "movsxd", "movzx", "movsx", "lea"})
_LOOKBACK = 8


def _is_unbounded_indirect_jump(i: Insn, before: list[Insn] = ()) -> bool:
    """A jmp that may land anywhere in this function: a jump table or computed goto.

    ``jmp [rip+d]`` (a GOT/PLT tail call) goes to a function, never into this one.
    Compilers dispatch a switch through a table indexed by a register: ``notrack
    jmp`` (CET), ``jmp [reg*8+table]``, or ``jmp reg`` whose value was loaded with an
    index.  Two shapes provably leave the function and are accepted: a jump through
    a pointer loaded without an index (a tail call through a function pointer) and
    a jump to a popped address (the unwinder's jump to a landing pad).  Anything
    whose origin is not visible in the block before it counts as a table.
    before holds the instructions preceding i, in order.
    """
    if not (i.is_jump and i.indirect and i.rip_disp_offset is None):
        return False
    ff = i.raw.find(b"\xff")
    if ff > 0 and 0x3E in i.raw[:ff]:
        return True  # notrack: the compiler's mark for a jump-table dispatch
    if "[" in i.op_str:
        return "*" in i.op_str
    names = _aliases(i.op_str.strip())
    for p in reversed(list(before)[-_LOOKBACK:]):
        if p.is_jump or p.is_ret or p.is_call:
            return True
        dst, _, src = (x.strip() for x in p.op_str.partition(","))
        if dst not in names:
            continue
        if p.mnemonic == "pop":
            return False
        if "*" in src:
            return True
        if p.mnemonic == "mov" and "[" in src:
            return False
        if p.mnemonic == "mov" and src:
            names = _aliases(src)
            continue
        return True
    return True


def _aliases(reg: str) -> set[str]:
    return {reg, _REG32.get(reg, reg)}


_REG32 = {f"r{n}": f"r{n}d" for n in range(8, 16)} | {
    "rax": "eax", "rbx": "ebx", "rcx": "ecx", "rdx": "edx", "rsi": "esi", "rdi": "edi",
    "rbp": "ebp", "rsp": "esp"}


def choose_entry_site(code: bytes, func_addr: int, func_size: int, *,
                      extra_targets: tuple[int, ...] = ()) -> SiteChoice:
    """Pick whole instructions (after endbr64) covering a jump patch at a function entry.

    code holds the function's bytes (at least func_size of them).  extra_targets are
    branch targets the caller knows of from elsewhere (other functions' tail jumps,
    exception landing pads); they are checked like the function's own.
    """
    code = code[:func_size]
    choice = SiteChoice(func_addr, func_addr, "trap")
    insns, bad = decode_all(code, func_addr)
    start = 0
    if insns and insns[0].is_endbr64:
        # T-20: indirect calls must still land on endbr64, so the patch starts after it.
        choice.site_addr = insns[0].end
        start = 1
    return _choose_range(choice, insns, start, bad, extra_targets, strict=False)


def choose_site_at(code: bytes, func_addr: int, func_size: int, addr: int, *,
                   extra_targets: tuple[int, ...] = (),
                   other_sites: tuple[int, ...] = ()) -> SiteChoice:
    """Pick whole instructions from addr (an SDT marker's nop, a statement) for a jump patch.

    Like choose_entry_site, but the site is inside the function: addr must be an
    instruction boundary of a linear sweep from the function's start, the displaced
    instructions must end within the function (a marker just before the end is
    refused as too short: the trap tier's case), and the whole function is swept for
    direct branches into (addr, end) — a branch to addr itself is fine, it executes
    the trampoline.  Stricter than at an entry: a call that is not the last displaced
    instruction (its return address would be inside the patch) and an instruction
    after a ret/jmp in the range (that code is entered from somewhere unseen, e.g. an
    exception landing pad) are refused.  other_sites are further probe sites the caller
    patches (neighbouring markers): the range must not cover one.
    """
    code = code[:func_size]
    choice = SiteChoice(func_addr, addr, "trap")
    if not func_addr <= addr < func_addr + func_size:
        choice.reason = (f"{addr:#x} is outside the function {func_addr:#x}.."
                         f"{func_addr + func_size:#x}")
        return choice
    insns, bad = decode_all(code, func_addr)
    start = next((n for n, i in enumerate(insns) if i.address == addr), None)
    if start is None:
        if bad is not None and addr >= bad:
            choice.reason = (f"undecodable bytes at {bad:#x} before the site: cannot find "
                             "its instruction")
        else:
            choice.reason = (f"{addr:#x} is not an instruction boundary of a linear sweep of "
                             f"the function from {func_addr:#x} (data in the code?)")
        return choice
    return _choose_range(choice, insns, start, bad, extra_targets, strict=True,
                         other_sites=other_sites)


def direct_branch_targets(code: bytes, addr: int) -> tuple[int, ...]:
    """Targets of the direct branches and calls in code (at addr): the extra_targets a
    site in another fragment of the same function needs.  GCC splits functions into
    `f` and `f.cold`, which branch into each other: a site in one must be checked
    against the other's branches too (a stripped binary hides the fragments)."""
    return tuple(branch_targets(code, addr))


def _choose_range(choice: SiteChoice, insns: list[Insn], start: int, bad: int | None,
                  extra_targets: tuple[int, ...], *, strict: bool,
                  other_sites: tuple[int, ...] = ()) -> SiteChoice:
    """Shared checks: take instructions from insns[start] covering JUMP_LEN bytes within
    the function (insns is the whole function's sweep), then prove the patch safe."""
    site = choice.site_addr
    # Whole instructions covering JUMP_LEN bytes without crossing the function's end (T-1).
    taken: list[Insn] = []
    for i in insns[start:]:
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
        last = i is taken[-1]
        if i.id == X.X86_INS_SYSCALL:
            choice.notes.append(f"syscall at {i.address:#x} in the displaced range: a thread "
                                "parked in it must be moved to the copy (T-6)")
        if i.is_call and not last:
            if strict:
                choice.reason = (f"call at {i.address:#x} returns inside the displaced range "
                                 f"{site:#x}..{end:#x} (T-7)")
                return choice
            choice.notes.append(f"call at {i.address:#x} returns inside the displaced range: "
                                "threads in the callee need their return address moved (T-7)")
        if strict and not last and i.is_uncond_transfer:
            choice.reason = (f"{i.mnemonic} at {i.address:#x} does not fall through: the code "
                             f"after it, inside {site:#x}..{end:#x}, is entered from elsewhere")
            return choice
    if bad is not None:
        choice.reason = f"undecodable bytes at {bad:#x}: cannot prove no branch lands in the patch"
        return choice
    # T-2: sweep the whole function for direct branches into (site, end).
    targets = [(i.address, i.branch_target) for i in insns if i.branch_target is not None]
    targets += [(0, t) for t in extra_targets]
    choice.inside_targets = [(a, t) for a, t in targets if site < t < end]
    choice.indirect_jumps = [i.address for n, i in enumerate(insns)
                            if _is_unbounded_indirect_jump(i, insns[max(0, n - _LOOKBACK):n])]
    if choice.inside_targets:
        a, t = choice.inside_targets[0]
        src = f"branch at {a:#x}" if a else "a branch in other code of the module"
        choice.reason = (f"{src} targets {t:#x}, inside the displaced range "
                         f"{site:#x}..{end:#x} (T-2)")
        return choice
    covered_sites = [s for s in other_sites if site < s < end]
    if covered_sites:
        choice.reason = (f"the displaced range {site:#x}..{end:#x} covers another probe site "
                         f"at {covered_sites[0]:#x}")
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
