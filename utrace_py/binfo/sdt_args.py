"""SDT marker argument specs (x86-64): parse `[-]SIZE[f]@OPERAND`, compute values in Python.

sys/sdt.h puts each argument's GNU assembler operand text into the note, as the
compiler printed it for an `asm` input with the "nor" constraint, prefixed by
its size in bytes (negative: signed) and, since systemtap 4.6, an `f` for a
floating-point value.  What gcc emits on x86-64 (seen at -O0..-O3, PIE and not;
Debian's python3.11 and postgres 15 use the same subset):

    -4@%edi   8@%rax   1@%dil   -2@%cx     register (any width; %ah..%dh too)
    -4@$-5    4@$-1    -8@$7               immediate (may not fit the size: masked)
    -4@-20(%rbp)  8@(%rdi)                 disp(%base)
    -8@(%rdx,%rax,8)  -1@16(%rdi,%r8)      disp(%base,%index[,scale])
    -4@gint(%rip)  -8@garr+8(%rip)  -4@40+CheckpointStats(%rip)   symbol+off, rip-relative
    -4@%fs:tls_var@tpoff                   a thread-local variable (parsed, not readable)
    8f@-8(%rbp)   4f@%edx                  float/double bits in memory or a GPR

Hand-written probes (STAP_PROBE_ASM) can also say `(,%index,scale)`, a numeric
`disp(%rip)`, `$0x10`, an absolute `sym+off`, or an old-style operand without a
size (`%eax 4(%esi)`), which SystemTap reads as 8 bytes unsigned; all are parsed.

Semantics, as SystemTap (tapsets.cxx, sdt_uprobe_var_expanding_visitor) and
bcc/bpftrace (usdt_args.cc) compute them:

* `sym+off(%rip)` is the address of the symbol plus off (the assembler's meaning of
  a symbolic rip-relative operand); the symbol comes from .symtab, else .dynsym.
* a numeric `disp(%rip)` is relative to the probe's own address, the nop (both
  tools read rip as the uprobe reports it, before the nop executes), not to
  the instruction after it.
* a register narrower than the size is extended from its own width with the
  spec's signedness; a wider one is truncated to the size ("the byte-width
  given before the @ sign governs", sys/sdt.h).

Addresses here are link-time vaddrs; `bias` is the module's load bias.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Mapping

from ..diag import UtraceError

MASK64 = (1 << 64) - 1


class SdtError(UtraceError):
    pass


# name -> (struct utrace_regs field, width in bytes, bit shift)
REGISTERS: dict[str, tuple[str, int, int]] = {}
for _full, _e, _w, _b, _h in (("rax", "eax", "ax", "al", "ah"), ("rbx", "ebx", "bx", "bl", "bh"),
                              ("rcx", "ecx", "cx", "cl", "ch"), ("rdx", "edx", "dx", "dl", "dh"),
                              ("rsi", "esi", "si", "sil", None), ("rdi", "edi", "di", "dil", None),
                              ("rbp", "ebp", "bp", "bpl", None), ("rsp", "esp", "sp", "spl", None)):
    REGISTERS[_full] = (_full, 8, 0)
    REGISTERS[_e] = (_full, 4, 0)
    REGISTERS[_w] = (_full, 2, 0)
    REGISTERS[_b] = (_full, 1, 0)
    if _h:
        REGISTERS[_h] = (_full, 1, 8)
for _n in range(8, 16):
    _r = f"r{_n}"
    REGISTERS[_r] = (_r, 8, 0)
    REGISTERS[_r + "d"] = (_r, 4, 0)
    REGISTERS[_r + "w"] = (_r, 2, 0)
    REGISTERS[_r + "b"] = (_r, 1, 0)
    REGISTERS[_r + "l"] = (_r, 1, 0)  # Intel's spelling of r8b
# Registers that hold a value but are not in struct utrace_regs.
FP_REGISTER = re.compile(r"^(?:[xyz]mm\d{1,2}|st(?:\(\d\))?\d?|mm\d)$")

# What an operand looks like; ArgSpec.form is one of these.
FORMS = {
    "reg": "%reg",
    "imm": "$imm",
    "mem": "disp(%base)",
    "mem-index": "disp(%base,%index,scale)",
    "index": "disp(,%index,scale)",
    "rip-sym": "sym+off(%rip)",
    "rip-disp": "disp(%rip)",
    "abs": "absolute sym+off",
    "seg": "%fs:/%gs: operand",
}

_SIZE = re.compile(r"^(-?)(\d+)(f?)@")
_NUM = r"(?:0[xX][0-9a-fA-F]+|\d+)"
_IDENT = r"[A-Za-z_.$][A-Za-z0-9_.$]*"
# disp: terms joined by + or -, each a number or one identifier, optional @reloc suffix.
_TERM = re.compile(rf"([+-]?)\s*({_NUM}|{_IDENT})(@[A-Za-z]+)?")


@dataclass(frozen=True)
class ArgSpec:
    """One marker argument: how to find its value at the probe site."""

    text: str               # as in the note, with the size prefix ("-4@-20(%rbp)")
    size: int               # bytes: 1, 2, 4 or 8
    signed: bool
    form: str               # a key of FORMS
    sized: bool = True      # False for an old-style operand without SIZE@ (8 bytes unsigned)
    is_float: bool = False  # "f": the bits of a float/double
    reg: str | None = None  # "reg" form: the register as written, without %
    imm: int | None = None  # "imm" form: the number (with a symbol: its offset)
    base: str | None = None
    index: str | None = None
    scale: int = 1
    disp: int = 0           # numeric part of the displacement
    symbol: str | None = None
    segment: str | None = None   # "fs" / "gs"
    reloc: str | None = None     # "tpoff", "GOTPCREL"...: a relocation the note cannot resolve
    addr: int | None = None      # link-time vaddr: symbol + disp (rip-sym, abs, symbolic
                                 # imm/mem/index) or probe pc + disp (rip-disp); None if unknown
    where: str = ""              # "marker P:N argument K" for messages

    @property
    def operand(self) -> str:
        """The operand without its SIZE@ prefix."""
        return self.text.split("@", 1)[1] if self.sized else self.text

    @property
    def is_memory(self) -> bool:
        return self.form not in ("reg", "imm")

    # -- Python evaluation (the tracer's breakpoint tier, and the tests' oracle) -------------

    def refusal(self) -> str | None:
        """Why this argument cannot be read at run time, or None."""
        what = f"{self.where}: '{self.text}'" if self.where else f"'{self.text}'"
        if self.form == "seg" or self.reloc:
            return (f"{what} is a thread-local variable ({self.operand}); reading "
                    f"%{self.segment or 'fs'}-relative operands is not supported")
        if self.form == "reg" and self.reg not in REGISTERS:
            return f"{what} is in %{self.reg}, which utrace cannot read at a probe site"
        if self.symbol is not None and self.addr is None:
            return (f"{what} refers to symbol '{self.symbol}', which is not in the file's "
                    "symbol tables (stripped binary, or a name shared by several objects)")
        if self.form == "rip-disp" and self.addr is None:
            return f"{what} is relative to the probe address, which is not known here"
        return None

    def check(self) -> None:
        msg = self.refusal()
        if msg:
            raise SdtError(f"ERROR: {msg}")

    def address(self, regs: Mapping[str, int], bias: int) -> int:
        """The memory operand's address at run time (regs: utrace_regs field -> value)."""
        self.check()
        if self.form == "rip-disp" or self.symbol is not None:
            a = bias + self.addr  # type: ignore[operator]
        else:
            a = self.disp
        wide = True
        if self.base is not None and self.base != "rip":
            field, width, _ = REGISTERS[self.base]
            a += regs[field]
            wide = width == 8
        if self.index is not None:
            field, width, _ = REGISTERS[self.index]
            a += regs[field] * self.scale
            wide = wide and width == 8
        return a & (MASK64 if wide else 0xFFFFFFFF)

    def value(self, regs: Mapping[str, int], read: Callable[[int, int], bytes],
              bias: int) -> int:
        """The argument's value as SystemTap's $argN (a signed 64-bit integer).

        read(addr, size) returns size bytes of the target's memory.
        """
        self.check()
        if self.form == "reg":
            field, width, shift = REGISTERS[self.reg]  # type: ignore[index]
            return extend(regs[field] >> shift, min(width, self.size), self.signed)
        if self.form == "imm":
            v = self.imm if self.symbol is None else bias + self.addr  # type: ignore[operator]
            return extend(v, self.size, self.signed)
        data = read(self.address(regs, bias), self.size)
        if len(data) != self.size:
            raise SdtError(f"ERROR: {self.where}: cannot read {self.size} bytes")
        return extend(int.from_bytes(data, "little"), self.size, self.signed)


