"""process(...).mark() probes on SDT markers: $argN values, semaphores, tiers, real python3.11."""
from __future__ import annotations

import collections
import re
import shutil
import subprocess

import pytest

from tests.binfo import test_sdt
from tests.binfo.test_sdt import DECLARED, SEED
from tests.conftest import need, run_utrace

sdt_progs = test_sdt.sdt_progs  # the fixture that builds the marker test programs

# tls reads %fs: (refused); forced_mem's last two operands read the code bytes after
# the nop, which a jump patch replaces (a contrivance of the test program).
CHECKED = [m for m in DECLARED if m != "tls"]


def _script(names) -> str:
    return " ".join(f'probe process.mark("{m}") {{ printf("M %s %s\\n", $$name, $$parms) }}'
                    for m in names)


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


@pytest.mark.parametrize("variant", ["pie_O0", "pie_O2", "nopie_O2", "pie_O2_strip"])
def test_marker_arguments_equal_what_the_program_passed(sdt_progs, variant):
    exe = sdt_progs[variant]
    r = run_utrace(["-v", "-c", f"{exe} {SEED}", "-e", _script(CHECKED)])
    assert r.returncode == 0, r.stderr
    ours = collections.defaultdict(list)
    theirs = collections.defaultdict(list)
    for line in r.stdout.splitlines():
        parts = line.split()
        if parts and parts[0] == "M":
            ours[parts[1]].append([_signed(int(p.split("=")[1], 16)) for p in parts[2:]])
        elif parts and parts[0] in DECLARED:
            theirs[parts[0]].append([int(v) for v in parts[1:]])
    theirs["forced_mem"] = [v[:7] for v in theirs["forced_mem"]]
    ours["forced_mem"] = [v[:7] for v in ours["forced_mem"]]
    for m in CHECKED:
        assert ours[m] == theirs[m], m
        assert len(ours[m]) >= 1, m
    # the semaphore-guarded markers fired: the program saw its semaphores raised
    assert "semaphores 1 1" in r.stdout
    tiers = dict(re.findall(r"site (\w+) at 0x[0-9a-f]+: (jump|trap)", r.stderr))
    assert set(tiers) >= set(CHECKED)
    assert tiers["regs"] == "jump"  # a marker inside a known function, provably safe


def test_marker_errors(sdt_progs):
    exe = sdt_progs["pie_O2"]
    r = run_utrace(["-p2", "-c", str(exe), "-e", 'probe process.mark("tls") { println($arg1) }'])
    assert r.returncode != 0 and "%fs" in r.stderr
    r = run_utrace(["-p2", "-c", str(exe), "-e", 'probe process.mark("guarded") { println($arg3) }'])
    assert r.returncode != 0
    assert "target variable '$arg3' not found: marker guarded has 2 arguments" in r.stderr
    r = run_utrace(["-p2", "-c", str(exe), "-e", 'probe process.mark("no_such") { }'])
    assert r.returncode != 0


def test_semaphores_are_not_raised_without_a_probe(sdt_progs):
    exe = sdt_progs["pie_O2"]
    r = run_utrace(["-c", f"{exe} {SEED}", "-e", _script(["regs"])])
    assert r.returncode == 0, r.stderr
    assert "semaphores 0 0" in r.stdout


PY_WORKLOAD = """
import gc, os, sys
for i in range(200000):
    a = []; a.append(a)  # cyclic garbage: the collector runs again and again
gc.collect()
for g, st in enumerate(gc.get_stats()):  # collections since the interpreter started
    print("gen", g, st["collections"])
sys.stdout.flush()
os._exit(0)  # no collections at shutdown
"""


