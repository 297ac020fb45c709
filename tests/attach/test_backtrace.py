"""User backtraces without frame pointers: ubacktrace() against the program's own backtrace()."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import ROOT, need, run_utrace

PROGS = ROOT / "tests" / "testprogs"
FLAGS = ["-O2", "-fomit-frame-pointer"]


@pytest.fixture(scope="module")
def progs(tmp_path_factory) -> Path:
    need(shutil.which("gcc") is not None, "gcc")
    need(shutil.which("g++") is not None, "g++ (Debian's g++ package)")
    out = tmp_path_factory.mktemp("btprogs")
    subprocess.run(["gcc", *FLAGS, "-shared", "-fPIC", "-o", str(out / "libbtlib.so"),
                    str(PROGS / "bt_lib.c")], check=True, timeout=120)
    subprocess.run(["gcc", *FLAGS, "-pthread", "-o", str(out / "bt_prog"),
                    str(PROGS / "bt_prog.c"), f"-L{out}", "-lbtlib", f"-Wl,-rpath,{out}"],
                   check=True, timeout=120)
    subprocess.run(["g++", *FLAGS, "-o", str(out / "bt_cxx"), str(PROGS / "bt_cxx.cc")],
                   check=True, timeout=120)
    out.chmod(0o755)
    return out


def _trace(cmd: str, script: str, *opts: str) -> list[str]:
    r = run_utrace([*opts, "-c", cmd, "-e", script])
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def _own(lines: list[str]) -> list[int]:
    """The return addresses the program's backtrace() saw inside the probed function."""
    own = [ln for ln in lines if ln.startswith("own:")]
    assert len(own) == 1, lines
    return [int(a, 16) for a in own[0].split()[1:]]


def _ours(lines: list[str]) -> list[int]:
    bt = [ln for ln in lines if ln.startswith("bt:")]
    assert len(bt) == 1, lines
    return [int(a, 16) for a in bt[0].split()[1:]]


BT = 'probe process.function("{f}") {{ println("bt: ", ubacktrace()); print_ubacktrace_brief() }}'


def _brief(lines: list[str]) -> list[str]:
    return [ln.rsplit("+", 1)[0] for ln in lines if re.match(r"^[\w:<>(), ]+\+0x[0-9a-f]+$", ln)]


def test_deep_recursion_matches_own_backtrace(progs):
    lines = _trace(f"{progs}/bt_prog recurse 30", BT.format(f="bt_leaf"))
    ours, own = _ours(lines), _own(lines)
    assert len(ours) == 20  # MAXBACKTRACE frames: the probed pc, then 19 callers
    assert ours[1:] == own[:19]
    assert _brief(lines) == ["bt_leaf"] + ["bt_recurse"] * 19


def test_through_a_shared_library(progs):
    lines = _trace(f"{progs}/bt_prog lib",
                   BT.format(f="bt_leaf")
                   + ' probe process.function("bt_leaf") { print_ubacktrace() }')
    ours, own = _ours(lines), _own(lines)
    assert ours[1:] == own  # every frame, through the library and libc to _start
    assert _brief(lines)[:3] == ["bt_leaf", "bt_lib_call", "main"]
    full = [ln for ln in lines if ln.startswith(" 0x")]
    assert re.match(r" 0x[0-9a-f]{16} : bt_lib_call\+0x[0-9a-f]+/0x[0-9a-f]+ \[.*/libbtlib\.so\]$",
                    full[1]), full
    assert full[-1].split(" : ")[1].startswith("_start+")


def test_probe_inside_a_signal_handler(progs):
    lines = _trace(f"{progs}/bt_prog signal", BT.format(f="bt_leaf"))
    ours, own = _ours(lines), _own(lines)
    assert ours[1:] == own  # across the kernel's signal frame (__restore_rt's ucontext)
    names = _brief(lines)
    assert names[:2] == ["bt_leaf", "on_usr1"]
    assert names.index("raise") < names.index("bt_raise") < names.index("main")


