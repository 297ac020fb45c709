"""Pass 2a: resolve probe points (expanding aliases) into the probes the runtime runs."""
from __future__ import annotations

import copy
import fnmatch
from dataclasses import dataclass, field

from ..diag import SemanticError, Token
from ..lang import ast as A
from ..lang.printer import probe_point_text

TIMER_UNITS = {"s": 10**9, "sec": 10**9, "ms": 10**6, "msec": 10**6,
               "us": 10**3, "usec": 10**3, "ns": 1, "nsec": 1,
               "jiffies": 10**9 // 250}
BUILTIN_FAMILIES = ["begin", "end", "error", "never", "timer", "process",
                    "kernel", "module", "syscall", "perf", "procfs", "netfilter",
                    "java", "python", "function"]


@dataclass
class DerivedProbe:
    kind: str  # begin | end | error | never | timer
    pp: str
    tok: Token
    body: A.Block
    order: int = 0  # begin(N), end(N), error(N)
    interval_ns: int = 0
    randomize_ns: int = 0
    locals: list = field(default_factory=list)
    index: int = -1
    synthetic: bool = False
    # process(...) probes: which processes they are for (None: any traced one)
    target_path: str | None = None
    target_pid: int | None = None
    function: str | None = None  # process.function("PATTERN")
    ret: bool = False            # .return
    library: str | None = None   # .library("NAME"): the function is in that module
    plt: bool = False            # .plt("PATTERN"): function is the PLT stub's pattern
    marker: object = None        # process.mark: the binfo.sdt.Marker this probe is for
    alias: str | None = None     # the tapset alias the script named (what stap -l lists)
    alias_vars: list = field(default_factory=list)  # the variables its body sets
    # process.thread.begin/.end: kind process.begin/.end (run like them), for threads
    thread: bool = False


class NoMatch(Exception):
    def __init__(self, msg: str, tok: Token | None = None) -> None:
        super().__init__(msg)
        self.tok = tok


def _lit_arg(c: A.Component):
    return None if c.arg is None else c.arg.value


def _match_component(pattern: A.Component, alias: A.Component) -> bool:
    if not fnmatch.fnmatchcase(alias.functor, pattern.functor.replace("**", "*")):
        return False
    return _lit_arg(pattern) == _lit_arg(alias)


class ProbeDeriver:
    def __init__(self, aliases: list[A.ProbeAlias], runtime: str,
                 target_exe: str | None = None) -> None:
        self.aliases = aliases
        self.runtime = runtime
        self.target_exe = target_exe  # what process.mark(...) means: the -c/-x program

    def derive(self, probe: A.Probe) -> list[DerivedProbe]:
        out: list[DerivedProbe] = []
        for loc in probe.locations:
            try:
                got = self._derive_point(loc, probe.body, [], 0)
            except NoMatch as e:
                if loc.optional:
                    continue
                first = loc.components[0].tok
                raise SemanticError("while resolving probe point", first,
                                    chain=SemanticError(str(e) or "no match", e.tok)) from None
            for d in got:
                # Each derived probe gets its own tree: pass 2 binds its locals.
                d.body = copy.deepcopy(d.body)
                if loc.condition is not None:
                    d.body = _guard(d.body, loc.condition)
            out.extend(got)
            if loc.sufficient and got:
                break
        return out

    def _derive_point(self, loc: A.ProbePoint, body: A.Block, stack: list,
                      depth: int) -> list[DerivedProbe]:
        if depth > 20:
            raise NoMatch("recursive probe alias")
        comps = loc.components
        # Aliases first: stap lets tapsets name any probe point.
        results: list[DerivedProbe] = []
        for al in self.aliases:
            if al in stack:
                continue
            for name in al.alias_names:
                k = len(name.components)
                if k > len(comps) or not all(
                        _match_component(comps[i], name.components[i]) for i in range(k)):
                    continue
                suffix = comps[k:]
                for target in al.locations:
                    sub = A.ProbePoint(tok=target.tok, components=target.components + suffix,
                                       optional=target.optional, sufficient=target.sufficient,
                                       condition=target.condition)
                    merged = _merge_bodies(al, body)
                    try:
                        got = self._derive_point(sub, merged, stack + [al], depth + 1)
                    except NoMatch:
                        if target.optional:
                            continue
                        raise
                    if sub.condition is not None:
                        for d in got:
                            d.body = _guard(d.body, sub.condition)
                    for d in got:
                        if d.alias is None or depth == 0:  # the outermost name a user wrote
                            d.alias = ".".join(c.functor for c in name.components) + \
                                "".join(f".{c.functor}" for c in suffix)
                            d.alias_vars = _assigned_names(al.body)
                    results.extend(got)
        if results:
            return results
        return self._builtin(loc, body)

    def _builtin(self, loc: A.ProbePoint, body: A.Block) -> list[DerivedProbe]:
        comps = loc.components
        head = comps[0]
        pp = probe_point_text(A.ProbePoint(tok=loc.tok, components=comps))
        tok = head.tok
        name = head.functor
        if name in ("begin", "end", "error") and len(comps) == 1:
            order = _lit_arg(head) or 0
            if not isinstance(order, int):
                raise NoMatch("expected a number")
            return [DerivedProbe(name, pp, tok, body, order=order)]
        if name == "never" and len(comps) == 1 and head.arg is None:
            return [DerivedProbe("never", pp, tok, body)]
        if name == "timer" and len(comps) >= 2:
            return [self._timer(comps, pp, tok, body)]
        for fam in BUILTIN_FAMILIES:
            if fnmatch.fnmatchcase(fam, name) and fam in ("begin", "end", "error", "never") and len(comps) == 1:
                return [DerivedProbe(fam, fam, tok, body)]
        if name == "process" and any(c.functor == "mark" for c in comps[1:]):
            return self._marks(comps, pp, tok, body)
        if name == "process":
            return [self._process(comps, pp, tok, body)]
        if name == "kernel" and self.runtime == "kmod":
            return [self._kernel(comps, pp, tok, body)]
        if name in ("kernel", "module", "syscall", "perf", "procfs",
                    "netfilter", "java", "python"):
            what = {"process": "process probes (function, mark, begin/end)",
                    "kernel": "kernel probes", "module": "kernel module probes"}.get(name, f"{name} probes")
            raise SemanticError(f"not supported yet: {what} in the {self.runtime} runtime", tok)
        if name in ("begin", "end", "error", "never") and len(comps) > 1:
            raise NoMatch("probe point mismatch", comps[1].tok)
        if len(comps) == 1 or name not in BUILTIN_FAMILIES:
            # stap's match_node: an unknown first component is a "probe point mismatch"
            raise NoMatch("probe point mismatch", tok)
        raise NoMatch("no match")

    def _kernel(self, comps: list, pp: str, tok: Token, body: A.Block) -> DerivedProbe:
        """kernel.function("NAME")[.call|.return]: a kprobe or kretprobe on a symbol."""
        fn = comps[1] if len(comps) > 1 else None
        tail = [c.functor for c in comps[2:]]
        if fn is None or fn.functor != "function":
            what = ".".join(c.functor for c in comps)
            raise SemanticError(f"not supported yet: probe point '{what}' in the kmod runtime "
                                "(kernel.function(\"NAME\") and .return are)", tok)
        name = _lit_arg(fn)
        if not isinstance(name, str) or tail not in ([], ["call"], ["return"]):
            raise NoMatch("probe point mismatch", fn.tok)
        if any(ch in name for ch in "*?[@:"):
            raise SemanticError("not supported yet: wildcards, @file and :line in "
                                "kernel.function (a single symbol name is)", fn.tok)
        return DerivedProbe("kernel.function", pp, tok, body, function=name,
                            ret=tail == ["return"])

    def _process(self, comps: list, pp: str, tok: Token, body: A.Block) -> DerivedProbe:
        """process[("PATH"|PID)].begin/.end; the rest of the family is other issues' work."""
        head, rest = comps[0], [c.functor for c in comps[1:]]
        arg = _lit_arg(head)
        path = pid = None
        if isinstance(arg, str):
            path = resolve_executable(arg)
            if path is None:
                raise SemanticError(f"cannot find executable '{arg}'", head.tok)
        elif isinstance(arg, int):
            pid = arg
        if rest in (["begin"], ["end"]) and all(c.arg is None for c in comps[1:]):
            return DerivedProbe("process." + rest[0], pp, tok, body,
                                target_path=path, target_pid=pid)
        if rest in (["thread", "begin"], ["thread", "end"]) and all(c.arg is None for c in comps[1:]):
            return DerivedProbe("process." + rest[1], pp, tok, body,
                                target_path=path, target_pid=pid, thread=True)
        i = 1
        library = None
        if len(comps) > 2 and comps[1].functor == "library" and isinstance(_lit_arg(comps[1]), str):
            library = _lit_arg(comps[1])
            i = 2
        fn = comps[i] if len(comps) > i else None
        tail = rest[i:]
        if (fn is not None and fn.functor == "plt" and tail in ([], ["return"])
                and (fn.arg is None or isinstance(_lit_arg(fn), str))):
            return DerivedProbe("process.function", pp, tok, body, target_path=path,
                                target_pid=pid, function=_lit_arg(fn) or "*",
                                ret=tail == ["return"], library=library, plt=True)
        if (fn is not None and fn.functor == "function" and isinstance(_lit_arg(fn), str)
                and tail in ([], ["call"], ["return"]) and "@" not in _lit_arg(fn)
                and all(c.arg is None for c in comps[i + 1:])):
            return DerivedProbe("process.function", pp, tok, body, target_path=path,
                                target_pid=pid, function=_lit_arg(fn), ret=tail == ["return"],
                                library=library)
        what = ".".join(rest) or "process"
        raise SemanticError(f"not supported yet: process probe '{what}' in the {self.runtime} "
                            "runtime (begin, end, function(\"NAME\"), .plt, .call, .return and "
                            ".library are)", tok)

    def _marks(self, comps: list, pp: str, tok: Token, body: A.Block) -> list[DerivedProbe]:
        """process[("PATH")][.provider("P")].mark("NAME"): one probe per matching marker."""
        from ..binfo.sdt import SdtError, match_markers
        head, rest = comps[0], comps[1:]
        arg = _lit_arg(head)
        if isinstance(arg, str) and any(ch in arg for ch in "*?["):
            paths = _glob_elf(arg)  # tapsets name installations by pattern, as stap's do
            if not paths:
                raise NoMatch("no match")
        elif isinstance(arg, str):
            path = resolve_executable(arg)
            if path is None:
                raise SemanticError(f"cannot find executable '{arg}'", head.tok)
            paths = [path]
        elif arg is None and self.target_exe is not None:
            paths = [self.target_exe]
        else:
            raise SemanticError("not supported yet: process.mark needs process(\"PATH\") or "
                                "the program given with -c/-x", tok)
        provider = None
        if rest and rest[0].functor == "provider" and isinstance(_lit_arg(rest[0]), str):
            provider, rest = _lit_arg(rest[0]), rest[1:]
        if len(rest) != 1 or rest[0].functor != "mark" or not isinstance(_lit_arg(rest[0]), str):
            raise NoMatch("probe point mismatch", rest[0].tok if rest else tok)
        found = []
        for path in paths:
            try:
                found += [(path, m) for m in match_markers(path, provider, _lit_arg(rest[0]))]
            except (SdtError, OSError) as e:
                if len(paths) == 1:
                    raise SemanticError(str(e).removeprefix("ERROR: "), tok) from None
        if not found:
            raise NoMatch("no match")
        out = []
        for path, m in found:
            where = f'process("{path}")' + (f'.provider("{m.provider}")' if provider else "")
            out.append(DerivedProbe("process.mark", f'{where}.mark("{m.name}")', tok,
                                    copy.deepcopy(body) if len(found) > 1 else body,
                                    target_path=path, function=m.name, marker=m))
        return out

    def _timer(self, comps: list, pp: str, tok: Token, body: A.Block) -> DerivedProbe:
        unit = comps[1]
        val = _lit_arg(unit)
        if unit.functor == "profile":
            raise SemanticError("not supported yet: timer.profile in the user runtime "
                                "(it samples every CPU; use --runtime=kmod)", unit.tok)
        if unit.functor == "hz":
            if not isinstance(val, int) or val <= 0:
                raise SemanticError("invalid rate for timer.hz", unit.tok)
            interval = 10**9 // val
            mult = interval
        elif unit.functor in TIMER_UNITS:
            if not isinstance(val, int) or val <= 0:
                raise SemanticError("interval must be a positive number", unit.tok)
            mult = TIMER_UNITS[unit.functor]
            interval = val * mult
        else:
            raise NoMatch("probe point mismatch", unit.tok)
        rnd = 0
        rest = comps[2:]
        if rest:
            r = rest[0]
            rv = _lit_arg(r)
            if r.functor != "randomize" or len(rest) != 1 or not isinstance(rv, int) or rv < 0:
                raise NoMatch("no match")
            if unit.functor == "hz":
                raise SemanticError("randomize is not supported with timer.hz", r.tok)
            rnd = rv * mult
            if rnd > interval:
                raise SemanticError("randomization value must be less than the interval", r.tok)
        return DerivedProbe("timer", pp, tok, body, interval_ns=interval, randomize_ns=rnd)


def _assigned_names(body: A.Block) -> list[str]:
    """Variables a tapset alias body sets at its top level (filename = ...), in order."""
    out = []
    for st in body.statements:
        v = getattr(st, "value", None)
        if isinstance(v, A.Assignment) and isinstance(v.left, A.Symbol) and \
                v.left.name not in out:
            out.append(v.left.name)
    return out


def _glob_elf(pattern: str) -> list[str]:
    """ELF files matching a process("PATTERN") path, by real path, once each."""
    import glob
    import os
    out = []
    for p in sorted(glob.glob(pattern)):
        real = os.path.realpath(p)
        try:
            with open(real, "rb") as f:
                if f.read(4) != b"\x7fELF":
                    continue
        except OSError:
            continue
        if real not in out:
            out.append(real)
    return out


def resolve_executable(name: str) -> str | None:
    """A process("NAME") path as stap resolves it: through $PATH when it has no '/'."""
    import os
    import shutil
    found = name if "/" in name else shutil.which(name)
    if found is None or not os.path.exists(found):
        return None
    return os.path.realpath(found)


def _merge_bodies(al: A.ProbeAlias, body: A.Block) -> A.Block:
    """The alias body runs before the user's (`=`) or after it (`+=`)."""
    pro = copy.deepcopy(al.body)
    user = body
    parts = [user, pro] if al.epilogue else [pro, user]
    return A.Block(tok=body.tok, statements=parts)


def _guard(body: A.Block, cond: A.Expression) -> A.Block:
    return A.Block(tok=body.tok, statements=[
        A.IfStatement(tok=cond.tok, cond=copy.deepcopy(cond), thenblock=body)])
