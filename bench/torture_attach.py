"""Torture (issue 3): 200 `utrace -x` sessions on a busy 16-thread target, checked after each."""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.attach.test_session import run_cycles  # noqa: E402


def main() -> None:
    cycles = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "inj_threads"
        subprocess.run(["cc", "-O1", "-pthread", "-o", str(exe),
                        str(ROOT / "tests" / "testprogs" / "inj_threads.c")], check=True)
        t0 = time.monotonic()
        run_cycles(exe, cycles)
        print(f"{cycles} attach/inject/run/detach cycles on a busy 16-thread target: "
              f"no crash, no thread left stopped, nothing of ours left mapped "
              f"({time.monotonic() - t0:.1f} s)")


if __name__ == "__main__":
    main()
