"""T-17/T-18/T-19: jump patch + trampoline around a hostile C handler, in a live process."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import need

pytest.importorskip("capstone")

from injector.x86_64.decoder import decode  # noqa: E402
from injector.x86_64.relocator import Refusal  # noqa: E402
from injector.x86_64.sites import choose_entry_site  # noqa: E402
from injector.x86_64.trampoline import (SimdSave, build_entry_trampoline,  # noqa: E402
                                        jump_patch, max_trampoline_size)
from tests.x86_64.fuzzgen import cpu_flags  # noqa: E402

HERE = Path(__file__).resolve().parent
SITE_IDS = {"fx_add": 1, "fx_rz": 2, "fx_al0": 3, "fx_state": 4}


def _mid_site(fn_addr: int, code: bytes, mid: int) -> tuple[int, bytes]:
    """Whole instructions from a mid-function site covering 5 bytes."""
    insns = [i for i in decode(code, fn_addr) if i.address >= mid]
    taken, n = [], 0
    for i in insns:
        if n >= 5:
            break
        taken.append(i)
        n += i.length
    return mid, b"".join(i.raw for i in taken)


def test_trampoline_preserves_state():
    need(shutil.which("gcc") is not None, "gcc for the trampoline harness")
    simd = SimdSave.for_cpu_flags(cpu_flags())
    exe = Path(tempfile.gettempdir()) / f"utrace_tramp_harness_{os.getuid()}"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(HERE / "tramp_harness.c")], check=True)
    p = subprocess.Popen([str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    info: dict[str, int] = {}
    fns: dict[str, tuple[int, int, bytes]] = {}
    mids: dict[str, int] = {}
    for line in p.stdout:
        w = line.split()
        if w[0] == "ready":
            break
        if w[0] == "fn":
            fns[w[1]] = (int(w[2], 16), int(w[3]), bytes.fromhex(w[4]))
        elif w[0] == "mid":
            mids[w[1]] = int(w[2], 16)
        else:
            info[w[0]] = int(w[1], 0)
    tramp = info["tramp"]
    writes: list[tuple[int, bytes]] = []
    patches: list[tuple[int, bytes]] = []
    for name, (addr, size, code) in fns.items():
        if name in mids:
            site, displaced = _mid_site(addr, code, mids[name])
        else:
            choice = choose_entry_site(code, addr, size)
            assert choice.ok, choice.reason
            site, displaced = choice.site_addr, choice.displaced_bytes
        t = build_entry_trampoline(site, displaced, tramp, info["handler"], SITE_IDS[name],
                                   simd=simd)
        assert not isinstance(t, Refusal), t
        assert len(t) <= max_trampoline_size(len(displaced), simd)
        writes.append((tramp, t))
        patch = jump_patch(site, tramp, len(displaced))
        assert not isinstance(patch, Refusal)
        patches.append((site, patch))
        tramp += (len(t) + 63) & ~63
    for addr, data in writes + patches:      # trampolines first, jump bytes last
        p.stdin.write(f"{addr:x} {data.hex()}\n")
    p.stdin.write("go\n")
    p.stdin.close()
    out = p.stdout.read()
    rc = p.wait(timeout=60)
    checks = [ln for ln in out.splitlines() if ln.startswith("check")]
    assert len(checks) == 6, out
    assert rc == 0 and all(" ok" in c for c in checks), out
    print(out)
