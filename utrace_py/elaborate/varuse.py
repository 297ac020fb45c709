"""Pass 2d: who reads and writes which global (for auto-display and foreach safety)."""
from __future__ import annotations

from ..diag import SemanticError
from ..lang import ast as A
from .walk import children

_COMPOUND = {"+=", "-=", "*=", "/=", "%=", "<<=", ">>=", ">>>=", "&=", "^=", "|=", ".="}


def _target_decl(e: A.Expression) -> A.VarDecl | None:
    if isinstance(e, A.ArrayIndex) and isinstance(e.base, A.Symbol):
        e = e.base
    if isinstance(e, A.Symbol):
        return e.referent
    return None


class VarUse:
    """Collects written/read/used sets the way stap's varuse visitor does."""

    def __init__(self) -> None:
        self.written: set[int] = set()
        self.used: set[int] = set()

    def run(self, bodies: list[A.Node]) -> None:
        for b in bodies:
            self._visit(b, value_used=True)

    def _visit(self, n: A.Node, value_used: bool) -> None:  # noqa: C901
        if isinstance(n, A.ExprStatement):
            self._visit(n.value, value_used=False)
            return
        if isinstance(n, A.Assignment):
            d = _target_decl(n.left)
            if d is not None:
                self.written.add(id(d))
                if n.op in _COMPOUND and value_used:
                    self.used.add(id(d))
            if isinstance(n.left, A.ArrayIndex):
                for i in n.left.indexes:
                    if i is not None:
                        self._visit(i, True)
            self._visit(n.right, True)
            return
        if isinstance(n, (A.PreCrement, A.PostCrement)):
            d = _target_decl(n.operand)
            if d is not None:
                self.written.add(id(d))
                if value_used:
                    self.used.add(id(d))
            if isinstance(n.operand, A.ArrayIndex):
                for i in n.operand.indexes:
                    if i is not None:
                        self._visit(i, True)
            return
        if isinstance(n, A.DeleteStatement):
            d = _target_decl(n.value)
            if d is not None:
                self.written.add(id(d))
            if isinstance(n.value, A.ArrayIndex):
                for i in n.value.indexes:
                    if i is not None:
                        self._visit(i, True)
            return
        if isinstance(n, A.Symbol):
            if n.referent is not None:
                self.used.add(id(n.referent))
            return
        for c in children(n):
            self._visit(c, True)


def unread_written_globals(probes: list, functions: list[A.FunctionDecl],
                           user_globals: list[A.VarDecl]) -> list[A.VarDecl]:
    vu = VarUse()
    vu.run([p.body for p in probes] + [f.body for f in functions if isinstance(f.body, A.Block)])
    return [g for g in user_globals
            if id(g) in vu.written and id(g) not in vu.used and not g.synthetic]


def _writes(n: A.Node, functions_seen: set[int]) -> set[int]:
    """Globals a statement may modify, following calls into script functions."""
    out: set[int] = set()
    stack = [n]
    while stack:
        x = stack.pop()
        if isinstance(x, A.Assignment):
            d = _target_decl(x.left)
            if d is not None and d.is_global:
                out.add(id(d))
        elif isinstance(x, (A.PreCrement, A.PostCrement)):
            d = _target_decl(x.operand)
            if d is not None and d.is_global:
                out.add(id(d))
        elif isinstance(x, A.DeleteStatement):
            d = _target_decl(x.value)
            if d is not None and d.is_global:
                out.add(id(d))
        elif isinstance(x, A.FunctionCall) and x.referent is not None:
            f = x.referent
            if id(f) not in functions_seen and isinstance(f.body, A.Block):
                functions_seen.add(id(f))
                stack.append(f.body)
        stack.extend(children(x))
    return out


def check_foreach_mutation(body: A.Node, functions: list[A.FunctionDecl]) -> None:
    """stap refuses to change an array inside a foreach over it."""
    for n in _iter(body):
        if isinstance(n, A.ForeachLoop) and isinstance(n.base, A.Symbol):
            arr = n.base.referent
            stack = [n.block]
            while stack:
                x = stack.pop()
                if isinstance(x, (A.Assignment, A.PreCrement, A.PostCrement, A.DeleteStatement)):
                    tgt = x.left if isinstance(x, A.Assignment) else (
                        x.operand if not isinstance(x, A.DeleteStatement) else x.value)
                    d = _target_decl(tgt)
                    if d is arr:
                        # stap reports it at the array element written (its name token)
                        raise SemanticError(
                            f"variable '{arr.name}' modified during 'foreach' iteration",
                            tgt.tok if isinstance(tgt, A.ArrayIndex) else x.tok)
                if isinstance(x, A.FunctionCall) and x.referent is not None:
                    if id(arr) in _writes(x, set()):
                        raise SemanticError(
                            f"function call modifies var '{arr.name}' during 'foreach' iteration",
                            x.tok)
                    continue
                stack.extend(children(x))


def _iter(n: A.Node):
    yield n
    for c in children(n):
        yield from _iter(c)
