"""@entry(expr) in .return probes: evaluated at the function's entry, read at its return."""
from __future__ import annotations

import copy
import dataclasses

from ..diag import SemanticError
from ..lang import ast as A
from .derive import DerivedProbe

# Values one pending call carries (retprobe.c's shadow entry holds UTR_ENTRY_VALS).
MAX_ENTRY_VALUES = 8


def _number(k: int, tok) -> A.Literal:
    lit = A.Literal(tok=tok, value=k)
    lit.type = A.LONG
    return lit


def split_entry_ops(d: DerivedProbe, next_slot: int) -> tuple[DerivedProbe | None, int]:
    """Replace each @entry(expr) of return probe d by a read of a slot, and make the
    entry probe that fills those slots when the function is entered (None if d has none).

    Slots are numbered across the whole script (next_slot is the first free one): two
    return probes on one function share its pending call's values."""
    saves: list[A.Statement] = []

    def rewrite(node):
        nonlocal next_slot
        if isinstance(node, A.EntryOp):
            if next_slot >= MAX_ENTRY_VALUES:
                raise SemanticError(f"not supported yet: more than {MAX_ENTRY_VALUES} @entry "
                                    "expressions in one script", node.tok)
            k = next_slot
            next_slot += 1
            saves.append(A.ExprStatement(tok=node.tok, value=A.FunctionCall(
                tok=node.tok, name="_utr_entry_save",
                args=[_number(k, node.tok), copy.deepcopy(node.operand)])))
            return A.FunctionCall(tok=node.tok, name="_utr_entry_load",
                                  args=[_number(k, node.tok)])
        if isinstance(node, A.Node):
            for f in dataclasses.fields(node):
                v = getattr(node, f.name)
                if f.name in ("tok", "referent") or not f.init:
                    continue
                if isinstance(v, list):
                    setattr(node, f.name, [rewrite(x) for x in v])
                elif isinstance(v, (A.Node, tuple)):
                    setattr(node, f.name, rewrite(v) if isinstance(v, A.Node) else
                            tuple(rewrite(x) for x in v))
        return node

    d.body = rewrite(d.body)
    if not saves:
        return None, next_slot
    entry = dataclasses.replace(d, kind="process.function", ret=False, synthetic=True,
                                body=A.Block(tok=d.body.tok, statements=saves), locals=[],
                                pp=d.pp.removesuffix(".return"))
    return entry, next_slot