def test_signal_handler_on_an_alternate_stack(progs):
    """The handler's frames are on the sigaltstack, the interrupted ones on the thread's
    stack: both mappings are found, and the first backtrace of the thread is whole."""
    lines = _trace(f"{progs}/bt_prog altstack", BT.format(f="bt_leaf"))
    assert _ours(lines)[1:] == _own(lines)
    assert _brief(lines)[:2] == ["bt_leaf", "on_usr1"] and "main" in _brief(lines)


def test_threads_share_the_row_cache(progs, tmp_path):
    folded = tmp_path / "th.folded"
    _trace(f"{progs}/bt_prog threads 3000 8",
           'global stacks probe process.function("bt_leaf") { stacks[ubacktrace()] <<< 1 }',
           "--folded", str(folded))
    rows = folded.read_text().splitlines()
    assert len(rows) == 1, rows  # every hit of every thread unwound to the same frames
    stack, count = rows[0].rsplit(" ", 1)
    assert count == "12000"
    assert stack.endswith(";loop_thread;" + "bt_recurse;" * 9 + "bt_leaf")


def test_cxx_frames_demangled(progs):
    lines = _trace(f"{progs}/bt_cxx 5", BT.format(f="leaf"))
    ours, own = _ours(lines), _own(lines)
    assert ours[1:] == own
    assert _brief(lines)[:7] == ["geo::leaf(int)"] + ["geo::Walker<long>::step(long)"] * 6 \
        and _brief(lines)[7] == "main"


def test_return_probed_frames_show_real_callers(progs):
    """A hijacked return address is reported as the real one (the shadow stack's)."""
    script = 'probe process.function("bt_leaf") { print_ubacktrace_brief() }'
    plain = _trace(f"{progs}/bt_prog recurse 4", script)
    hijacked = _trace(f"{progs}/bt_prog recurse 4", script +
                      ' probe process.function("bt_recurse").return { n++ } global n')
    assert _brief(hijacked) == _brief(plain) != []
    assert _brief(plain)[:6] == ["bt_leaf"] + ["bt_recurse"] * 5 and "main" in _brief(plain)
    # in the return probe itself the stack starts at the caller the function returned to
    ret = _trace(f"{progs}/bt_prog recurse 4",
                 'probe process.function("bt_recurse").return { if ($return == 1) '
                 'print_ubacktrace_brief() }')
    assert _brief(ret)[:4] == ["bt_recurse"] * 3 + ["main"]
    full = _trace(f"{progs}/bt_prog recurse 4",
                  'probe process.function("bt_recurse").return { if ($return == 1) '
                  'print_ubacktrace() }')
    assert re.fullmatch(r"Returning from:  0x[0-9a-f]{16} : bt_recurse\+0x0/0x[0-9a-f]+ \[.*\]",
                        full[1]), full
    assert re.fullmatch(r"Returning to  :  0x[0-9a-f]{16} : bt_recurse\+0x[0-9a-f]+/.*", full[2])


def test_symbol_functions(progs):
    lines = _trace(f"{progs}/bt_prog lib",
                   'probe process.function("bt_leaf") { a = uaddr(); '
                   'printf("%s|%s|%s|%s\\n", probefunc(), usymname(a), umodname(a), usymdata(a)); '
                   'c = ucallers(1); '
                   'printf("c %d %s\\n", strlen(c) > 2, usymname(strtol(c, 16))) }')
    row = [ln for ln in lines if "|" in ln][0].split("|")
    assert row[0] == row[1] == "bt_leaf"
    assert row[2] == str(progs / "bt_prog")
    assert re.fullmatch(r"bt_leaf\+0x0/0x[0-9a-f]+ \[.*/bt_prog\]", row[3])
    assert "c 1 bt_lib_call" in lines