def extend(v: int, size: int, signed: bool) -> int:
    """The low `size` bytes of v, sign- or zero-extended, as a signed 64-bit value."""
    bits = 8 * size
    v &= (1 << bits) - 1
    if signed and v >> (bits - 1):
        v -= 1 << bits
    if v >= 1 << 63:
        v -= 1 << 64
    return v


def split_args(text: str) -> list[str]:
    """The note's argument string split into operands: blank-separated, but a blank inside
    parentheses (`(%rax, %rbx)`, which SystemTap's parser also accepts) does not split.

    Not SystemTap's count of '@' signs, which makes two arguments of one
    `-4@%fs:var@tpoff`.
    """
    out: list[str] = []
    cur, depth = "", 0
    for ch in text:
        if ch.isspace() and depth == 0:
            if cur:
                out.append(cur)
            cur = ""
            continue
        depth += (ch == "(") - (ch == ")")
        if not ch.isspace():
            cur += ch
    if cur:
        out.append(cur)
    return out


def parse_args(text: str, *, pc: int | None = None, where: str = "",
               symbols: Mapping[str, int | None] | None = None) -> tuple[ArgSpec, ...]:
    """Every argument of a note; raises SdtError naming `where` for a malformed one."""
    return tuple(parse_arg(t, pc=pc, where=f"{where} argument {i}" if where else f"argument {i}",
                           symbols=symbols)
                 for i, t in enumerate(split_args(text), 1))


