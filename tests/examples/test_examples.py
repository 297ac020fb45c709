"""Every bundled example runs against a real program and prints what its header promises."""
from __future__ import annotations

import shutil
import subprocess

from tests.conftest import ROOT, need, run_utrace

EXAMPLES = ROOT / "examples"


def test_every_example_has_a_header_and_a_test():
    tested = {"countdown.stp", "callcount.stp", "ustacks.stp"}
    for f in EXAMPLES.glob("*.stp"):
        lines = f.read_text().splitlines()
        assert lines[1].startswith(f"# {f.name} - "), f"{f.name}: one-line header comment"
        assert f.name in tested, f"{f.name} has no test"


def test_countdown():
    r = run_utrace([str(EXAMPLES / "countdown.stp"), "3"])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:4] == ["counting down from 3", "3...", "2...", "1..."]
    assert lines[4].startswith("liftoff after 3 ticks, ")
    assert lines[5].startswith(" value |") and lines[-1] == ""


def test_callcount(tmp_path):
    need(shutil.which("gcc") is not None, "gcc")
    exe = tmp_path / "calls"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(ROOT / "tests" / "testprogs" / "att_calls.c")],
                   check=True, timeout=120)
    r = run_utrace(["-c", f"{exe} 1000", str(EXAMPLES / "callcount.stp")])
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0] == "sum 1499600"  # the program's own output, unchanged
    table = {ln.split()[1]: int(ln.split()[0]) for ln in out[2:]}
    assert out[1].split() == ["CALLS", "FUNCTION"]
    assert table["work"] == 1000 and table["other"] == 100 and table["main"] == 1


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
