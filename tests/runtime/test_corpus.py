"""Runs every case of the declarative language corpus through the whole pipeline."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import run_utrace
from tests.runtime.corpus_format import load

CORPUS = Path(__file__).parent / "corpus"
CASES = [c for f in sorted(CORPUS.glob("*.t")) for c in load(f)]


def test_corpus_is_large_enough():
    assert len(CASES) >= 200, len(CASES)
    names = [f"{c.file}:{c.name}" for c in CASES]
    assert len(names) == len(set(names)), "duplicate case names"


@pytest.mark.parametrize("case", CASES, ids=[f"{c.file}:{c.name}" for c in CASES])
def test_case(case):
    r = run_utrace([*case.opts, "-e", case.script, *case.args], timeout=120)
    if case.stdout is not None:
        assert r.stdout == case.stdout, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    else:
        assert re.fullmatch(case.stdout_re, r.stdout, re.S), f"stdout:\n{r.stdout}"
    if case.stderr is not None:
        assert r.stderr == case.stderr, f"stderr:\n{r.stderr}"
    else:
        assert re.fullmatch(case.stderr_re, r.stderr, re.S), f"stderr:\n{r.stderr}"
    assert r.returncode == case.exit, f"exit {r.returncode}; stderr:\n{r.stderr}"

