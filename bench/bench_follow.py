"""Following benchmark (issue 3): what staying attached to the process tree costs the target.

A C program times, from inside the target, one cycle of: fork + _exit + waitpid,
vfork + _exit, posix_spawn of /bin/true + waitpid, pthread_create + join, and a
signal sent to itself and handled.  It runs untraced, then under `utrace -c`
with scripts that make utrace follow the tree:
  function  a process.function probe only (children are followed; nothing runs in
            them at birth beyond a TLS reset written by the tracer)
  begin     process.begin and process.thread.begin probes (run inside each new
            process and thread by a remote call at its first stop; every exec'd
            image gets the handlers loaded)
Prints one table (median of 3 runs, microseconds per cycle).
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = r"""
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
extern char **environ;
__attribute__((noinline)) long work(long i) { __asm__ volatile("" ::: "memory"); return i; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
static void *thr(void *a) { work(1); return a; }
static volatile int got;
static void on_usr1(int s) { (void)s; got++; }
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 200;
    double t;
    work(0);
    t = now();
    for (int i = 0; i < n; i++) { pid_t p = fork(); if (!p) { work(1); _exit(0); } waitpid(p, 0, 0); }
    printf("fork %.1f\n", (now() - t) / n);
    t = now();
    for (int i = 0; i < n; i++) { pid_t p = vfork(); if (!p) _exit(0); waitpid(p, 0, 0); }
    printf("vfork %.1f\n", (now() - t) / n);
    t = now();
    for (int i = 0; i < n / 4; i++) { pid_t p; char *a[] = {"true", 0};
        posix_spawn(&p, "/bin/true", 0, 0, a, environ); waitpid(p, 0, 0); }
    printf("spawn %.1f\n", (now() - t) / (n / 4));
    t = now();
    for (int i = 0; i < n; i++) { pthread_t th; pthread_create(&th, 0, thr, 0); pthread_join(th, 0); }
    printf("thread %.1f\n", (now() - t) / n);
    signal(SIGUSR1, on_usr1);
    t = now();
    for (int i = 0; i < n * 5; i++) raise(SIGUSR1);
    printf("signal %.1f\n", (now() - t) / (n * 5));
    return 0;
}
"""
SCRIPTS = {
    "function": 'global n probe process.function("work") { n++ }',
    "begin": 'global n probe process.begin { n++ } probe process.thread.begin { n++ }',
}


def parse(out: str) -> dict[str, float]:
    return {w[0]: float(w[1]) for w in (ln.split() for ln in out.splitlines()) if len(w) == 2}


def run(cmd: list[str], env: dict) -> dict[str, float]:
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {r.stderr}")
    return parse(r.stdout)


def main() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "forklat.c"
        exe = Path(tmp) / "forklat"
        src.write_text(SRC)
        subprocess.run(["cc", "-O2", "-pthread", "-o", str(exe), str(src)], check=True)
        rows: dict[str, list[dict[str, float]]] = {"untraced": []}
        for _ in range(3):
            rows["untraced"].append(run([str(exe), str(n)], env))
            for name, script in SCRIPTS.items():
                rows.setdefault(name, []).append(
                    run([sys.executable, "-m", "utrace_py", "-c", f"{exe} {n}", "-e", script], env))
    ops = ["fork", "vfork", "spawn", "thread", "signal"]
    print("| us per cycle (median of 3) | " + " | ".join(ops) + " |")
    print("|---" * (len(ops) + 1) + "|")
    for name, runs in rows.items():
        print(f"| {name} | " + " | ".join(f"{statistics.median(r[o] for r in runs):.1f}"
                                          for o in ops) + " |")


if __name__ == "__main__":
    main()
