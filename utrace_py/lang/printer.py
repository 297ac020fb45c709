"""Print a parsed script back as canonical text (what `-p1` shows)."""
from __future__ import annotations

from . import ast as A
from .lexer import quote_string


def lit(v: object) -> str:
    return quote_string(v) if isinstance(v, str) else str(v)


def probe_point_text(pp: A.ProbePoint) -> str:
    parts = []
    for c in pp.components:
        parts.append(c.functor if c.arg is None else f"{c.functor}({lit(c.arg.value)})")
    s = ".".join(parts)
    if pp.sufficient:
        s += "!"
    elif pp.optional:
        s += "?"
    if pp.condition is not None:
        s += f" if ({expr(pp.condition)})"
    return s


def expr(e: A.Expression) -> str:  # noqa: C901 - one case per node kind
    if isinstance(e, A.Literal):
        return lit(e.value)
    if isinstance(e, A.Symbol):
        return e.name
    if isinstance(e, A.TargetSymbol):
        if e.kind == "cast":
            base = f"@cast({expr(e.cast_operand)}, {lit(e.cast_type)}" + (
                f", {lit(e.cast_module)})" if e.cast_module else ")")
        elif e.kind == "atvar":
            base = f"@var({lit(e.name)}" + (f", {lit(e.cast_module)})" if e.cast_module else ")")
        else:
            base = e.name
        for kind, val, _tok in e.components:
            base += f"->{val}" if kind == "->" else f"[{expr(val)}]"
        return ("&" if e.addressof else "") + base + "$" * e.pretty
    if isinstance(e, A.Unary):
        return f"{e.op}({expr(e.operand)})"
    if isinstance(e, (A.Binary, A.Logical, A.Comparison)):
        return f"({expr(e.left)}) {e.op} ({expr(e.right)})"
    if isinstance(e, A.Concatenation):
        return f"({expr(e.left)}) . ({expr(e.right)})"
    if isinstance(e, A.RegexMatch):
        return f"({expr(e.left)}) {e.op} {lit(e.regex)}"
    if isinstance(e, A.Ternary):
        return f"({expr(e.cond)}) ? ({expr(e.truevalue)}) : ({expr(e.falsevalue)})"
    if isinstance(e, A.Assignment):
        return f"{expr(e.left)} {e.op} {expr(e.right)}"
    if isinstance(e, A.PreCrement):
        return f"{e.op}{expr(e.operand)}"
    if isinstance(e, A.PostCrement):
        return f"{expr(e.operand)}{e.op}"
    if isinstance(e, A.HistOp):
        params = "".join(f", {p}" for p in e.params)
        return f"@hist_{e.htype}({expr(e.stat)}{params})"
    if isinstance(e, A.ArrayIndex):
        base = e.base.name if isinstance(e.base, A.Symbol) else expr(e.base)
        return base + "[" + ", ".join("*" if i is None else expr(i) for i in e.indexes) + "]"
    if isinstance(e, A.ArrayIn):
        keys = ", ".join("*" if i is None else expr(i) for i in e.operand.indexes)
        base = e.operand.base
        bname = base.name if isinstance(base, A.Symbol) else expr(base)
        return f"[{keys}] in {bname}"
    if isinstance(e, A.FunctionCall):
        return f"{e.name}(" + ", ".join(expr(a) for a in e.args) + ")"
    if isinstance(e, A.PrintFormat):
        args = [expr(a) for a in e.args]
        if e.format is not None:
            args.insert(0, lit(e.format))
        if e.delimiter is not None:
            args.insert(0, lit(e.delimiter))
        if e.hist is not None:
            args = [expr(e.hist)]
        return f"{e.name}(" + ", ".join(args) + ")"
    if isinstance(e, A.StatOp):
        params = "".join(f", {p}" for p in e.params)
        return f"{e.ctype}({expr(e.stat)}{params})"
    if isinstance(e, A.DefinedOp):
        return f"@defined({expr(e.operand)})"
    if isinstance(e, A.EntryOp):
        return f"@entry({expr(e.operand)})"
    if isinstance(e, A.EmbeddedExpr):
        return "%{" + e.code + "%}"
    raise AssertionError(f"internal error: cannot print {type(e).__name__}")


