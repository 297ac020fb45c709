"""What --dump-functions, --dump-probe-types and --dump-probe-aliases print, from the tapsets themselves."""
from __future__ import annotations

import re

from .lang import ast as A
from .lang.printer import probe_point_text
from .tapset_loader import TapsetLibrary

# The probe point forms the user runtime's deriver (elaborate/derive.py) accepts,
# in stap's --dump-probe-types notation.  tests/unit/test_reference.py elaborates
# every one of them, so this list cannot claim a form that does not work.
USER_PROBE_TYPES = [
    "begin", "begin(number)", "end", "end(number)", "error", "error(number)", "never",
    "process.begin", "process.end", "process.thread.begin", "process.thread.end",
    "process(number).begin", "process(number).end",
    "process(number).thread.begin", "process(number).thread.end",
    "process(string).begin", "process(string).end",
    "process(string).thread.begin", "process(string).thread.end",
    "process.function(string)", "process.function(string).call",
    "process.function(string).return",
    "process(string).function(string)", "process(string).function(string).call",
    "process(string).function(string).return",
    "process(number).function(string)", "process(number).function(string).call",
    "process(number).function(string).return",
    "process.library(string).function(string)",
    "process.library(string).function(string).call",
    "process.library(string).function(string).return",
    "process(string).library(string).function(string)",
    "process(string).library(string).function(string).call",
    "process(string).library(string).function(string).return",
    "process.plt", "process.plt(string)", "process.plt.return", "process.plt(string).return",
    "process(string).plt", "process(string).plt(string)", "process(string).plt.return",
    "process(string).plt(string).return",
    "process(string).library(string).plt(string)",
    "process(string).library(string).plt(string).return",
    "process.mark(string)", "process.provider(string).mark(string)",
    "process(string).mark(string)", "process(string).provider(string).mark(string)",
    "timer.hz(number)", "timer.ms(number)", "timer.ms(number).randomize(number)",
    "timer.ns(number)", "timer.ns(number).randomize(number)",
    "timer.s(number)", "timer.s(number).randomize(number)",
    "timer.sec(number)", "timer.sec(number).randomize(number)",
    "timer.us(number)", "timer.us(number).randomize(number)",
    "timer.jiffies(number)", "timer.jiffies(number).randomize(number)",
    "timer.msec(number)", "timer.msec(number).randomize(number)",
    "timer.usec(number)", "timer.usec(number).randomize(number)",
    "timer.nsec(number)", "timer.nsec(number).randomize(number)",
]

# A kernel-doc style block: "/**", " * sfunction NAME - one line", ..., "*/", then the function.
_DOC_RE = re.compile(r"/\*\*(?:\s|\*)*sfunction\s+[A-Za-z_][A-Za-z0-9_]*\s*-\s*([^\n]*?)\s*(?:\*/|\n)"
                     r"(?:(?!\*/).)*?(?:\*/)?[^\n]*\n(?:[ \t]*\n)*[ \t]*(?:private[ \t]+)?function\b", re.S)


def _visible(name: str) -> bool:
    return not name.startswith("_")


def _signature(f: A.FunctionDecl) -> str:
    params = ", ".join(f"{p.name}:{p.type or 'unknown'}" for p in f.params)
    return f"{f.name}:{f.type or 'unknown'} ({params})"


def dump_functions(lib: TapsetLibrary, verbose: bool = False) -> list[str]:
    """One line per public tapset function, `name:type (arg:type, ...)`, sorted.

    With verbose, the one-line description from the function's `/** sfunction`
    comment follows a tab, as `stap -v --dump-functions` shows it.
    """
    seen: dict[str, str] = {}
    for path in lib.files:
        if not any(_visible(n) and path in fs for n, fs in lib.func_index.items()):
            continue
        docs = function_docs(lib.text(path))
        for f in lib.parse(path).functions:
            if _visible(f.name) and not f.private:
                seen.setdefault(_signature(f), docs.get(f.tok.line, ""))
    return [f"{sig}\t{seen[sig]}" if verbose and seen[sig] else sig for sig in sorted(seen)]


def function_docs(text: str) -> dict[int, str]:
    """Line of each documented `function` keyword -> its one-line description."""
    out = {}
    for m in _DOC_RE.finditer(text):
        out[text.count("\n", 0, m.end()) + 1] = m.group(1).rstrip(" */")
    return out


def dump_probe_aliases(lib: TapsetLibrary) -> list[str]:
    """`alias = target` for every probe alias the tapsets define, sorted."""
    out = set()
    for path in lib.alias_files:
        for al in lib.parse(path).aliases:
            targets = ", ".join(probe_point_text(p) for p in al.locations)
            for name in al.alias_names:
                out.add(f"{probe_point_text(name)} = {targets}")
    return sorted(out)


def dump_probe_types(runtime: str) -> list[str]:
    """The probe point forms a runtime accepts."""
    if runtime == "user":
        return sorted(USER_PROBE_TYPES)
    return []
