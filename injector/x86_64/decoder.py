"""x86-64 instruction decoding for the rewriter: lengths, branch kinds, RIP-relative operands."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import capstone
from capstone import x86_const as X

# Conditional jumps with a rel8 and a rel32 form (condition code = low nibble of the opcode).
JCC_IDS = frozenset({
    X.X86_INS_JO, X.X86_INS_JNO, X.X86_INS_JB, X.X86_INS_JAE, X.X86_INS_JE, X.X86_INS_JNE,
    X.X86_INS_JBE, X.X86_INS_JA, X.X86_INS_JS, X.X86_INS_JNS, X.X86_INS_JP, X.X86_INS_JNP,
    X.X86_INS_JL, X.X86_INS_JGE, X.X86_INS_JLE, X.X86_INS_JG,
})
# Branches that only exist with a rel8 displacement: they are expanded, never re-encoded.
REL8_ONLY_IDS = frozenset({
    X.X86_INS_JRCXZ, X.X86_INS_JECXZ, X.X86_INS_LOOP, X.X86_INS_LOOPE, X.X86_INS_LOOPNE,
})
RET_IDS = frozenset({X.X86_INS_RET, X.X86_INS_RETF, X.X86_INS_IRET, X.X86_INS_IRETD,
                     X.X86_INS_IRETQ})
INT_IDS = frozenset({X.X86_INS_INT, X.X86_INS_INT3, X.X86_INS_INT1, X.X86_INS_INTO,
                     X.X86_INS_SYSCALL, X.X86_INS_SYSENTER, X.X86_INS_UD2})


@dataclass(frozen=True, repr=False)
class Insn:
    """One decoded instruction; offsets are relative to the instruction's first byte."""

    address: int
    raw: bytes
    mnemonic: str
    op_str: str
    id: int
    is_jump: bool          # jmp, jcc, jrcxz, loop* (anything that may transfer without pushing)
    is_call: bool
    is_ret: bool
    is_int: bool           # int/int3/syscall/ud2: traps or enters the kernel
    is_cond: bool          # jcc / jrcxz / loop*: may fall through
    is_endbr64: bool
    branch_target: int | None   # immediate target of a relative branch
    branch_imm_size: int        # 1 or 4 for relative branches, else 0
    rip_disp_offset: int | None  # where the RIP-relative disp32 sits in raw
    rip_target: int | None       # absolute address the RIP-relative operand refers to
    rip_mem_access: bool         # the RIP-relative operand is dereferenced (not lea)
    indirect: bool               # jmp/call through a register or memory
    uses_rsp_operand: bool       # a memory/register operand mentions rsp (matters if we push)
    modrm_offset: int

    def __repr__(self) -> str:
        return f"<{self.address:#x}: {self.mnemonic} {self.op_str}>"

    @property
    def length(self) -> int:
        return len(self.raw)

    @property
    def end(self) -> int:
        return self.address + len(self.raw)

    @property
    def is_rel8_only(self) -> bool:
        return self.id in REL8_ONLY_IDS

    @property
    def is_jcc(self) -> bool:
        return self.id in JCC_IDS

    @property
    def is_uncond_transfer(self) -> bool:
        """Control never falls through to the next instruction."""
        return self.is_ret or (self.is_jump and not self.is_cond) or self.id in (
            X.X86_INS_UD2, X.X86_INS_HLT)


@lru_cache(maxsize=1)
def _cs() -> capstone.Cs:
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.detail = True
    return md


