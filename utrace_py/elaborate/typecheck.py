"""Pass 2c: infer long/string/stats for every variable, key, value, parameter and return."""
from __future__ import annotations

from ..diag import SemanticError, Token
from ..lang import ast as A
from . import formats

LONG, STRING, STATS = A.LONG, A.STRING, A.STATS
ARITH_ASSIGN = {"+=", "-=", "*=", "/=", "%=", "<<=", ">>=", ">>>=", "&=", "^=", "|="}


def _inferred_here(decl_type: str, tok: Token | None, what: str = "type") -> SemanticError | None:
    if tok is None:
        return None
    return SemanticError(f"{what} was first inferred here ({decl_type})", tok)


class TypeChecker:
    def __init__(self, probes: list, functions: list[A.FunctionDecl]) -> None:
        self.probes = probes
        self.functions = functions
        self.changed = False
        self._deleting = False  # a delete statement's keys may be '*'
        self.fn: A.FunctionDecl | None = None

    def run(self) -> None:
        for _ in range(50):
            self.changed = False
            self._pass()
            if not self.changed:
                break
        self._pass()
        self._check_decls()

    def _pass(self) -> None:
        for p in self.probes:
            self.fn = None
            self.stmt(p.body)
        for f in self.functions:
            self.fn = f
            if isinstance(f.body, A.Block):
                self.stmt(f.body)

    def _check_decls(self) -> None:
        for p in self.probes:
            for v in p.locals:
                self._check_local(v)
        for f in self.functions:
            for v in f.locals:
                self._check_local(v)
            for v in f.params:
                if v.type is None:
                    raise SemanticError("unresolved type", v.tok)

    def _check_local(self, v: A.VarDecl) -> None:
        if v.arity > 0:
            raise SemanticError("array locals not supported, missing global declaration? ", v.tok)
        if v.type == STATS:
            raise SemanticError("stat locals not supported, missing global declaration? ", v.tok)
        if v.type is None:
            raise SemanticError("unresolved type", v.tok)

    # -- declarations -------------------------------------------------------
    def _set(self, decl, t: str | None, tok: Token, attr: str = "type",
             tok_attr: str = "type_tok", index: int = -1) -> str | None:
        cur = getattr(decl, attr)
        if t is None:
            return cur
        if cur is None:
            setattr(decl, attr, t)
            setattr(decl, tok_attr, tok)
            self.changed = True
            return t
        if cur != t:
            pre = f"index {index} " if index >= 0 else ""
            what = f"type of index {index}" if index >= 0 else "type"
            raise SemanticError(f"{pre}type mismatch ({t})", tok,
                                chain=_inferred_here(cur, getattr(decl, tok_attr), what))
        return cur

    def _arity(self, decl: A.VarDecl, n: int, tok: Token) -> None:
        if decl.arity == -1:
            decl.arity = n
            if n > 0 and not decl.index_types:
                decl.index_types = [None] * n
                decl.index_toks = [None] * n
            self.changed = True
        elif decl.arity != n:
            raise SemanticError(f"inconsistent arity ({n} vs {decl.arity})", tok,
                                chain=SemanticError("arity was first inferred here", decl.tok)
                                if decl.tok is not tok else None)
        if n > 0 and len(decl.index_types) != n:
            decl.index_types = [None] * n
        if n > 0 and len(getattr(decl, "index_toks", []) or []) != n:
            decl.index_toks = [None] * n

    def _index_type(self, decl: A.VarDecl, i: int, t: str | None, tok: Token) -> str | None:
        cur = decl.index_types[i]
        if t is None:
            return cur
        if cur is None:
            decl.index_types[i] = t
            decl.index_toks[i] = tok
            self.changed = True
            return t
        if cur != t:
            raise SemanticError(f"index {i} type mismatch ({t})", tok,
                                chain=_inferred_here(cur, decl.index_toks[i], f"type of index {i}"))
        return cur

    # -- expressions --------------------------------------------------------
    def expect(self, e: A.Expression, want: str | None) -> str | None:
        t = self.expr(e, want)
        if want is not None and t is not None and t != want:
            raise SemanticError(f"type mismatch: expected {want} but found {t}", e.tok)
        e.type = t
        return t

    def expr(self, e: A.Expression, want: str | None) -> str | None:  # noqa: C901
        if isinstance(e, A.Literal):
            return e.type
        if isinstance(e, A.Symbol):
            d = e.referent
            self._arity(d, 0, e.tok)
            if want == STATS and not d.is_global:
                raise SemanticError("stat locals not supported, missing global declaration? ", e.tok)
            t = self._set(d, want, e.tok)
            if t == STATS and want != STATS:
                raise SemanticError("invalid use of statistics variable; use a @count/@sum/... "
                                    "extractor", e.tok)
            return t
        if isinstance(e, A.ArrayIndex):
            return self._array_index(e, want)
        if isinstance(e, A.Assignment):
            return self._assignment(e, want)
        if isinstance(e, A.Binary):
            self.expect(e.left, LONG)
            self.expect(e.right, LONG)
            return LONG
        if isinstance(e, A.Unary):
            self.expect(e.operand, LONG)
            return LONG
        if isinstance(e, A.Logical):
            self.expect(e.left, LONG)
            self.expect(e.right, LONG)
            return LONG
        if isinstance(e, A.Concatenation):
            self.expect(e.left, STRING)
            self.expect(e.right, STRING)
            return STRING
        if isinstance(e, A.Comparison):
            if isinstance(e.right, A.Literal) and isinstance(e.left, A.Symbol):
                # stap visits the left operand expecting the right one's known
                # type, so a mismatch is reported against the variable.
                self.expr(e.left, e.right.type)
            lt = self.expect(e.left, None)
            rt = self.expect(e.right, lt)
            if lt is None and rt is not None:
                lt = self.expect(e.left, rt)
            if lt is not None and rt is not None and lt != rt:
                raise SemanticError(f"type mismatch: left and right sides don't agree ({lt} vs {rt})", e.tok)
            if lt == STATS:
                raise SemanticError("invalid operator", e.tok)
            return LONG
        if isinstance(e, A.RegexMatch):
            self.expect(e.left, STRING)
            return LONG
        if isinstance(e, A.Ternary):
            self.expect(e.cond, LONG)
            t1 = self.expect(e.truevalue, want)
            t2 = self.expect(e.falsevalue, want or t1)
            if t1 is None and t2 is not None:
                t1 = self.expect(e.truevalue, t2)
            if t1 is not None and t2 is not None and t1 != t2:
                raise SemanticError(f"type mismatch: left and right sides don't agree ({t1} vs {t2})", e.tok)
            return t1 or t2
        if isinstance(e, (A.PreCrement, A.PostCrement)):
            self._lvalue(e.operand, e.tok)
            self.expect(e.operand, LONG)
            return LONG
        if isinstance(e, A.ArrayIn):
            self._array_index(e.operand, None, membership=True)
            return LONG
        if isinstance(e, A.FunctionCall):
            return self._call(e, want)
        if isinstance(e, A.PrintFormat):
            return self._print(e, want)
        if isinstance(e, A.StatOp):
            self._stat_operand(e.stat, e.tok)
            if e.ctype == "@variance" and e.params:
                self._record(e.stat, "bit_shift", e.params[0], e.tok)
            if e.ctype == "@variance":
                self._record(e.stat, "wants_variance", True, e.tok)
            return LONG
        if isinstance(e, A.HistOp):
            self._stat_operand(e.stat, e.tok)
            self._record(e.stat, "hist", (e.htype, tuple(e.params)), e.tok)
            if e.htype == "linear":
                start, stop, interval = e.params
                if interval <= 0:
                    raise SemanticError("histogram: interval cannot be zero or negative", e.tok)
                buckets = (stop - start) // interval + 3 if stop > start else 0
                if stop <= start or buckets > 128:
                    raise SemanticError("histogram: Number of buckets must be between 1 and 126; "
                                        "adjust start, stop and interval", e.tok)
            if want is not None:
                raise SemanticError("invalid use of histogram; print it or index it", e.tok)
            return None
        if isinstance(e, A.DefinedOp):
            return LONG
        if isinstance(e, A.TargetSymbol) and e.referent == "return":
            return LONG
        if isinstance(e, A.TargetSymbol) and isinstance(e.referent, tuple):
            return LONG if e.referent[0] == "sdtarg" else STRING
        if isinstance(e, A.EmbeddedExpr):
            return STRING if "/* string */" in e.code else LONG
        raise SemanticError("not supported yet: this expression here", e.tok)

    def _record(self, stat: A.Expression, attr: str, value, tok: Token) -> None:
        base = stat.base if isinstance(stat, A.ArrayIndex) else stat
        d = getattr(base, "referent", None)
        if d is None:
            return
        cur = getattr(d, attr, None)
        if cur is None:
            setattr(d, attr, value)
        elif cur != value and attr == "hist":
            raise SemanticError(f"multiple histogram types declared on '{d.name}'", tok)
        elif cur != value and attr == "bit_shift":
            raise SemanticError(f"conflicting variance shift values for '{d.name}'", tok)

    def _stat_operand(self, stat: A.Expression, tok: Token) -> None:
        if not isinstance(stat, (A.Symbol, A.ArrayIndex)) or (
                isinstance(stat, A.ArrayIndex) and not isinstance(stat.base, A.Symbol)):
            raise SemanticError("expected a statistics variable or array element", tok)
        self.expect(stat, STATS)

    def _array_index(self, e: A.ArrayIndex, want: str | None, membership: bool = False) -> str | None:
        if isinstance(e.base, A.HistOp):
            self.expr(e.base, None)
            for i in e.indexes:
                self.expect(i, LONG)
            return LONG
        d = e.base.referent
        self._arity(d, len(e.indexes), e.tok)
        for i, ix in enumerate(e.indexes):
            if ix is None:
                if not membership and not self._deleting:
                    raise SemanticError("wildcard not allowed in array index", e.tok)
                continue
            if isinstance(ix, A.Literal) and d.index_types[i] is not None \
                    and ix.type != d.index_types[i]:
                raise SemanticError(
                    f"type mismatch: expected {d.index_types[i]} but found {ix.type}", ix.tok,
                    chain=SemanticError(f"index {i} type mismatch ({ix.type})", ix.tok,
                                        chain=_inferred_here(d.index_types[i], d.index_toks[i],
                                                             f"type of index {i}")))
            it = self.expr(ix, d.index_types[i])
            if it == STATS:
                raise SemanticError("invalid use of statistics as an array index", ix.tok)
            it = self._index_type(d, i, it, ix.tok)
            if it is not None and ix.type is None:
                self.expect(ix, it)
            ix.type = it
        if membership:
            return LONG
        t = self._set(d, want, e.tok)
        if t == STATS and want != STATS:
            raise SemanticError("invalid use of statistics array element; use an extractor", e.tok)
        return t

    def _lvalue(self, e: A.Expression, tok: Token) -> None:
        if isinstance(e, A.Symbol):
            if e.referent is not None and e.referent.tapset and e.referent.is_global \
                    and getattr(e.referent, "readonly", False):
                raise SemanticError("cannot write to read-only variable", e.tok)
            return
        if isinstance(e, A.ArrayIndex) and isinstance(e.base, A.Symbol):
            return
        if isinstance(e, A.ArrayIndex):
            raise SemanticError("Assignment to read-only histogram bucket", e.tok)
        raise SemanticError("Expecting lvalue for assignment", tok,
                            tok2=e.tok if e.tok is not tok else None)

    def _assignment(self, e: A.Assignment, want: str | None) -> str | None:
        self._lvalue(e.left, e.tok)
        if e.op == "<<<":
            self._stat_operand(e.left, e.tok)
            self.expect(e.right, LONG)
            return LONG
        if e.op in ARITH_ASSIGN:
            self.expect(e.left, LONG)
            self.expect(e.right, LONG)
            return LONG
        if e.op == ".=":
            self.expect(e.left, STRING)
            self.expect(e.right, STRING)
            return STRING
        # Right side first, so a clash is reported at the variable, with the
        # place its type was first inferred, as stap does.
        rt = self.expr(e.right, None)
        if rt == STATS:
            raise SemanticError("invalid use of statistics variable; use an extractor", e.right.tok)
        lt = self.expr(e.left, rt if rt is not None else want)
        if lt == STATS:
            raise SemanticError("invalid assignment to statistics variable; use <<<", e.tok)
        if rt is None and lt is not None:
            rt = self.expect(e.right, lt)
        e.right.type = rt
        e.left.type = lt
        return lt or rt

    def _call(self, e: A.FunctionCall, want: str | None) -> str | None:
        f: A.FunctionDecl = e.referent
        if e.name == "_utr_entry_save" and self.expr(e.args[1], None) == STRING:
            raise SemanticError("not supported yet: @entry of a string (numbers are kept)",
                                e.tok)
        for i, (a, p) in enumerate(zip(e.args, f.params)):
            if isinstance(a, A.Literal) and p.type is not None and a.type != p.type:
                # stap: the literal against the expected type, then the argument
                # against the parameter (with its origin when a call inferred it)
                if getattr(p, "type_from_call", None) == i:
                    second = SemanticError(f"index {i} type mismatch ({a.type})", a.tok,
                                           chain=_inferred_here(p.type, p.type_tok,
                                                                f"type of index {i}"))
                else:
                    second = SemanticError(f"type mismatch: expected {a.type} but found {p.type}",
                                           a.tok)
                raise SemanticError(f"type mismatch: expected {p.type} but found {a.type}",
                                    a.tok, chain=second)
            at = self.expr(a, p.type)
            if at == STATS:
                raise SemanticError("invalid use of statistics as a function argument", a.tok)
            if at is not None and p.type is not None and at != p.type:
                raise SemanticError(f"index {i} type mismatch ({at})", a.tok,
                                    chain=_inferred_here(p.type, p.type_tok or p.tok, f"type of index {i}"))
            if p.type is None and at is not None:
                p.type, p.type_tok = at, a.tok
                p.type_from_call = i
                self.changed = True
            elif at is None and p.type is not None:
                self.expect(a, p.type)
            a.type = at or p.type
        if want is not None and f.type is None:
            f.type, f.type_tok = want, e.tok
            self.changed = True
        elif want is not None and f.type != want:
            raise SemanticError(f"type mismatch ({want})", e.tok,
                                chain=_inferred_here(f.type, f.type_tok or f.tok))
        return f.type

    def _print(self, e: A.PrintFormat, want: str | None) -> str | None:
        if e.hist is not None:
            self.expr(e.hist, None)
        if e.format is not None:
            comps = formats.parse_format(e.format)
            if isinstance(comps, str):
                raise SemanticError(comps, e.tok)
            e.components = comps
            types = formats.arg_types(comps)
            if len(types) != len(e.args):
                raise SemanticError("Wrong number of args to formatted print operator", e.tok)
            for a, t in zip(e.args, types):
                self.expect(a, t)
        else:
            for a in e.args:
                t = self.expr(a, None)
                if t == STATS:
                    raise SemanticError("invalid use of statistics variable; use an extractor", a.tok)
                a.type = t
        if e.to_string:
            return STRING
        if want is not None:
            raise SemanticError(f"type mismatch: expected {want} but found void", e.tok)
        return None

    # -- statements ---------------------------------------------------------
    def stmt(self, s: A.Statement) -> None:  # noqa: C901
        if isinstance(s, A.Block):
            for x in s.statements:
                self.stmt(x)
        elif isinstance(s, A.ExprStatement):
            self.expr(s.value, None)
        elif isinstance(s, A.IfStatement):
            self.expect(s.cond, LONG)
            self.stmt(s.thenblock)
            if s.elseblock is not None:
                self.stmt(s.elseblock)
        elif isinstance(s, A.WhileLoop):
            self.expect(s.cond, LONG)
            self.stmt(s.block)
        elif isinstance(s, A.ForLoop):
            if s.init is not None:
                self.expr(s.init, None)
            if s.cond is not None:
                self.expect(s.cond, LONG)
            if s.incr is not None:
                self.expr(s.incr, None)
            self.stmt(s.block)
        elif isinstance(s, A.ForeachLoop):
            self._foreach(s)
        elif isinstance(s, A.ReturnStatement):
            f = self.fn
            if s.value is None:
                return
            t = self.expr(s.value, f.type)
            if t == STATS:
                raise SemanticError("invalid use of statistics in return", s.value.tok)
            if f.type is None and t is not None:
                f.type, f.type_tok = t, s.value.tok
                self.changed = True
            elif t is not None and f.type != t:
                raise SemanticError(f"type mismatch ({t})", s.value.tok,
                                    chain=_inferred_here(f.type, f.type_tok or f.tok))
            elif t is None and f.type is not None:
                self.expect(s.value, f.type)
        elif isinstance(s, A.DeleteStatement):
            v = s.value
            if isinstance(v, A.ArrayIndex) and isinstance(v.base, A.Symbol):
                self._deleting = True
                try:
                    self._array_index(v, None, membership=True)
                finally:
                    self._deleting = False
            elif isinstance(v, A.Symbol):
                d = v.referent
                if d.arity == -1 and not d.is_global:
                    self.expr(v, None)
            else:
                raise SemanticError("unresolved array in delete statement", v.tok)
        elif isinstance(s, A.TryBlock):
            self.stmt(s.try_block)
            if s.catch_var is not None:
                self.expect(s.catch_var, STRING)
            self.stmt(s.catch_block)
        elif isinstance(s, A.NextStatement):
            if self.fn is not None and not self.fn.tapset:
                raise SemanticError("'next' statement not allowed in a function", s.tok)

    def _foreach(self, s: A.ForeachLoop) -> None:
        if isinstance(s.base, A.HistOp):
            self.expr(s.base, None)
            if len(s.indexes) != 1:
                raise SemanticError("histogram foreach takes one index", s.tok)
            self.expect(s.indexes[0], LONG)
            if s.value is not None:
                self.expect(s.value, LONG)
        else:
            d = s.base.referent
            self._arity(d, len(s.indexes), s.base.tok)
            for i, ix in enumerate(s.indexes):
                t = self._index_type(d, i, ix.referent.type, ix.tok)
                if t is not None:
                    self.expect(ix, t)
            for i, x in enumerate(s.array_slice):
                if x is not None:
                    t = self.expr(x, d.index_types[i])
                    self._index_type(d, i, t, x.tok)
            if s.value is not None:
                if d.type == STATS:
                    raise SemanticError("invalid use of statistics array value; use an extractor",
                                        s.value.tok)
                vt = self._set(s.value.referent, d.type, s.value.tok)
                self._set(d, vt, s.value.tok)
            if s.sort_aggr and d.type not in (STATS, None):
                raise SemanticError("sorting by a statistical operation needs a statistics array",
                                    s.tok)
        if s.limit is not None:
            self.expect(s.limit, LONG)
        self.stmt(s.block)
