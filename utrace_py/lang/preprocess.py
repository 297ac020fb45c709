"""Pass 1b: @define macros (expanded first) and %( cond %? a %: b %) conditionals."""
from __future__ import annotations

import fnmatch
import platform
from dataclasses import dataclass, field

from ..diag import IDENT, NUMBER, OP, STRING, ParseError, Token


@dataclass
class PPContext:
    """What %( ... %) conditions may ask about."""

    arch: str = "x86_64"
    kernel_v: str = field(default_factory=lambda: platform.release().split("-")[0])
    kernel_vr: str = field(default_factory=platform.release)
    systemtap_v: str = "4.8"
    runtime: str = "user"
    guru_mode: bool = False
    privilege: str = "stapusr"
    kconfig: dict[str, str] | None = None

    def config(self, name: str) -> str:
        if self.kconfig is None:
            self.kconfig = _read_kconfig(self.kernel_vr)
        return self.kconfig.get(name, "")


def _read_kconfig(release: str) -> dict[str, str]:
    text = ""
    for path in (f"/boot/config-{release}", f"/lib/modules/{release}/build/.config"):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            break
        except OSError:
            continue
    if not text:
        try:
            import gzip
            with gzip.open("/proc/config.gz", "rt", errors="replace") as f:
                text = f.read()
        except OSError:
            pass
    out: dict[str, str] = {}
    for ln in text.splitlines():
        if ln.startswith("CONFIG_") and "=" in ln:
            k, v = ln.split("=", 1)
            out[k] = v.strip('"')
    return out


def _vercmp(a: str, b: str) -> int:
    """Compare dotted versions like strverscmp for the common numeric case."""
    def parts(s: str) -> list:
        out = []
        for p in s.replace("-", ".").split("."):
            out.append((0, int(p), "") if p and all(ch in "0123456789" for ch in p) else (1, 0, p))
        return out
    pa, pb = parts(a), parts(b)
    return (pa > pb) - (pa < pb)


@dataclass
class Macro:
    name: str
    params: list[str]
    body: list[Token]
    tok: Token


