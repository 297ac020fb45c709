"""The language corpus under --runtime=kmod: one kbuild run, one guest job, user-runtime output.

Every a_* case (maps, aggregates, histograms, printf, strings, control flow,
errors) that is a begin/end/timer script without options is translated for the
kernel on the host, all modules are built by one kbuild run, and one guest job
runs them one after the other with `utrace --run-module`.  Their stdout, stderr
and exit status must be what the corpus expects, which is what the user
runtime prints (tests/runtime/test_corpus.py).
"""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_utrace
from tests.runtime.corpus_format import load

CORPUS = ROOT / "tests" / "runtime" / "corpus"
# Features the kernel runtime does not have (yet): their cases are left out.
UNSUPPORTED = ("process", "=~", "!~", "target()", "user_", "%m", "%M", "uaddr",
               "register", "_arg", "$")
# Cases whose difference from the user runtime is deliberate (none so far).
DIFFERENT: dict[str, str] = {}


def _candidates():
    for f in sorted(CORPUS.glob("a_*.t")):
        for c in load(f):
            if c.opts or c.stdout is None or c.stderr is None:
                continue
            if any(u in c.script for u in UNSUPPORTED) or c.name in DIFFERENT:
                continue
            yield c


@pytest.fixture(scope="module")
def corpus_run(module_guest):
    guest = module_guest
    from utrace_py.build.kbuild import build_kmods
    cases, sources = [], []
    for c in _candidates():
        r = run_utrace(["--runtime=kmod", "-r", guest.kver, "-p3", "-e", c.script, *c.args])
        if r.returncode == 0:
            cases.append(c)
            sources.append(r.stdout)
    built = build_kmods(sources, [], guest.kver)  # one kbuild run for all of them
    out = Path(guest.jobs)
    lines = [f"cd {ROOT}"]
    for i, (ko, _) in enumerate(built):
        lines.append(f"python3 -m utrace_py --run-module={shlex.quote(str(ko))} "
                     f"> {out}/c{i}.out 2> {out}/c{i}.err; echo $? > {out}/c{i}.rc")
    lines.append("cat /proc/modules | grep -c '^utrace_' || true")
    r = guest.run("\n".join(lines) + "\n", timeout=900)
    results = {}
    for i, c in enumerate(cases):
        results[c.name] = ((out / f"c{i}.out").read_text(), (out / f"c{i}.err").read_text(),
                           int((out / f"c{i}.rc").read_text()))
    return cases, results, r.stdout.strip()


def test_at_least_30_corpus_cases_run_in_the_kernel(corpus_run):
    cases, results, loaded = corpus_run
    assert len(cases) >= 30, [c.name for c in cases]
    assert loaded == "0"  # every module was removed after its run


def test_kernel_output_is_the_user_runtimes(corpus_run):
    cases, results, _ = corpus_run
    bad = []
    for c in cases:
        got = results[c.name]
        want = (c.stdout, c.stderr, c.exit)
        if got != want:
            bad.append(f"{c.name}:\n  got  {got!r}\n  want {want!r}")
    assert not bad, f"{len(bad)} of {len(cases)} differ:\n" + "\n".join(bad)