def test_stack_aggregate_print_usyms_and_flame_graph(progs, tmp_path):
    folded, svg = tmp_path / "out.folded", tmp_path / "out.svg"
    lines = _trace(f"{progs}/bt_prog loop 40 6",
                   'global stacks probe process.function("bt_leaf") { stacks[ubacktrace()] <<< 1 } '
                   'probe end { foreach (s in stacks) { print_usyms(s); '
                   'printf("count %d\\n", @count(stacks[s])) } }',
                   "--folded", str(folded), "--flamegraph", str(svg))
    assert lines[-1] == "count 40"
    assert re.match(r" 0x[0-9a-f]+ : bt_leaf\+0x0/0x[0-9a-f]+ \[.*/bt_prog\]$", lines[0])
    assert sum(ln.split(" : ")[1].startswith("bt_recurse+") for ln in lines[1:-1]) == 7
    rows = folded.read_text().splitlines()
    assert len(rows) == 1
    stack, count = rows[0].rsplit(" ", 1)
    frames = stack.split(";")
    assert int(count) == 40
    assert frames[0] == "_start" and frames[-1] == "bt_leaf"
    assert frames[-8:-1] == ["bt_recurse"] * 7 and frames[-9] == "main"
    root = ET.parse(svg).getroot()  # well-formed XML a browser opens
    ns = "{http://www.w3.org/2000/svg}"
    titles = [t.text for t in root.iter(ns + "title")]
    assert len(list(root.iter(ns + "rect"))) >= len(frames)
    assert any(t.startswith("bt_leaf (40 samples, 100.00%)") for t in titles), titles


def test_fold_needs_a_stack_aggregate(progs, tmp_path):
    r = run_utrace(["--flamegraph", str(tmp_path / "x.svg"), "-c", f"{progs}/bt_prog lib",
                    "-e", 'global n probe process.function("bt_leaf") { n++ }'])
    assert r.returncode != 0 and "indexed by ubacktrace()" in r.stderr
    assert "Traceback" not in r.stderr


def test_compat_options_accepted(progs):
    lines = _trace(f"{progs}/bt_prog lib", BT.format(f="bt_leaf"), "-d", f"{progs}/libbtlib.so",
                   "--ldd")
    assert _ours(lines)[1:] == _own(lines)


def test_python_interpreter_folded_stacks(tmp_path):
    """Debian's python3.11 (-O2, no frame pointers, .dynsym only): every sampled stack
    unwinds to _start, and the counts add up to the probe's hits."""
    py = "/usr/bin/python3.11"
    need(Path(py).exists(), "Debian's /usr/bin/python3.11")
    work = tmp_path / "work.py"
    work.write_text("def f(x):\n    return x * 2\n"
                    "for _ in range(10):\n    list(map(f, range(100)))\n")
    folded = tmp_path / "py.folded"
    lines = _trace(f"{py} {work}",
                   'global stacks, n probe process.function("_PyEval_EvalFrameDefault") '
                   '{ stacks[ubacktrace()] <<< 1; n++ } probe end { printf("hits %d\\n", n) }',
                   "-D", "MAXSTRINGLEN=1024", "-D", "MAXBACKTRACE=64", "--folded", str(folded))
    hits = int(lines[-1].split()[1])
    rows = [ln.rsplit(" ", 1) for ln in folded.read_text().splitlines()]
    assert sum(int(c) for _, c in rows) == hits >= 1000
    stacks = {s: int(c) for s, c in rows}
    assert all(s.startswith("_start;__libc_start_main;") for s in stacks)
    assert all(s.endswith(";_PyEval_EvalFrameDefault") for s in stacks)
    # f runs 1000 times, called from C (map) under the script's own frame
    through_map = sum(c for s, c in stacks.items()
                      if "Py_RunMain;" in s and "PyEval_EvalCode;_PyEval_EvalFrameDefault;" in s
                      and s.endswith("_PyFunction_Vectorcall;_PyEval_EvalFrameDefault"))
    assert through_map >= 1000