class Preprocessor:
    def __init__(self, ctx: PPContext, library_macros: dict[str, Macro] | None = None) -> None:
        self.ctx = ctx
        self.macros: dict[str, Macro] = dict(library_macros or {})

    # One pass, as stap's scanner: a conditional is decided where it stands,
    # an @define is recorded only in a branch that is kept (PR18462), and a
    # macro's expansion is spliced back into the stream, so conditionals and
    # further macros inside it are processed too.
    def run(self, toks: list[Token]) -> list[Token]:
        # Junk (a bad $N, an open quote) is reported by the parser, and only
        # if it survives the conditionals, as stap does.
        self._toks = list(toks)
        out: list[Token] = []
        self._block(0, out, ())
        return out

    def _block(self, i: int, out: list[Token] | None, terminators: tuple[str, ...]) -> int:
        """Copy tokens to out (None = skip) until a terminator; return its index."""
        toks = self._toks
        while i < len(toks):
            t = toks[i]
            if t.kind == OP and t.text in terminators:
                return i
            if t.is_op("%("):
                i = self._conditional(i, out)
                continue
            if t.is_op("%:") and terminators == ("%)",):
                raise ParseError("invalid conditional - duplicate '%:'", t, saw=False)
            if t.is_op("%?", "%:", "%)"):
                raise ParseError("incomplete conditional - missing '%('", t, saw=False)
            if t.is_op("@define"):
                i = self._define(toks, i, record=out is not None)
                continue
            if out is not None and self._is_macro(t):
                self._splice(i)
                continue
            if out is not None:
                out.append(t)
            i += 1
        return i

    def _is_macro(self, t: Token) -> bool:
        return t.kind == OP and t.text.startswith("@") and t.text[1:] in self.macros

    def _define(self, toks: list[Token], i: int, record: bool = True) -> int:
        start = toks[i]
        i += 1
        if i >= len(toks) or toks[i].kind != IDENT:
            raise ParseError("expected identifier", toks[i] if i < len(toks) else None)
        name_tok = toks[i]
        i += 1
        params: list[str] = []
        if i < len(toks) and toks[i].is_op("("):
            i += 1
            while True:
                if i >= len(toks) or toks[i].kind != IDENT:
                    raise ParseError("expected identifier", toks[i] if i < len(toks) else None)
                params.append(toks[i].text)
                i += 1
                if i < len(toks) and toks[i].is_op(","):
                    i += 1
                    continue
                if i < len(toks) and toks[i].is_op(")"):
                    i += 1
                    break
                raise ParseError("expected ',' or ')'", toks[i] if i < len(toks) else None)
        if i >= len(toks) or not toks[i].is_op("%("):
            raise ParseError("expected '%('", toks[i] if i < len(toks) else start)
        depth, j = 1, i + 1
        while j < len(toks) and depth:
            if toks[j].is_op("%("):
                depth += 1
            elif toks[j].is_op("%)"):
                depth -= 1
            j += 1
        if depth:
            raise ParseError("incomplete macro definition", start, saw=False)
        if record:
            self.macros[name_tok.text] = Macro(name_tok.text, params, toks[i + 1:j - 1], name_tok)
        return j

    def _splice(self, i: int) -> None:
        """Replace the macro invocation at i by its expansion."""
        toks = self._toks
        t = toks[i]
        depth, c = 0, t.chain
        while c is not None:
            depth += 1
            c = c.chain
        if depth > 64:
            raise ParseError("recursive macro invocation", t, saw=False)
        m = self.macros[t.text[1:]]
        j = i + 1
        args: list[list[Token]] = []
        if m.params:
            if j >= len(toks) or not toks[j].is_op("("):
                raise ParseError("expected '('", toks[j] if j < len(toks) else t)
            j += 1
            cur: list[Token] = []
            level = 0
            while True:
                if j >= len(toks):
                    raise ParseError("expected ')'", t)
                a = toks[j]
                if a.is_op("(", "[", "{"):
                    level += 1
                elif a.is_op(")", "]", "}"):
                    if level == 0 and a.is_op(")"):
                        args.append(cur)
                        j += 1
                        break
                    level -= 1
                elif a.is_op(",") and level == 0:
                    args.append(cur)
                    cur = []
                    j += 1
                    continue
                cur.append(a)
                j += 1
            if len(args) != len(m.params):
                raise ParseError(
                    f"invalid macro invocation: expected {len(m.params)} parameters, got {len(args)}",
                    t, saw=False)
        body: list[Token] = []
        for b in m.body:
            pname = b.text[1:] if b.kind == OP and b.text.startswith("@") else None
            if pname in m.params:
                body.extend(args[m.params.index(pname)])
            else:
                body.append(Token(b.kind, b.text, b.file, b.line, b.col, b.value, t, b.junk_msg))
        toks[i:j] = body

    def _conditional(self, i: int, out: list[Token] | None) -> int:
        toks = self._toks
        start = toks[i]
        j = i + 1
        # Macros in the condition are expanded first (only where the branch counts).
        while j < len(toks) and not toks[j].is_op("%?", "%(", "%)", "%:"):
            if out is not None and self._is_macro(toks[j]):
                self._splice(j)
                continue
            j += 1
        # stap evaluates `l op r` before it looks for the '%?', so its errors come first.
        if out is not None:
            self._stap_order_check(toks, i)
        if j < len(toks) and not toks[j].is_op("%?"):
            raise ParseError("expected '%?' marker for conditional", toks[j])
        if j >= len(toks):
            raise ParseError("expected '%?' marker for conditional", start, saw=False)
        cond = self._eval(toks[i + 1:j], start) if out is not None else False
        k = self._block(j + 1, out if cond else None, ("%:", "%)"))
        if k >= len(toks):
            raise ParseError("incomplete conditional at end of file", start, saw=False)
        if toks[k].is_op("%:"):
            k = self._block(k + 1, None if cond or out is None else out, ("%)",))
            if k >= len(toks):
                raise ParseError("incomplete conditional at end of file", start, saw=False)
        return k + 1

    def _stap_order_check(self, toks: list[Token], i: int) -> None:
        """Report errors in the order stap meets them: it reads `l op r`, evaluates
        that, then wants `&&`, `||` or `%?`."""
        start = toks[i]
        j = i + 1
        if j + 1 < len(toks) and toks[j].kind == NUMBER and toks[j + 1].is_op("%?"):
            return  # utrace's single-number condition
        while True:
            if j + 2 >= len(toks):
                raise ParseError("incomplete condition after '%('", start, saw=False)
            self._eval_one(toks[j:j + 3], start)
            n = toks[j + 3] if j + 3 < len(toks) else None
            if n is not None and n.is_op("&&", "||"):
                j += 4
                continue
            if n is None or not n.is_op("%?"):
                raise ParseError("expected '%?' marker for conditional", start, saw=False)
            return

    def _eval(self, cond: list[Token], start: Token) -> bool:
        if not cond:
            raise ParseError("expected condition", start)
        # || of && of single comparisons, as stap's preprocessor evaluates them.
        for ors in _split(cond, "||"):
            if all(self._eval_one(ands, start) for ands in _split(ors, "&&")):
                return True
        return False

    def _eval_one(self, toks: list[Token], start: Token) -> bool:
        if len(toks) == 1 and toks[0].kind == NUMBER:
            return bool(toks[0].value)
        if len(toks) != 3 or toks[1].kind != OP or toks[1].text not in (
                "==", "!=", "<", "<=", ">", ">="):
            raise ParseError("expected comparison operator", toks[1] if len(toks) > 1 else
                             (toks[0] if toks else start))
        lhs, op, rhs = toks
        name = lhs.text if lhs.kind == IDENT else None
        if name in ("kernel_v", "kernel_vr", "systemtap_v") and rhs.kind != STRING:
            raise ParseError("expected string literal", rhs, saw=False)
        if name not in ("arch", "runtime", "systemtap_privilege", "guru_mode") and not (
                name or "").startswith("CONFIG_") and name not in (
                "kernel_v", "kernel_vr", "systemtap_v"):
            if lhs.kind == STRING and rhs.kind == NUMBER:
                raise ParseError("expected string literal as right value", rhs, saw=False)
            if lhs.kind == NUMBER and rhs.kind == STRING:
                raise ParseError("expected number literal as right value", rhs, saw=False)
            if not (lhs.kind == rhs.kind and lhs.kind in (STRING, NUMBER)):
                raise ParseError("expected 'arch', 'kernel_v', 'kernel_vr', 'systemtap_v',\n"
                                 "             'runtime', 'systemtap_privilege', 'CONFIG_...', or\n"
                                 "             comparison between strings or integers", lhs,
                                 saw=False)
        if rhs.kind not in (STRING, NUMBER):
            raise ParseError("expected string literal", rhs, saw=False)
        if name in ("kernel_v", "kernel_vr", "systemtap_v"):
            have = {"kernel_v": self.ctx.kernel_v, "kernel_vr": self.ctx.kernel_vr,
                    "systemtap_v": self.ctx.systemtap_v}[name]
            want = str(rhs.value)
            if op.text in ("==", "!=") and any(ch in want for ch in "*?["):
                r = fnmatch.fnmatchcase(have, want)
                return r if op.text == "==" else not r
            return _compare(_vercmp(have, want), op.text)
        if name in ("arch", "runtime", "systemtap_privilege") or (
                name is not None and name.startswith("CONFIG_")):
            if rhs.kind != STRING:
                raise ParseError("expected literal string", rhs)
            if name == "arch":
                have = self.ctx.arch
            elif name == "runtime":
                have = self.ctx.runtime
            elif name == "systemtap_privilege":
                have = self.ctx.privilege
            else:
                have = self.ctx.config(name)
            want = str(rhs.value)
            if name == "runtime" and self.ctx.runtime == "user" and want == "dyninst":
                have = "dyninst"  # scripts written for stapdyn's unprivileged runtime
            if op.text not in ("==", "!="):
                raise ParseError("expected '==' or '!='", op)
            r = fnmatch.fnmatchcase(have, want)
            return r if op.text == "==" else not r
        if name == "guru_mode":
            if rhs.kind != NUMBER:
                raise ParseError("expected literal number", rhs)
            return _compare((int(self.ctx.guru_mode) > rhs.value) - (int(self.ctx.guru_mode) < rhs.value), op.text)
        if lhs.kind == NUMBER and rhs.kind == NUMBER:
            return _compare((lhs.value > rhs.value) - (lhs.value < rhs.value), op.text)
        if lhs.kind == STRING and rhs.kind == STRING:
            a, b = str(lhs.value), str(rhs.value)
            return _compare((a > b) - (a < b), op.text)
        if lhs.kind == IDENT:
            raise ParseError("expected 'arch' or 'kernel_v' or 'kernel_vr' or 'CONFIG_...'\n"
                             "   or comparison between strings or integers", lhs)
        raise ParseError("expected comparison between strings or integers", lhs)


def _split(toks: list[Token], op: str) -> list[list[Token]]:
    parts: list[list[Token]] = [[]]
    for t in toks:
        if t.is_op(op):
            parts.append([])
        else:
            parts[-1].append(t)
    return parts


def _compare(c: int, op: str) -> bool:
    return {"==": c == 0, "!=": c != 0, "<": c < 0, "<=": c <= 0,
            ">": c > 0, ">=": c >= 0}[op]
