"""Pass 3 for --runtime=kmod: the same statements and expressions as emit.py, as kernel C.

What differs from the user runtime: frames keep their strings and statistics
in the CPU's scratch area (the kernel stack is 16 KiB), `$return` reads the
kretprobe's registers, and the module carries a table of its probes
(native/kmod/utrace_kmod.h) from which it registers timers and kprobes.
"""
from __future__ import annotations

import re

from ..lang import ast as A
from .cexpr import c_string
from .emit import STATE_BIT, Translator

KIND = {"begin": "UTR_K_BEGIN", "end": "UTR_K_END", "error": "UTR_K_ERROR",
        "never": "UTR_K_NEVER", "timer": "UTR_K_TIMER"}
_STR_DECL = re.compile(r"char (\w+)\[MAXSTRINGLEN\];$")
_STAT_DECL = re.compile(r"utr_stat_data (\w+);$")

STATE_BIT.setdefault("kernel.function", "(1 << UTR_ST_RUNNING)")


class KmodTranslator(Translator):
    def __init__(self, program, script_name: str) -> None:
        super().__init__(program, script_name)
        self._macros: list[str] = []

    def includes(self) -> list[str]:
        return ["utrace_rt.h", "utrace_kmod.h"]

    def frame_decls(self, function: bool) -> list[str]:
        out = ["uint32_t scratch_mark = c->scratch_used; (void)scratch_mark;"] if function else []
        self._macros = []
        for d in self.frame.decls:
            m = _STR_DECL.match(d)
            if m:
                out.append(f"char *{m[1]} = utr_scratch(c, MAXSTRINGLEN);")
                continue
            m = _STAT_DECL.match(d)
            if m:
                out.append(f"utr_stat_data *{m[1]}_p = utr_scratch(c, sizeof(utr_stat_data));")
                out.append(f"#define {m[1]} (*{m[1]}_p)")
                self._macros.append(m[1])
                continue
            out.append(d)
        return out

    def frame_exit(self, function: bool) -> list[str]:
        out = ["c->scratch_used = scratch_mark;"] if function else []
        return out

    def _close_macros(self) -> None:
        for name in self._macros:
            self.lines.append(f"#undef {name}")
        self._macros = []

    def _function(self, f: A.FunctionDecl) -> None:
        super()._function(f)
        self._close_macros()

    def _probe(self, d) -> None:
        super()._probe(d)
        self._close_macros()

    def return_value(self, e: A.TargetSymbol) -> str:
        return (f"({{ int64_t rv_; if (utr_kreturn(c, &rv_)) {{ utr_error(c, "
                f"\"$return is only available in .return probes\", {self.loc(e.tok)}); "
                f"{self.err_jump()} }} rv_; }})")

    def extra_tables(self) -> None:
        self.out("const char utr_kmod_name[] = KBUILD_MODNAME;")
        self.out("const struct utr_kprobe_desc utr_kprobe_descs[] = {")
        for d in self.p.probes:
            if d.kind == "kernel.function":
                kind = "UTR_K_KRETPROBE" if d.ret else "UTR_K_KPROBE"
            else:
                kind = KIND[d.kind]
            sym = c_string(d.function) if d.function else "NULL"
            self.out(f"    {{ {d.index}, {kind}, {d.order}, {d.interval_ns}, "
                     f"{d.randomize_ns}, {sym} }},")
        self.out("    { -1, -1, 0, 0, 0, NULL }")
        self.out("};")
        self.out(f"const int utr_kprobe_ndescs = {len(self.p.probes)};")
