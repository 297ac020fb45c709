"""Long relocator fuzz run (PITFALLS T-3): many random sequences x states, near and far copies.

Usage: python bench/reloc_fuzz.py [--seqs 4000] [--cases 2000] [--seed N]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.x86_64 import fuzzgen as F  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seqs", type=int, default=4000)
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--batch", type=int, default=500, help="sequences per harness process")
    a = ap.parse_args()
    flags = F.cpu_flags()
    avx, evex = "avx" in flags, "avx512vl" in flags
    t0 = time.monotonic()
    total = mism = refused = 0
    seqs = F.generate(a.seqs, a.seed, avx, evex)
    for b in range(0, len(seqs), a.batch):
        jobs = [F.build_job(s, d, a.cases, a.seed * 7919 + 2 * (b + i) + k, avx)
                for i, s in enumerate(seqs[b:b + a.batch])
                for k, d in enumerate((F.NEAR_DST, F.FAR_DST))]
        results = iter(F.run_jobs(jobs))
        for j in jobs:
            if j.refusal is not None:
                refused += 1
                if not (j.dst == F.FAR_DST and F.expected_far_refusal(j.seq)):
                    print(f"unexpected refusal {j.seq.forms}: {j.refusal.reason}")
                    mism += 1
                continue
            cases, m, _, diffs = next(results)
            total += cases
            mism += m
            if m:
                print(f"MISMATCH {j.seq.forms} dst={j.dst:#x} code={j.seq.code.hex()}")
                print("\n".join(diffs))
    print(f"seed {a.seed}: {total} cases, {mism} mismatches, {refused} refused copies, "
          f"{time.monotonic() - t0:.1f}s")
    return 1 if mism else 0


if __name__ == "__main__":
    sys.exit(main())
