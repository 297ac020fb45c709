"""Pass 2: turn the parsed script into resolved, typed probes; runs the passes in order."""
from __future__ import annotations

from dataclasses import dataclass

from ..diag import SemanticError
from ..lang import ast as A
from ..lang.parser import parse_text
from ..tapset_loader import TapsetLibrary
from .entry import split_entry_ops
from .derive import DerivedProbe, ProbeDeriver
from .resolve import Resolver
from .typecheck import TypeChecker
from .varuse import check_foreach_mutation, unread_written_globals


@dataclass
class Program:
    probes: list[DerivedProbe]
    functions: list[A.FunctionDecl]
    globals: list[A.VarDecl]
    embeds: list[A.EmbeddedCode]
    user: A.StapFile


def elaborate(user: A.StapFile, library: TapsetLibrary, *, runtime: str = "user",
              global_display: bool = True, target_exe: str | None = None,
              fold_stacks: bool = False) -> Program:
    aliases = list(user.aliases)
    for path in library.alias_files:
        aliases.extend(library.parse(path).aliases)
    deriver = ProbeDeriver(aliases, runtime, target_exe)
    resolver = Resolver(user, library)

    probes: list[DerivedProbe] = []

    entry_slots = 0

    def add(file_probes: list[A.Probe], synthetic: bool) -> None:
        nonlocal entry_slots
        for p in file_probes:
            for d in deriver.derive(p):
                d.synthetic = synthetic
                if d.kind == "process.function" and d.ret:
                    saver, entry_slots = split_entry_ops(d, entry_slots)
                    if saver is not None:
                        resolver.resolve_probe(saver.body, saver.locals, saver)
                        probes.append(saver)
                resolver.resolve_probe(d.body, d.locals, d)
                probes.append(d)

    add(user.probes, False)
    if not probes:
        raise SemanticError("no probes found")
    done = 0
    # Probes of the tapset files a script pulls in run too (argv's begin probe).
    while done < len(resolver.pulled_files):
        done += 1
        add(resolver.pulled_files[done - 1].probes, True)

    TypeChecker(probes, resolver.used_functions()).run()

    if fold_stacks:  # --folded/--flamegraph: hand every stack aggregate to the tracer
        stacks = stack_globals(probes, resolver.used_functions())
        if not stacks:
            raise SemanticError("--folded/--flamegraph need a global array indexed by "
                                "ubacktrace() or ucallers(), e.g. stacks[ubacktrace()] <<< 1")
        add(parse_text("".join(fold_probe(g) for g in stacks), "<flame graph>",
                       tapset=True).probes, True)
        TypeChecker(probes, resolver.used_functions()).run()

    if global_display:
        shown = unread_written_globals(probes, resolver.used_functions(), user.globals)
        if shown:
            text = "".join(display_probe(g) for g in shown)
            add(parse_text(text, "<global display>", tapset=True).probes, True)
            TypeChecker(probes, resolver.used_functions()).run()

    for d in probes:
        check_foreach_mutation(d.body, resolver.used_functions())
    functions = resolver.used_functions()
    used = _used_globals(probes, functions)
    globals_ = [g for g in resolver.globals.values() if id(g) in used]
    for g in globals_:
        if g.type is None:
            raise SemanticError("unresolved type", g.tok)
        if g.arity == -1:
            g.arity = 0
    for i, d in enumerate(probes):
        d.index = i
    return Program(probes, functions, globals_, resolver.embeds, user)


def _used_globals(probes: list[DerivedProbe], functions: list[A.FunctionDecl]) -> set[int]:
    from .walk import walk
    used: set[int] = set()
    bodies = [p.body for p in probes] + [f.body for f in functions if isinstance(f.body, A.Block)]
    for b in bodies:
        for n in walk(b):
            if isinstance(n, A.Symbol) and n.referent is not None and n.referent.is_global:
                used.add(id(n.referent))
    return used


def display_probe(g: A.VarDecl) -> str:
    """An end probe printing a written-but-unread global, in stap's exact format."""
    name = g.name
    stats = ["@count", "@min", "@max", "@sum", "@avg"]
    fmt = name
    idx = ""
    code = "probe end {\n"
    value = name
    if g.arity > 0:
        names = [f"__idx{i}" for i in range(g.arity)]
        idx = ",".join(names)
        fmt += "[" + ",".join('\\"%#s\\"' if t == A.STRING else "%#d" for t in g.index_types) + "]"
        if g.type != A.STATS:
            code += f"foreach (__val = [{idx}] in {name}-)\n"
            value = "__val"
        else:
            code += f"foreach ([{idx}] in {name}-)\n"
            value = f"{name}[{idx}]"
    elif g.type == A.STATS:
        code += f'if (@count({name}) == 0)\nprintf("{name} @count=0x0\\n")\nelse\n'
    if g.type == A.STATS:
        fmt += "".join(f" {s}=%#d" for s in stats)
    elif g.type == A.STRING:
        fmt += '=\\"%#s\\"'
    else:
        fmt += "=%d"
    code += f'printf("{fmt}\\n"'
    if g.arity > 0:
        code += "," + idx
    if g.type == A.STATS:
        code += "".join(f",{s}({value})" for s in stats)
    else:
        code += "," + value
    return code + ")\n}\n"


def stack_globals(probes: list[DerivedProbe], functions: list[A.FunctionDecl]) -> list[A.VarDecl]:
    """Globals with one string key some probe indexes by ubacktrace()/ucallers() directly."""
    from .walk import walk
    found: dict[int, A.VarDecl] = {}
    bodies = [p.body for p in probes] + [f.body for f in functions if isinstance(f.body, A.Block)]
    for b in bodies:
        for n in walk(b):
            if (isinstance(n, A.ArrayIndex) and isinstance(n.base, A.Symbol)
                    and n.base.referent is not None and n.base.referent.is_global
                    and len(n.indexes) == 1 and isinstance(n.indexes[0], A.FunctionCall)
                    and n.indexes[0].name in ("ubacktrace", "ucallers")
                    and n.base.referent.type in (A.STATS, A.LONG)):
                found.setdefault(id(n.base.referent), n.base.referent)
    return list(found.values())


def fold_probe(g: A.VarDecl) -> str:
    """An end probe handing each stack of g and its count to the tracer's folder."""
    value = f"@count({g.name}[__s])" if g.type == A.STATS else f"{g.name}[__s]"
    return f"probe end {{\nforeach (__s in {g.name})\n__utr_fold(__s, {value})\n}}\n"
