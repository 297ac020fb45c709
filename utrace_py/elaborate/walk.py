"""Generic traversal of the syntax tree: the children of any node, in source order."""
from __future__ import annotations

from typing import Iterator

from ..lang import ast as A


def children(n: A.Node) -> Iterator[A.Node]:  # noqa: C901 - one case per node kind
    if isinstance(n, A.Block):
        yield from n.statements
    elif isinstance(n, A.ExprStatement):
        yield n.value
    elif isinstance(n, A.IfStatement):
        yield n.cond
        yield n.thenblock
        if n.elseblock is not None:
            yield n.elseblock
    elif isinstance(n, A.ForLoop):
        for x in (n.init, n.cond, n.incr, n.block):
            if x is not None:
                yield x
    elif isinstance(n, A.WhileLoop):
        yield n.cond
        yield n.block
    elif isinstance(n, A.ForeachLoop):
        yield from n.indexes
        if n.value is not None:
            yield n.value
        yield n.base
        yield from (x for x in n.array_slice if x is not None)
        if n.limit is not None:
            yield n.limit
        yield n.block
    elif isinstance(n, (A.ReturnStatement,)):
        if n.value is not None:
            yield n.value
    elif isinstance(n, A.DeleteStatement):
        yield n.value
    elif isinstance(n, A.TryBlock):
        yield n.try_block
        if n.catch_var is not None:
            yield n.catch_var
        yield n.catch_block
    elif isinstance(n, A.Unary):
        yield n.operand
    elif isinstance(n, (A.Binary, A.Logical, A.Comparison, A.Concatenation, A.Assignment)):
        yield n.left
        yield n.right
    elif isinstance(n, A.RegexMatch):
        yield n.left
    elif isinstance(n, A.Ternary):
        yield n.cond
        yield n.truevalue
        yield n.falsevalue
    elif isinstance(n, (A.PreCrement, A.PostCrement)):
        yield n.operand
    elif isinstance(n, A.HistOp):
        yield n.stat
    elif isinstance(n, A.ArrayIndex):
        yield n.base
        yield from (x for x in n.indexes if x is not None)
    elif isinstance(n, A.ArrayIn):
        yield n.operand
    elif isinstance(n, A.FunctionCall):
        yield from n.args
    elif isinstance(n, A.PrintFormat):
        if n.hist is not None:
            yield n.hist
        yield from n.args
    elif isinstance(n, A.StatOp):
        yield n.stat
    elif isinstance(n, (A.DefinedOp, A.EntryOp)):
        yield n.operand
    elif isinstance(n, A.TargetSymbol):
        if n.cast_operand is not None:
            yield n.cast_operand
        for kind, val, _t in n.components:
            if kind == "[":
                yield val


def walk(n: A.Node) -> Iterator[A.Node]:
    yield n
    for c in children(n):
        yield from walk(c)
