"""Source files, tokens and SystemTap-style diagnostics (parse and semantic errors)."""
from __future__ import annotations

from dataclasses import dataclass, field


class SourceFile:
    """A script or tapset file; keeps its text so errors can quote it."""

    def __init__(self, name: str, text: str, tapset: bool = False,
                 synthetic: bool = False) -> None:
        self.name = name
        self.text = text
        self.tapset = tapset
        self.synthetic = synthetic
        self._lines: list[str] | None = None

    def __deepcopy__(self, memo: dict) -> "SourceFile":
        return self

    def line(self, n: int) -> str:
        if self._lines is None:
            self._lines = self.text.split("\n")
        if 1 <= n <= len(self._lines):
            return self._lines[n - 1]
        return ""


# Token kinds, named as SystemTap prints them.
IDENT = "identifier"
OP = "operator"
STRING = "string"
NUMBER = "number"
EMBEDDED = "embedded-code"
KEYWORD = "keyword"
JUNK = "junk"


@dataclass(eq=False)
class Token:
    kind: str
    text: str
    file: SourceFile | None
    line: int
    col: int
    # For string tokens: the decoded value; for numbers: the int value.
    value: object = None
    # Macro or argument expansion this token came from (for "in expansion of").
    chain: "Token | None" = None
    junk_msg: str | None = None
    # Whitespace or a comment came before it: probe-point components are
    # glued only when written without any (`syscall.*`, `foo*bar`).
    space_before: bool = False

    def __deepcopy__(self, memo: dict) -> "Token":
        return self  # tokens are immutable once lexed

    def loc(self) -> str:
        fname = self.file.name if self.file else "<input>"
        return f"{fname}:{self.line}:{self.col}"

    def describe(self) -> str:
        """`identifier 'x' at f:1:2`, as stap prints a token."""
        if self.kind in (EMBEDDED, KEYWORD):
            return f"{self.kind} at {self.loc()}"
        text = self.text
        if self.kind == STRING and len(text) >= 2 and text[0] == text[-1] == '"':
            text = text[1:-1]  # stap's string tokens hold the body only
        shown = "".join(c if (c.isprintable() and c.isascii()) else "?" for c in text)
        return f"{self.kind} '{shown}' at {self.loc()}"

    def is_op(self, *ops: str) -> bool:
        return self.kind == OP and self.text in ops

    def is_kw(self, *kws: str) -> bool:
        return self.kind == KEYWORD and self.text in kws

    def derived(self, kind: str, text: str, value: object = None) -> "Token":
        return Token(kind, text, self.file, self.line, self.col, value, self.chain)


def source_excerpt(tok: Token, align: str) -> str:
    """The `source:` line and the caret under the token's column."""
    if tok.file is None:
        return ""
    src = tok.file.line(tok.line)
    out = f"{align}source: {src}\n"
    pad = "".join(c if c.isspace() else " " for c in src[: max(tok.col - 1, 0)])
    out += f"{align}        {pad}^\n"
    if tok.chain is not None:
        what = ("in synthesized code from: " if tok.file.synthetic
                else "in expansion of macro: ")
        out += f"\t{what}{tok.chain.describe()}\n"
        out += source_excerpt(tok.chain, align)
    return out


class UtraceError(Exception):
    """A failure that is reported to the user as text, never as a traceback."""

    exit_code = 1


class ScriptError(UtraceError):
    """Base of diagnostics about the user's script."""

    def render(self) -> str:  # pragma: no cover - overridden
        return str(self)


class ParseError(ScriptError):
    def __init__(self, msg: str, tok: Token | None = None,
                 saw: bool = True, eof_name: str | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.tok = tok
        # "saw:" for what the parser expected but found; "at:" for a bad token itself.
        self.saw = saw
        self.eof_name = eof_name

    def render(self) -> str:
        align = "     "
        tok = self.tok
        if tok is not None and tok.kind == JUNK and tok.junk_msg:
            out = f"parse error: {tok.junk_msg}\n"
            out += f"{align}    at: {tok.describe()}\n" + source_excerpt(tok, align)
        else:
            out = f"parse error: {self.msg}\n"
            if tok is not None:
                label = "   saw: " if self.saw else "    at: "
                out += f"{align}{label}{tok.describe()}\n" + source_excerpt(tok, align)
            else:
                out += f"{align}   saw: {self.eof_name or '<input>'} EOF\n"
        return out + "\n"


class ParseErrors(ScriptError):
    """Every parse error of a file: stap resynchronises at the next top-level keyword."""

    def __init__(self, errors: list[ParseError]) -> None:
        super().__init__(errors[0].msg)
        self.errors = errors

    def render(self) -> str:
        return "".join(e.render() for e in self.errors)


class EmptyScript(ScriptError):
    """A user script with nothing in it (before or after preprocessing)."""

    def render(self) -> str:
        return str(self) + "\n"


@dataclass
class SemanticError(ScriptError):
    msg: str
    tok: Token | None = None
    tok2: Token | None = None
    details: list[str] = field(default_factory=list)
    chain: "SemanticError | None" = None

    def __post_init__(self) -> None:
        super().__init__(self.msg)

    def render(self, last: list | None = None) -> str:
        # stap's print_token drops the file name when the previous token it
        # printed came from the same file: "identifier 'x' at :1:15".
        last = last if last is not None else [None]

        def tokstr(tok: Token) -> str:
            s = tok.describe()
            if last[0] is not None and tok.file is not None and last[0] is tok.file:
                s = s.replace(f" at {tok.file.name}:", " at :", 1)
            last[0] = tok.file
            return s
        align = "        "
        out = f"semantic error: {self.msg}"
        if self.tok is not None or self.tok2 is not None:
            out += ": "
        det = "".join(f"\n{align}{d}" for d in self.details)
        if self.tok is not None:
            out += tokstr(self.tok) + det + "\n" + source_excerpt(self.tok, align)
        else:
            out += det + "\n"
        if self.tok2 is not None:
            out += tokstr(self.tok2) + "\n" + source_excerpt(self.tok2, align)
        out += "\n"
        if self.chain is not None:
            out += self.chain.render(last)
        return out


class UsageError(UtraceError):
    """Bad command line; printed as stap does, exit status 1."""


class SystemFailure(UtraceError):
    """A failed system operation: names the operation, pid and errno."""

    def __init__(self, op: str, err: int | None = None, pid: int | None = None,
                 detail: str = "") -> None:
        import os
        parts = [op]
        if pid is not None:
            parts.append(f"pid {pid}")
        if err is not None:
            parts.append(f"{os.strerror(err)} (errno {err})")
        if detail:
            parts.append(detail)
        super().__init__(": ".join(parts))
        self.op, self.err, self.pid = op, err, pid
