"""Following the traced process tree: fork/vfork/clone/posix_spawn children, exec, threads.

Every check compares with what the programs report about themselves (their pids,
tids and call counts), so a probe that fires in the wrong process, twice, or not
at all fails the test.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from tests.conftest import ROOT, need, run_utrace
from tests.injector.conftest import read_line

PROGS = ROOT / "tests" / "testprogs"


@pytest.fixture(scope="module")
def progs(tmp_path_factory) -> Path:
    need(shutil.which("gcc") is not None, "gcc")
    out = tmp_path_factory.mktemp("folprogs")
    for name in ("fol_fork", "fol_threads", "fol_exec", "fol_xtree", "fol_dlfork"):
        subprocess.run(["gcc", "-O2", "-pthread", "-o", str(out / name), str(PROGS / f"{name}.c")],
                       check=True, timeout=120)
    subprocess.run(["gcc", "-O2", "-o", str(out / "att_calls"), str(PROGS / "att_calls.c")],
                   check=True, timeout=120)
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(out / "libplug.so"),
                    str(PROGS / "dl_plugin.c")], check=True, timeout=120)
    out.chmod(0o755)
    return out


TREE = ('global hits '
        'probe process.begin { printf("B %d %d %s\\n", pid(), ppid(), execname()) } '
        'probe process.end { printf("E %d %s\\n", pid(), execname()) } '
        'probe process.function("work") { hits[pid()]++ } '
        'probe end { foreach (p in hits) printf("H %d %d\\n", p, hits[p]) }')


def parse(out: str) -> dict[str, list[list[str]]]:
    """Lines by their first word."""
    got = defaultdict(list)
    for line in out.splitlines():
        w = line.split()
        if w:
            got[w[0]].append(w[1:])
    return got


def clean_stderr(err: str) -> None:
    assert "WARNING" not in err and "ERROR" not in err and "Traceback" not in err, err


@pytest.mark.parametrize("mode", ["fork", "rawfork", "clone", "vfork", "spawn"])
def test_children_are_followed(progs, mode):
    # rawfork and clone run no pthread_atfork handler: the child must still get its own
    # context, or parent and child (calling work() at the same time) collide on one
    # and hits are lost as "skipped probes".
    ncalls = 20000
    r = run_utrace(["-c", f"{progs / 'fol_fork'} {mode} 4 {ncalls}", "-e", TREE])
    assert r.returncode == 0, r.stderr
    clean_stderr(r.stderr)
    got = parse(r.stdout)
    (parent, calls), = got["parent"]
    children = {c[0]: c for c in got["child"]}
    assert len(children) == 4 and all(c[1] == parent for c in children.values())
    begins = Counter(b[0] for b in got["B"])
    ends = Counter(e[0] for e in got["E"])
    # a posix_spawn child begins twice: as the copy of its parent, then as the new image
    per_child = 2 if mode == "spawn" else 1
    assert begins == Counter({parent: 1, **{c: per_child for c in children}})
    assert ends == begins
    assert [b for b in got["B"] if b[0] in children and b[1] != parent] == []  # ppid()
    hits = {h[0]: int(h[1]) for h in got["H"]}
    assert hits == {parent: int(calls), **{c: int(v[2]) for c, v in children.items()}}
    assert int(calls) == 2 * ncalls and all(int(v[2]) == ncalls for v in children.values())


def test_children_killed_at_birth(progs):
    # SIGKILLed while held at their first stop, during their process.begin call, or
    # while a new thread of theirs is: the session goes on, nothing is reported twice,
    # every process that began also ends.
    script = ('probe process.begin { printf("B %d\\n", pid()) } '
              'probe process.end { printf("E %d\\n", pid()) } '
              'probe process.thread.begin { printf("TB %d\\n", tid()) } '
              'probe process.thread.end { printf("TE %d\\n", tid()) } '
              'global n probe process.function("work") { n++ }')
    r = run_utrace(["-c", f"{progs / 'fol_fork'} killed 60 10", "-e", script])
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "WARNING: process" not in r.stderr, r.stderr
    got = parse(r.stdout)
    (parent, _), = got["parent"]
    killed = {k[1] for k in got["killed"]}  # "killed PARENT CHILD"
    assert len(killed) == 60
    begins, ends = Counter(b[0] for b in got["B"]), Counter(e[0] for e in got["E"])
    assert max(begins.values()) == 1 and max(ends.values()) == 1
    assert set(begins) <= set(ends) <= killed | {parent}
    assert begins[parent] == 1 and ends[parent] == 1
    tb, te = Counter(t[0] for t in got["TB"]), Counter(t[0] for t in got["TE"])
    assert max(tb.values(), default=1) == 1 and max(te.values(), default=1) == 1
    assert set(tb) <= set(te)


def test_children_dlopen_on_their_own(progs):
    # Forked children share their parent's record of what is armed until one of them
    # loads a library: each process's probes on it are its own, and so is what is
    # taken out when it is unloaded.
    script = ('global n probe process.library("libplug.so").function("plugin_fn") '
              '{ n[pid()]++ } probe end { foreach (p in n) printf("N %d %d\\n", p, n[p]) }')
    r = run_utrace(["-c", f"{progs / 'fol_dlfork'} {progs / 'libplug.so'} 3", "-e", script])
    assert r.returncode == 0, r.stderr
    # (at the start the library is not loaded anywhere yet: that one warning is expected)
    clean_stderr("\n".join(ln for ln in r.stderr.splitlines() if "matched no function" not in ln))
    got = parse(r.stdout)
    rounds = Counter(d[0] for d in got["dl"])
    assert len(rounds) == 4 and all(d[1] == "100" for d in got["dl"])  # results unchanged
    assert {p: int(c) for p, c in got["N"]} == {p: 10 * k for p, k in rounds.items()}


def test_fork_storm_keeps_every_record_whole(progs):
    # T-23: a child forked every 10 ms writes into the same shared ring as its parent;
    # every record carries its writer's pid and its own sequence number.
    payload = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" * 2
    script = ('global n probe process.function("work") { n[pid()]++; '
              f'printf("R %d %d {payload}\\n", pid(), n[pid()]) }} '
              'probe process.begin { printf("B %d\\n", pid()) } '
              'probe process.end { printf("E %d\\n", pid()) }')
    r = run_utrace(["-c", f"{progs / 'fol_fork'} storm 200 50", "-e", script], timeout=180)
    assert r.returncode == 0, r.stderr
    clean_stderr(r.stderr)
    rec = re.compile(rf"R (\d+) (\d+) {payload}")
    seqs = defaultdict(list)
    other = []
    for line in r.stdout.splitlines():
        if line.startswith("R"):
            m = rec.fullmatch(line)
            assert m, f"torn record: {line!r}"
            seqs[m.group(1)].append(int(m.group(2)))
        else:
            other.append(line.split())
    reported = {w[1]: int(w[-1]) for w in other if w[0] in ("child", "parent")}
    assert len(reported) == 201
    assert {p: s for p, s in seqs.items()} == {p: list(range(1, n + 1)) for p, n in reported.items()}
    assert Counter(w[1] for w in other if w[0] == "B") == Counter(set(reported))
    assert Counter(w[1] for w in other if w[0] == "E") == Counter(set(reported))


def test_exec_ends_the_old_image_and_arms_the_new_one(progs):
    calls = progs / "att_calls"
    script = ('global hits probe process.begin { printf("B %d %s\\n", pid(), execname()) } '
              'probe process.end { printf("E %d %s\\n", pid(), execname()) } '
              'probe process.function("work") { hits["fol_exec", pid()]++ } '
              f'probe process("{calls}").function("work") {{ hits["att_calls", pid()]++ }} '
              'probe end { foreach ([w, p] in hits) printf("H %s %d %d\\n", w, p, hits[w, p]) }')
    r = run_utrace(["-c", f"{progs / 'fol_exec'} 3 {calls} 700", "-e", script])
    assert r.returncode == 0, r.stderr
    clean_stderr(r.stderr)
    lines = r.stdout.splitlines()
    pid = lines[0].split()[1]
    plain = subprocess.run([str(calls), "700"], capture_output=True, text=True).stdout.strip()
    # process.end of the old image at the exec, process.begin of the new one, in order:
    # the target is stopped while they run
    assert lines[:6] == [f"B {pid} fol_exec", f"exec {pid} 3", f"E {pid} fol_exec",
                         f"B {pid} att_calls", plain, f"E {pid} att_calls"]
    # the path-less probe is for the -c program only; att_calls has its own
    assert sorted(lines[6:]) == [f"H att_calls {pid} 700", f"H fol_exec {pid} 3"]


def test_a_program_that_execs_itself(progs):
    script = ('global hits probe process.begin { printf("B %d %s\\n", pid(), execname()) } '
              'probe process.end { printf("E %d %s\\n", pid(), execname()) } '
              'probe process.function("work") { hits++ } '
              'probe end { printf("H %d\\n", hits) }')
    r = run_utrace(["-c", f"{progs / 'fol_exec'} 4 self", "-e", script])
    assert r.returncode == 0, r.stderr
    clean_stderr(r.stderr)
    lines = r.stdout.splitlines()
    pid = lines[0].split()[1]
    images = ["fol_exec", "exe", "exe", "exe", "exe"]  # comm after exec of /proc/self/exe
    want = []
    for i, name in enumerate(images):
        want.append(f"B {pid} {name}")
        want.append(f"exec {pid} {4 - i}" if i < 4 else f"last {pid}")
        want.append(f"E {pid} {name}")
    assert lines == want + ["H 10"]  # 4 + 3 + 2 + 1 calls, each image armed again


def test_threads_begin_and_end_once_each_with_their_tids(progs):
    script = ('probe process.thread.begin { printf("TB %d %d\\n", tid(), pid()) } '
              'probe process.thread.end { printf("TE %d %d\\n", tid(), pid()) } '
              'probe process.begin { printf("PB %d %d\\n", tid(), pid()) } '
              'probe process.end { printf("PE %d\\n", pid()) }')
    r = run_utrace(["-c", f"{progs / 'fol_threads'} 12 1000", "-e", script])
    assert r.returncode == 0, r.stderr
    clean_stderr(r.stderr)
    got = parse(r.stdout)
    (pid,), = got["main"]
    tids = sorted(t[0] for t in got["thread"])
    assert len(tids) == 12 and pid not in tids
    assert sorted(t[0] for t in got["TB"]) == tids and all(t[1] == pid for t in got["TB"])
    assert sorted(t[0] for t in got["TE"]) == tids and all(t[1] == pid for t in got["TE"])
    assert got["PB"] == [[pid, pid]] and got["PE"] == [[pid]]


def test_thread_probes_by_path_and_a_thread_storm(progs):
    exe = progs / "fol_threads"
    other = progs / "fol_exec"
    script = ('global b, e, x '
              f'probe process("{exe}").thread.begin {{ b[tid()]++ }} '
              f'probe process("{exe}").thread.end {{ e[tid()]++ }} '
              f'probe process("{other}").thread.begin {{ x++ }} '
              'probe end { n = 0; m = 0; foreach (t in b) { n++; if (b[t] != 1 || e[t] != 1) '
              'printf("bad %d\\n", t) } foreach (t in e) m++; '
              'printf("threads %d %d %d\\n", n, m, x) }')
    r = run_utrace(["-c", f"{exe} 300 10", "-e", script])
    assert r.returncode == 0, r.stderr
    clean_stderr(r.stderr)
    assert "bad" not in r.stdout
    assert r.stdout.splitlines()[-1] == "threads 300 300 0"
    assert len([ln for ln in r.stdout.splitlines() if ln.startswith("thread ")]) == 300


def test_children_still_running_when_the_command_exits_are_released(progs, tmp_path):
    out = tmp_path / "late.txt"
    # (the background part must not hold utrace's stdout, or waiting for its end would
    # wait for that part too)
    cmd = f"sh -c '(sleep 1; {progs / 'fol_exec'} 0 > {out}) >/dev/null 2>&1 & echo $!'"
    r = run_utrace(["-c", cmd, "-e", 'probe process.begin { printf("B %d\\n", pid()) }'])
    assert r.returncode == 0, r.stderr
    bg = [ln for ln in r.stdout.splitlines() if not ln.startswith("B ")][0]
    status = Path(f"/proc/{bg}/status").read_text()
    assert "TracerPid:\t0" in status and state(int(bg)) in "SR"  # untraced, not stopped
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (out.exists() and out.read_text()):
        time.sleep(0.05)
    assert re.fullmatch(r"last \d+\n", out.read_text())


def ours_in_maps(pid: int) -> list[str]:
    return [ln for ln in Path(f"/proc/{pid}/maps").read_text().splitlines()
            if "memfd:utrace-region" in ln or ("/utrace_" in ln and ln.endswith(".so"))]


def state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.mark.parametrize("with_function_probe", [False, True])
def test_x_follows_children_and_leaves_the_whole_tree_running(progs, with_function_probe):
    p = subprocess.Popen([str(progs / "fol_xtree")], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    utr = None
    try:
        assert read_line(p.stdout) == "ready\n"
        script = ('global hits probe process.begin { if (pid() == target()) println("in") '
                  'else printf("B %d %d\\n", pid(), ppid()) } '
                  'probe end { foreach (q in hits) printf("H %d %d\\n", q, hits[q]) }')
        if with_function_probe:
            script += ' probe process.function("work") { hits[pid()]++ }'
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        utr = subprocess.Popen([sys.executable, "-m", "utrace_py", "-x", str(p.pid), "-e", script],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
        assert read_line(utr.stdout, timeout=60) == "in\n"
        p.stdin.write(b"go\ngo\n")
        p.stdin.flush()
        kids = [read_line(p.stdout).split() for _ in range(2)]
        assert all(k[0] == "child" and k[2] == str(p.pid) for k in kids)
        utr.send_signal(signal.SIGINT)
        out, err = utr.communicate(timeout=60)
        assert utr.returncode == 0, err
        got = parse(out.decode())
        assert sorted(got["B"]) == sorted([k[1], str(p.pid)] for k in kids)
        if with_function_probe:
            assert sorted(got["H"]) == sorted([k[1], "10"] for k in kids)
        for pid in [p.pid] + [int(k[1]) for k in kids]:
            status = Path(f"/proc/{pid}/status").read_text()
            assert "TracerPid:\t0" in status, pid
            assert state(pid) in ("S", "R"), (pid, state(pid))
            if not with_function_probe:  # patched code keeps the handlers mapped
                assert not ours_in_maps(pid), pid
        p.stdin.close()
        rest = p.stdout.read().decode().split("\n")
        assert p.wait(timeout=30) == 0
        assert sorted(rest[:2]) == sorted(f"child-end {k[1]} 20" for k in kids)
        assert rest[2:] == ["bye 2", ""]
    finally:
        for proc in (p, utr):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def test_x_runs_thread_begin_for_the_threads_it_finds(progs):
    p = subprocess.Popen([str(progs / "fol_threads"), "5", "10", "wait"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)
    try:
        tids = []
        while True:
            line = read_line(p.stdout)
            if line == "ready\n":
                break
            tids.append(line.split()[1])
        script = ('probe process.begin { println("in") } '
                  'probe process.thread.begin { printf("TB %d\\n", tid()) } '
                  'probe process.thread.end { printf("TE %d\\n", tid()) } '
                  'probe process.end { exit() }')
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        utr = subprocess.Popen([sys.executable, "-m", "utrace_py", "-x", str(p.pid), "-e", script],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
        assert read_line(utr.stdout, timeout=60) == "in\n"
        p.stdin.close()
        out, err = utr.communicate(timeout=60)
        assert utr.returncode == 0, err
        got = parse(out.decode())
        assert sorted(t[0] for t in got["TB"]) == sorted(tids)
        assert sorted(t[0] for t in got["TE"]) == sorted(tids)
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
