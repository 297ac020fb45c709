"""Probe-hit cost (issues 4, 6): a small function called N times, untraced vs probed.

Per-hit overhead = (traced run - untraced run) / N, both timed inside the
program (it prints its own loop time), best of several runs each.  The function
holds an SDT marker (a nop untraced) for the mark rows; the trap-tier rows force
the int3 tier (UTRACE_FORCE_TIER=trap) on the same sites.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N = 20_000_000
PROG = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/sdt.h>
__attribute__((noinline)) long work(long i) { STAP_PROBE1(bench, tick, i); return i * 3 + 1; }
int main(int argc, char **argv) {
    long n = atol(argv[1]), s = 0;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) s += work(i);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%lld %ld\n", (long long)((b.tv_sec - a.tv_sec) * 1000000000LL + b.tv_nsec - a.tv_nsec), s);
    return 0;
}
"""
TRAP = {"UTRACE_FORCE_TIER": "trap"}
SCRIPTS = {
    "entry probe, empty handler": 'probe process.function("work") { }',
    "entry probe, counting handler (n++)": 'global n probe process.function("work") { n++ }',
    "entry probe, per-thread aggregate (s <<< 1)": 'global s probe process.function("work") { s <<< 1 }',
    "return probe, counting handler": 'global n probe process.function("work").return { n++ }',
    "entry + return probes, counting": ('global n, m probe process.function("work") { n++ } '
                                        'probe process.function("work").return { m++ }'),
    "SDT marker, counting $arg1 (jump tier)": 'global s probe process.mark("tick") { s += $arg1 }',
    "entry probe, counting handler, trap tier": ('global n probe process.function("work") { n++ }',
                                                  TRAP),
    "SDT marker, counting $arg1, trap tier": ('global s probe process.mark("tick") { s += $arg1 }',
                                              TRAP),
}


def utrace_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("utrace")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "utrace_py"]


def main() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp) / "w.c", Path(tmp) / "w"
        src.write_text(PROG)
        subprocess.run(["cc", "-O2", "-o", str(exe), str(src)], check=True)
        base = min(int(subprocess.run([str(exe), str(N)], capture_output=True, text=True)
                       .stdout.split()[0]) for _ in range(5))
        print("| workload: small function called 20M times | ns per call | overhead per hit |")
        print("|---|---|---|")
        print(f"| untraced | {base / N:.2f} | |")
        for name, script in SCRIPTS.items():
            script, extra = script if isinstance(script, tuple) else (script, {})
            n = N // 20 if extra else N  # a trap is a signal: microseconds, not nanoseconds
            best = None
            for _ in range(3):
                r = subprocess.run(utrace_cmd() + ["--no-global-var-display", "-c", f"{exe} {n}",
                                                   "-e", script], capture_output=True, text=True,
                                   env=env | extra, cwd=ROOT)
                ns = int(r.stdout.split()[0])
                best = ns if best is None else min(best, ns)
            print(f"| utrace {name} | {best / n:.2f} | {best / n - base / N:.2f} ns |")


if __name__ == "__main__":
    main()
