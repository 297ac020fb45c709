"""Runs the five passes for one invocation, with -p stops and -v timing as stap does."""
from __future__ import annotations

import os
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .diag import EmptyScript, ParseError, ParseErrors, ScriptError, SemanticError, UtraceError


@dataclass
class Options:
    script_text: str | None = None
    script_name: str = "<input>"
    args: list[str] = field(default_factory=list)
    verbose: int = 0
    last_pass: int = 5
    output: str | None = None
    defines: list[tuple[str, str]] = field(default_factory=list)
    include: list[str] = field(default_factory=list)
    guru: bool = False
    globals_set: list[tuple[str, str]] = field(default_factory=list)
    timeout: float | None = None
    suppress_warnings: bool = False
    unoptimized: bool = False
    runtime: str = "user"
    global_display: bool = True
    folded: str | None = None      # --folded=FILE: stack aggregates as folded stacks
    flamegraph: str | None = None  # --flamegraph=FILE: and drawn as an SVG flame graph
    command: str | None = None
    pid: int | None = None
    force: bool = False  # --force: attach despite a seccomp filter; as root, non-dumpable
    dump: str = ""  # --dump-functions / --dump-probe-types / --dump-probe-aliases
    list_probes: int = 0  # -l (1) or -L (2): the script is "probe POINT {}", listed
    kernel_release: str | None = None  # -r KVER (kmod)
    run_module: str | None = None  # --run-module=FILE.ko: pass 5 only (kmod)


class _Timer:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.r0 = resource.getrusage(resource.RUSAGE_SELF)

    def text(self) -> str:
        r = resource.getrusage(resource.RUSAGE_SELF)
        usr = int((r.ru_utime - self.r0.ru_utime) * 1000)
        sys_ = int((r.ru_stime - self.r0.ru_stime) * 1000)
        real = int((time.monotonic() - self.t0) * 1000)
        return f"in {usr}usr/{sys_}sys/{real}real ms."


def _fail_pass(n: int, what: str) -> None:
    sys.stderr.write(f"Pass {n}: {what} failed.  [man error::pass{n}]\n")


def run(opts: Options) -> int:
    if opts.dump:
        return _dump(opts)
    if opts.run_module is not None:
        from .run.kmod import run_module
        return run_module(Path(opts.run_module), opts)
    if opts.runtime == "kmod" and opts.last_pass == 5:
        from .run.kmod import check_privilege
        check_privilege(opts.kernel_release)  # before spending passes 1-4
    if opts.runtime == "user" and opts.last_pass == 5 and opts.command is None and opts.pid is None:
        hit = _manifest_lookup(opts)
        if hit is not None:
            so, probes, notes = hit
            sys.stderr.write(notes)  # what passes 1-2 said when the object was built
            if opts.verbose:
                sys.stderr.write(f"Pass 1-4: skipped, using cached \"{so}\"\n")
            return _pass5(opts, so, probes)

    from .elaborate import elaborate
    from .lang.parser import parse_text
    from .lang.preprocess import PPContext
    from .lang.printer import stapfile
    from .tapset_loader import TapsetLibrary, search_path_from_env, tapset_dirs
    pp = PPContext(runtime=opts.runtime, guru_mode=opts.guru)
    if opts.runtime == "kmod":
        pp.runtime = "kernel"

    # Pass 1
    t = _Timer()
    used_args: set[int] = set()
    try:
        user = parse_text(opts.script_text, opts.script_name, args=opts.args, pp=pp,
                          privileged=opts.guru, used_args=used_args)
    except EmptyScript as e:
        sys.stderr.write(e.render())
        _fail_pass(1, "parse")
        return 1
    except (ParseError, ParseErrors) as e:
        n = len(e.errors) if isinstance(e, ParseErrors) else 1
        sys.stderr.write(e.render())
        sys.stderr.write(f"{n} parse error{'s' if n > 1 else ''}.\n")
        _fail_pass(1, "parse")
        return 1
    library = TapsetLibrary(tapset_dirs(opts.include + search_path_from_env()), pp)
    if opts.verbose:
        sys.stderr.write(f"Pass 1: parsed user script and {len(library.files)} library scripts "
                         f"{t.text()}\n")
    if opts.last_pass == 1:
        sys.stdout.write(stapfile(user))
        return 0

    # Pass 2
    t = _Timer()
    try:
        _apply_global_overrides(user, opts)
        program = elaborate(user, library, runtime=opts.runtime,
                            global_display=opts.global_display and opts.last_pass > 2,
                            target_exe=_target_exe(opts),
                            fold_stacks=bool(opts.folded or opts.flamegraph))
    except ScriptError as e:
        sys.stderr.write(e.render())
        _warn_unused_args(opts, used_args, None)
        _fail_pass(2, "analysis")
        return 1
    notes = _warn_unused_args(opts, used_args, program)
    if opts.verbose:
        sys.stderr.write(f"Pass 2: analyzed script: {len(program.probes)} probes, "
                         f"{len(program.functions)} functions, {len(program.embeds)} embeds, "
                         f"{len(program.globals)} globals {t.text()}\n")
    if opts.list_probes:
        from .elaborate.listing import probe_points
        points = probe_points(program, with_vars=opts.list_probes == 2)
        sys.stdout.write("".join(f"{x}\n" for x in points))
        return 0 if points else 1
    if opts.last_pass == 2:
        from .elaborate.listing import listing
        sys.stdout.write(listing(program))
        return 0

    # Pass 3
    t = _Timer()
    from .translate.emit import Translator
    from .translate.kmod import KmodTranslator
    try:
        tr = KmodTranslator if opts.runtime == "kmod" else Translator
        csrc = tr(program, opts.script_name).translate()
    except SemanticError as e:
        sys.stderr.write(e.render())
        _fail_pass(3, "translation")
        return 1
    if opts.verbose:
        sys.stderr.write(f"Pass 3: translated to C {t.text()}\n")
    if opts.last_pass == 3:
        sys.stdout.write(csrc)
        return 0

    # Pass 4
    t = _Timer()
    if opts.runtime == "kmod":
        from .build.kbuild import build_kmod
        ko, cached = build_kmod(csrc, _defines(opts), opts.kernel_release or os.uname().release,
                                opts.verbose)
        if _pass4_said(opts, ko, cached, t):
            return 0
        from .run.kmod import run_module
        return run_module(ko, opts)
    from .build.compiler import build_module
    so, cached = build_module(csrc, _defines(opts))
    if _pass4_said(opts, so, cached, t):
        return 0
    from .run.session import ProbeInfo

    probes = [ProbeInfo(d.index, d.kind, d.order, d.interval_ns, d.randomize_ns,
                        d.target_path, d.target_pid, d.function, d.ret, d.library, d.plt,
                        d.thread, *_mark_fields(d))
              for d in program.probes]
    _manifest_store(opts, so, probes, notes)
    return _pass5(opts, so, probes)


