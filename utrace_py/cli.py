"""The `utrace` command line, option for option compatible with stap's."""
from __future__ import annotations

import os
import sys

from . import __version__
from .diag import UsageError, UtraceError

USAGE = """\
Usage: utrace [OPTIONS] FILENAME [ARGUMENTS]
   or: utrace [OPTIONS] -e SCRIPT [ARGUMENTS]
   or: utrace [OPTIONS] -l PROBE | -L PROBE
   or: utrace --dump-functions | --dump-probe-types | --dump-probe-aliases

SystemTap for the processes you own: compiles a SystemTap script to C, loads
it into your own process and runs its probes in-process, without root.

Options:
  -e SCRIPT       run the script given on the command line
  -c CMD          start CMD (split like a shell) and trace it and its children
  -x PID          trace the running process PID (and its threads)
  -l PROBE        list the probe points PROBE matches (wildcards allowed)
  -L PROBE        as -l, with each probe's context variables
  -o FILE         write the script's output to FILE
  -v              more verbose; repeat for more (-v shows each probe site's
                  patching tier and why)
  -p NUM          stop after pass NUM: 1 parse, 2 elaborate, 3 translate,
                  4 compile, 5 run (default)
  -D NAME[=VAL]   define a C macro for the runtime, e.g. -D MAXACTION=10000
  -I DIR          look for tapsets in DIR too
  -g              guru mode: embedded C, set_user_* and register writes
  -G NAME=VALUE   set the initial value of a global
  -T SECONDS      stop the session after SECONDS
  -w              suppress warnings
  -u              unoptimized translation (accepted)
  --runtime=user|kmod
                  user (default): in-process probes, no root;
                  kmod: kernel module for system-wide probes (root)
  -r KVER         (kmod) build for kernel KVER (/lib/modules/KVER/build)
  --run-module=FILE.ko
                  (kmod) run a module built with --runtime=kmod -p4
  --no-global-var-display
                  do not print written-but-unread globals at exit
  --force         -x: trace a process under a seccomp filter (an injected
                  syscall it refuses fails the load cleanly) or, as root, a
                  non-dumpable one
  --dump-functions      list the tapset functions (with -v: what each does)
  --dump-probe-types    list the probe point forms the runtime accepts
  --dump-probe-aliases  list the probe aliases the tapsets define
  --folded FILE   write the script's stack aggregates (globals indexed by
                  ubacktrace(), e.g. stacks[ubacktrace()] <<< 1) to FILE as
                  folded stacks, one "root;...;leaf count" line each
  --flamegraph FILE
                  draw the same stacks as an SVG flame graph in FILE
  -d MODULE, --ldd
                  accepted for compatibility: every mapped module's symbols
                  and unwind data are found without them
  -h, --help      this text
  -V, --version   version

Examples:
  utrace -e 'probe begin { printf("hello\\n"); exit() }'
  utrace -c './app arg' -e 'global n; probe process.function("work") { n++ }'
  utrace -x 1234 -e 'probe process.library("libc.so.6").function("malloc")
                      { printf("%d bytes\\n", ulong_arg(1)) }'
  utrace -c ./app -e 'global t; probe process.function("f").return
                      { t <<< gettimeofday_ns() - @entry(gettimeofday_ns()) }'
  utrace -l 'process("/usr/bin/python3.11").mark("*")'
  utrace -c './app args' examples/callcount.stp
  utrace -p3 examples/countdown.stp   # show the generated C

More: man utrace, examples/ and docs/ in the source tree.
"""

_WITH_ARG = set("eoDIGTpcxRrBmdlL")
_NO_ARG = set("vgwuhV")


