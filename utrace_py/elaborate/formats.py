"""printf format strings: split into literal text and conversions, and the arg types they take."""
from __future__ import annotations

from dataclasses import dataclass

LONG_CONVS = set("diuoxXcpb")
STRING_CONVS = {"s"}
MEMORY_CONVS = {"m", "M"}


@dataclass
class Conversion:
    flags: str
    width: int | None  # None: not given; -1: '*'
    precision: int | None
    conv: str

    def arg_types(self) -> list[str]:
        out = []
        if self.width == -1:
            out.append("long")
        if self.precision == -1:
            out.append("long")
        if self.conv in STRING_CONVS:
            out.append("string")
        elif self.conv in LONG_CONVS or self.conv in MEMORY_CONVS:
            out.append("long")
        return out


def _count(fmt: str, i: int) -> tuple[int | None, int]:
    """A width or precision at i: digits, '*' (-1: taken from the arguments) or none."""
    if i < len(fmt) and fmt[i] == "*":
        return -1, i + 1
    j = i
    while i < len(fmt) and fmt[i] in "0123456789":
        i += 1
    return (int(fmt[j:i]) if i > j else None), i


def parse_format(fmt: str) -> list[str | Conversion] | str:
    """Return the components, or an error message for an invalid format."""
    out: list[str | Conversion] = []
    lit: list[str] = []
    i, n = 0, len(fmt)
    while i < n:
        c = fmt[i]
        if c != "%":
            lit.append(c)
            i += 1
            continue
        if i + 1 < n and fmt[i + 1] == "%":
            lit.append("%")
            i += 2
            continue
        i += 1
        # stap's grammar: at most one flag, width, precision, at most one 'l'.
        flags = ""
        if i < n and fmt[i] in "-+ #0":
            flags = fmt[i]
            i += 1
        width, i = _count(fmt, i)
        precision = None
        if i < n and fmt[i] == ".":
            precision, i = _count(fmt, i + 1)
        if i < n and fmt[i] == "l":
            i += 1
        if i >= n:
            return "trailing incomplete print format conversion"
        conv = fmt[i]
        i += 1
        if conv not in LONG_CONVS | STRING_CONVS | MEMORY_CONVS:
            return "invalid or missing conversion specifier"
        if lit:
            out.append("".join(lit))
            lit = []
        out.append(Conversion(flags, width, precision, conv))
    if lit:
        out.append("".join(lit))
    return out


def arg_types(components: list[str | Conversion]) -> list[str]:
    out: list[str] = []
    for c in components:
        if isinstance(c, Conversion):
            out.extend(c.arg_types())
    return out
