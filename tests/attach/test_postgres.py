"""A real PostgreSQL server (Debian's postgresql) traced through its SDT markers."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT, need
from tests.injector.conftest import read_line

BIN = Path("/usr/lib/postgresql/15/bin")
SCRIPT = """
global start, lat, n
probe process.begin { println("in") }
probe process("%(pg)s").mark("query__start") { start[pid()] = gettimeofday_us(); n++ }
probe process("%(pg)s").mark("query__done") {
  if (pid() in start) { lat <<< gettimeofday_us() - start[pid()]; delete start[pid()] }
}
global texts, commits
probe postgresql.query.done { if (query =~ "^select [0-9][+]1$") texts[query]++ }
probe postgresql.transaction.commit { commits++ }
probe end { printf("queries %%d done %%d avg_us %%d\\n", n, @count(lat), @count(lat) ? @avg(lat) : 0)
            foreach (q+ in texts) printf("text %%s\\n", q)
            printf("commits %%d\\n", commits) }
"""


def _durations(log: Path, offset: int) -> list[float]:
    text = log.read_bytes()[offset:].decode(errors="replace")
    return [float(x) for x in re.findall(r"duration: ([0-9.]+) ms", text)]


def test_query_latency_from_markers_matches_the_servers_own_log(tmp_path):
    # The classic SystemTap example on a real server: per-query latency from
    # query__start/query__done while psql and pgbench send queries.  Every query the
    # server logged (log_min_duration_statement=0) is counted, and the latencies agree.
    need((BIN / "postgres").exists(), "Debian's postgresql (postgresql-15)")
    need(os.geteuid() != 0, "a normal user (PostgreSQL refuses to run as root)")
    data, log = tmp_path / "data", tmp_path / "server.log"
    subprocess.run([BIN / "initdb", "-D", data, "-A", "trust", "-U", "pg"], check=True,
                   capture_output=True, timeout=120)
    port = str(50000 + os.getpid() % 10000)
    server = subprocess.Popen([BIN / "postgres", "-D", data, "-k", tmp_path, "-p", port,
                               "-c", "listen_addresses=", "-c", "log_min_duration_statement=0"],
                              stdout=log.open("wb"), stderr=subprocess.STDOUT)
    conn = ["-h", str(tmp_path), "-p", port, "-U", "pg"]
    tracer = None
    try:
        for _ in range(100):
            if subprocess.run([BIN / "pg_isready", *conn], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        subprocess.run([BIN / "pgbench", *conn, "-i", "-q", "postgres"], check=True,
                       capture_output=True, timeout=120)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        tracer = subprocess.Popen(
            [sys.executable, "-m", "utrace_py", "-x", str(server.pid), "-e",
             SCRIPT % {"pg": BIN / "postgres"}],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
        assert read_line(tracer.stdout, timeout=60) == "in\n"
        offset = log.stat().st_size
        for i in range(5):
            out = subprocess.run([BIN / "psql", *conn, "-d", "postgres", "-Atc", f"select {i}+1"],
                                 capture_output=True, text=True, timeout=60)
            assert out.stdout.strip() == str(i + 1)
        subprocess.run([BIN / "pgbench", *conn, "-n", "-c", "2", "-t", "20", "postgres"],
                       check=True, capture_output=True, timeout=300)
        time.sleep(0.3)  # the server logs a statement as it finishes
        theirs = _durations(log, offset)
        tracer.send_signal(signal.SIGINT)
        out, err = tracer.communicate(timeout=60)
        assert tracer.returncode == 0, err
        m = re.search(rb"queries (\d+) done (\d+) avg_us (\d+)", out)
        assert m, (out, err)
        n, done, avg_us = map(int, m.groups())
        assert len(theirs) >= 5 + 2 * 20 * 7  # psql's 5, pgbench's 2x20 transactions of 7
        assert n == done == len(theirs)
        mean_us = sum(theirs) / len(theirs) * 1000
        assert 0 < avg_us < 3 * mean_us + 2000, (avg_us, mean_us)
        # the tapset's names (tapsets/postgresql.stp): each psql query's text once, and
        # a commit for every transaction (psql's 5, pgbench's 40, its own few more)
        assert re.findall(rb"text (.*)", out) == [f"select {i}+1".encode() for i in range(5)]
        commits = int(re.search(rb"commits (\d+)", out).group(1))
        assert 5 + 40 <= commits <= n
        assert server.poll() is None  # the server runs on, untraced
        probe = subprocess.run([BIN / "psql", *conn, "-d", "postgres", "-Atc", "select 7"],
                               capture_output=True, text=True, timeout=60)
        assert probe.stdout.strip() == "7"
    finally:
        if tracer is not None and tracer.poll() is None:
            tracer.kill()
        server.terminate()
        server.wait(timeout=60)
