"""Relocate whole x86-64 instructions to run at another address, or refuse with a reason.

Contract (what "equivalent" means here, checked by tests/x86_64 differential harness):

* RIP-relative operands keep their absolute target: the disp32 is re-encoded for the new
  position.  When the new displacement does not fit in ±2 GiB the only form rewritten is
  ``lea`` (becomes ``mov reg, imm``); every other far RIP-relative operand is refused, since
  a scratch-register sequence would need a free register and stack space below rsp (the red
  zone of the probed code).  The caller then places the copy nearer or uses the trap tier.
* Relative branches keep their targets.  Targets inside the relocated range (at an
  instruction boundary) go to the relocated copy; others go to the original address, with
  ``jmp [rip+0]; dq target`` when rel32 cannot reach.  jcc/jmp rel8 become rel32; the
  rel8-only ``jrcxz``/``jecxz``/``loop*`` are expanded to ``<insn> +2; jmp short over;
  jmp target`` so their own semantics (rcx decrement, no flags) are executed unchanged.
* ``call``: the callee must see the ORIGINAL return address when that is possible (stack
  unwinders, ``call $+5; pop r`` get-PC idioms, C++ exceptions all read it).  So a call that
  is the LAST instruction of the range becomes ``push <original next>; jmp target`` and the
  callee returns straight into the original code after the patch.  A call in the middle of
  the range cannot do that (its original return address lies in the overwritten bytes), so
  it stays a real ``call`` from the copy and returns into the copy's next instruction; the
  pair is listed in ``Relocated.return_map`` (the callee sees the copy's address).  A call
  to the very next instruction (get-PC) pushes the original next address and falls through.
  With CET shadow stacks a ``push; jmp`` pair breaks the callee's ``ret``: pass
  ``exact_return=False`` to keep every call a real call.
* ``xbegin``, far ``ljmp``/``lcall``, branches into the middle of an instruction, calls to
  other instructions inside the range and memory accesses to the overwritten range itself
  are refused.  ``syscall`` is copied verbatim (a restart rewinds RIP by 2 onto the copied
  ``syscall``); a thread already parked inside the original range is the caller's
  business (T-5/T-6): ``Relocated.addr_map`` gives each instruction's new address.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from capstone import x86_const as X

from .decoder import Insn, _cs, decode_all

REL32_LIMIT = 2**31 - 1
# Size decisions are made before final positions are known; the margin covers the copy's
# own length so "reachable from dst_addr" also holds at dst_addr + offset.
_MARGIN = 1 << 16


@dataclass(frozen=True)
class Refusal:
    """Why a range was not relocated; falsy so callers can write ``if not r``."""

    reason: str

    def __bool__(self) -> bool:
        return False


@dataclass
class Relocated:
    """Relocated bytes plus the address maps the live patcher needs."""

    code: bytes
    addr_map: dict[int, int] = field(default_factory=dict)    # original insn -> copy
    return_map: dict[int, int] = field(default_factory=dict)  # copy's return addr -> original


def fits_rel32(frm: int, to: int) -> bool:
    """True when a rel32 at an instruction ending at frm can reach to."""
    return -2**31 <= to - frm <= REL32_LIMIT


def _near(a: int, b: int) -> bool:
    return abs(a - b) < 2**31 - _MARGIN


def jmp_abs(target: int) -> bytes:
    """``jmp [rip+0]; dq target``: 14 bytes, no register, any distance."""
    return b"\xff\x25\x00\x00\x00\x00" + struct.pack("<Q", target)


def jmp_to(pos: int, target: int) -> bytes:
    """Shortest register-free unconditional jump from pos to target (5 or 14 bytes)."""
    if fits_rel32(pos + 5, target):
        return b"\xe9" + struct.pack("<i", target - pos - 5)
    return jmp_abs(target)


def push_imm64(value: int) -> bytes:
    """Push a 64-bit constant without touching flags or registers."""
    if value < 2**31:
        return b"\x68" + struct.pack("<i", value)
    # lea rsp,[rsp-8]; mov dword [rsp],lo; mov dword [rsp+4],hi  (lea: flags untouched)
    return (b"\x48\x8d\x64\x24\xf8" + b"\xc7\x04\x24" + struct.pack("<I", value & 0xFFFFFFFF)
            + b"\xc7\x44\x24\x04" + struct.pack("<I", value >> 32))


_REG64 = {getattr(X, f"X86_REG_{n.upper()}"): i for i, n in enumerate(
    "rax rcx rdx rbx rsp rbp rsi rdi r8 r9 r10 r11 r12 r13 r14 r15".split())}
_REG32 = {getattr(X, f"X86_REG_{n.upper()}"): i for i, n in enumerate(
    "eax ecx edx ebx esp ebp esi edi r8d r9d r10d r11d r12d r13d r14d r15d".split())}


class _Unit:
    """One source instruction's replacement: fixed size, emitted once positions are known."""

    def __init__(self, insn: Insn, size: int, emit) -> None:
        self.insn = insn
        self.size = size
        self.emit = emit   # (pos, resolve) -> bytes
        self.ret_off: int | None = None  # offset of a real call's return point in the unit


