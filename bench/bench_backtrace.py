"""Per-hit cost of ubacktrace() at depth 20 (issue 7), next to the bare entry probe.

A leaf function is called at the bottom of a 20-deep recursion (-O2
-fomit-frame-pointer) N times; the program times its own loop.  Each row's
per-hit overhead is (traced - untraced) / N, best of three runs; the
ubacktrace column subtracts the bare entry probe's overhead.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from bench_entry import utrace_cmd  # run as a script: bench/ is on sys.path

ROOT = Path(__file__).resolve().parent.parent
N = 1_000_000
DEPTH = 20
PROG = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
volatile long sink;
__attribute__((noinline)) void leaf(long i) { sink += i; }
__attribute__((noinline)) long down(long d, long i) {
    volatile long r;
    if (d == 0) { leaf(i); return 0; }
    r = down(d - 1, i);
    return r + 1;
}
int main(int argc, char **argv) {
    long n = atol(argv[1]), depth = atol(argv[2]);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) down(depth, i);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%lld\n", (long long)((b.tv_sec - a.tv_sec) * 1000000000LL + b.tv_nsec - a.tv_nsec));
    return 0;
}
"""
SCRIPTS = {
    "bare entry probe (empty handler)": 'probe process.function("leaf") { }',
    "ubacktrace() (s = ubacktrace())": 'probe process.function("leaf") { s = ubacktrace() }',
    "stack aggregate (stacks[ubacktrace()] <<< 1)":
        'global stacks probe process.function("leaf") { stacks[ubacktrace()] <<< 1 }',
}


def _loop_ns(argv: list[str], env: dict | None = None) -> int:
    """The loop time the program prints."""
    out = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT).stdout
    return int(out.split()[0])


def main() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp) / "bt.c", Path(tmp) / "bt"
        src.write_text(PROG)
        subprocess.run(["cc", "-O2", "-fomit-frame-pointer", "-o", str(exe), str(src)], check=True)
        base = min(_loop_ns([str(exe), str(N), str(DEPTH)]) for _ in range(5))
        print(f"| workload: leaf at recursion depth {DEPTH}, {N // 1000}k hits | ns per call "
              "| overhead per hit | over the bare probe |")
        print("|---|---|---|---|")
        print(f"| untraced | {base / N:.1f} | | |")
        bare = None
        for name, script in SCRIPTS.items():
            best = min(_loop_ns(utrace_cmd() + ["--no-global-var-display", "-c",
                                                f"{exe} {N} {DEPTH}", "-e", script], env)
                       for _ in range(3))
            over = (best - base) / N
            bare = over if bare is None else bare
            extra = "" if over is bare else f"{over - bare:.0f} ns ({(over - bare) / 1000:.2f} us)"
            print(f"| utrace {name} | {best / N:.1f} | {over:.0f} ns | {extra} |")


if __name__ == "__main__":
    main()
