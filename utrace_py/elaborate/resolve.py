"""Pass 2b: bind every symbol and call to its declaration, pulling in tapset code as needed."""
from __future__ import annotations

from pathlib import Path

from ..diag import SemanticError
from ..lang import ast as A
from ..tapset_loader import TapsetLibrary
from .walk import children


def levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def suggest(name: str, names: list[str], n: int = 5) -> str:
    scored = sorted((levenshtein(name, x), x) for x in set(names) if x != name)
    best = [x for d, x in scored if d <= max(2, len(name) // 3)][:n]
    return ", ".join(best)


class Resolver:
    def __init__(self, user: A.StapFile, library: TapsetLibrary) -> None:
        self.library = library
        self.globals: dict[str, A.VarDecl] = {}
        self.functions: dict[str, A.FunctionDecl] = {}
        # Functions are overloaded by arity, as in stap (user_string(addr) and
        # user_string(addr, err_msg)); `functions` keeps the first of each name.
        self.overloads: dict[tuple[str, int], A.FunctionDecl] = {}
        self.embeds: list[A.EmbeddedCode] = []
        self._pulled: set[Path] = set()
        self._resolved_funcs: set[int] = set()
        self._work: list[A.FunctionDecl] = []
        for g in user.globals:
            self.globals[g.name] = g
        for f in user.functions:
            key = (f.name, len(f.params))
            if key in self.overloads:
                raise SemanticError(f"duplicate function name '{f.name}'", f.tok,
                                    chain=SemanticError("previously defined here",
                                                        self.overloads[key].tok))
            self.overloads[key] = f
            self.functions.setdefault(f.name, f)
        self.embeds.extend(user.embeds)
        # Tapset files brought in; their own probes (not aliases) join the session.
        self.pulled_files: list[A.StapFile] = []

    # -- pulling tapset files -------------------------------------------------
    def _pull(self, path: Path) -> None:
        if path in self._pulled:
            return
        self._pulled.add(path)
        f = self.library.parse(path)
        self.pulled_files.append(f)
        for g in f.globals:
            self.globals.setdefault(g.name, g)
        for fn in f.functions:
            self.functions.setdefault(fn.name, fn)
            self.overloads.setdefault((fn.name, len(fn.params)), fn)
        self.embeds.extend(f.embeds)

    def find_function(self, name: str, arity: int | None = None) -> A.FunctionDecl | None:
        """The function `name` taking `arity` arguments; failing that, any of that name
        (the caller reports the arity mismatch)."""
        def have() -> bool:
            return name in self.functions if arity is None else (name, arity) in self.overloads
        if not have():
            for p in self.library.function_files(name):
                self._pull(p)
                if have():
                    break
        if arity is not None and (name, arity) in self.overloads:
            return self.overloads[(name, arity)]
        return self.functions.get(name)

    def find_global(self, name: str) -> A.VarDecl | None:
        if name not in self.globals:
            for p in self.library.global_files(name):
                self._pull(p)
                if name in self.globals:
                    break
        return self.globals.get(name)

    # -- bodies ----------------------------------------------------------------
    def resolve_probe(self, body: A.Block, locals_: list[A.VarDecl], probe=None) -> None:
        scope: dict[str, A.VarDecl] = {}
        self._probe = probe  # the DerivedProbe whose body this is: what $return means
        self._visit(body, scope, None)
        locals_.extend(scope.values())
        self._drain()

    def _drain(self) -> None:
        while self._work:
            fd = self._work.pop()
            scope = {p.name: p for p in fd.params}
            if isinstance(fd.body, A.Block):
                self._visit(fd.body, scope, fd)
            fd.locals = [v for k, v in scope.items() if v not in fd.params]

    def _use_function(self, fd: A.FunctionDecl) -> None:
        if id(fd) not in self._resolved_funcs:
            self._resolved_funcs.add(id(fd))
            self._work.append(fd)

    def used_functions(self) -> list[A.FunctionDecl]:
        return [f for f in self.overloads.values() if id(f) in self._resolved_funcs]

    def _local(self, sym: A.Symbol, scope: dict[str, A.VarDecl]) -> A.VarDecl:
        d = scope.get(sym.name)
        if d is None:
            d = A.VarDecl(tok=sym.tok, name=sym.name)
            scope[sym.name] = d
        return d

    def _bind(self, sym: A.Symbol, scope: dict[str, A.VarDecl]) -> None:
        d = scope.get(sym.name) or self.find_global(sym.name)
        sym.referent = d if d is not None else self._local(sym, scope)

    def _array(self, sym: A.Symbol, arity: int, scope: dict[str, A.VarDecl]) -> None:
        d = scope.get(sym.name) or self.find_global(sym.name)
        if d is None or not d.is_global:
            raise SemanticError(
                f"unresolved arity-{arity} global array {sym.name}, missing global declaration?",
                sym.tok)
        sym.referent = d

    def _target_symbol(self, n: A.TargetSymbol, fd) -> None:
        p = getattr(self, "_probe", None)
        in_return = fd is None and p is not None and p.kind in ("process.function", "kernel.function") and p.ret
        if (n.kind == "var" and n.name == "$return" and in_return and not n.components
                and not n.addressof and not n.pretty):
            n.referent = "return"  # the integer return value: rax at the return site
            return
        if p is not None and fd is None and p.kind == "process.mark":
            self._mark_symbol(n, p)
            return
        if p is None or fd is not None or not p.kind.startswith("process."):
            raise SemanticError("not supported yet: target variables in "
                                "begin/end/timer probes (unresolved target-symbol expression)",
                                n.tok)
        raise SemanticError(f"not supported yet: target variable '{n.name}' (needs DWARF; "
                            "$return of a .return probe is supported)", n.tok)

    def _mark_symbol(self, n: A.TargetSymbol, p) -> None:
        """$argN, $$name, $$provider, $$parms/$$vars of an SDT marker (stap's sdt_query)."""
        import re

        from ..binfo.sdt import SdtError
        m = p.marker
        plain = n.kind == "var" and not n.components and not n.addressof and not n.pretty
        if plain and n.name in ("$$name", "$$provider"):
            n.referent = ("string", m.name if n.name == "$$name" else m.provider)
            return
        if plain and n.name in ("$$parms", "$$vars", "$$locals"):
            n.referent = ("parms", m)
            return
        a = re.fullmatch(r"\$arg(\d+)", n.name)
        if a and plain and 1 <= int(a.group(1)) <= m.nargs:
            try:
                spec = m.args[int(a.group(1)) - 1]
                from ..translate.sdt_c import arg_c_expr
                arg_c_expr(spec)  # refuses what cannot be read (%fs:, %xmm) now, in pass 2
            except SdtError as e:
                raise SemanticError(str(e).removeprefix("ERROR: "), n.tok) from None
            n.referent = ("sdtarg", spec, m)
            return
        if a:
            raise SemanticError(f"target variable '{n.name}' not found: marker {m.name} has "
                                f"{m.nargs} argument{'s' if m.nargs != 1 else ''}", n.tok)
        raise SemanticError(f"not supported yet: '{n.name}' in a mark probe (use $arg1.."
                            f"$arg{m.nargs}, $$name, $$provider, $$parms)", n.tok)

    def _visit(self, n: A.Node, scope: dict[str, A.VarDecl],  # noqa: C901
               fd: A.FunctionDecl | None) -> None:
        if isinstance(n, A.Symbol):
            self._bind(n, scope)
            return
        if isinstance(n, A.ArrayIndex):
            if isinstance(n.base, A.Symbol):
                self._array(n.base, len(n.indexes), scope)
            else:
                self._visit(n.base, scope, fd)
            for i in n.indexes:
                if i is not None:
                    self._visit(i, scope, fd)
            return
        if isinstance(n, A.ForeachLoop):
            if isinstance(n.base, A.Symbol):
                self._array(n.base, len(n.indexes), scope)
            else:
                self._visit(n.base, scope, fd)
            for s in n.indexes:
                s.referent = self._local(s, scope) if s.name not in scope else scope[s.name]
            if n.value is not None:
                n.value.referent = self._local(n.value, scope)
            for x in n.array_slice:
                if x is not None:
                    self._visit(x, scope, fd)
            if n.limit is not None:
                self._visit(n.limit, scope, fd)
            self._visit(n.block, scope, fd)
            return
        if isinstance(n, A.TryBlock):
            self._visit(n.try_block, scope, fd)
            if n.catch_var is not None:
                n.catch_var.referent = self._local(n.catch_var, scope)
            self._visit(n.catch_block, scope, fd)
            return
        if isinstance(n, A.FunctionCall):
            f = self.find_function(n.name, len(n.args))
            if f is None:
                sugs = suggest(n.name, list(self.functions) + self.library.all_function_names())
                raise SemanticError(f"unresolved function {n.name}" +
                                    (f" (similar: {sugs})" if sugs else ""), n.tok)
            if len(f.params) != len(n.args):
                raise SemanticError(f"arity mismatch found (function '{n.name}' takes "
                                    f"{len(f.params)} args)", n.tok)
            # stap: a /* guru */ embedded-C function (set_user_long...) needs -g
            # unless the call is itself in privileged code (a tapset).
            if (isinstance(f.body, A.EmbeddedCode) and "/* guru */" in f.body.code
                    and not getattr(self.library.pp, "guru_mode", False)
                    and not (n.tok.file is not None
                             and (n.tok.file.tapset or n.tok.file.synthetic))):
                raise SemanticError("function may not be used unless -g is specified", n.tok)
            n.referent = f
            self._use_function(f)
        elif isinstance(n, A.DefinedOp):
            # Resolved without binding: @defined(x) must not declare x.
            from .walk import walk
            for t in walk(n.operand):
                if isinstance(t, A.TargetSymbol):
                    try:
                        self._target_symbol(t, fd)
                    except SemanticError:
                        pass  # @defined answers 0
            return
        elif isinstance(n, A.TargetSymbol):
            self._target_symbol(n, fd)
        elif isinstance(n, A.EntryOp):
            raise SemanticError("@entry is only valid in .return probes", n.tok)
        elif isinstance(n, A.ReturnStatement) and fd is None:
            raise SemanticError("found 'return' statement outside of function", n.tok)
        for c in children(n):
            self._visit(c, scope, fd)
