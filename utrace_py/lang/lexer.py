"""Pass 1a: turn script text into tokens, pasting $N/@N command-line arguments."""
from __future__ import annotations

from ..diag import (EMBEDDED, IDENT, JUNK, KEYWORD, NUMBER, OP, STRING,
                    SourceFile, Token)

KEYWORDS = frozenset("""probe global private function if else for foreach in
limit return delete while break continue next string long try catch""".split())

# Longest first, so that maximal munch is a simple prefix scan.
OPERATORS = sorted("""
<<<= >>>= <<< >>> <<= >>= -> ++ -- == != <= >= && || += -= *= /= %= &= ^= |= .=
<< >> =~ !~ %{ %} %( %? %: %) { } ( ) [ ] ; , . : ? = + - * / % & | ^ ! ~ < > #
""".split(), key=len, reverse=True)

# stap's lexer uses C's ctype in the C locale: ASCII only.
_DIGITS = frozenset("0123456789")
_ALPHA = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ALNUM = _ALPHA | _DIGITS

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f",
            "v": "\v", "\\": "\\", '"': '"', "'": "'", "?": "?"}


def decode_string(raw: str) -> str:
    """Interpret C escapes in a string literal's body, as the C compiler would."""
    out: list[str] = []
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c != "\\" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        e = raw[i + 1]
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
        elif e in "01234567":
            j = i + 1
            while j < n and j < i + 4 and raw[j] in "01234567":
                j += 1
            out.append(chr(int(raw[i + 1:j], 8) & 0xFF))
            i = j
        elif e == "x":
            j = i + 2
            while j < n and raw[j] in "0123456789abcdefABCDEF":
                j += 1
            out.append(chr(int(raw[i + 2:j] or "0", 16) & 0xFF))
            i = j
        else:
            out.append(e)
            i += 2
    return "".join(out)


def _lexed_body(raw: str) -> str:
    """A string body as stap's lexer stores it: escapes it does not pass on lose the backslash."""
    out: list[str] = []
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "\\" and i + 1 < len(raw):
            e = raw[i + 1]
            out.append(("\\" + e) if e in "abtnvfr01234567\\x" else e)
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def parse_number(text: str) -> int | None:
    """A literal's value as a signed 64-bit integer, or None if invalid."""
    try:
        if text.lower().startswith("0x"):
            v = int(text[2:], 16)
        elif len(text) > 1 and text[0] == "0":
            v = int(text[1:], 8)
        else:
            v = int(text, 10)
    except ValueError:
        return None
    if v >= 1 << 64:
        return None
    return v - (1 << 64) if v >= 1 << 63 else v


def quote_string(s: str) -> str:
    """A string as a literal that lexes back to the same value."""
    out = []
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif not c.isprintable():
            out.append("\\%03o" % (ord(c) & 0xFF))
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


class Lexer:
    """Tokenizes one file. Arguments ($1, @1, $#, @#) are pasted as stap does."""

    def __init__(self, src: SourceFile, args: list[str] | None = None,
                 used_args: set[int] | None = None) -> None:
        self.src = src
        self.text = src.text
        self.args = args or []
        self.used_args = used_args if used_args is not None else set()

    def tokens(self) -> list[Token]:
        out: list[Token] = []
        text, n = self.text, len(self.text)
        i, line, col = 0, 1, 1

        def advance(k: int) -> None:
            nonlocal i, line, col
            for _ in range(k):
                if text[i] == "\n":
                    line += 1
                    col = 1
                else:
                    col += 1
                i += 1

        spaced = True
        while i < n:
            c = text[i]
            if c in " \t\r\n\f\v":
                advance(1)
                spaced = True
                continue
            if c == "#" or text.startswith("//", i):
                while i < n and text[i] != "\n":
                    advance(1)
                spaced = True
                continue
            if text.startswith("/*", i):
                end = text.find("*/", i + 2)
                advance((end + 2 if end >= 0 else n) - i)
                spaced = True
                continue
            tok_line, tok_col, sp = line, col, spaced
            spaced = False

            def mk(kind: str, t: str, v: object = None) -> Token:
                return Token(kind, t, self.src, tok_line, tok_col, v, space_before=sp)
            c2 = text[i + 1] if i + 1 < n else ""
            if c in "$@" and c2 == "#":
                advance(2)
                cnt = len(self.args)
                out.append(mk(NUMBER, str(cnt), cnt) if c == "$"
                           else mk(STRING, quote_string(str(cnt)), str(cnt)))
                continue
            if c in "$@" and c2 in _DIGITS:
                j = i + 1
                while j < n and text[j] in _DIGITS:
                    j += 1
                idx = int(text[i + 1:j])
                whole = text[i:j]
                advance(j - i)
                if idx == 0 or idx > len(self.args):
                    t = mk(JUNK, whole)
                    t.junk_msg = f"command line argument out of range [1-{len(self.args)}]"
                    out.append(t)
                    continue
                self.used_args.add(idx)
                arg = self.args[idx - 1]
                anchor = mk(OP if c == "@" else IDENT, whole)
                if c == "@":
                    out.append(mk(STRING, quote_string(arg), arg))
                else:
                    sub = Lexer(SourceFile(f"<argument {whole}>", arg, synthetic=True))
                    for t in sub.tokens():
                        if t.kind == JUNK:
                            t.junk_msg = t.junk_msg or "invalid nested substitution of command line arguments"
                        t.file, t.line, t.col = self.src, tok_line, tok_col
                        t.chain = None if t.kind != JUNK else anchor
                        out.append(t)
                continue
            if c in _ALPHA or c in "$@_":
                j = i + 1
                while j < n and (text[j] in _ALNUM or text[j] in "_$"):
                    j += 1
                word = text[i:j]
                advance(j - i)
                if word[0] == "@":
                    out.append(mk(OP, word))
                elif word in KEYWORDS:
                    out.append(mk(KEYWORD, word))
                else:
                    out.append(mk(IDENT, word))
                continue
            if c in _DIGITS:
                j = i + 1
                while j < n and text[j] in _ALNUM:
                    j += 1
                word = text[i:j]
                advance(j - i)
                out.append(mk(NUMBER, word, parse_number(word)))
                continue
            if c == '"':
                j = i + 1
                while j < n and text[j] not in '"\n':
                    if text[j] == "\\" and j + 1 < n:
                        j += 1
                    j += 1
                if j >= n or text[j] == "\n":
                    # stap ends a string at a newline too; the junk token keeps
                    # the text read so far, with escapes as its lexer keeps them.
                    t = mk(JUNK, '"' + _lexed_body(text[i + 1:j]))
                    t.junk_msg = "Could not find matching closing quote"
                    out.append(t)
                    advance(min(j + 1, n) - i)
                    continue
                raw = text[i + 1:j]
                advance(j + 1 - i)
                out.append(mk(STRING, '"' + raw + '"', decode_string(raw)))
                continue
            if text.startswith("%{", i):
                end = text.find("%}", i + 2)
                if end < 0:
                    # stap's lexer keeps all but the last character read
                    t = mk(JUNK, "%{" + text[i + 2:n - 1])
                    t.junk_msg = "Could not find matching '%}' to close embedded function block"
                    out.append(t)
                    advance(n - i)
                    break
                code = text[i + 2:end]
                advance(end + 2 - i)
                out.append(mk(EMBEDDED, code, code))
                continue
            for op in OPERATORS:
                if text.startswith(op, i):
                    advance(len(op))
                    out.append(mk(OP, op))
                    break
            else:
                t = mk(JUNK, "\\x%02x" % (ord(c) & 0xFF))
                advance(1)
                out.append(t)
        return out