def _with_disp(insn: Insn, pos: int, raw: bytes | None = None) -> bytes:
    """Copy of insn (or raw, same length) placed at pos with its disp32 rebased."""
    raw = bytearray(raw if raw is not None else insn.raw)
    off = insn.rip_disp_offset
    disp = insn.rip_target - (pos + len(raw))
    if not -2**31 <= disp <= REL32_LIMIT:
        raise AssertionError("rip-relative target unreachable after size planning")
    raw[off:off + 4] = struct.pack("<i", disp)
    return bytes(raw)


def _plan(insn: Insn, src: int, end: int, dst: int, last: bool, exact: bool) -> _Unit | Refusal:
    """Choose the replacement form for insn and its size."""
    where = f"{insn.mnemonic} {insn.op_str} at {insn.address:#x}"
    if insn.id in (X.X86_INS_XBEGIN, X.X86_INS_LJMP, X.X86_INS_LCALL):
        return Refusal(f"cannot relocate {where}")
    tgt = insn.branch_target
    internal = tgt is not None and src <= tgt < end
    orig_next = insn.end

    def reach(to_internal: bool, target: int) -> int:
        return 5 if (to_internal or _near(dst, target)) else 14

    def jmp_emit(pos: int, resolve, target: int, to_internal: bool) -> bytes:
        return jmp_to(pos, resolve(target) if to_internal else target)

    if tgt is not None and insn.is_rel8_only:
        jsize = reach(internal, tgt)
        # <insn> +2 ; jmp short +jsize ; jmp target
        head = insn.raw[:-1] + b"\x02" + bytes([0xEB, jsize])

        def emit(pos, resolve):
            body = jmp_emit(pos + len(head), resolve, tgt, internal)
            return head + body.ljust(jsize, b"\x90")
        return _Unit(insn, len(head) + jsize, emit)

    if tgt is not None and insn.is_jcc:
        cc = insn.raw[len(insn.raw) - insn.branch_imm_size - 1] & 0x0F
        if internal or _near(dst, tgt):
            def emit(pos, resolve):
                t = resolve(tgt) if internal else tgt
                return bytes([0x0F, 0x80 | cc]) + struct.pack("<i", t - pos - 6)
            return _Unit(insn, 6, emit)
        # j!cc over the 14-byte absolute jump
        return _Unit(insn, 16, lambda pos, resolve: bytes([0x70 | (cc ^ 1), 14]) + jmp_abs(tgt))

    if tgt is not None and insn.is_jump:   # jmp rel8/rel32
        size = reach(internal, tgt)
        return _Unit(insn, size, lambda pos, resolve: jmp_emit(pos, resolve, tgt, internal)
                     .ljust(size, b"\x90"))

    if tgt is not None and insn.is_call:
        if internal and tgt == orig_next:
            # get-PC idiom: the popped value must be the ORIGINAL address.
            push = push_imm64(orig_next)
            return _Unit(insn, len(push), lambda pos, resolve: push)
        if internal:
            return Refusal(f"call into the relocated range: {where}")
        if last and exact:
            push = push_imm64(orig_next)
            size = len(push) + reach(False, tgt)
            return _Unit(insn, size, lambda pos, resolve: (
                push + jmp_to(pos + len(push), tgt)).ljust(size, b"\x90"))
        if _near(dst, tgt):
            unit = _Unit(insn, 5, lambda pos, resolve: b"\xe8" + struct.pack("<i", tgt - pos - 5))
            unit.ret_off = 5
            return unit
        # call [rip+2]; jmp short +8; dq target  -- returns onto the short jmp
        unit = _Unit(insn, 16, lambda pos, resolve: (
            b"\xff\x15\x02\x00\x00\x00\xeb\x08" + struct.pack("<Q", tgt)))
        unit.ret_off = 6
        return unit

    rip = insn.rip_disp_offset is not None
    if rip:
        rt = insn.rip_target
        if insn.rip_mem_access and src <= rt < end:
            return Refusal(f"memory operand inside the overwritten range: {where}")
        if not _near(dst, rt):
            if insn.id == X.X86_INS_LEA:
                return _far_lea(insn, rt, where)
            return Refusal(f"rip-relative operand out of ±2 GiB from {dst:#x}: {where}")

    if insn.is_call and insn.indirect:
        if last and exact and not insn.uses_rsp_operand and insn.raw[insn.modrm_offset - 1] == 0xFF:
            # same operand, ModRM.reg /2 (call) -> /4 (jmp), after pushing the original next
            raw = bytearray(insn.raw)
            raw[insn.modrm_offset] = (raw[insn.modrm_offset] & 0xC7) | (4 << 3)
            push = push_imm64(orig_next)

            def emit(pos, resolve):
                body = bytes(raw)
                if rip:
                    body = _with_disp(insn, pos + len(push), body)
                return push + body
            return _Unit(insn, len(push) + len(raw), emit)
        unit = _Unit(insn, insn.length,
                     lambda pos, resolve: _with_disp(insn, pos) if rip else insn.raw)
        unit.ret_off = insn.length
        return unit

    if rip:
        return _Unit(insn, insn.length, lambda pos, resolve: _with_disp(insn, pos))
    return _Unit(insn, insn.length, lambda pos, resolve: insn.raw)


