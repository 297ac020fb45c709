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
