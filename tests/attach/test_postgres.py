"""A real PostgreSQL server (Debian's postgresql) traced through its SDT markers."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


class Server:
    """A PostgreSQL server of our own in a temp dir: unix socket only, every statement logged."""

    def __init__(self, tmp: Path) -> None:
        data, self.log = tmp / "data", tmp / "server.log"
        subprocess.run([BIN / "initdb", "-D", data, "-A", "trust", "-U", "pg"], check=True,
                       capture_output=True, timeout=120)
        port = str(50000 + os.getpid() % 10000)
        self.proc = subprocess.Popen([BIN / "postgres", "-D", data, "-k", tmp, "-p", port,
                                      "-c", "listen_addresses=",
                                      "-c", "log_min_duration_statement=0"],
                                     stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        self.conn = ["-h", str(tmp), "-p", port, "-U", "pg"]
        for _ in range(100):
            if subprocess.run([BIN / "pg_isready", *self.conn],
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        subprocess.run([BIN / "pgbench", *self.conn, "-i", "-q", "postgres"], check=True,
                       capture_output=True, timeout=120)

    def psql(self, sql: str) -> str:
        return subprocess.run([BIN / "psql", *self.conn, "-d", "postgres", "-Atc", sql],
                              capture_output=True, text=True, timeout=60).stdout.strip()

    def pgbench(self, clients: int, transactions: int) -> None:
        subprocess.run([BIN / "pgbench", *self.conn, "-n", "-c", str(clients), "-t",
                        str(transactions), "postgres"], check=True, capture_output=True,
                       timeout=300)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    need((BIN / "postgres").exists(), "Debian's postgresql (postgresql-15)")
    need(os.geteuid() != 0, "a normal user (PostgreSQL refuses to run as root)")
    s = Server(tmp_path_factory.mktemp("pg"))
    yield s
    s.proc.terminate()
    s.proc.wait(timeout=60)


def _tracer(server: Server, args: list[str]) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "utrace_py", "-x", str(server.proc.pid),
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            cwd=ROOT)


def test_query_latency_from_markers_matches_the_servers_own_log(server):
    # The classic SystemTap example on a real server: per-query latency from
    # query__start/query__done while psql and pgbench send queries.  Every query the
    # server logged (log_min_duration_statement=0) is counted, and the latencies agree.
    tracer = _tracer(server, ["-e", SCRIPT % {"pg": BIN / "postgres"}])
    try:
        assert read_line(tracer.stdout, timeout=60) == "in\n"
        offset = server.log.stat().st_size
        for i in range(5):
            assert server.psql(f"select {i}+1") == str(i + 1)
        server.pgbench(2, 20)
        time.sleep(0.3)  # the server logs a statement as it finishes
        theirs = _durations(server.log, offset)
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
        assert server.proc.poll() is None  # the server runs on, untraced
        assert server.psql("select 7") == "7"
    finally:
        if tracer.poll() is None:
            tracer.kill()


def test_example_pgquery(server):
    """examples/pgquery.stp on the same server: its counts are the server's own."""
    tracer = _tracer(server, ["-v", str(ROOT / "examples" / "pgquery.stp")])
    try:
        deadline = time.monotonic() + 60
        while "probe sites:" not in read_line(tracer.stderr, timeout=60):
            assert time.monotonic() < deadline
        offset = server.log.stat().st_size
        for _ in range(3):
            assert server.psql("select pg_sleep(0.02)") == ""
        assert server.psql("select 41+1") == "42"
        time.sleep(0.3)
        theirs = _durations(server.log, offset)
        tracer.send_signal(signal.SIGINT)
        out, err = tracer.communicate(timeout=60)
        assert tracer.returncode == 0, err
        text = out.decode()
        m = re.search(r"^(\d+) queries, avg (\d+) us, max (\d+) us$", text, re.M)
        assert m, text
        assert int(m.group(1)) == len(theirs) == 4
        assert int(m.group(3)) >= 20000  # pg_sleep(0.02)
        rows = dict(reversed(m.groups()) for m in
                    re.finditer(r"^ *(\d+) +\d+ +\d+  (.*)$", text, re.M))
        assert rows == {"select pg_sleep(0.02)": "3", "select 41+1": "1"}
    finally:
        if tracer.poll() is None:
            tracer.kill()
