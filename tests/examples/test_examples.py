"""Every bundled example runs against a real program and prints what its header promises."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, need, run_utrace

EXAMPLES = ROOT / "examples"
PROGS = ROOT / "tests" / "testprogs"
PY = "/usr/bin/python3.11"
# Examples whose test lives elsewhere, with the real program they need.
ELSEWHERE = {"pgquery.stp": "tests/attach/test_postgres.py::test_example_pgquery"}


def _tested_here() -> set[str]:
    text = Path(__file__).read_text()
    return set(re.findall(r'"(\w+\.stp)"', text)) - set(ELSEWHERE)


def test_every_example_has_a_header_and_a_test():
    tested = _tested_here() | set(ELSEWHERE)
    names = sorted(f.name for f in EXAMPLES.glob("*.stp"))
    assert len(names) >= 15
    for name in names:
        lines = (EXAMPLES / name).read_text().splitlines()
        assert lines[0] == "#!/usr/bin/env utrace", name
        assert lines[1].startswith(f"# {name} - "), f"{name}: one-line header comment"
        assert name in tested, f"{name} has no test"
    for name, where in ELSEWHERE.items():
        path, test = where.split("::")
        assert f"def {test}(" in (ROOT / path).read_text()


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Path:
    need(shutil.which("gcc") is not None, "gcc")
    exe = tmp_path_factory.mktemp("ex") / "ex_app"
    subprocess.run(["gcc", "-O2", "-pthread", "-o", str(exe), str(PROGS / "ex_app.c")],
                   check=True, timeout=120)
    return exe


def run_example(name: str, command: str, *args: str) -> list[str]:
    r = run_utrace(["-c", command, str(EXAMPLES / name), *args])
    assert r.returncode == 0, r.stderr
    assert "WARNING" not in r.stderr, r.stderr
    return r.stdout.splitlines()


def hist(lines: list[str]) -> dict[int, int]:
    """value -> count of the first @hist_log/@hist_linear table in lines."""
    out, inside = {}, False
    for ln in lines:
        if ln.strip().startswith("value |"):
            inside = True
        elif inside and "|" in ln:
            v, rest = ln.split("|", 1)
            out[int(v)] = int(rest.split()[-1]) if rest.split() else 0
        elif inside:
            break
    return out


def test_countdown():
    r = run_utrace([str(EXAMPLES / "countdown.stp"), "3"])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:4] == ["counting down from 3", "3...", "2...", "1..."]
    assert lines[4].startswith("liftoff after 3 ticks, ")
    assert sum(hist(lines).values()) == 3


def test_callcount(tmp_path):
    need(shutil.which("gcc") is not None, "gcc")
    exe = tmp_path / "calls"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(PROGS / "att_calls.c")],
                   check=True, timeout=120)
    out = run_example("callcount.stp", f"{exe} 1000")
    assert out[0] == "sum 1499600"  # the program's own output, unchanged
    table = {ln.split()[1]: int(ln.split()[0]) for ln in out[2:]}
    assert out[1].split() == ["CALLS", "FUNCTION"]
    assert table["work"] == 1000 and table["other"] == 100 and table["main"] == 1


def test_functime(app):
    out = run_example("functime.stp", f"{app} calls 10", "slow")
    m = re.match(r"slow: 5 calls, min (\d+) ns, avg (\d+) ns, max (\d+) ns", out[1])
    assert m, out
    lo, avg, hi = map(int, m.groups())
    assert 1_000_000 <= lo <= avg <= hi and hi >= 5_000_000  # slow(k) sleeps k ms
    assert sum(hist(out).values()) == 5


def test_topslow(app):
    out = run_example("topslow.stp", f"{app} calls 50", "compute")
    rows = [re.match(r" *(\d+)  compute\((\d+), (\d+)\) in thread \d+$", ln) for ln in out[2:]]
    assert len(rows) == 10 and all(rows), out
    times = [int(m.group(1)) for m in rows]
    assert times == sorted(times, reverse=True)
    assert all(int(m.group(3)) == 2 * int(m.group(2)) for m in rows)  # compute(i, 2i, 7)


def test_mallocleak(app):
    out = run_example("mallocleak.stp", f"{app} leak")
    assert out[0] == "leak kept 13"
    m = re.match(r"(\d+) mallocs, (\d+) frees, (\d+) blocks never freed", out[1])
    assert m and int(m.group(1)) >= 1013 and int(m.group(2)) >= 1000, out
    sizes = {int(b): int(n) for n, b in (re.match(r" *(\d+) x (\d+) bytes", ln).groups()
                                         for ln in out[2:])}
    assert sizes[100] == 10 and sizes[4096] >= 3  # stdio's own buffer may be one more
    assert int(m.group(3)) == sum(sizes.values())


def test_fileopens(app):
    out = run_example("fileopens.stp", f"{app} files")
    assert 'open("/etc/hostname") = 3' in " ".join(out)
    assert any(ln.endswith('open("/nonexistent/ex_app") = -1') for ln in out), out
    assert all(ln.startswith("ex_app[") for ln in out if "open" in ln)


def test_iosizes(app):
    out = run_example("iosizes.stp", f"{app} io")
    fd = int(re.search(r"io fd (\d+) wrote 10240", "\n".join(out)).group(1))
    i = out.index(f"fd {fd}: 6 writes, 10240 bytes")
    assert hist(out[i:]) | {} and {k: v for k, v in hist(out[i:]).items() if v} == \
        {512: 4, 4096: 2}


def test_mutexwait(app):
    out = run_example("mutexwait.stp", f"{app} locks 4 500")
    assert out[0] == "locks total 2000"
    per = [ln.split() for ln in out[2:] if re.match(r" +\d+ +\d+ +\d+ +\d+$", ln)]
    assert sum(1 for p in per if p[1] == "500") == 4  # each worker locked 500 times
    total = int(re.search(r"all threads: (\d+) locks", "\n".join(out)).group(1))
    assert total == sum(int(p[1]) for p in per) >= 2000
    assert sum(hist(out).values()) == total


def test_proctree(app):
    out = run_example("proctree.stp", f"{app} tree")
    starts = [ln.split() for ln in out if " start " in ln]
    ends = [ln.split() for ln in out if " end " in ln]
    root = starts[0][0]
    kids = {s[0] for s in starts if s[3] == root and s[4] == "ex_app"}
    assert len(kids) == 3
    assert {s[0] for s in starts if s[4] == "true"} == kids  # each child exec'ed /bin/true
    assert {e[0] for e in ends} == kids | {root}
    assert "tree children ok 3" in out


def test_threadlife(app):
    out = run_example("threadlife.stp", f"{app} locks 6 10")
    assert "6 threads started, 6 ended" in out
    assert sum(hist(out).values()) == 6


def test_funcargs(app):
    out = run_example("funcargs.stp", f"{app} calls 3", "compute")
    calls = [ln for ln in out if "compute" in ln]
    assert [c.split(":", 1)[1] for c in calls] == [
        " -> compute(0, 0, 7)", " <- compute = 7", " -> compute(1, 2, 7)", " <- compute = 9",
        " -> compute(2, 4, 7)", " <- compute = 15"]
    assert all(re.match(r" *\d+ ex_app\(\d+\):", c) for c in calls)


def test_calltree(app):
    out = run_example("calltree.stp", f"{app} calls 2")
    tree = [ln.split(":", 1)[1] for ln in out if re.match(r" *\d+ ex_app\(\d+\):", ln)]
    assert tree[0] == " -> _start"  # one more space per open call
    i = tree.index("   -> compute")
    assert tree[i - 1] == "  -> main" and tree[i + 1] == "   <- compute"
    assert tree.count("   -> compute") == 2 and tree.count("   -> slow") == 5, out[:2] + out[-3:]
    assert tree.count("  -> main") == tree.count("  <- main") == 1


def _python(tmp_path: Path, text: str) -> Path:
    need(shutil.which(PY) is not None, "Debian's /usr/bin/python3.11")
    script = tmp_path / "work.py"
    script.write_text(text)
    return script


def test_pyprofile(tmp_path):
    # Calls entered from C (map, generators resumed by sum, the call of work()) are what
    # Python 3.11's marker reports (cpython#98894); sys.setprofile counts the same ones.
    script = _python(tmp_path, """
