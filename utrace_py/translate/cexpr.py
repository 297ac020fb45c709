"""C text helpers shared by the translator's backends: literals, names, locations."""
from __future__ import annotations

from ..diag import Token


def c_string(s: str) -> str:
    """A C string literal; octal escapes (never \\x, which would swallow following hex digits)."""
    out = ['"']
    for ch in s:
        o = ord(ch) & 0xFF if ord(ch) < 256 else None
        if o is None:
            for b in ch.encode("utf-8"):
                out.append("\\%03o" % b)
        elif ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "?":
            out.append("\\?")  # no trigraphs
        elif 32 <= o < 127:
            out.append(ch)
        else:
            out.append("\\%03o" % o)
    out.append('"')
    return "".join(out)


def c_long(v: int) -> str:
    if v == -(1 << 63):
        return "INT64_MIN"
    return f"INT64_C({v})"


def c_ident(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)


def location(tok: Token) -> str:
    """What an ERROR line says after `near`."""
    return tok.describe()
