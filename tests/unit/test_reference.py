"""--dump-functions, --dump-probe-types and --dump-probe-aliases: generated from what really works."""
from __future__ import annotations

import shutil
import subprocess
import time

from tests.conftest import ROOT, need, run_utrace

PROGS = ROOT / "tests" / "testprogs"


def test_dump_functions_lists_every_public_function_with_its_doc():
    r = run_utrace(["-v", "--dump-functions"])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    sigs = {ln.split("\t")[0] for ln in lines}
    assert "pid:long ()" in sigs and "user_string:string (addr:long)" in sigs
    assert "user_string:string (addr:long, err_msg:string)" in sigs  # overloads both listed
    assert not any(s.startswith("_") for s in sigs), "internal helpers are not listed"
    undocumented = [ln for ln in lines if "\t" not in ln]
    assert undocumented == [], "every public tapset function carries a /** sfunction */ doc"
    plain = run_utrace(["--dump-functions"]).stdout.splitlines()
    assert sorted(plain) == sorted(sigs)


def test_dump_probe_aliases():
    r = run_utrace(["--dump-probe-aliases"])
    assert r.returncode == 0, r.stderr
    assert 'python.function.entry = process("/usr/bin/python3*").mark("function__entry")' \
        in r.stdout.splitlines()
    assert any(ln.startswith("postgresql.query.start = ") for ln in r.stdout.splitlines())


def test_every_listed_probe_type_elaborates(tmp_path):
    """Each form --dump-probe-types claims is instantiated and must pass pass 2."""
    need(shutil.which("gcc") is not None, "gcc")
    need(__import__("os").path.exists("/usr/include/x86_64-linux-gnu/sys/sdt.h")
         or __import__("os").path.exists("/usr/include/sys/sdt.h"), "systemtap-sdt-dev")
    exe = tmp_path / "sdt_args"
    subprocess.run(["gcc", "-O0", "-o", str(exe), str(PROGS / "sdt_args.c"),
                    str(PROGS / "sdt_sema.c")], check=True,
                   timeout=120)
    waiter = tmp_path / "att_waiter"
    subprocess.run(["gcc", "-O0", "-o", str(waiter), str(PROGS / "att_waiter.c")], check=True,
                   timeout=120)
    r = run_utrace(["--dump-probe-types"])
    assert r.returncode == 0, r.stderr
    forms = r.stdout.splitlines()
    assert "process(string).function(string).return" in forms and "timer.ms(number)" in forms
    live = subprocess.Popen([str(waiter)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        live.stdout.readline()
        probes = []
        for form in forms:
            pp = form.replace("process(number)", f"process({live.pid})")
            pp = pp.replace("process(string)", f'process("{exe}")')
            pp = pp.replace("library(string)", 'library("libc.so.6")')
            if "library" in pp or "plt" in pp:
                pp = pp.replace("function(string)", 'function("malloc")')
                pp = pp.replace("plt(string)", 'plt("printf")')
            pp = pp.replace("provider(string)", 'provider("sdt")')
            pp = pp.replace("mark(string)", 'mark("regs")')
            pp = pp.replace("function(string)", 'function("main")').replace("(number)", "(5)")
            probes.append(f"probe {pp} {{ }}")
        t0 = time.monotonic()
        r = run_utrace(["-p2", "-c", str(exe), "-e", "\n".join(probes)], timeout=300)
        assert r.returncode == 0, r.stderr
        assert time.monotonic() - t0 < 300
        for i, form in enumerate(forms):  # -p2 names each derived probe's source line
            assert f"at <input>:{i + 1}:7 */" in r.stdout, form
    finally:
        live.stdin.close()
        live.wait(10)


def test_help_examples_elaborate(tmp_path):
    """Every example in --help passes pass 2 against a real program (no stale examples)."""
    import shlex
    need(shutil.which("gcc") is not None, "gcc")
    app = tmp_path / "app"
    subprocess.run(["gcc", "-O0", "-o", str(app), "-x", "c", "-"], check=True, timeout=120,
                   input=b"int f(int x){return x+1;} int work(int x){return f(x);}\n"
                         b"int main(void){return work(0)-1;}\n")
    text = run_utrace(["--help"]).stdout
    block = text.split("Examples:\n")[1].split("\n\n")[0]
    cmds, cur = [], ""
    for ln in block.splitlines():
        if ln.startswith("  utrace ") and cur:
            cmds.append(cur)
            cur = ""
        cur += " " + ln.split("  # ")[0].strip()
    cmds.append(cur)
    assert len(cmds) >= 6
    live = subprocess.Popen(["sleep", "60"])
    try:
        for c in cmds:
            argv = shlex.split(c.replace("./app", str(app)).replace("1234", str(live.pid)))[1:]
            if argv[0] in ("-l", "-L") and not __import__("os").path.exists("/usr/bin/python3.11"):
                need(False, "python3.11")
            if not any(a.startswith("-p") or a in ("-l", "-L") for a in argv):
                argv = ["-p2"] + argv
            r = run_utrace([a.replace("-p3", "-p2") for a in argv])
            assert r.returncode == 0, (c, r.stderr)
    finally:
        live.kill()
        live.wait()


def test_man_page_documents_every_option_and_is_installed():
    import re
    import tomllib
    man = (ROOT / "docs" / "utrace.1").read_text()
    text = run_utrace(["--help"]).stdout
    opts = set(re.findall(r"^\s+(-[A-Za-z]|--[a-z-]+)", text, re.M))
    assert {"-c", "-x", "-e", "--dump-functions", "--runtime"} <= opts
    roff = man.replace("\\-", "-")
    for o in opts:
        assert re.search(rf"\.(?:B|BI|BR)\s+{re.escape(o)}\b", roff), f"{o} not in the man page"
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "docs/utrace.1" in data["tool"]["setuptools"]["data-files"]["share/man/man1"]


def test_troubleshooting_covers_every_refusal():
    """docs/troubleshooting.md has a section for each attach refusal code and each
    site refusal the injector and arming code can give."""
    import re
    doc = (ROOT / "docs" / "troubleshooting.md").read_text()
    codes = set(re.findall(r'_refuse\(pid, "([a-z-]+)"',
                           (ROOT / "injector" / "checks.py").read_text()))
    codes |= set(re.findall(r'AttachRefused\(self\.pid, "([a-z-]+)"',
                            (ROOT / "injector" / "tracee.py").read_text()))
    assert len(codes) >= 7
    for code in codes:
        assert f"### `{code}`" in doc, code
    arming = (ROOT / "utrace_py" / "run" / "functions.py").read_text()
    for phrase in ("entered by a jump, never called", "a thread is stopped inside the patch",
                   "no free memory within +-2 GiB", "the binary changed since the script",
                   "return probes need the unwinder hooks", "more than 13"):
        assert phrase in arming, phrase  # still what the code says ...
        assert phrase in doc, phrase     # ... and explained