def _convert(ci) -> Insn:
    iid = ci.id
    raw = bytes(ci.bytes)
    is_call = iid in (X.X86_INS_CALL, X.X86_INS_LCALL)
    is_jump = iid in JCC_IDS or iid in REL8_ONLY_IDS or iid in (X.X86_INS_JMP, X.X86_INS_LJMP)
    is_cond = iid in JCC_IDS or iid in REL8_ONLY_IDS
    target = None
    imm_size = 0
    indirect = False
    rip_off = rip_tgt = None
    rip_access = False
    uses_rsp = False
    for op in ci.operands:
        if op.type == X.X86_OP_MEM:
            m = op.mem
            if m.base == X.X86_REG_RSP or m.index == X.X86_REG_RSP:
                uses_rsp = True
            if m.base == X.X86_REG_RIP:
                # capstone's disp_size is unreliable for some VEX forms (it reports 2);
                # a RIP-relative ModRM (mod=00, rm=101) always carries a disp32.
                rip_off = ci.disp_offset
                if int.from_bytes(raw[rip_off:rip_off + 4], "little", signed=True) != m.disp:
                    raise ValueError(f"disp32 not found at {ci.address:#x}: {raw.hex()}")
                rip_tgt = (ci.address + len(raw) + m.disp) & 0xFFFF_FFFF_FFFF_FFFF
                rip_access = iid not in (X.X86_INS_LEA, X.X86_INS_NOP)
        elif op.type == X.X86_OP_REG and op.reg == X.X86_REG_RSP:
            uses_rsp = True
    if (is_jump or is_call) and ci.operands:
        op = ci.operands[0]
        if op.type == X.X86_OP_IMM and iid not in (X.X86_INS_LJMP, X.X86_INS_LCALL):
            target = op.imm & 0xFFFF_FFFF_FFFF_FFFF
            imm_size = ci.imm_size
        else:
            indirect = True
    if iid == X.X86_INS_XBEGIN:
        target = ci.operands[0].imm & 0xFFFF_FFFF_FFFF_FFFF
        imm_size = ci.imm_size
    return Insn(
        address=ci.address, raw=raw, mnemonic=ci.mnemonic, op_str=ci.op_str, id=iid,
        is_jump=is_jump, is_call=is_call, is_ret=iid in RET_IDS, is_int=iid in INT_IDS,
        is_cond=is_cond, is_endbr64=iid == X.X86_INS_ENDBR64,
        branch_target=target, branch_imm_size=imm_size, rip_disp_offset=rip_off,
        rip_target=rip_tgt, rip_mem_access=rip_access, indirect=indirect,
        uses_rsp_operand=uses_rsp, modrm_offset=ci.modrm_offset,
    )


@lru_cache(maxsize=1)
def _cs_lite() -> capstone.Cs:
    return capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)  # no detail: ~10x faster


_BRANCHES = frozenset({"jmp", "call", "jrcxz", "jecxz", "loop", "loope", "loopne", "xbegin",
                       "jo", "jno", "jb", "jae", "je", "jne", "jbe", "ja", "js", "jns", "jp",
                       "jnp", "jl", "jge", "jle", "jg"})


def branch_targets(code: bytes, address: int) -> list[int]:
    """Targets of the direct (immediate) branches and calls in code, decoded linearly
    up to the first undecodable byte: the sweep for branches into a patch, without the
    operand detail decode() computes."""
    out = []
    for _a, _n, mnem, ops in _cs_lite().disasm_lite(code, address):
        if mnem.startswith(("bnd ", "notrack ")):
            mnem = mnem.split()[-1]
        if mnem in _BRANCHES and ops.startswith("0x"):
            out.append(int(ops, 16))
    return out


def decode_one(code: bytes, address: int) -> Insn | None:
    """Decode the instruction at the start of code, or None when the bytes are invalid."""
    for ci in _cs().disasm(code[:15], address, 1):
        return _convert(ci)
    return None


def decode(code: bytes, address: int, count: int = 0) -> list[Insn]:
    """Decode linearly; stops early (shorter result) at the first undecodable byte."""
    out: list[Insn] = []
    for ci in _cs().disasm(code, address, count):
        out.append(_convert(ci))
    return out


def decode_all(code: bytes, address: int) -> tuple[list[Insn], int | None]:
    """Decode all of code; returns the instructions and the address of the first bad byte."""
    insns = decode(code, address)
    end = insns[-1].end if insns else address
    return insns, (None if end == address + len(code) else end)