def parse_args(argv: list[str]):
    from .driver import Options
    o = Options()
    script_e = None
    positional: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "-" or a == "--" or not a.startswith("-"):
            # Options stop at the script name (or the first argument after -e).
            positional = argv[i + 1:] if a == "--" else argv[i:]
            break
        if a.startswith("--"):
            name, _, val = a[2:].partition("=")
            if name == "help":
                sys.stdout.write(USAGE)
                raise SystemExit(0)
            if name == "version":
                _version()
            if name == "runtime":
                if val not in ("user", "kmod", "dyninst", "kernel"):
                    raise UsageError(f"ERROR: Invalid --runtime mode '{val}' (expected user or kmod)")
                o.runtime = {"dyninst": "user", "kernel": "kmod"}.get(val, val)
            elif name == "force":
                o.force = True
            elif name in ("dump-functions", "dump-probe-types", "dump-probe-aliases"):
                o.dump = name
            elif name == "run-module":
                # staprun's job: pass 5 of a module built earlier (utrace --runtime=kmod -p4)
                if not val:
                    raise UsageError("ERROR: --run-module=FILE.ko needs a module file")
                o.run_module = val
                o.runtime = "kmod"
            elif name == "no-global-var-display":
                o.global_display = False
            elif name in ("folded", "flamegraph"):
                if not val:  # "--flamegraph FILE" as well as "--flamegraph=FILE"
                    i += 1
                    if i >= len(argv):
                        raise UsageError(f"ERROR: option '--{name}' requires a file name")
                    val = argv[i]
                setattr(o, name, val)
            elif name in ("ldd", "all-modules", "suppress-time-limits", "color", "colour"):
                if name == "suppress-time-limits":
                    o.defines += [("MAXACTION", "1000000000"), ("MAXTRYLOCK", "1000000000")]
            elif name == "poison-cache":
                pass
            else:
                raise UsageError(f"ERROR: unrecognized option '--{name}'")
            i += 1
            continue
        j = 1
        while j < len(a):
            ch = a[j]
            if ch in _NO_ARG:
                if ch == "v":
                    o.verbose += 1
                elif ch == "g":
                    o.guru = True
                elif ch == "w":
                    o.suppress_warnings = True
                elif ch == "u":
                    o.unoptimized = True
                elif ch == "h":
                    sys.stdout.write(USAGE)
                    raise SystemExit(0)
                elif ch == "V":
                    _version()
                j += 1
                continue
            if ch not in _WITH_ARG:
                raise UsageError(f"ERROR: invalid option -- '{ch}'\nTry 'utrace --help' for more information.")
            val = a[j + 1:]
            if not val:
                i += 1
                if i >= len(argv):
                    raise UsageError(f"ERROR: option requires an argument -- '{ch}'\n"
                                     "Try 'utrace --help' for more information.")
                val = argv[i]
            _short(o, ch, val)
            if ch == "e":
                script_e = val
            elif ch in "lL":  # stap -l POINT: the script "probe POINT {}", listed
                script_e = f"probe {val} {{}}"
                o.list_probes = 1 if ch == "l" else 2
                o.last_pass = 2
            break
        i += 1
    if o.dump:
        return o
    if o.run_module is not None:
        o.args = positional
        return o
    if script_e is not None:
        o.script_text = script_e
        o.script_name = "<input>"
        o.args = positional
    else:
        if not positional:
            raise UsageError("ERROR: A script must be specified.\nTry 'utrace --help' for more information.")
        from .driver import script_from_file
        o.script_name = positional[0]
        o.script_text = script_from_file(positional[0])
        o.args = positional[1:]
    return o


def _version() -> None:
    sys.stdout.write(f"utrace {__version__} (SystemTap language 4.8 compatible; user and kmod runtimes)\n")
    raise SystemExit(0)


def _short(o, ch: str, val: str) -> None:
    if ch == "p":
        if val not in ("1", "2", "3", "4", "5"):
            raise UsageError("Invalid pass number (should be 1-5).")
        o.last_pass = int(val)
    elif ch == "o":
        o.output = val
    elif ch == "D":
        name, eq, value = val.partition("=")
        if not name or not (name[0].isalpha() or name[0] == "_") or not all(
                c.isalnum() or c == "_" for c in name):
            raise UsageError(f"ERROR: invalid -D option '{val}' (expected NAME or NAME=VALUE)")
        if any(c in value for c in "\n\"'`$;"):
            raise UsageError(f"ERROR: invalid -D value in '{val}'")
        o.defines.append((name, value))
    elif ch == "I":
        o.include.append(val)
    elif ch == "G":
        name, eq, value = val.partition("=")
        if not eq or not name.isidentifier():
            raise UsageError(f"ERROR: invalid -G option '{val}' (expected NAME=VALUE)")
        o.globals_set.append((name, value))
    elif ch == "T":
        try:
            o.timeout = float(val)
            if o.timeout <= 0:
                raise ValueError
        except ValueError:
            raise UsageError("Invalid timeout interval.") from None
    elif ch == "c":
        o.command = val
    elif ch == "x":
        try:
            o.pid = int(val)
        except ValueError:
            raise UsageError(f"ERROR: Invalid target process ID number '{val}'") from None
    elif ch == "r":
        o.kernel_release = val
    elif ch in "RBmd":
        pass  # accepted for compatibility: -R, -B, -m, -d
    elif ch == "e":
        pass


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        opts = parse_args(argv)
        from .driver import run
        return run(opts)
    except UtraceError as e:
        msg = str(e)
        sys.stderr.write(msg if msg.endswith("\n") else msg + "\n")
        return e.exit_code
    except KeyboardInterrupt:
        return 1
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 1
    except Exception as e:  # an internal bug: say so, with the traceback for the report
        import traceback
        sys.stderr.write("utrace: internal error (please report): " + repr(e) + "\n")
        traceback.print_exc()
        return 70


if __name__ == "__main__":
    raise SystemExit(main())
