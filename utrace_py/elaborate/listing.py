"""What `-p2` prints: resolved globals, functions and probes with their types."""
from __future__ import annotations

from . import Program


def _decl(v) -> str:
    t = v.type or "unknown"
    if v.arity > 0:
        return f"{v.name}:{t} [{', '.join(x or 'unknown' for x in v.index_types)}]"
    return f"{v.name}:{t}"


def listing(p: Program) -> str:
    out = []
    if p.globals:
        out.append("# globals")
        out += [_decl(g) + (" (tapset)" if g.tapset else "") for g in p.globals]
    if p.functions:
        out.append("# functions")
        for f in p.functions:
            params = ", ".join(f"{x.name}:{x.type or 'unknown'}" for x in f.params)
            out.append(f"{f.name}:{f.type or 'unknown'} ({params})")
            if f.locals:
                out.append("  # locals")
                out += [f"  {_decl(v)}" for v in f.locals]
    out.append("# probes")
    for d in p.probes:
        out.append(f"{d.pp} /* <- {d.tok.describe()}{' (synthetic)' if d.synthetic else ''} */")
        if d.locals:
            out.append("  # locals")
            out += [f"  {_decl(v)}" for v in d.locals]
    return "\n".join(out) + "\n"


def probe_points(p: Program, with_vars: bool = False) -> list[str]:
    """What `stap -l`/`-L` prints: every concrete probe point, sorted, once each.

    Function patterns are expanded against the binary's symbols (they are armed per
    process, so the derived probe still holds the pattern); a mark probe is already
    one marker, whose arguments -L lists (`$arg1:long ...`).
    """
    out: set[str] = set()
    for d in p.probes:
        if d.synthetic:
            continue
        if d.kind == "process.function" and d.target_path and not d.library and not d.plt:
            from ..binfo import find_functions
            suffix = ".return" if d.ret else ""
            for fn in find_functions(d.target_path, d.function):
                out.add(f'process("{d.target_path}").function("{fn.name}"){suffix}')
            continue
        if d.alias is not None:  # stap lists the tapset's name and the variables it sets
            types = {v.name: v.type for v in d.locals}
            text = d.alias
            if with_vars:
                text += "".join(f" {n}:{types.get(n) or 'unknown'}" for n in d.alias_vars)
                if d.kind == "process.mark":
                    text += "".join(f" $arg{i + 1}:long" for i in range(d.marker.nargs))
            out.add(text)
            continue
        text = d.pp
        if with_vars and d.kind == "process.mark":
            text += "".join(f" $arg{i + 1}:long" for i in range(d.marker.nargs))
        out.add(text)
    return sorted(out)
