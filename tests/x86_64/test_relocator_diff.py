"""T-3: relocated instruction sequences behave bit-identically to the originals."""
from __future__ import annotations

import shutil
import time
from collections import Counter

import pytest

from tests.conftest import need

capstone = pytest.importorskip("capstone")
keystone = pytest.importorskip("keystone")

from tests.x86_64 import fuzzgen as F  # noqa: E402

NSEQ = 400          # distinct random sequences (every form is the main form ~15 times)
CASES = 2500        # random states per sequence and destination


@pytest.fixture(scope="module")
def cpu():
    need(shutil.which("gcc") is not None, "gcc for the relocation harness")
    flags = F.cpu_flags()
    return "avx" in flags, "avx512vl" in flags


def test_differential_near_and_far(cpu):
    avx, evex = cpu
    t0 = time.monotonic()
    seqs = F.generate(NSEQ, seed=20240601, avx=avx, evex=evex)
    jobs = [F.build_job(s, d, CASES, 1000 * i + k, avx)
            for i, s in enumerate(seqs) for k, d in enumerate((F.NEAR_DST, F.FAR_DST))]
    results = iter(F.run_jobs(jobs))
    total = mism = exits = 0
    covered: Counter[str] = Counter()
    bad: list[str] = []
    for j in jobs:
        far = j.dst == F.FAR_DST
        if j.refusal is not None:
            # Far copies refuse exactly the forms with a RIP-relative memory operand.
            assert far and F.expected_far_refusal(j.seq), (j.seq.forms, j.refusal.reason)
            assert "±2 GiB" in j.refusal.reason
            continue
        assert not (far and F.expected_far_refusal(j.seq)), j.seq.forms
        cases, m, e, diffs = next(results)
        total += cases
        mism += m
        exits |= e
        covered.update(f"{f}@{'far' if far else 'near'}" for f in set(j.seq.forms))
        if m:
            bad.append(f"{j.seq.forms} dst={j.dst:#x} code={j.seq.code.hex()}: {diffs[:2]}")
    elapsed = time.monotonic() - t0
    print(f"T-3 harness: {total} cases, {mism} mismatches, {elapsed:.1f}s")
    assert not bad, "\n".join(bad[:5])
    assert total >= 1_000_000
    assert exits == (1 << 13) - 1          # fall-through exit and every branch stub reached
    forms = [f for f in F.FORMS if (f != "vmovdqa" or avx) and (f != "evex_ymm" or evex)]
    for f in forms:
        assert covered[f"{f}@near"] > 0, f
        if f not in F.MEM_FORMS:
            assert covered[f"{f}@far"] > 0, f


def test_harness_catches_unrelocated_code(cpu):
    """The harness has teeth: copying position-dependent bytes verbatim must mismatch."""
    avx, evex = cpu
    seqs = [s for s in F.generate(60, seed=7, avx=avx, evex=evex)
            if any(f in F.MEM_FORMS or f.endswith("_out") or f.startswith("call")
                   for f in s.forms)]
    jobs = [F.build_job(s, F.NEAR_DST, 200, i, avx, broken=True) for i, s in enumerate(seqs)]
    results = F.run_jobs(jobs)
    assert sum(1 for _, m, _, _ in results if m) >= len(jobs) * 0.8
