"""Pass 1c: recursive-descent parser for the whole SystemTap grammar."""
from __future__ import annotations

from ..diag import (EMBEDDED, IDENT, JUNK, KEYWORD, NUMBER, OP, STRING, EmptyScript,
                    ParseError, ParseErrors, SourceFile, Token)
from . import ast as A
from .lexer import Lexer
from .preprocess import PPContext, Preprocessor

PRINT_FUNCS = {"print", "println", "printf", "printd", "printdln",
               "sprint", "sprintln", "sprintf", "sprintd", "sprintdln"}
STAT_OPS = {"@count", "@sum", "@min", "@max", "@avg", "@variance"}
ASSIGN_OPS = {"=", "<<<", "+=", "-=", "*=", "/=", "%=", "<<=", ">>=", ">>>=",
              "&=", "^=", "|=", ".="}
MAX_NESTING = 200
NOT_YET = {"@perf", "@probewrite", "@kregister", "@uregister", "@kderef",
           "@uderef", "@const", "@enum"}


class Parser:
    def __init__(self, toks: list[Token], src: SourceFile, privileged: bool) -> None:
        self.toks = toks
        self.pos = 0
        self.src = src
        # Embedded C is allowed in tapsets and with -g.
        self.privileged = privileged
        self.depth = 0
        self.in_function = False

    def _nest(self, tok: Token | None) -> None:
        """Bound nesting so every later pass stays within Python's stack."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise ParseError(f"nesting too deep (more than {MAX_NESTING} levels)", tok, saw=False)

    # -- token access ------------------------------------------------------
    def peek(self, k: int = 0) -> Token | None:
        i = self.pos + k
        if i < len(self.toks):
            t = self.toks[i]
            if t.kind == JUNK and k == 0 and t.junk_msg:
                raise ParseError(t.junk_msg or "unknown junk token", t, saw=False)
            return t
        return None

    def next(self) -> Token:
        t = self.peek()
        if t is None:
            raise ParseError("unexpected end-of-file", None, eof_name=self.src.name)
        self.pos += 1
        return t

    def expect_op(self, op: str) -> Token:
        t = self.peek()
        if t is None or not t.is_op(op):
            self._fail(f"expected '{op}'")
        return self.next()

    def peek_op(self, *ops: str) -> bool:
        t = self.peek()
        return t is not None and t.is_op(*ops)

    def peek_kw(self, *kws: str) -> bool:
        t = self.peek()
        return t is not None and t.is_kw(*kws)

    def _fail(self, msg: str, tok: Token | None = None, saw: bool = True):
        t = tok if tok is not None else self.peek()
        raise ParseError(msg, t, saw=saw, eof_name=self.src.name)

    # -- file level --------------------------------------------------------
    def parse_file(self) -> A.StapFile:
        f = A.StapFile(tok=Token(OP, "", self.src, 1, 1), name=self.src.name,
                       tapset=self.src.tapset)
        errors: list[ParseError] = []
        while self.pos < len(self.toks):
            start = self.pos
            try:
                self._top_level(f)
            except ParseError as e:
                errors.append(e)
                self._recover(start)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise ParseErrors(errors)
        return f

    def _recover(self, start: int) -> None:
        """Skip to the next token a top-level item can start with, as stap does."""
        if self.pos == start:
            self.pos += 1
        while self.pos < len(self.toks):
            t = self.toks[self.pos]
            if t.is_kw("probe", "private", "global", "function") or t.kind == EMBEDDED:
                return
            self.pos += 1

    def _top_level(self, f: A.StapFile) -> None:
        t = self.peek()
        if t.is_kw("probe"):
            self.parse_probe(f)
        elif t.is_kw("global"):
            self.next()
            self.parse_global(f, private=False)
        elif t.is_kw("function"):
            self.parse_function(f, private=False)
        elif t.is_kw("private"):
            self.next()
            if self.peek_kw("global"):
                self.next()
                self.parse_global(f, private=True)
            elif self.peek_kw("function"):
                self.parse_function(f, private=True)
            else:
                self._fail("expected 'function' or 'global' after 'private'")
        elif t.kind == EMBEDDED:
            self.next()
            self._check_embedded(t)
            f.embeds.append(A.EmbeddedCode(tok=t, code=t.text))
        elif t.is_op(";"):
            self.next()
        else:
            self._fail("expected 'probe', 'global', 'private', 'function', or '%{'")

    def _check_embedded(self, t: Token) -> None:
        if not self.privileged:
            raise ParseError("embedded code in unprivileged script; need stap -g", t)

    def parse_global(self, f: A.StapFile, private: bool) -> None:
        while True:
            t = self.next()
            if t.kind != IDENT:
                self._fail("expected identifier", t)
            for g in f.globals:
                if g.name == t.text:
                    self._fail("duplicate global name", t)
            d = A.VarDecl(tok=t, name=t.text, is_global=True, tapset=f.tapset, private=private)
            f.globals.append(d)
            if self.peek_op("%"):
                self.next()
                d.wrap = True
            if self.peek_op("["):
                self.next()
                n = self.next()
                if n.kind != NUMBER or n.value is None:
                    self._fail("expected number", n)
                if n.value <= 0 or n.value > 0x7FFFFFFF:
                    self._fail("array size out of range", n)
                d.maxsize = n.value
                self.expect_op("]")
            if self.peek_op("="):
                eq = self.next()
                if d.maxsize or d.wrap:
                    self._fail("only scalar globals can be initialized", eq)
                d.arity = 0
                d.init = self.parse_literal()
                d.type = d.init.type
                d.type_tok = d.init.tok
            if self.peek_op(";"):
                self.next()
                return
            if self.peek_op(","):
                self.next()
                continue
            return

    def parse_function(self, f: A.StapFile, private: bool) -> None:
        self.in_function = True
        try:
            self._parse_function(f, private)
        finally:
            self.in_function = False

    def _parse_function(self, f: A.StapFile, private: bool) -> None:
        self.next()  # 'function'
        t = self.next()
        if t.kind != IDENT:
            self._fail("expected identifier", t)
        fd = A.FunctionDecl(tok=t, name=t.text, tapset=f.tapset, private=private)
        if self.peek_op(":"):
            self.next()
            fd.type = self._type_name()
            fd.type_tok = t
        self.expect_op("(")
        if not self.peek_op(")"):
            while True:
                p = self.next()
                if p.kind != IDENT:
                    self._fail("expected identifier", p)
                if any(q.name == p.text for q in fd.params):
                    self._fail("duplicate parameter names", p)
                v = A.VarDecl(tok=p, name=p.text, arity=0)
                if self.peek_op(":"):
                    self.next()
                    v.type = self._type_name()
                    v.type_tok = p
                fd.params.append(v)
                if self.peek_op(","):
                    self.next()
                    continue
                break
        self.expect_op(")")
        if self.peek_op(":"):
            self.next()
            fd.type = self._type_name()
            fd.type_tok = t
        t2 = self.peek()
        if t2 is not None and t2.kind == EMBEDDED:
            self.next()
            self._check_embedded(t2)
            fd.body = A.EmbeddedCode(tok=t2, code=t2.text)
            fd.pure = "/* pure */" in t2.text
        else:
            fd.body = self.parse_block()
        f.functions.append(fd)

    def _type_name(self) -> str:
        t = self.next()
        if t.is_kw("long"):
            return A.LONG
        if t.is_kw("string"):
            return A.STRING
        self._fail("expected 'long' or 'string'", t)

    # -- probes ------------------------------------------------------------
    def parse_probe(self, f: A.StapFile) -> None:
        t0 = self.next()
        aliases: list[A.ProbePoint] = []
        epilogue = False
        while True:
            pps = self.parse_probe_points()
            t = self.peek()
            if len(pps) == 1 and t is not None and t.is_op("=", "+="):
                if pps[0].optional or pps[0].sufficient:
                    self._fail("probe point alias name cannot be optional nor sufficient",
                               pps[0].components[0].tok, saw=False)
                aliases.append(pps[0])
                epilogue = epilogue or t.text == "+="
                self.next()
                continue
            if t is not None and t.is_op("{"):
                locations = pps
                break
            self._fail("expected probe point specifier")
        body = self.parse_block()
        if aliases:
            f.aliases.append(A.ProbeAlias(tok=t0, locations=locations, body=body,
                                          tapset=f.tapset, alias_names=aliases,
                                          epilogue=epilogue))
        else:
            f.probes.append(A.Probe(tok=t0, locations=locations, body=body, tapset=f.tapset))

    def parse_probe_points(self) -> list[A.ProbePoint]:
        pps: list[A.ProbePoint] = []
        while True:
            pps.extend(self.parse_components())
            t = self.peek()
            if t is not None and t.is_op(","):
                self.next()
                continue
            if t is not None and t.is_op("{", "=", "+=", "}"):
                return pps
            self._fail("expected one of ', { } = +='")

    def parse_components(self) -> list[A.ProbePoint]:
        pps: list[A.ProbePoint] = []
        while True:
            suffix = self.parse_component()
            if not pps:
                pps = suffix
            else:
                product = []
                for p in pps:
                    if p.optional or p.sufficient or p.condition is not None:
                        self._fail("'?', '!' or condition must only be specified in suffix",
                                   p.components[0].tok)
                    for s in suffix:
                        product.append(A.ProbePoint(
                            tok=p.tok, components=p.components + s.components,
                            optional=s.optional, sufficient=s.sufficient,
                            condition=s.condition))
                pps = product
            t = self.peek()
            if t is not None and t.is_op("."):
                self.next()
                continue
            if t is not None and t.is_op("?", "!"):
                for p in pps:
                    if p.optional:
                        self._fail("'?' or '!' respecified")
                    p.optional = True
                    p.sufficient = t.text == "!"
                self.next()
                t = self.peek()
            if t is not None and t.is_kw("if"):
                self.next()
                self.expect_op("(")
                e = self.parse_expression()
                for p in pps:
                    if p.condition is not None:
                        self._fail("condition respecified")
                    p.condition = e
                self.expect_op(")")
            return pps

    def parse_component(self) -> list[A.ProbePoint]:
        t = self.next()
        if not (t.kind in (IDENT, KEYWORD) or t.is_op("*", "{")):
            self._fail("expected identifier or '*' or '{'", t)
        if t.is_op("{"):
            pps = self.parse_probe_points()
            if not self.peek_op("}"):
                self._fail("expected '}'")
            self.next()
            return pps
        text = t.text
        while True:
            u = self.peek()
            if u is None or u.space_before or not (
                    u.kind in (IDENT, KEYWORD) or u.is_op("*")):
                break
            text += u.text
            self.next()
        c = A.Component(tok=t.derived(t.kind, text), functor=text)
        if self.peek_op("("):
            self.next()
            c.arg = self.parse_literal()
            self.expect_op(")")
        return [A.ProbePoint(tok=t, components=[c])]

    # -- literals ----------------------------------------------------------
    def parse_literal(self) -> A.Literal:
        t = self.next()
        if t.kind == STRING:
            val = str(t.value)
            while self.peek() is not None and self.peek().kind == STRING:
                val += str(self.next().value)
            lit = A.Literal(tok=t, value=val)
            lit.type = A.STRING
            return lit
        neg = False
        first = t
        if t.is_op("-"):
            neg = True
            t = self.next()
        if t.kind == NUMBER:
            v = self._number_value(t, neg)
            lit = A.Literal(tok=first, value=v)
            lit.type = A.LONG
            return lit
        self._fail("expected literal string or number", t)

    def _number_value(self, t: Token, neg: bool) -> int:
        from .lexer import parse_number
        v = parse_number(t.text)
        if v is None:
            self._fail("number invalid or out of range", t)
        if neg:
            v = -v
            if v < -(1 << 63):
                v += 1 << 64
            elif v >= 1 << 63:
                v -= 1 << 64
        return v

    # -- statements --------------------------------------------------------
    def parse_block(self) -> A.Block:
        t = self.expect_op("{")
        self._nest(t)
        b = A.Block(tok=t)
        while True:
            if self.peek_op("}"):
                self.next()
                self.depth -= 1
                return b
            b.statements.append(self.parse_statement())

    def parse_statement(self) -> A.Statement:
        t = self.peek()
        if t is None:
            self._fail("expected statement")
        if t.is_op(";"):
            self.next()
            return A.NullStatement(tok=t)
        if t.is_op("{"):
            return self.parse_block()
        if t.kind == EMBEDDED and not self.privileged:
            # stap parses it as an expression statement
            self._fail("embedded expression code in unprivileged script; need stap -g", t)
        if t.kind == EMBEDDED:
            self.next()
            self._check_embedded(t)
            return A.EmbeddedCode(tok=t, code=t.text)
        if t.kind == KEYWORD:
            kw = t.text
            if kw == "if":
                return self.parse_if()
            if kw == "for":
                return self.parse_for()
            if kw == "foreach":
                return self.parse_foreach()
            if kw == "while":
                self.next()
                self.expect_op("(")
                cond = self.parse_expression()
                self.expect_op(")")
                return A.WhileLoop(tok=t, cond=cond, block=self.parse_statement())
            if kw == "try":
                return self.parse_try()
            if kw in ("return", "delete", "break", "continue", "next"):
                self.next()
                if kw == "return" and not self.in_function:
                    self._fail("found 'return' not in function context", t)
                if kw == "return":
                    val = None
                    if not self.peek_op(";", "}"):
                        val = self.parse_expression()
                    s: A.Statement = A.ReturnStatement(tok=t, value=val)
                elif kw == "delete":
                    s = A.DeleteStatement(tok=t, value=self.parse_expression())
                elif kw == "break":
                    s = A.BreakStatement(tok=t)
                elif kw == "continue":
                    s = A.ContinueStatement(tok=t)
                else:
                    s = A.NextStatement(tok=t)
                if self.peek_op(";"):
                    self.next()
                return s
        if t.kind not in (OP, IDENT, NUMBER, STRING, EMBEDDED):
            self._fail("expected statement")
        e = self.parse_expression()
        if self.peek_op(";"):
            self.next()
        return A.ExprStatement(tok=e.tok, value=e)

    def parse_if(self) -> A.IfStatement:
        t = self.next()
        self.expect_op("(")
        cond = self.parse_expression()
        self.expect_op(")")
        then = self.parse_statement()
        els = None
        if self.peek_kw("else"):
            self.next()
            els = self.parse_statement()
        return A.IfStatement(tok=t, cond=cond, thenblock=then, elseblock=els)

    def parse_for(self) -> A.ForLoop:
        t = self.next()
        self.expect_op("(")
        init = None if self.peek_op(";") else self.parse_expression()
        self.expect_op(";")
        cond = None if self.peek_op(";") else self.parse_expression()
        self.expect_op(";")
        incr = None if self.peek_op(")") else self.parse_expression()
        self.expect_op(")")
        return A.ForLoop(tok=t, init=init, cond=cond, incr=incr, block=self.parse_statement())

    def parse_try(self) -> A.TryBlock:
        t = self.next()
        tb = self.parse_block()
        if not self.peek_kw("catch"):
            self._fail("expected 'catch'")
        self.next()
        var = None
        if self.peek_op("("):
            self.next()
            v = self.next()
            if v.kind != IDENT:
                self._fail("expected identifier", v)
            var = A.Symbol(tok=v, name=v.text)
            self.expect_op(")")
        cb = self.parse_block()
        return A.TryBlock(tok=t, try_block=tb, catch_var=var, catch_block=cb)

    def parse_foreach(self) -> A.ForeachLoop:
        t = self.next()
        s = A.ForeachLoop(tok=t)
        self.expect_op("(")
        look = None
        look_sort = 0
        if self.peek() is not None and self.peek().kind == IDENT:
            lt = self.next()
            look = A.Symbol(tok=lt, name=lt.text)
            if self.peek_op("+", "-"):
                look_sort = 1 if self.next().text == "+" else -1
            if self.peek_op("="):
                self.next()
                s.value = look
                if look_sort:
                    s.sort_direction, s.sort_column = look_sort, 0
                look = None
        bracketed = False
        if look is None and self.peek_op("["):
            self.next()
            bracketed = True
        if look is not None:
            s.indexes.append(look)
            if look_sort:
                s.sort_direction, s.sort_column = look_sort, 1
        else:
            while True:
                it = self.next()
                if it.kind != IDENT:
                    self._fail("expected identifier", it)
                s.indexes.append(A.Symbol(tok=it, name=it.text))
                if self.peek_op("+", "-"):
                    st = self.next()
                    if s.sort_direction:
                        self._fail("multiple sort directives", st)
                    s.sort_direction = 1 if st.text == "+" else -1
                    s.sort_column = len(s.indexes)
                if not bracketed:
                    break
                if self.peek_op(","):
                    self.next()
                    continue
                if self.peek_op("]"):
                    self.next()
                    break
                self._fail("expected ',' or ']'")
        if not self.peek_kw("in"):
            self._fail("expected 'in'")
        self.next()
        s.base = self.parse_indexable()
        if self.peek_op("["):
            self.next()
            s.array_slice = self._index_list("expected ',' or ']'")
        t2 = self.peek()
        if t2 is not None and t2.kind == OP and t2.text.startswith("@"):
            if t2.text not in STAT_OPS:
                self._fail("expected statistical operation")
            s.sort_aggr = t2.text
            self.next()
            if not self.peek_op("+", "-"):
                self._fail("expected sort directive")
        if self.peek_op("+", "-"):
            st = self.next()
            if s.sort_direction:
                self._fail("multiple sort directives", st)
            s.sort_direction = 1 if st.text == "+" else -1
            s.sort_column = 0
        if self.peek_kw("limit"):
            self.next()
            s.limit = self.parse_expression()
        self.expect_op(")")
        s.block = self.parse_statement()
        return s

    def _index_list(self, error: str) -> list:
        """Keys after a '[': expressions or '*' wildcards (None), up to the ']'."""
        keys: list = []
        while True:
            if self.peek_op("*"):
                self.next()
                keys.append(None)
            else:
                keys.append(self.parse_expression())
            if self.peek_op(","):
                self.next()
                continue
            if self.peek_op("]"):
                self.next()
                return keys
            self._fail(error)

    def parse_indexable(self):
        t = self.peek()
        if t is not None and t.is_op("@hist_log", "@hist_linear"):
            return self.parse_hist_op()
        t = self.next()
        if t.kind != IDENT:
            self._fail("expected identifier", t)
        return A.Symbol(tok=t, name=t.text)

    def parse_hist_op(self) -> A.HistOp:
        t = self.next()
        h = A.HistOp(tok=t, htype="log" if t.text == "@hist_log" else "linear")
        self.expect_op("(")
        h.stat = self.parse_expression()
        if h.htype == "linear":
            for _ in range(3):
                self.expect_op(",")
                n = self.parse_literal()
                if n.type != A.LONG:
                    self._fail("expected literal number", n.tok)
                h.params.append(n.value)
        self.expect_op(")")
        return h

    # -- expressions -------------------------------------------------------
    def parse_expression(self) -> A.Expression:
        self._nest(self.peek())
        e = self.parse_assignment()
        self.depth -= 1
        return e

    def parse_assignment(self) -> A.Expression:
        op1 = self.parse_ternary()
        t = self.peek()
        if t is not None and t.kind == OP and t.text in ASSIGN_OPS:
            self.next()
            op2 = self.parse_expression()
            return A.Assignment(tok=t, op=t.text, left=op1, right=op2)
        return op1

    def parse_ternary(self) -> A.Expression:
        op1 = self.parse_logical_or()
        t = self.peek()
        if t is not None and t.is_op("?"):
            self.next()
            e1 = self.parse_expression()
            self.expect_op(":")
            e2 = self.parse_expression()
            return A.Ternary(tok=t, cond=op1, truevalue=e1, falsevalue=e2)
        return op1

    def _left_assoc(self, sub, ops: tuple[str, ...], make):
        op1 = sub()
        while True:
            t = self.peek()
            if t is None or not t.is_op(*ops):
                return op1
            self.next()
            op1 = make(t, op1, sub())

    def parse_logical_or(self) -> A.Expression:
        return self._left_assoc(self.parse_logical_and, ("||",),
                                lambda t, l, r: A.Logical(tok=t, op="||", left=l, right=r))

    def parse_logical_and(self) -> A.Expression:
        return self._left_assoc(self.parse_boolean_or, ("&&",),
                                lambda t, l, r: A.Logical(tok=t, op="&&", left=l, right=r))

    def _binary(self, t: Token, l: A.Expression, r: A.Expression) -> A.Expression:
        return A.Binary(tok=t, op=t.text, left=l, right=r)

    def parse_boolean_or(self) -> A.Expression:
        return self._left_assoc(self.parse_boolean_xor, ("|",), self._binary)

    def parse_boolean_xor(self) -> A.Expression:
        return self._left_assoc(self.parse_boolean_and, ("^",), self._binary)

    def parse_boolean_and(self) -> A.Expression:
        return self._left_assoc(self.parse_array_in, ("&",), self._binary)

    def parse_array_in(self) -> A.Expression:
        indexes: list = []
        bracketed = False
        if self.peek_op("["):
            self.next()
            bracketed = True
        while True:
            if bracketed and self.peek_op("*"):
                self.next()
                indexes.append(None)
            else:
                indexes.append(self.parse_comparison())
            if not bracketed:
                break
            if self.peek_op(","):
                self.next()
                continue
            if self.peek_op("]"):
                self.next()
                break
            self._fail("expected ',' or ']'")
        t = self.peek()
        if t is not None and t.is_kw("in"):
            self.next()
            base = self.parse_indexable()
            ai = A.ArrayIndex(tok=base.tok, base=base, indexes=indexes)
            return A.ArrayIn(tok=t, operand=ai)
        if len(indexes) == 1 and indexes[0] is not None:
            return indexes[0]
        self._fail("unexpected comma-separated expression list")

    def parse_comparison(self) -> A.Expression:
        op1 = self.parse_shift()
        while True:
            t = self.peek()
            if t is None:
                return op1
            if t.is_op("=~", "!~"):
                self.next()
                r = self.peek()
                if r is None or r.kind != STRING:
                    self._fail("expected literal string")
                rx = self.parse_literal()
                op1 = A.RegexMatch(tok=t, op=t.text, left=op1, regex=rx.value)
            elif t.is_op("<", ">", "<=", ">=", "==", "!="):
                self.next()
                op1 = A.Comparison(tok=t, op=t.text, left=op1, right=self.parse_shift())
            else:
                return op1

    def parse_shift(self) -> A.Expression:
        return self._left_assoc(self.parse_concatenation, ("<<", ">>", ">>>"), self._binary)

    def parse_concatenation(self) -> A.Expression:
        return self._left_assoc(self.parse_additive, (".",),
                                lambda t, l, r: A.Concatenation(tok=t, left=l, right=r))

    def parse_additive(self) -> A.Expression:
        return self._left_assoc(self.parse_multiplicative, ("+", "-"), self._binary)

    def parse_multiplicative(self) -> A.Expression:
        return self._left_assoc(self.parse_unary, ("*", "/", "%"), self._binary)

    def parse_unary(self) -> A.Expression:
        t = self.peek()
        if t is not None and t.is_op("+", "-", "!", "~"):
            self.next()
            nt = self.peek()
            if t.text == "-" and nt is not None and nt.kind == NUMBER:
                # Fold so that -9223372036854775808 is representable.
                self.next()
                lit = A.Literal(tok=t, value=self._number_value(nt, True))
                lit.type = A.LONG
                return self._postfix_crement(lit)
            self._nest(t)
            e = A.Unary(tok=t, op=t.text, operand=self.parse_unary())
            self.depth -= 1
            return e
        return self.parse_crement()

    def parse_crement(self) -> A.Expression:
        t = self.peek()
        if t is not None and t.is_op("++", "--"):
            self.next()
            return A.PreCrement(tok=t, op=t.text, operand=self.parse_dwarf_value())
        return self._postfix_crement(self.parse_dwarf_value())

    def _postfix_crement(self, op1: A.Expression) -> A.Expression:
        t = self.peek()
        if t is not None and t.is_op("++", "--"):
            self.next()
            return A.PostCrement(tok=t, op=t.text, operand=op1)
        return op1

    def parse_dwarf_value(self) -> A.Expression:
        addr = None
        if self.peek_op("&"):
            addr = self.next()
        t = self.peek()
        if t is not None and t.kind == IDENT and t.text.startswith("$"):
            e = self.parse_target_symbol()
        elif t is not None and t.is_op("@cast"):
            e = self.parse_cast()
        elif t is not None and t.is_op("@var"):
            e = self.parse_atvar()
        elif addr is not None:
            self._fail("expected @cast, @var or $var")
        else:
            return self.parse_value()
        e.addressof = addr is not None
        self.parse_target_components(e)
        return e

    def parse_target_symbol(self) -> A.TargetSymbol:
        t = self.next()
        # `$var$` and `$var$$` lex as one identifier; the trailing `$`s ask for pretty printing.
        lead = len(t.text) - len(t.text.lstrip("$"))
        core = t.text[lead:]
        stem = core.rstrip("$")
        return A.TargetSymbol(tok=t, name=t.text[:lead] + stem, pretty=len(core) - len(stem))

    def parse_cast(self) -> A.TargetSymbol:
        t = self.next()
        self.expect_op("(")
        operand = self.parse_expression()
        self.expect_op(",")
        ty = self.parse_literal()
        mod = None
        if self.peek_op(","):
            self.next()
            mod = self.parse_literal().value
        self.expect_op(")")
        return A.TargetSymbol(tok=t, name="@cast", kind="cast", cast_operand=operand,
                              cast_type=str(ty.value), cast_module=mod)

    def parse_atvar(self) -> A.TargetSymbol:
        t = self.next()
        self.expect_op("(")
        name = self.parse_literal()
        mod = None
        if self.peek_op(","):
            self.next()
            mod = self.parse_literal().value
        self.expect_op(")")
        return A.TargetSymbol(tok=t, name=str(name.value), kind="atvar", cast_module=mod)

    def parse_target_components(self, e: A.TargetSymbol) -> None:
        while True:
            t = self.peek()
            if t is None:
                return
            if t.is_op("->"):
                self.next()
                n = self.next()
                if n.kind != IDENT:
                    self._fail("expected identifier", n)
                stem = n.text.rstrip("$")
                e.components.append(("->", stem, n))
                if stem != n.text:
                    e.pretty = len(n.text) - len(stem)
                    return
            elif t.is_op("["):
                self.next()
                idx = self.parse_expression()
                self.expect_op("]")
                e.components.append(("[", idx, t))
            elif t.kind == IDENT and t.text in ("$", "$$") and not t.space_before:
                self.next()
                e.pretty = len(t.text)
                return
            else:
                return

    def parse_value(self) -> A.Expression:
        t = self.peek()
        if t is None:
            self._fail("expected value")
        if t.kind == EMBEDDED:
            self.next()
            if not self.privileged:
                raise ParseError("embedded expression code in unprivileged script; need stap -g", t)
            return A.EmbeddedExpr(tok=t, code=t.text)
        if t.is_op("("):
            self.next()
            e = self.parse_expression()
            self.expect_op(")")
            return e
        if t.kind == IDENT or (t.kind == OP and t.text.startswith("@")):
            return self.parse_symbol()
        return self.parse_literal()

    def parse_symbol(self) -> A.Expression:
        t = self.peek()
        name = t.text
        if name in NOT_YET:
            self._fail(f"not supported yet: {name}", t, saw=False)
        if name in STAT_OPS:
            self.next()
            self.expect_op("(")
            e = A.StatOp(tok=t, ctype=name, stat=self.parse_expression())
            if name == "@variance" and self.peek_op(","):
                self.next()
                n = self.parse_literal()
                if n.type != A.LONG:
                    self._fail("expected literal number", n.tok)
                e.params.append(n.value)
            self.expect_op(")")
            return e
        if name in ("@hist_log", "@hist_linear"):
            h = self.parse_hist_op()
            if self.peek_op("["):
                self.next()
                idx = self.parse_expression()
                self.expect_op("]")
                return A.ArrayIndex(tok=h.tok, base=h, indexes=[idx])
            return h
        if name in ("@defined", "@entry"):
            self.next()
            self.expect_op("(")
            op = self.parse_expression()
            self.expect_op(")")
            return (A.DefinedOp if name == "@defined" else A.EntryOp)(tok=t, operand=op)
        if name.startswith("@"):
            self._fail("unknown operator " + name if name not in ("@define",)
                       else "unexpected @define", t, saw=False)
        self.next()
        if name in PRINT_FUNCS and self.peek_op("("):
            return self.parse_print(t)
        if self.peek_op("("):
            self.next()
            fc = A.FunctionCall(tok=t, name=name)
            if not self.peek_op(")"):
                while True:
                    fc.args.append(self.parse_expression())
                    if self.peek_op(","):
                        self.next()
                        continue
                    if not self.peek_op(")"):
                        self._fail("expected one of ') ,'")
                    break
            self.expect_op(")")
            return fc
        sym = A.Symbol(tok=t, name=name)
        if self.peek_op("["):
            self.next()
            return A.ArrayIndex(tok=t, base=sym, indexes=self._index_list("expected one of '] ,'"))
        return sym

    def parse_print(self, t: Token) -> A.PrintFormat:
        pf = A.PrintFormat(tok=t, name=t.text)
        self.expect_op("(")
        base = t.text[1:] if t.text.startswith("sprint") else t.text
        if base == "printf":
            ft = self.peek()
            if ft is None or ft.kind != STRING:
                self._fail("expected format string")
            pf.format = self.parse_literal().value
            from ..elaborate.formats import parse_format
            comps = parse_format(pf.format)
            if isinstance(comps, str):
                # stap checks the format while parsing and points at the last token read.
                raise ParseError(comps, self.toks[self.pos - 1], saw=True)
        elif base in ("printd", "printdln"):
            ft = self.peek()
            if ft is None or ft.kind != STRING:
                self._fail("expected delimiter string")
            pf.delimiter = self.parse_literal().value
        elif base == "print" and self.peek_op("@hist_log", "@hist_linear"):
            save = self.pos
            h = self.parse_hist_op()
            if self.peek_op(")"):
                self.next()
                pf.hist = h
                return pf
            self.pos = save
        # As stap: print/sprint need one argument, printd/printdln two
        # (the delimiter counting as consumed); separators are ", )".
        consumed = base not in ("print", "println")
        min_args = {"print": 1, "printd": 2, "printdln": 2}.get(base, 0)
        while min_args or not self.peek_op(")"):
            if consumed:
                if not self.peek_op(",", ")"):
                    self._fail("expected one of ', )'")
                self.next()
            pf.args.append(self.parse_expression())
            consumed = True
            if min_args:
                min_args -= 1
        self.expect_op(")")
        return pf


def parse_text(text: str, name: str, args: list[str] | None = None,
               pp: PPContext | None = None, tapset: bool = False,
               privileged: bool = False, used_args: set[int] | None = None,
               macros: dict | None = None) -> A.StapFile:
    """Lex, preprocess and parse one file."""
    import sys
    if sys.getrecursionlimit() < 20000:
        # Python 3.11 calls between Python functions use no C stack: deep is safe.
        sys.setrecursionlimit(20000)
    src = SourceFile(name, text, tapset=tapset)
    raw = Lexer(src, args, used_args).tokens()
    pre = Preprocessor(pp or PPContext(), macros)
    toks = pre.run(raw)
    if not toks and not tapset:
        raise EmptyScript(f"Input file '{name}' is empty after preprocessing." if raw
                          else f"Input file '{name}' is empty.")
    return Parser(toks, src, privileged or tapset).parse_file()