def _dump(opts: Options) -> int:
    from . import reference
    from .lang.preprocess import PPContext
    from .tapset_loader import TapsetLibrary, search_path_from_env, tapset_dirs
    if opts.dump == "dump-probe-types":
        lines = reference.dump_probe_types(opts.runtime)
        if not lines:
            raise UtraceError(f"ERROR: not supported yet: --runtime={opts.runtime}")
    else:
        pp = PPContext(runtime=opts.runtime, guru_mode=opts.guru)
        library = TapsetLibrary(tapset_dirs(opts.include + search_path_from_env()), pp)
        if opts.dump == "dump-functions":
            lines = reference.dump_functions(library, verbose=opts.verbose > 0)
        else:
            lines = reference.dump_probe_aliases(library)
    sys.stdout.write("".join(f"{x}\n" for x in lines))
    return 0


def _pass4_said(opts: Options, built: Path, cached: bool, t: _Timer) -> bool:
    """Report pass 4 (-v) and print the object's path at -p4: True when that is the end."""
    if opts.verbose:
        how = "using cached" if cached else "compiled C into"
        sys.stderr.write(f"Pass 4: {how} \"{built}\" {t.text()}\n")
    if opts.last_pass == 4:
        sys.stdout.write(f"{built}\n")
        return True
    return False


def _mark_fields(d) -> tuple[int, int]:
    m = getattr(d, "marker", None)
    return (m.pc, m.semaphore) if m is not None else (0, 0)


def _target_exe(opts: Options) -> str | None:
    """The program -c runs or -x names: what process.mark(...) without a path means."""
    if opts.pid is not None:
        try:
            return os.path.realpath(f"/proc/{opts.pid}/exe")
        except OSError:
            return None
    if opts.command is not None:
        from .elaborate.derive import resolve_executable
        from .run.target import command_argv
        argv = command_argv(opts.command)
        return None if argv[0] == "/bin/sh" and len(argv) > 2 and argv[1] == "-c" else \
            resolve_executable(argv[0])
    return None


def _pass5(opts: Options, so: Path, probes: list) -> int:
    from .run.session import Session
    t = _Timer()
    out = _open_output(opts.output)
    if opts.verbose:
        sys.stderr.write("Pass 5: starting run.\n")
    if opts.command is None and opts.pid is None and any(
            p.kind.startswith("process.") for p in probes):
        raise UtraceError("ERROR: process probes need a process to trace: give -c CMD or -x PID "
                          "(system-wide process probes are the kernel runtime's)")
    sess = Session(so, probes, out, opts.args, opts.timeout, opts.verbose,
                   command=opts.command, pid=opts.pid, force=opts.force)
    if opts.folded or opts.flamegraph:
        sess.fold_to(opts.folded, opts.flamegraph)
    try:
        rc = sess.run()
    finally:
        sess.close()
        if out is not sys.stdout.buffer:
            out.close()
    if opts.verbose:
        sys.stderr.write(f"Pass 5: run completed {t.text()}\n")
    if rc:
        _fail_pass(5, "run")
    return rc


