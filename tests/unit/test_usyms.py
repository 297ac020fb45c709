"""The tracer's side of user symbols: token expansion formats, folded stacks, the SVG."""
from __future__ import annotations

import os
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

from utrace_py.run.flamegraph import Folded, svg
from utrace_py.run.usyms import Symbolizer
from utrace_py.binfo.symbols import symbol_table


@pytest.fixture(scope="module")
def sleeper():
    """A process of our own whose modules the symbolizer reads (/bin/sleep + libc)."""
    p = subprocess.Popen(["sleep", "30"])
    time.sleep(0.2)
    yield p.pid
    p.kill()
    p.wait()


def _libc_fn(sym: Symbolizer, pid: int, name: str):
    mod = next(m for m in sym._mods[pid] if os.path.basename(m.path).startswith("libc.so"))
    fn = next(f for f in symbol_table(mod.readable_path or mod.path).functions()
              if name in f.names)
    return mod, mod.base + fn.address, fn


def test_token_formats(sleeper):
    sym = Symbolizer()
    sym.note_pid(sleeper)
    mod, addr, fn = _libc_fn(sym, sleeper, "getpid")
    name = fn.names[0]  # the preferred alias (__getpid)
    a = addr + 1

    def tok(kind: bytes, payload: bytes) -> bytes:
        return b"\x1d" + kind + str(sleeper).encode() + b":" + payload + b"\x1e"
    hexa = f"0x{a:x}".encode()
    assert sym.expand(tok(b"N", hexa)) == name.encode()
    assert sym.expand(tok(b"M", hexa)) == mod.path.encode()
    assert sym.expand(b"<" + tok(b"D", hexa) + b">") == \
        f"<{name}+0x1/{fn.size:#x} [{mod.path}]>".encode()
    assert sym.expand(tok(b"F", hexa)) == \
        f" 0x{a:016x} : {name}+0x1/{fn.size:#x} [{mod.path}]\n".encode()
    assert sym.expand(tok(b"B", hexa)) == f"{name}+0x1\n".encode()
    # a frame after the first is a return address: looked up one byte back
    two = hexa + b" " + f"0x{addr + fn.size:x}".encode()
    assert sym.expand(tok(b"L", two)).decode().split(";")[-1] == name
    assert sym.expand(tok(b"Y", hexa)) == \
        f" {hexa.decode()} : {name}+0x1/{fn.size:#x} [{mod.path}]\n".encode()
    # pid 0 (an end probe in the tracer): the -c/-x process
    assert sym.expand(b"\x1dN0:" + hexa + b"\x1e") == name.encode()
    assert sym.expand(tok(b"N", b"0x10")) == b"0x10"  # no module: the address


def test_token_split_between_drains(sleeper):
    sym = Symbolizer()
    sym.note_pid(sleeper)
    _, addr, fn = _libc_fn(sym, sleeper, "getpid")
    whole = f"x\x1dN{sleeper}:0x{addr:x}\x1ey\n".encode()
    first = sym.expand(whole[:5])
    assert first + sym.expand(whole[5:]) == f"x{fn.names[0]}y\n".encode()
    assert sym.expand(b"a\x1dN1:0x1", final=True) == b"a0x1"  # cut short: shown raw


def test_folded_collector_and_svg():
    f = Folded()
    f.add("main;work;leaf", 3)
    f.add("main;work", 1)
    f.add("main;work;leaf", 2)
    f.add("main;other<int>&", 4)
    assert f.text() == "main;other<int>& 4\nmain;work 1\nmain;work;leaf 5\n"
    root = ET.fromstring(svg(f.counts))
    ns = "{http://www.w3.org/2000/svg}"
    titles = sorted(t.text for t in root.iter(ns + "title"))
    assert titles == ["all (10 samples, 100.00%)", "leaf (5 samples, 50.00%)",
                      "main (10 samples, 100.00%)", "other<int>& (4 samples, 40.00%)",
                      "work (6 samples, 60.00%)"]
    rects = {g.find(ns + "title").text.split()[0]: g.find(ns + "rect") for g in root.iter(ns + "g")}
    # a callee sits above its caller, within its width
    w, lf = rects["work"], rects["leaf"]
    assert float(lf.get("y")) < float(w.get("y"))
    assert float(w.get("x")) <= float(lf.get("x"))
    assert float(lf.get("width")) < float(w.get("width"))
