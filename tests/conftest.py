"""Shared test set-up: run utrace from this checkout; in CI a missing system part fails, never skips."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# utrace runs as users run it: a developer's PYTHONUNBUFFERED would hide output held
# back in a pipe's buffer (CI's clean environment has none).
os.environ.pop("PYTHONUNBUFFERED", None)


def need(cond: bool, what: str) -> None:
    """Skip when a system part is missing, except in CI where that is a failure."""
    if not cond:
        if CI or os.environ.get("UTRACE_STRICT_SKIPS"):
            pytest.fail(f"missing system part in CI: {what}")
        pytest.skip(f"missing: {what}")


def run_utrace(args: list[str], timeout: float = 120, env: dict | None = None,
               input: str | None = None) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    if env:
        e.update(env)
    return subprocess.run([sys.executable, "-m", "utrace_py", *args], capture_output=True,
                          text=True, timeout=timeout, env=e, input=input, cwd=ROOT)


@pytest.fixture
def utrace():
    return run_utrace


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI a skipped test is a test that does not exist: report it as a failure."""
    outcome = yield
    rep = outcome.get_result()
    if CI and rep.skipped and not hasattr(rep, "wasxfail"):
        rep.outcome = "failed"
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.longrepr = f"skipped in CI (CI=true turns skips into failures): {reason}"
