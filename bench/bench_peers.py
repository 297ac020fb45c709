"""Per-hit cost of utrace against the tools its users would otherwise reach for (issue 9).

One run, one table: a small function holding an SDT marker, called N times and timed by
the program itself; each tool counts the hits; overhead per hit = (traced - untraced)/N.
Ratios are to utrace's counting entry probe.  Tools missing here are marked so.
Needs root for bpftrace (the kernel's uprobes).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from bench_entry import PROG  # noqa: E402  (the same workload as the entry benchmark)

N_FAST, N_SLOW, N_GDB = 20_000_000, 500_000, 20_000


def _loop_ns(out: str) -> int:
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit():
            return int(parts[0])
    raise RuntimeError(f"no timing line in: {out[-300:]!r}")


def _best(cmd: list[str], n: int, runs: int = 3, env=None) -> float | None:
    best = None
    for _ in range(runs):
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
        try:
            ns = _loop_ns(r.stdout + r.stderr)
        except RuntimeError:
            return None
        best = ns if best is None else min(best, ns)
    return best / n


def main() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    utrace = [sys.executable, "-m", "utrace_py", "--no-global-var-display"]
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp) / "w.c", Path(tmp) / "w"
        src.write_text(PROG)
        subprocess.run(["cc", "-O2", "-o", str(exe), str(src)], check=True)
        base = _best([str(exe), str(N_FAST)], N_FAST, runs=5)
        rows: list[tuple[str, float | None, int]] = []

        def add(name: str, cmd: list[str] | None, n: int, runs: int = 3) -> None:
            rows.append((name, None if cmd is None else _best(cmd, n, runs, env), n))

        add("utrace entry probe, counting", utrace + [
            "-c", f"{exe} {N_FAST}", "-e", 'global n probe process.function("work") { n++ }'],
            N_FAST)
        add("utrace SDT marker, counting", utrace + [
            "-c", f"{exe} {N_FAST}", "-e", 'global n probe process.mark("tick") { n++ }'], N_FAST)
        add("utrace entry + return probes", utrace + [
            "-c", f"{exe} {N_FAST}", "-e", 'global n, m probe process.function("work") { n++ } '
            'probe process.function("work").return { m++ }'], N_FAST)
        bpf = shutil.which("bpftrace") if os.geteuid() == 0 else None
        add("bpftrace uprobe (kernel uprobe + BPF)", None if bpf is None else [
            bpf, "-e", f"uprobe:{exe}:work {{ @n = count(); }}", "-c", f"{exe} {N_SLOW}"], N_SLOW)
        add("bpftrace usdt", None if bpf is None else [
            bpf, "-e", f"usdt:{exe}:bench:tick {{ @n = count(); }}", "-c", f"{exe} {N_SLOW}"],
            N_SLOW)
        gdb = shutil.which("gdb")
        cmds = Path(tmp) / "count.gdb"
        cmds.write_text("set pagination off\nbreak work\ncommands 1\nsilent\ncontinue\nend\n"
                        f"run {N_GDB}\n")
        add("gdb breakpoint with a counting command", None if gdb is None else [
            gdb, "-q", "-batch", "-x", str(cmds), str(exe)], N_GDB, runs=1)
        ref = rows[0][1]
        print(f"| tool (workload: small function, {N_FAST // 10**6}M calls; slow tools fewer) "
              "| overhead per hit | x utrace entry |")
        print("|---|---|---|")
        print(f"| untraced | {base:.2f} ns per call | |")
        for name, per_call, _n in rows:
            if per_call is None:
                print(f"| {name} | not available | |")
                continue
            over = per_call - base
            ratio = f"{over / (ref - base):.1f}x" if ref is not None and ref > base else ""
            print(f"| {name} | {over:,.1f} ns | {ratio} |")
        print(f"\nMachine: {os.uname().machine}, {os.cpu_count()} CPUs, Linux {os.uname().release}."
              " Frida and ltrace are not installed here (not available from this machine's"
              " package sources).")


if __name__ == "__main__":
    main()