def test_python311_gc_markers(tmp_path):
    # Debian's python3.11 has 8 markers behind semaphores.  gc__start(generation) fires
    # once per collection, which the interpreter counts itself (gc.get_stats()).
    # (function__entry does not fire for ordinary calls in 3.11: cpython#98894.)
    py = "/usr/bin/python3.11"
    need(shutil.which(py) is not None, "Debian's /usr/bin/python3.11")
    script = tmp_path / "work.py"
    script.write_text(PY_WORKLOAD)
    r = run_utrace(["-v", "-c", f"{py} {script}", "-e",
                    'global n, done probe process.mark("gc__start") { n[$arg1]++ } '
                    'probe process.mark("gc__done") { done++ } '
                    'probe end { foreach (g+ in n) printf("ours %d %d\\n", g, n[g]); '
                    'printf("done %d\\n", done) }'])
    assert r.returncode == 0, r.stderr
    theirs = {int(g): int(c) for _, g, c in
              (ln.split() for ln in r.stdout.splitlines() if ln.startswith("gen "))}
    ours = {int(g): int(c) for _, g, c in
            (ln.split() for ln in r.stdout.splitlines() if ln.startswith("ours "))}
    assert theirs and ours == theirs
    assert f"done {sum(theirs.values())}" in r.stdout  # every start has its done
    # Debian strips it: the function comes from .eh_frame, the module-wide branch index
    # proves the patch safe, so the marker gets a jump, not a trap
    assert re.search(r"site gc__start at 0x[0-9a-f]+: jump", r.stderr), r.stderr


def test_listing_markers_and_functions(sdt_progs):
    exe = sdt_progs["pie_O2"]
    r = run_utrace(["-L", f'process("{exe}").mark("g*")'])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        f'process("{exe}").mark("globals") $arg1:long $arg2:long',
        f'process("{exe}").mark("guarded") $arg1:long $arg2:long']
    r = run_utrace(["-l", f'process("{exe}").function("forced_*")'])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f'process("{exe}").function("forced_mem")',
                                     f'process("{exe}").function("forced_regs")']
    r = run_utrace(["-l", f'process("{exe}").function("no_such_function_here")'])
    assert r.returncode == 1 and r.stdout == ""


def test_cxx_exceptions_counted_through_libstdcxx_markers(tmp_path):
    # Debian's libstdc++ marks every throw and catch (provider libstdcxx)
    need(shutil.which("g++") is not None, "g++")
    lib = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"
    exe = tmp_path / "cxx"
    subprocess.run(["g++", "-O2", "-pthread", "-o", str(exe),
                    str(test_sdt.PROGS / "ret_cxx.cc")], check=True, timeout=120)
    r = run_utrace(["-c", f"{exe} throw 150", "-e",
                    f'global t, c probe process("{lib}").provider("libstdcxx").mark("throw") '
                    f'{{ t++ }} probe process("{lib}").mark("catch") {{ c++ }} '
                    'probe end { printf("%d %d\\n", t, c) }'])
    assert r.returncode == 0, r.stderr
    # each catcher() call throws twice (the second throw inside the first handler)
    assert r.stdout.splitlines()[1] == "300 300"
    # the same through the tapset's names (tapsets/libstdcxx.stp): one type thrown
    r = run_utrace(["-c", f"{exe} throw 150", "-e",
                    'global t, types probe libstdcxx.throw { t++; types[tinfo]++ } '
                    'probe libstdcxx.catch { if (!(tinfo in types)) println("unknown") } '
                    'probe end { n = 0; foreach (x in types) n++; printf("%d %d\\n", t, n) }'])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1:] == ["300 1"]


def test_listing_tapset_aliases():
    need(shutil.which("/usr/bin/python3.11") is not None, "Debian's /usr/bin/python3.11")
    r = run_utrace(["-L", "python.function.*"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        f"python.function.{w} filename:string funcname:string lineno:long "
        "$arg1:long $arg2:long $arg3:long" for w in ("entry", "return")]
    r = run_utrace(["-l", "python.gc.*"])
    assert r.stdout.splitlines() == ["python.gc.done", "python.gc.start"]
