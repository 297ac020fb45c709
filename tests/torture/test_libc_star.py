"""Torture, short form: every libc function probed (.call and .return) in Debian's own
programs doing real work; output and exit status must equal the untraced run's.

bench/torture_real.py runs the long form (bigger inputs, more programs)."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT, need

LIBC = os.path.realpath("/lib/x86_64-linux-gnu/libc.so.6")
# By the library's path: every process of the tree that maps it (the shell around the
# program and the program it starts), as stap's process("/path/libc.so.6") probes.
SCRIPT = f"""
global n, r, t
probe process("{LIBC}").function("*").call {{ n[ppfunc()]++; t++ }}
probe process("{LIBC}").function("*").return {{ r[ppfunc()]++ }}
probe end {{
  foreach (f in n) if (n[f] != r[f]) printf("unbalanced %s %d %d\\n", f, n[f], r[f])
  printf("calls %d\\n", t)
}}
"""
# Functions whose entries may outnumber their returns in a correct run: they never
# return (exit, exec, a jump out), return twice (their .return is refused), or are
# left when the program ends (a worker blocked in a wait, the main's caller).
NO_RETURN = {"__libc_start_main", "exit", "_exit", "_Exit", "abort", "execve", "execvp",
             "execv", "__vfork", "vfork", "_setjmp", "setjmp", "__sigsetjmp", "sigsetjmp",
             "longjmp", "_longjmp", "siglongjmp", "__longjmp_chk", "pthread_exit",
             "pthread_cond_wait", "pthread_cond_timedwait", "pthread_cond_clockwait",
             "__pthread_cond_wait", "getcontext", "swapcontext", "setcontext",
             # fork returns in the parent and in the child: more returns than entries
             "fork", "_Fork", "__fork", "__libc_fork"}

PY = "/usr/bin/python3.11"
PY_WORK = ("import json, re, collections; "
           "d = [{'k': i, 's': str(i) * 3} for i in range(3000)]; "
           "t = json.dumps(d); c = collections.Counter(re.findall(r'[0-9]', t)); "
           "print(len(t), sorted(c.items())[:3])")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("torture")
    text = d / "text.txt"
    text.write_text("\n".join(f"{(i * 7919) % 100003:06d} line {i} {'x' * (i % 40)}"
                              for i in range(20000)) + "\n")
    return d, text


@pytest.fixture(scope="module")
def shell_calls(tmp_path_factory) -> int:
    """libc calls of the shell around the programs alone (sh -c true)."""
    out = tmp_path_factory.mktemp("sh") / "script.out"
    r = subprocess.run([sys.executable, "-m", "utrace_py", "-c", "sh -c 'true; true'", "-o",
                        str(out), "-e", SCRIPT], capture_output=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    return int(re.search(r"calls (\d+)", out.read_text()).group(1))


def _programs(d, text):
    return [
        ("gzip", ["gzip", "-c", str(text)]),
        ("grep", ["grep", "-c", "line 1", str(text)]),
        ("sort", ["sort", "-r", str(text)]),
        ("tar", ["tar", "-cf", "-", "-C", str(d), "text.txt"]),
        ("xz", ["xz", "-c", "-T2", str(text)]),
        ("python3.11", [PY, "-c", PY_WORK]),
    ]


@pytest.mark.parametrize("name", ["gzip", "grep", "sort", "tar", "xz", "python3.11"])
def test_every_libc_function_probed(data, shell_calls, name, tmp_path):
    d, text = data
    argv = dict(_programs(d, text))[name]
    need(shutil.which(argv[0]) is not None, f"{argv[0]} (Debian package)")
    plain = subprocess.run(argv, capture_output=True, timeout=120)
    out, rc = tmp_path / "script.out", tmp_path / "rc"
    # The program's stdout is compared byte for byte, so the script writes to a file;
    # a shell around it keeps its exit status (the session's is the script's).
    cmd = f"{shlex.join(argv)}; echo $? > {rc}"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "utrace_py", "-c", f"sh -c {shlex.quote(cmd)}",
                        "-o", str(out), "-e", SCRIPT],
                       capture_output=True, timeout=600, env=env, cwd=ROOT)
    err = r.stderr.decode()
    assert (r.stdout, r.returncode) == (plain.stdout, 0), (name, err[-2000:])
    assert int(rc.read_text()) == plain.returncode
    assert "killed by" not in err and "internal error" not in err, err[-2000:]
    text_out = out.read_text()
    calls = int(re.search(r"calls (\d+)", text_out).group(1))
    assert calls > shell_calls + 50, (calls, shell_calls)  # the program's own calls too
    unbalanced = {m.group(1) for m in re.finditer(r"unbalanced (\S+) (\d+) (\d+)", text_out)}
    assert unbalanced <= NO_RETURN, unbalanced - NO_RETURN