import sys
def gen(n):
    yield from range(n)
def f(x):
    return x * 2
seen = {}
def prof(frame, event, arg):
    if event == "call" and frame.f_code.co_filename == __file__:
        seen[frame.f_code.co_name] = seen.get(frame.f_code.co_name, 0) + 1
def work():
    return sum(sum(gen(3)) for _ in range(40)) + sum(map(f, range(25)))
sys.setprofile(prof)
work()
sys.setprofile(None)
print("theirs", " ".join(f"{k}={v}" for k, v in sorted(seen.items())))
""")
    out = run_example("pyprofile.stp", f"{PY} {script}")
    theirs = dict(kv.split("=") for kv in out[0].split()[1:])
    ours = {m.group(2): m.group(1) for m in
            (re.match(rf" *(\d+)  (\S+) \({re.escape(str(script))}\)$", ln) for ln in out) if m}
    ours.pop("<module>", None)
    assert theirs["f"] == "25" and ours == theirs


def test_pygc(tmp_path):
    script = _python(tmp_path, """
import gc
gc.disable()
for g, n in ((0, 7), (1, 3), (2, 2)):
    for _ in range(n):
        gc.collect(g)
print("stats", " ".join(str(s["collections"]) for s in gc.get_stats()))
""")
    out = run_example("pygc.stp", f"{PY} {script}")
    theirs = [int(x) for x in out[0].split()[1:]]
    rows = {int(r[0]): int(r[1]) for r in (ln.split() for ln in out[2:])}
    # interpreter shutdown collects generation 2 again after the program's own report
    assert [rows[0], rows[1]] == theirs[:2] and rows[2] >= theirs[2] >= 2


def test_cxxexcept(tmp_path):
    need(shutil.which("g++") is not None, "g++")
    exe = tmp_path / "ret_cxx"
    subprocess.run(["g++", "-O2", "-o", str(exe), str(PROGS / "ret_cxx.cc")], check=True,
                   timeout=120)
    out = run_example("cxxexcept.stp", f"{exe} throw 50")
    assert out[-2].split() == ["THROWN", "CAUGHT", "TYPE"]
    assert out[-1].split() == ["100", "100", "St13runtime_error"]  # two throws per round


def test_ustacks(tmp_path):
    need(shutil.which("gcc") is not None, "gcc")
    exe, svg = tmp_path / "calls", tmp_path / "out.svg"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(ROOT / "tests" / "testprogs" / "att_calls.c")],
                   check=True, timeout=120)
    r = run_utrace(["--flamegraph", str(svg), "-c", f"{exe} 1000", str(EXAMPLES / "ustacks.stp"),
                    "work"])
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0] == "sum 1499600"
    assert out[1] == "900 calls from:"  # work() straight from main
    assert out[2].split(" : ")[1].startswith("work+0x0/") and "main+" in out[3]
    second = out.index("100 calls from:")  # and through other()
    assert out[second + 2].split(" : ")[1].startswith("other+")
    drawn = svg.read_text()
    assert "work (900 samples, 90.00%)" in drawn and "other (100 samples, 10.00%)" in drawn
