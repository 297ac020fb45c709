"""Foundation benchmark: utrace start-up (cold and warm) and a 1M-update loop against C.

Prints one table from one run. Goals (issue 2): warm start <= 150 ms, cold
<= 1.5 s, the loop within 3x of the same loop written in C.
"""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N = 1_000_000
REPS = 7
# The same 1M-update loop REPS times in one begin probe; the fastest repetition counts.
LOOP = ("global a, s probe begin { best = 0; "
        f"for (r = 0; r < {REPS}; r++) {{ delete a; delete s; t0 = local_clock_ns(); "
        f"for (i = 0; i < {N}; i++) {{ a[i % 1000] = i; s <<< i }} "
        "t = local_clock_ns() - t0; if (best == 0 || t < best) best = t } "
        "printf(\"%d %d\\n\", best, @count(s)); exit() }")


def utrace_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("utrace")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "utrace_py"]


def timed(cmd: list[str], env: dict) -> tuple[float, str]:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"benchmark command failed: {' '.join(cmd)}\n{r.stderr}")
    return dt, r.stdout


def main() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env["XDG_CACHE_HOME"] = tmp
        exit_script = ["-e", "probe begin { exit() }"]
        cold, _ = timed(utrace_cmd() + exit_script, env)
        # cold-script: runtime archive cached, this script not (what a new script costs).
        cold_script, _ = timed(utrace_cmd() + ["-e", "probe begin { x = 1; exit() }"], env)
        warm = statistics.median(timed(utrace_cmd() + exit_script, env)[0] for _ in range(7))
        py = statistics.median(timed([sys.executable, "-c", "pass"], env)[0] for _ in range(7))
        loop_ns = []
        for _ in range(6):
            _, out = timed(utrace_cmd() + ["-D", "MAXACTION=100000000", "--no-global-var-display", "-e", LOOP], env)
            ns, cnt = map(int, out.split())
            assert cnt == N
            loop_ns.append(ns)
        exe = Path(tmp) / "loop_ref"
        subprocess.run(["cc", "-O2", "-o", str(exe), str(ROOT / "bench" / "loop_ref.c")], check=True)
        ref_ns = []
        for _ in range(2 * REPS):
            _, out = timed([str(exe), str(N)], env)
            ref_ns.append(int(out.split()[0]))
    loop, ref = min(loop_ns), min(ref_ns)
    loop_med, ref_med = statistics.median(loop_ns), statistics.median(ref_ns)
    rows.append(("start-up, cold (empty cache)", f"{cold * 1000:.0f} ms", "<= 1500 ms", cold <= 1.5))
    rows.append(("start-up, new script (runtime cached)", f"{cold_script * 1000:.0f} ms", "", None))
    rows.append(("start-up, warm (cached object)", f"{warm * 1000:.0f} ms", "<= 150 ms", warm <= 0.15))
    rows.append(("  python interpreter alone", f"{py * 1000:.0f} ms", "", None))
    rows.append((f"begin probe: {N:,} array updates + aggregate feeds", f"{loop / 1e6:.1f} ms", "", None))
    rows.append(("  same loop written in C (-O2)", f"{ref / 1e6:.1f} ms", "", None))
    rows.append(("  ratio utrace / C (best of each)", f"{loop / ref:.2f}x", "<= 3x", loop / ref <= 3))
    rows.append(("  ratio utrace / C (median of each)", f"{loop_med / ref_med:.2f}x", "", None))
    print("| measurement | result | goal | met |")
    print("|---|---|---|---|")
    for name, val, goal, ok in rows:
        print(f"| {name} | {val} | {goal} | {'' if ok is None else ('yes' if ok else 'NO')} |")
    print()
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
          f"Python {platform.python_version()} ({sys.executable})")


if __name__ == "__main__":
    main()