def parse_arg(text: str, *, pc: int | None = None, where: str = "",
              symbols: Mapping[str, int | None] | None = None) -> ArgSpec:
    """One `[-]SIZE[f]@OPERAND` (or old-style `OPERAND`).

    pc is the marker's (adjusted) link-time address, for a numeric disp(%rip);
    symbols maps symbol names to their link-time addresses (None: unresolved).
    """
    m = _SIZE.match(text)
    if m:
        size, signed, is_float, sized = int(m.group(2)), bool(m.group(1)), bool(m.group(3)), True
        op = text[m.end():]
        if size not in (1, 2, 4, 8):
            raise _bad(text, where, f"size {size} is not 1, 2, 4 or 8")
    elif re.match(r"^-?\d*f?@", text):
        raise _bad(text, where, "malformed SIZE@ prefix")
    else:
        size, signed, is_float, sized, op = 8, False, False, False, text
    if not op:
        raise _bad(text, where, "empty operand")
    common = dict(text=text, size=size, signed=signed, sized=sized, is_float=is_float,
                  where=where)
    try:
        spec = _parse_operand(op, common, pc, symbols)
    except ValueError as e:
        raise _bad(text, where, str(e)) from None
    return spec


def _bad(text: str, where: str, why: str) -> SdtError:
    w = f"{where}: " if where else ""
    return SdtError(f"ERROR: {w}cannot parse SDT argument '{text}': {why}")


def _register(name: str, what: str, allow_fp: bool = False) -> str:
    if name in REGISTERS or (allow_fp and FP_REGISTER.match(name)):
        return name
    if name in ("rip", "eip", "ip"):
        raise ValueError(f"%{name} cannot be {what}")
    raise ValueError(f"unknown register %{name}")