def _far_lea(insn: Insn, target: int, where: str) -> _Unit | Refusal:
    """lea reg,[rip+d] whose target is out of reach: load the constant instead."""
    ci = next(_cs().disasm(insn.raw, insn.address, 1))
    reg = ci.operands[0].reg
    if reg in _REG64:
        n = _REG64[reg]
        code = bytes([0x48 | (n >> 3), 0xB8 | (n & 7)]) + struct.pack("<Q", target)
    elif reg in _REG32:
        n = _REG32[reg]
        code = (bytes([0x41]) if n >= 8 else b"") + bytes([0xB8 | (n & 7)]) + struct.pack(
            "<I", target & 0xFFFFFFFF)
    else:
        return Refusal(f"16-bit lea out of reach: {where}")
    return _Unit(insn, len(code), lambda pos, resolve: code)


def relocate_ex(code: bytes, src_addr: int, dst_addr: int, *,
                exact_return: bool = True) -> Relocated | Refusal:
    """Relocate whole instructions; returns the bytes and address maps, or a Refusal."""
    insns, bad = decode_all(code, src_addr)
    if bad is not None:
        return Refusal(f"undecodable or partial instruction at {bad:#x}")
    end = src_addr + len(code)
    starts = {i.address for i in insns}
    units: list[_Unit] = []
    for k, insn in enumerate(insns):
        t = insn.branch_target
        if t is not None and src_addr <= t < end and t not in starts:
            return Refusal(f"branch into the middle of an instruction at {insn.address:#x}")
        u = _plan(insn, src_addr, end, dst_addr, k == len(insns) - 1, exact_return)
        if isinstance(u, Refusal):
            return u
        units.append(u)
    positions: dict[int, int] = {}
    pos = dst_addr
    for u in units:
        positions[u.insn.address] = pos
        pos += u.size
    resolve = positions.__getitem__
    out = bytearray()
    ret_map: dict[int, int] = {}
    for u in units:
        at = positions[u.insn.address]
        piece = u.emit(at, resolve)
        if len(piece) != u.size:
            raise AssertionError(f"relocated size changed for {u.insn.mnemonic}")
        out += piece
        if u.ret_off is not None:
            ret_map[at + u.ret_off] = u.insn.end
    return Relocated(bytes(out), positions, ret_map)


def relocate(code: bytes, src_addr: int, dst_addr: int, *,
             exact_return: bool = True) -> bytes | Refusal:
    """Relocate a sequence of whole instructions from src_addr to run at dst_addr."""
    r = relocate_ex(code, src_addr, dst_addr, exact_return=exact_return)
    return r if isinstance(r, Refusal) else r.code


__all__ = ["Refusal", "Relocated", "relocate", "relocate_ex", "fits_rel32", "jmp_to",
           "jmp_abs", "push_imm64"]
