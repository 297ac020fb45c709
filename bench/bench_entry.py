"""Entry-probe cost (issue 4): a small function called N times, untraced vs a counting probe.

Per-hit overhead = (traced run - untraced run) / N, both timed inside the
program (it prints its own loop time), best of several runs each.
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
__attribute__((noinline)) long work(long i) { return i * 3 + 1; }
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
SCRIPTS = {
    "entry probe, empty handler": 'probe process.function("work") { }',
    "entry probe, counting handler (n++)": 'global n probe process.function("work") { n++ }',
    "entry probe, per-thread aggregate (s <<< 1)": 'global s probe process.function("work") { s <<< 1 }',
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
            best = None
            for _ in range(3):
                r = subprocess.run(utrace_cmd() + ["--no-global-var-display", "-c", f"{exe} {N}",
                                                   "-e", script], capture_output=True, text=True,
                                   env=env, cwd=ROOT)
                ns = int(r.stdout.split()[0])
                best = ns if best is None else min(best, ns)
            print(f"| utrace {name} | {best / N:.2f} | {(best - base) / N:.2f} ns |")


if __name__ == "__main__":
    main()