def _parse_operand(op: str, common: dict, pc: int | None,
                   symbols: Mapping[str, int | None] | None) -> ArgSpec:
    if op.startswith("%") and ":" not in op:
        return ArgSpec(form="reg", reg=_register(op[1:], "a register operand", True), **common)
    if op.startswith("$"):
        disp, sym, reloc = _parse_disp(op[1:])
        if reloc:
            raise ValueError(f"relocation @{reloc} in an immediate")
        addr = _resolve(sym, disp, symbols)
        return ArgSpec(form="imm", imm=disp, disp=disp, symbol=sym, addr=addr, **common)
    segment = None
    seg = re.match(r"^%([c-gs]s):", op)
    if seg:
        segment, op = seg.group(1), op[seg.end():]
        if segment not in ("fs", "gs"):
            raise ValueError(f"segment %{segment} is not used in 64-bit code")
    paren = op.find("(")
    if paren >= 0:
        if not op.endswith(")") or op.count("(") != 1 or op.count(")") != 1:
            raise ValueError("unbalanced parentheses")
        disp_text, inner = op[:paren], op[paren + 1:-1]
    else:
        disp_text, inner = op, None
    disp, sym, reloc = _parse_disp(disp_text) if disp_text else (0, None, None)
    base = index = None
    scale = 1
    if inner is not None:
        parts = [p.strip() for p in inner.split(",")]
        if len(parts) > 3 or not parts:
            raise ValueError("too many parts inside the parentheses")
        if parts[0]:
            base = _reg_ref(parts[0], allow_rip=True)
        if len(parts) >= 2:
            if not parts[1]:
                raise ValueError("missing index register")
            index = _reg_ref(parts[1], allow_rip=False)
            if index in ("rsp", "esp"):
                raise ValueError("%rsp cannot be an index register")
        if len(parts) == 3:
            if parts[2] not in ("1", "2", "4", "8"):
                raise ValueError(f"scale {parts[2]!r} is not 1, 2, 4 or 8")
            scale = int(parts[2])
        if base is None and index is None:
            raise ValueError("no register inside the parentheses")
        for r in (base, index):
            if r is not None and r != "rip" and REGISTERS[r][1] < 4:
                raise ValueError(f"%{r} cannot be used in an address")
        if base is not None and index is not None and base != "rip" and \
                REGISTERS[base][1] != REGISTERS[index][1]:
            raise ValueError("base and index registers of different widths")
    if segment is not None:
        return ArgSpec(form="seg", segment=segment, reloc=reloc, base=base, index=index,
                       scale=scale, disp=disp, symbol=sym, **common)
    if reloc:
        raise ValueError(f"relocation @{reloc} cannot be resolved from the note")
    if base == "rip":
        if index is not None:
            raise ValueError("%rip cannot have an index register")
        if sym is None:
            addr = None if pc is None else (pc + disp) & MASK64
            return ArgSpec(form="rip-disp", base="rip", disp=disp, addr=addr, **common)
        return ArgSpec(form="rip-sym", base="rip", disp=disp, symbol=sym,
                       addr=_resolve(sym, disp, symbols), **common)
    if base is None and index is None:
        if sym is None and not disp_text:
            raise ValueError("empty operand")
        return ArgSpec(form="abs", disp=disp, symbol=sym, addr=_resolve(sym, disp, symbols),
                       **common)
    form = "mem" if index is None else ("mem-index" if base is not None else "index")
    return ArgSpec(form=form, base=base, index=index, scale=scale, disp=disp, symbol=sym,
                   addr=_resolve(sym, disp, symbols), **common)


def _reg_ref(text: str, allow_rip: bool) -> str:
    if not text.startswith("%"):
        raise ValueError(f"{text!r} is not a register")
    name = text[1:]
    if name == "rip" and allow_rip:
        return name
    return _register(name, "an index register" if not allow_rip else "a base register here")


def _parse_disp(text: str) -> tuple[int, str | None, str | None]:
    """A displacement expression: (numeric sum, the one symbol or None, @reloc or None)."""
    text = text.strip()
    pos, total, sym, reloc = 0, 0, None, None
    if not text:
        raise ValueError("empty displacement")
    while pos < len(text):
        m = _TERM.match(text, pos)
        if not m or (pos and not m.group(1)):
            raise ValueError(f"cannot read the displacement {text!r}")
        sign, term, rel = m.groups()
        if re.fullmatch(_NUM, term):
            v = int(term, 0) if not re.fullmatch(r"0\d+", term) else int(term, 8)
            total += -v if sign == "-" else v
        else:
            if sym is not None:
                raise ValueError(f"two symbols in the displacement {text!r}")
            if sign == "-":
                raise ValueError(f"a negated symbol in the displacement {text!r}")
            sym = term
        if rel:
            reloc = rel[1:]
        pos = m.end()
        while pos < len(text) and text[pos] == " ":
            pos += 1
    return total, sym, reloc


def _resolve(sym: str | None, disp: int, symbols: Mapping[str, int | None] | None) -> int | None:
    if sym is None:
        return None
    base = symbols.get(sym) if symbols else None
    return None if base is None else (base + disp) & MASK64


def symbols_needed(text: str) -> set[str]:
    """Symbol names the operands of a note's argument string refer to (for one lookup pass)."""
    out = set()
    for t in split_args(text):
        try:
            spec = parse_arg(t)
        except SdtError:
            continue
        if spec.symbol is not None:
            out.add(spec.symbol)
    return out
