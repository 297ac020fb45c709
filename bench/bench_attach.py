"""Attach benchmark (issue 3): `utrace -x PID` to the first probe run in the target, 1 and 64 threads.

Prints one table from one run: wall time from starting utrace to the line a
process.begin probe prints from inside the target (warm cache), and the
attach+load time utrace itself reports with -v. Goal: <= 150 ms warm.
"""
from __future__ import annotations

import os
import re
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = 'probe process.begin { printf("ready %d\\n", tid()) } probe timer.ms(1) { exit() }'


def line(stream, timeout: float = 30.0) -> str:
    end = time.monotonic() + timeout
    buf = b""
    while not buf.endswith(b"\n"):
        if not select.select([stream], [], [], max(0.0, end - time.monotonic()))[0]:
            raise RuntimeError(f"no output within {timeout} s")
        ch = os.read(stream.fileno(), 1)
        if not ch:
            break
        buf += ch
    return buf.decode()


def utrace_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("utrace")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "utrace_py"]


def one(pid: int, env: dict) -> tuple[float, float]:
    t0 = time.perf_counter()
    p = subprocess.Popen(utrace_cmd() + ["-v", "-x", str(pid), "-e", SCRIPT], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, cwd=ROOT)
    first = line(p.stdout)
    wall = time.perf_counter() - t0
    _, err = p.communicate(timeout=60)
    if not first.startswith("ready") or p.returncode != 0:
        raise RuntimeError(f"utrace failed: {first!r} {err.decode()}")
    m = re.search(r"loaded the handlers in ([0-9.]+) ms", err.decode())
    return wall, float(m.group(1)) if m else float("nan")


def main() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "inj_threads"
        subprocess.run(["cc", "-O1", "-pthread", "-o", str(exe),
                        str(ROOT / "tests" / "testprogs" / "inj_threads.c")], check=True)
        for n, mode in ((1, "idle"), (64, "idle"), (64, "busy")):
            t = subprocess.Popen([str(exe), str(n), mode], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE)
            line(t.stdout)
            try:
                one(t.pid, env)  # warm the cache
                runs = [one(t.pid, env) for _ in range(7)]
            finally:
                t.stdin.close()
                t.wait(timeout=30)
            wall = statistics.median(r[0] for r in runs)
            inner = statistics.median(r[1] for r in runs)
            rows.append((f"{n} {mode}", wall, inner))
    print("| target threads | utrace -x to first probe line (median, warm) | attach + load handlers | goal | met |")
    print("|---|---|---|---|---|")
    for n, wall, inner in rows:
        print(f"| {n} | {wall * 1000:.0f} ms | {inner:.1f} ms | <= 150 ms | {'yes' if wall <= 0.15 else 'NO'} |")


if __name__ == "__main__":
    main()
