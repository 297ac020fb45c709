"""The command line: stap-compatible options, pass stops, and a clear message for every bad input."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT, run_utrace

HELLO = 'probe begin { printf("hello\\n"); exit() }'


def fresh_cache(tmp_path: Path) -> dict:
    return {"XDG_CACHE_HOME": str(tmp_path / "cache")}


def no_traceback(r: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in r.stderr, r.stderr
    assert "internal error" not in r.stderr, r.stderr


def test_hello_from_file(tmp_path):
    script = tmp_path / "hello.stp"
    script.write_text(HELLO + "\n")
    r = run_utrace([str(script)])
    assert (r.stdout, r.stderr, r.returncode) == ("hello\n", "", 0)


def test_script_arguments_from_file(tmp_path):
    script = tmp_path / "args.stp"
    script.write_text('probe begin { printf("%d %s %d\\n", $1 + 1, @2, $#); exit() }\n')
    r = run_utrace([str(script), "41", "two words"])
    assert (r.stdout, r.returncode) == ("42 two words 2\n", 0), r.stderr


def test_missing_script_file(tmp_path):
    r = run_utrace([str(tmp_path / "nope.stp")])
    no_traceback(r)
    assert r.returncode == 1
    assert "nope.stp" in r.stderr and "missing or unreadable" in r.stderr


def test_no_script_at_all():
    r = run_utrace([])
    no_traceback(r)
    assert r.returncode == 1 and "A script must be specified" in r.stderr


def test_unknown_options():
    for args in (["-Q", "-e", HELLO], ["--frobnicate", "-e", HELLO]):
        r = run_utrace(args)
        no_traceback(r)
        assert r.returncode == 1
        assert "invalid option" in r.stderr or "unrecognized option" in r.stderr


def test_option_missing_its_argument():
    r = run_utrace(["-e"])
    no_traceback(r)
    assert r.returncode == 1 and "requires an argument -- 'e'" in r.stderr


def test_bad_define_and_pass_number():
    r = run_utrace(["-D", "1BAD=3", "-e", HELLO])
    no_traceback(r)
    assert r.returncode == 1 and "invalid -D option '1BAD=3'" in r.stderr
    r = run_utrace(["-p9", "-e", HELLO])
    assert r.returncode == 1 and "Invalid pass number" in r.stderr


def test_unwritable_output_file(tmp_path):
    r = run_utrace(["-o", str(tmp_path / "no" / "such" / "dir" / "out"), "-e", HELLO])
    no_traceback(r)
    assert r.returncode == 1 and "cannot open output file" in r.stderr


def test_output_file(tmp_path):
    out = tmp_path / "out.txt"
    r = run_utrace(["-o", str(out), "-e", HELLO])
    assert (r.stdout, r.returncode) == ("", 0), r.stderr
    assert out.read_text() == "hello\n"


def test_no_c_compiler(tmp_path):
    r = run_utrace(["-e", 'probe begin { println("needs a compiler") exit() }'],
                   env={**fresh_cache(tmp_path), "CC": "", "PATH": str(tmp_path)})
    no_traceback(r)
    assert r.returncode == 1
    assert "no C compiler found" in r.stderr and "apt-get install gcc" in r.stderr


def test_cached_object_writable_by_others_is_refused(tmp_path):
    env = fresh_cache(tmp_path)
    script = 'probe begin { println("cache me") exit() }'
    first = run_utrace(["-e", script], env=env)
    assert first.stdout == "cache me\n", first.stderr
    objs = list((tmp_path / "cache" / "utrace").glob("utrace_*.so"))
    assert len(objs) == 1
    os.chmod(objs[0], 0o777)
    r = run_utrace(["-e", script], env=env)
    no_traceback(r)
    assert r.returncode == 1 and "refusing to load" in r.stderr and r.stdout == ""


def test_cache_directory_mode(tmp_path):
    env = fresh_cache(tmp_path)
    assert run_utrace(["-e", HELLO], env=env).returncode == 0
    assert (tmp_path / "cache" / "utrace").stat().st_mode & 0o777 == 0o700


def test_pass_1_prints_the_script_back():
    r = run_utrace(["-p1", "-e", "global a probe begin { a[1] = 2 * (3 + 4); exit() }"])
    assert r.returncode == 0, r.stderr
    assert "global a" in r.stdout
    assert "a[1] = (2) * ((3) + (4))" in r.stdout
    # What -p1 prints parses again to the same text.
    body = r.stdout.split("\n", 1)[1]
    r2 = run_utrace(["-p1", "-e", body])
    assert r2.stdout.split("\n", 1)[1] == body


def test_pass_2_lists_types():
    r = run_utrace(["-p2", "-e", 'global a, s function f(x) { return x . "!" } '
                    'probe begin { a["k", 1] = 3; s <<< 1; println(f("hi")) }'])
    assert r.returncode == 0, r.stderr
    assert "a:long [string, long]" in r.stdout
    assert "s:stats" in r.stdout
    assert "f:string (x:string)" in r.stdout


def test_pass_3_and_4():
    r = run_utrace(["-p3", "-e", HELLO])
    assert r.returncode == 0 and "int utr_call_probe(int32_t index)" in r.stdout
    r = run_utrace(["-p4", "-e", HELLO])
    assert r.returncode == 0
    so = Path(r.stdout.strip())
    assert so.suffix == ".so" and so.exists()
    deps = subprocess.run(["ldd", str(so)], capture_output=True, text=True).stdout
    assert "python" not in deps  # loadable into any process


def test_verbose_pass_timing(tmp_path):
    r = run_utrace(["-v", "-e", 'probe begin { println("v") exit() }'], env=fresh_cache(tmp_path))
    assert r.returncode == 0
    for n in range(1, 6):
        assert f"Pass {n}:" in r.stderr, r.stderr
    assert "usr/" in r.stderr and "real ms." in r.stderr


def test_help_and_version():
    r = run_utrace(["--help"])
    assert r.returncode == 0 and "Usage: utrace" in r.stdout and "Examples:" in r.stdout
    r = run_utrace(["--version"])
    assert r.returncode == 0 and r.stdout.startswith("utrace ")


def test_timeout_runs_end_probes():
    t0 = time.monotonic()
    r = run_utrace(["-T", "0.5", "-e", "global n probe timer.ms(10) { n++ } "
                    'probe end { printf("ticks>10:%d\\n", n > 10) }'])
    assert r.returncode == 0, r.stderr
    assert r.stdout == "ticks>10:1\n"
    assert time.monotonic() - t0 < 30


def test_sigterm_and_sigint_run_end_probes():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for sig in (signal.SIGTERM, signal.SIGINT):
        p = subprocess.Popen([sys.executable, "-m", "utrace_py", "-e",
                              'probe begin { println("ready") } probe end { println("bye") }'],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                             cwd=ROOT)
        assert p.stdout.readline() == "ready\n"
        p.send_signal(sig)
        out, err = p.communicate(timeout=30)
        assert (out, p.returncode) == ("bye\n", 0), err


def test_kmod_is_refused_and_a_bad_pid_is_clear():
    """Here no user may load a module: not root (CI's user) or a kernel without module
    support (these machines): either way the refusal says why and offers the user runtime."""
    import os
    r = run_utrace(["--runtime=kmod", "-e", HELLO])
    no_traceback(r)
    assert r.returncode == 1 and "--runtime=user" in r.stderr
    if os.geteuid() != 0:
        assert "needs root" in r.stderr
    else:
        assert "cannot load modules" in r.stderr or not os.path.exists("/proc/modules")
    r = run_utrace(["-x", "abc", "-e", HELLO])
    assert r.returncode == 1 and "Invalid target process ID" in r.stderr


def test_parse_error_names_the_file(tmp_path):
    script = tmp_path / "bad.stp"
    script.write_text("probe begin {\n  x = = 1\n}\n")
    r = run_utrace([str(script)])
    no_traceback(r)
    assert r.returncode == 1
    assert f"at {script}:2:7" in r.stderr
    assert "     source:   x = = 1\n" in r.stderr
    assert r.stderr.rstrip().endswith("Pass 1: parse failed.  [man error::pass1]")