def _manifest_key(opts: Options) -> str:
    """Everything that decides what passes 1-4 produce, down to source file times."""
    import hashlib
    import platform
    from . import __version__
    from .paths import native_dir, tapset_dir
    h = hashlib.sha256()
    for part in (__version__, opts.script_text, opts.script_name, repr(opts.args),
                 repr(opts.defines), repr(opts.guru), repr(opts.globals_set),
                 repr(opts.include), opts.runtime, repr(opts.global_display),
                 repr((opts.folded is not None, opts.flamegraph is not None)),
                 platform.release(), os.environ.get("SYSTEMTAP_TAPSET", ""),
                 _file_stamp(_target_exe(opts) or "")):
        h.update(part.encode("utf-8", "surrogateescape"))
        h.update(b"\0")
    code = Path(__file__).resolve().parent
    roots = [code, native_dir(), tapset_dir()] + [Path(d) for d in opts.include]
    for root in roots:
        if not root.is_dir():
            continue
        for f in sorted(root.rglob("*")):
            if f.suffix in (".py", ".c", ".h", ".stp"):
                st = f.stat()
                h.update(f"{f}:{st.st_mtime_ns}:{st.st_size}\n".encode())
    return h.hexdigest()[:32]


def _manifest_lookup(opts: Options):
    import json
    from .cachedir import cache_dir, check_owned
    from .run.session import ProbeInfo
    try:
        path = cache_dir() / f"session_{_manifest_key(opts)}.json"
        if not path.exists():
            return None
        check_owned(path)
        data = json.loads(path.read_text())
        so = Path(data["so"])
        if not so.exists():
            return None
        check_owned(so)
        if any(_file_stamp(f) != stamp for f, stamp in data.get("deps", {}).items()):
            return None  # a binary whose markers were compiled in has changed
        return so, [ProbeInfo(*p) for p in data["probes"]], data.get("notes", "")
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _file_stamp(path: str) -> str:
    """Which file is at path, for caches of what was read from it."""
    if not path:
        return ""
    try:
        st = os.stat(path)
    except OSError:
        return ""
    return f"{path}:{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"


def _manifest_store(opts: Options, so: Path, probes: list, notes: str) -> None:
    import json
    from .cachedir import cache_dir
    try:
        path = cache_dir() / f"session_{_manifest_key(opts)}.json"
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        # Mark probes compile a binary's marker addresses and argument operands in.
        deps = {p.target_path: _file_stamp(p.target_path) for p in probes
                if p.kind == "process.mark" and p.target_path}
        tmp.write_text(json.dumps({"so": str(so), "notes": notes, "deps": deps, "probes": [
            [p.index, p.kind, p.order, p.interval_ns, p.randomize_ns, p.target_path,
             p.target_pid, p.function, p.ret, p.library, p.plt, p.thread, p.mark_pc,
             p.mark_sem] for p in probes]}))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError:
        pass  # a cache that cannot be written only costs time


def _warn_unused_args(opts: Options, used: set[int], program) -> str:
    """stap's warning for arguments the script never reads (unless it uses argv/argc)."""
    if opts.suppress_warnings:
        return ""
    if program is not None and any(g.name in ("argv", "argc") for g in program.globals):
        return ""
    text = "".join(f"WARNING: unused command line option ${i}/@{i}\n"
                   for i in range(1, len(opts.args) + 1) if i not in used)
    sys.stderr.write(text)
    return text


def _defines(opts: Options) -> list[tuple[str, str]]:
    return list(opts.defines)


def _open_output(path: str | None):
    if path is None:
        return sys.stdout.buffer
    try:
        return open(path, "wb")
    except OSError as e:
        raise UtraceError(f"ERROR: cannot open output file '{path}': {e.strerror}") from None


def _apply_global_overrides(user, opts: Options) -> None:
    """-G name=value sets a global's initial value, as stap does."""
    from .lang import ast as A
    from .lang.lexer import parse_number
    from .diag import Token, OP
    for name, value in opts.globals_set:
        for g in user.globals:
            if g.name == name:
                break
        else:
            raise SemanticError(f"global variable '{name}' from -G not found in the script")
        num = parse_number(value) if value.lstrip("-").isdigit() or value.startswith("0x") else None
        tok = Token(OP, value, None, 0, 0)
        if num is not None and (g.type in (None, A.LONG)):
            lit = A.Literal(tok=tok, value=num)
            lit.type = A.LONG
        else:
            lit = A.Literal(tok=tok, value=value)
            lit.type = A.STRING
        g.init = lit
        g.arity = 0
        if g.type is None:
            g.type = lit.type
            g.type_tok = g.tok


def script_from_file(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    except OSError as e:
        raise UtraceError(f"ERROR: Input file '{path}' is missing or unreadable: {e.strerror}") from None