def test_symbol_strings_are_real_strings_in_the_target(progs):
    """usymname() answers from the table the tracer publishes: usable as a map key (one
    key per function, whatever the offset), comparable, measurable."""
    lines = _trace(f"{progs}/bt_prog loop 30 3",
                   'global k, eq, len probe process.function("bt_leaf") { '
                   '  s = ubacktrace(); a = tokenize(s, " "); '
                   '  while (a != "") { k[usymname(strtol(a, 16))]++; a = tokenize("", " ") } '
                   '  eq += usymname(uaddr()) == "bt_leaf"; len = strlen(umodname(uaddr())) } '
                   'probe end { foreach (n in k) printf("%s %d\\n", n, k[n]); '
                   'printf("eq %d len %d\\n", eq, len) }')
    counts = dict(ln.rsplit(" ", 1) for ln in lines if not ln.startswith("eq "))
    assert counts["bt_leaf"] == "30" and counts["main"] == "30"
    assert counts["bt_recurse"] == "120"  # two return sites in it, one key
    assert f"eq 30 len {len(str(progs / 'bt_prog'))}" in lines
    sb = [ln for ln in _trace(f"{progs}/bt_prog lib", 'probe process.function("bt_leaf") '
                              '{ printf("<%s>\\n", sprint_ubacktrace()) }')
          if not ln.startswith("own:")]
    assert sb[0] == "<bt_leaf+0x0 [bt_prog]"
    assert re.fullmatch(r"bt_lib_call\+0x[0-9a-f]+ \[libbtlib\.so\]", sb[1])
    assert re.fullmatch(r"main\+0x[0-9a-f]+ \[bt_prog\]", sb[2])
    assert re.fullmatch(r"_start\+0x[0-9a-f]+ \[bt_prog\]>", sb[-1])  # no last newline


def test_no_user_context(progs):
    """begin and end probes have no user stack: stap's "<no user backtrace at PP>"."""
    lines = _trace(f"{progs}/bt_prog lib",
                   'probe begin { print_ubacktrace(); printf("[%s]\\n", ubacktrace()) } '
                   'probe end { print_ubacktrace_brief() }')
    assert lines[:2] == ["<no user backtrace at begin>", "[]"]
    assert lines[-1] == "<no user backtrace at end>"


GDB_FRAME = re.compile(r"^#(\d+)\s+(?:0x([0-9a-f]+) in )?(\S.*?) \(")


@pytest.mark.parametrize("cmd, leaf", [("bt_prog recurse 6", "bt_leaf"),
                                       ("bt_prog lib", "bt_leaf"), ("bt_cxx 4", "geo::leaf")])
def test_frames_match_gdb(progs, cmd, leaf):
    """gdb's `bt` at the probed function against ubacktrace() and the brief names, both
    runs without address randomisation so the addresses are the same."""
    need(shutil.which("gdb") is not None, "gdb")
    need(shutil.which("setarch") is not None, "setarch (util-linux)")
    exe, *args = cmd.split()
    g = subprocess.run(["gdb", "-batch", "-nx", "-ex", f"break {leaf}", "-ex", "run", "-ex", "bt",
                        "--args", str(progs / exe), *args], capture_output=True, text=True,
                       timeout=120)
    frames = [m.groups() for m in map(GDB_FRAME.match, g.stdout.splitlines()) if m]
    assert len(frames) >= 3 and frames[-1][2] == "main", g.stdout + g.stderr
    r = subprocess.run(["setarch", "x86_64", "-R", sys.executable, "-m", "utrace_py", "-c",
                        f"{progs / exe} {' '.join(args)}", "-e",
                        BT.format(f=leaf.split("::")[-1])],
                       capture_output=True, text=True, timeout=120, cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    ours, names = _ours(lines), _brief(lines)
    assert [int(pc, 16) for _, pc, _ in frames[1:]] == ours[1:len(frames)]
    assert [name for _, _, name in frames] == names[:len(frames)]


def test_library_loaded_later(progs, tmp_path):
    """A dlopen'ed plugin (three times over) is in the published table before its first
    call: every hit's usymname()/umodname() is the real string, one key."""
    lib, host = tmp_path / "libplug.so", tmp_path / "dl_host"
    subprocess.run(["gcc", *FLAGS, "-shared", "-fPIC", "-o", str(lib),
                    str(PROGS / "dl_plugin.c")], check=True, timeout=120)
    subprocess.run(["gcc", "-O2", "-o", str(host), str(PROGS / "dl_host.c")], check=True,
                   timeout=120)
    lines = _trace(f"{host} {lib} 5",
                   f'global k, n probe process("{lib}").function("plugin_fn") {{ '
                   'k[usymname(uaddr()), umodname(uaddr())]++; '
                   'if (n++ == 0) print_ubacktrace_brief() } '
                   'probe end { foreach ([a, b] in k) printf("key %s %s %d\\n", a, b, k[a, b]) }')
    assert [ln for ln in lines if ln.startswith("key ")] == [f"key plugin_fn {lib} 15"]
    assert _brief(lines)[:2] == ["plugin_fn", "main"]
