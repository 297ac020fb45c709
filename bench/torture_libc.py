"""Torture (issue 9), long form: every libc function probed in real Debian programs.

For each program: the untraced run, then the run under
process.library("libc.so.6").function("*").call/.return with counting handlers;
prints one table row each: same output and status?, calls, entries = returns
(except functions that do not return), and the time with and without utrace.
Bigger inputs than tests/torture/test_libc_star.py (the CI's short form).
usage: python3 bench/torture_libc.py [MB of text, default 8]
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.torture.test_libc_star import NO_RETURN, PY, SCRIPT  # noqa: E402  (libc by path)

PY_LONG = ("import json, re, collections, sqlite3\n"
           "d = [{'k': i, 's': str(i) * 3} for i in range(20000)]\n"
           "t = json.dumps(d); c = collections.Counter(re.findall(r'[0-9]', t))\n"
           "db = sqlite3.connect(':memory:'); db.execute('create table t (k, s)')\n"
           "db.executemany('insert into t values (?, ?)', [(x['k'], x['s']) for x in d])\n"
           "print(len(t), sorted(c.items())[:3], db.execute('select count(*), sum(k) from t').fetchone())\n")


def programs(d: Path, text: Path) -> list[tuple[str, list[str]]]:
    out = [("gzip -c", ["gzip", "-c", str(text)]),
           ("gzip round trip", ["sh", "-c", f"gzip -c {text} | gzip -dc | md5sum"]),
           ("xz -T2", ["xz", "-c", "-T2", str(text)]),
           ("grep -c", ["grep", "-c", "line 1", str(text)]),
           ("sort -r", ["sort", "-r", str(text)]),
           ("tar", ["tar", "-cf", "-", "-C", str(d), "text.txt"]),
           ("python3.11 json/re/sqlite3", [PY, "-c", PY_LONG])]
    if shutil.which("sqlite3"):
        sql = d / "work.sql"
        sql.write_text("create table t(a, b); with recursive c(x) as (select 1 union all "
                       "select x + 1 from c where x < 200000) insert into t select x, x * x "
                       "from c; select count(*), sum(b) % 1000003 from t;\n")
        out.append(("sqlite3 script", ["sh", "-c", f"sqlite3 :memory: < {sql}"]))
    return [(n, a) for n, a in out if shutil.which(a[0])]


def main() -> None:
    mb = float(sys.argv[1]) if len(sys.argv) > 1 else 8
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        text = d / "text.txt"
        lines, i, size = [], 0, 0
        while size < mb * 1e6:
            ln = f"{(i * 7919) % 1000003:07d} line {i} {'x' * (i % 40)}\n"
            lines.append(ln)
            size += len(ln)
            i += 1
        text.write_text("".join(lines))
        print(f"{'program':28} {'same':>5} {'calls':>10} {'balanced':>9} {'plain s':>8} "
              f"{'traced s':>9}")
        failed = 0
        for name, argv in programs(d, text):
            t0 = time.monotonic()
            plain = subprocess.run(argv, capture_output=True)
            t_plain = time.monotonic() - t0
            out, rc = d / "script.out", d / "rc"
            cmd = f"{shlex.join(argv)}; echo $? > {rc}"
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            t0 = time.monotonic()
            r = subprocess.run([sys.executable, "-m", "utrace_py", "-c",
                                f"sh -c {shlex.quote(cmd)}", "-o", str(out), "-e", SCRIPT],
                               capture_output=True, env=env, cwd=ROOT)
            t_traced = time.monotonic() - t0
            report = out.read_text() if out.exists() else ""
            m = re.search(r"calls (\d+)", report)
            extra = {u.group(1) for u in re.finditer(r"unbalanced (\S+)", report)} - NO_RETURN
            same = (r.stdout == plain.stdout and r.returncode == 0 and rc.exists()
                    and int(rc.read_text()) == plain.returncode
                    and b"killed by" not in r.stderr)
            failed += not same or bool(extra) or not m
            print(f"{name:28} {'yes' if same else 'NO':>5} {m.group(1) if m else '?':>10} "
                  f"{'yes' if not extra else ','.join(sorted(extra))[:20]:>9} "
                  f"{t_plain:8.2f} {t_traced:9.2f}")
            if not same:
                print("   ", r.stderr.decode(errors="replace")[-600:].replace("\n", "\n    "))
        sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
