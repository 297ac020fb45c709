"""C expressions for SDT marker arguments ($argN of a mark probe), from binfo's ArgSpec.

The expression is an int64_t computed from the site's `const struct utrace_regs *`
(rip is the marker's nop, rsp the value at the site) and, for memory operands,
`utr_uread_int(addr, size, is_signed, fault)`, which returns the value sign- or
zero-extended and sets *fault on a bad address.  Values follow
ArgSpec.value() in utrace_py/binfo/sdt_args.py, which the tests check this
against.
"""
from __future__ import annotations

from ..binfo.sdt_args import MASK64, REGISTERS, ArgSpec, SdtError, extend
from .cexpr import c_long

_UINT = {1: "uint8_t", 2: "uint16_t", 4: "uint32_t", 8: "uint64_t"}
_INT = {1: "int8_t", 2: "int16_t", 4: "int32_t", 8: "int64_t"}


def arg_c_expr(spec: ArgSpec, regs: str = "r", bias_expr: str = "0",
               fault: str = "&fault") -> str:
    """A C int64_t expression for the argument.

    regs names a `const struct utrace_regs *`; bias_expr is a uint64_t expression
    for the module's load bias (used by symbolic and %rip-relative operands);
    fault is the `int *` handed to utr_uread_int.  Raises SdtError (naming the
    marker) for an argument that cannot be read: a thread-local (%fs:) operand,
    an %xmm register, an unresolved symbol.
    """
    spec.check()
    r = f"({regs})"
    if spec.form == "reg":
        field, width, shift = REGISTERS[spec.reg]  # type: ignore[index]
        n = min(width, spec.size)
        v = f"{r}->{field}" if not shift else f"({r}->{field} >> {shift})"
        v = f"({_UINT[n]}){v}"
        if spec.signed:
            v = f"({_INT[n]}){v}"
        return f"((int64_t){v})"
    if spec.form == "imm":
        if spec.symbol is None:
            return f"((int64_t){c_long(extend(spec.imm or 0, spec.size, spec.signed))})"
        ctype = (_INT if spec.signed else _UINT)[spec.size]
        return f"((int64_t)({ctype})((uint64_t)({bias_expr}) + {_hex(spec.addr or 0)}))"
    addr = _address(spec, r, bias_expr)
    return (f"((int64_t)utr_uread_int({addr}, {spec.size}, {int(spec.signed)}, "
            f"{fault}))")


def _hex(v: int) -> str:
    return f"UINT64_C({v & MASK64:#x})"


def _address(spec: ArgSpec, r: str, bias_expr: str) -> str:
    terms = []
    if spec.form == "rip-disp" or spec.symbol is not None:
        terms.append(f"(uint64_t)({bias_expr})")
        terms.append(_hex(spec.addr))  # type: ignore[arg-type]
    elif spec.disp:
        terms.append(_hex(spec.disp))
    wide = True
    if spec.base is not None and spec.base != "rip":
        field, width, _ = REGISTERS[spec.base]
        terms.append(f"{r}->{field}")
        wide = width == 8
    if spec.index is not None:
        field, width, _ = REGISTERS[spec.index]
        terms.append(f"{r}->{field} * {spec.scale}" if spec.scale != 1 else f"{r}->{field}")
        wide = wide and width == 8
    if not terms:
        terms.append(_hex(0))
    a = " + ".join(terms)  # every term is uint64_t: wraps modulo 2^64 like the CPU
    return f"(uint64_t)({a})" if wide else f"(uint64_t)(uint32_t)({a})"


def c_prototypes() -> str:
    """What the generated code needs declared (the runtime's umem.c provides it)."""
    return "int64_t utr_uread_int(uint64_t addr, int size, int is_signed, int *fault);\n"


__all__ = ["SdtError", "arg_c_expr", "c_prototypes"]