def stmt(s: A.Statement, ind: str) -> str:  # noqa: C901
    nx = ind + "  "
    if isinstance(s, A.Block):
        body = "".join(stmt(x, nx) for x in s.statements)
        return f"{ind}{{\n{body}{ind}}}\n"
    if isinstance(s, A.ExprStatement):
        return f"{ind}{expr(s.value)}\n"
    if isinstance(s, A.NullStatement):
        return f"{ind};\n"
    if isinstance(s, A.EmbeddedCode):
        return f"{ind}%{{{s.code}%}}\n"
    if isinstance(s, A.IfStatement):
        out = f"{ind}if ({expr(s.cond)})\n{stmt(s.thenblock, nx)}"
        if s.elseblock is not None:
            out += f"{ind}else\n{stmt(s.elseblock, nx)}"
        return out
    if isinstance(s, A.ForLoop):
        parts = ["" if x is None else expr(x) for x in (s.init, s.cond, s.incr)]
        return f"{ind}for ({parts[0]}; {parts[1]}; {parts[2]})\n{stmt(s.block, nx)}"
    if isinstance(s, A.WhileLoop):
        return f"{ind}while ({expr(s.cond)})\n{stmt(s.block, nx)}"
    if isinstance(s, A.ForeachLoop):
        idx = []
        for i, v in enumerate(s.indexes, 1):
            mark = ("+" if s.sort_direction > 0 else "-") if s.sort_column == i and s.sort_direction else ""
            idx.append(v.name + mark)
        head = ""
        if s.value is not None:
            mark = ("+" if s.sort_direction > 0 else "-") if s.sort_column == 0 and s.sort_direction and not s.sort_aggr else ""
            head = f"{s.value.name}{mark} = "
        base = s.base.name if isinstance(s.base, A.Symbol) else expr(s.base)
        if s.array_slice:
            base += "[" + ", ".join("*" if x is None else expr(x) for x in s.array_slice) + "]"
        tail = ""
        if s.sort_column == 0 and s.sort_direction and (s.value is None or s.sort_aggr):
            tail = (s.sort_aggr or "") + ("+" if s.sort_direction > 0 else "-")
        if s.limit is not None:
            tail += f" limit {expr(s.limit)}"
        return f"{ind}foreach ({head}[{', '.join(idx)}] in {base}{tail})\n{stmt(s.block, nx)}"
    if isinstance(s, A.ReturnStatement):
        return f"{ind}return" + (f" {expr(s.value)}" if s.value is not None else "") + "\n"
    if isinstance(s, A.DeleteStatement):
        return f"{ind}delete {expr(s.value)}\n"
    if isinstance(s, A.BreakStatement):
        return f"{ind}break\n"
    if isinstance(s, A.ContinueStatement):
        return f"{ind}continue\n"
    if isinstance(s, A.NextStatement):
        return f"{ind}next\n"
    if isinstance(s, A.TryBlock):
        var = f"({s.catch_var.name}) " if s.catch_var is not None else ""
        return (f"{ind}try\n{stmt(s.try_block, nx)}{ind}catch {var}\n"
                f"{stmt(s.catch_block, nx)}")
    raise AssertionError(f"internal error: cannot print {type(s).__name__}")


def vardecl(v: A.VarDecl) -> str:
    s = v.name
    if v.wrap:
        s += "%"
    if v.maxsize:
        s += f"[{v.maxsize}]"
    if v.init is not None:
        s += f" = {lit(v.init.value)}"
    return s


def function(f: A.FunctionDecl) -> str:
    params = ", ".join(p.name + (f":{p.type}" if p.type else "") for p in f.params)
    rt = f":{f.type}" if f.type else ""
    head = ("private " if f.private else "") + f"function {f.name}{rt} ({params})\n"
    return head + stmt(f.body, "")


def probe(p: A.Probe) -> str:
    locs = ", ".join(probe_point_text(pp) for pp in p.locations)
    if isinstance(p, A.ProbeAlias):
        names = ", ".join(probe_point_text(pp) for pp in p.alias_names)
        return f"probe {names} {'+=' if p.epilogue else '='} {locs}\n" + stmt(p.body, "")
    return f"probe {locs}\n" + stmt(p.body, "")


def stapfile(f: A.StapFile) -> str:
    out = [f"# file {f.name}\n"]
    out += ["%{" + e.code + "%}\n" for e in f.embeds]
    out += [("private " if g.private else "") + f"global {vardecl(g)}\n" for g in f.globals]
    out += [function(fn) for fn in f.functions]
    out += [probe(a) for a in f.aliases]
    out += [probe(p) for p in f.probes]
    return "".join(out)
