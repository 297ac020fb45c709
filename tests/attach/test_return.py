"""Return probes (.return, $return) and several probes per function: PITFALLS T-9..T-12."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, need, run_utrace

PROGS = ROOT / "tests" / "testprogs"


@pytest.fixture(scope="module")
def progs(tmp_path_factory) -> Path:
    need(shutil.which("gcc") is not None, "gcc")
    need(shutil.which("g++") is not None, "g++ (Debian's g++ package)")
    out = tmp_path_factory.mktemp("retprogs")
    src = str(PROGS / "ret_shapes.c")
    for name, flags in (("shapes", ["-O2"]), ("shapes_O0", ["-O0"]),
                        ("shapes_nosib", ["-O2", "-fno-optimize-sibling-calls"])):
        subprocess.run(["gcc", *flags, "-pthread", "-o", str(out / name), src],
                       check=True, timeout=120)
    subprocess.run(["g++", "-O2", "-pthread", "-o", str(out / "cxx"), str(PROGS / "ret_cxx.cc")],
                   check=True, timeout=120)
    out.chmod(0o755)
    return out


def _script(funcs: list[str], extra: str = "") -> str:
    """Count entries and returns per function: one line "name entries returns" each."""
    ent = ", ".join(f'process.function("{f}")' for f in funcs)
    ret = ", ".join(f'process.function("{f}").return' for f in funcs)
    return (f"global e, r; probe {ent} {{ e[ppfunc()]++ }} probe {ret} {{ r[ppfunc()]++ }} "
            f"{extra} probe end {{ foreach (k+ in e) printf(\"%s %d %d\\n\", k, e[k], r[k]) }}")


def _run(exe: Path, args: str, script: str, *opts: str):
    plain = subprocess.run([str(exe), *args.split()], capture_output=True, text=True,
                           timeout=120)
    r = run_utrace([*opts, "-c", f"{exe} {args}", "-e", script])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == plain.stdout.strip()  # the program's own result is unchanged
    counts = {ln.split()[0]: tuple(map(int, ln.split()[1:])) for ln in lines[1:]}
    return counts, r.stderr


@pytest.mark.parametrize("prog", ["shapes", "shapes_O0"])
def test_return_value_and_pp(progs, prog):
    exe = progs / prog
    r = run_utrace(["-c", f"{exe} tail 4", "-e",
                    'global s, n probe process.function("tail_a").return { s += $return; '
                    'if (n++ == 0) println(pp()) } probe end { printf("total %d\\n", s) }'])
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    total = int(out[0].split()[1])  # the program's own sum of tail_a's results
    assert out[-1] == f"total {total}"
    assert out[1] == f'process("{exe}").function("tail_a").return'


def test_entry_point_return_is_refused_and_argc_kept(progs):
    """_start is jumped to with argc at [rsp]: taking it as a return address would
    hand the program a trampoline address as argc (every function("*").return did)."""
    exe = progs / "shapes"
    for _ in range(5):  # the corrupted argc depended on where the trampoline landed
        counts, err = _run(exe, "tail 7", _script(["*"]), "-v")
        assert counts["main"] == (1, 1) and counts["tail_a"] == (7, 7)
        assert counts["_start"] == (1, 0)  # the entry probe still works
        assert "site _start at 0x" in err and ": refused (entered by a jump, never called" in err


def test_tail_call_exits_are_reported_callee_first(progs):
    # At -O2 tail_a ends in "jmp tail_b": one stack slot, two hijacks chained.
    objdump = subprocess.run(["objdump", "-d", str(progs / "shapes")], capture_output=True,
                             text=True).stdout
    body = objdump.split("<tail_a>:")[1].split("\n\n")[0]
    need(re.search(r"jmp\s+[0-9a-f]+ <tail_b>", body) is not None, "gcc emitting a tail call")
    r = run_utrace(["-c", f"{progs / 'shapes'} tail 2", "-e",
                    'probe process.function("tail_a"), process.function("tail_b") '
                    '{ printf("> %s\\n", ppfunc()) } '
                    'probe process.function("tail_a").return, process.function("tail_b").return '
                    '{ printf("< %s %d\\n", ppfunc(), $return) }'])
    assert r.returncode == 0, r.stderr
    # tail_b(i + 2) returns (i + 2) * 5 + 1, and tail_a returns the same value
    assert r.stdout.splitlines()[1:] == [
        "> tail_a", "> tail_b", "< tail_b 11", "< tail_a 11",
        "> tail_a", "> tail_b", "< tail_b 16", "< tail_a 16"]


@pytest.mark.parametrize("mode,func", [("longjmp", "f"), ("siglongjmp", "s")])
def test_longjmp_out_of_a_return_probed_frame(progs, mode, func):
    # T-9: 10^5 frames left by (sig)longjmp; a 16-entry shadow stack never overflows
    # because dead entries are recognised, and each is accounted as unwound.
    n = 100000
    counts, err = _run(progs / "shapes", f"{mode} {n}", _script([func, "leaf"]),
                       "-v", "-D", "UTR_SHADOW_DEPTH=16")
    assert counts == {func: (n, 0), "leaf": (n, n)}
    assert "shadow stack was full" not in err
    assert f"Pass 5: {n} return probes did not run: their frames were unwound" in err


def test_deep_recursion_is_balanced_up_to_the_cap(progs):
    # T-12
    exe = progs / "shapes_nosib"
    counts, err = _run(exe, "rec 3000", _script(["rec"]))
    assert counts == {"rec": (3001, 3001)}
    counts, err = _run(exe, "rec 5000", _script(["rec"]), "-D", "UTR_SHADOW_DEPTH=1000")
    assert counts == {"rec": (5001, 1000)}  # the outermost 1000 frames
    assert "WARNING: 4001 return probes skipped: a thread's shadow stack was full" in err


def test_many_threads(progs):
    counts, _ = _run(progs / "shapes", "threads 3000", _script(["rec", "leaf"]))
    n = 8 * 3000
    assert counts["leaf"] == (n, n)
    e, r = counts["rec"]
    assert e == r and e >= n


def test_cxx_exceptions_unwind_through_return_probed_frames(progs):
    # T-10: thrower and middle never return (the exception passes them); the program
    # catches every exception and its result is unchanged.
    n = 3000
    counts, err = _run(progs / "cxx", f"throw {n}",
                       _script(["thrower", "middle", "catcher", "leaf"]), "-v")
    assert counts == {"catcher": (n, n), "leaf": (n, n), "middle": (2 * n, 0),
                      "thrower": (2 * n, 0)}
    assert re.search(r"site _Unwind_RaiseException at 0x[0-9a-f]+: jump", err)
    assert re.search(r"site __cxa_begin_catch at 0x[0-9a-f]+: jump", err)
    assert f"Pass 5: {4 * n} return probes did not run" in err


def test_thread_cancellation_through_a_return_probed_frame(progs):
    # T-10 variant: pthread_cancel is a forced unwind through cancelled()
    counts, _ = _run(progs / "cxx", "cancel 20", _script(["cancelled"]))
    assert counts == {"cancelled": (20, 0)}


def test_entry_and_return_probes_share_one_site(progs):
    exe = progs / "shapes"
    r = run_utrace(["-v", "-c", f"{exe} libc 10", "-e",
                    'global a, b, c probe process.function("leaf") { a++ } '
                    'probe process.function("leaf").return { b++ } '
                    'probe process.function("lea*").return { c += $return } '
                    'probe process.library("libc.so.6").function("strtoul") { a += 1000 } '
                    'probe end { printf("%d %d %d\\n", a, b, c) }'])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1] == "10000 0 0"  # leaf is not called in libc mode
    assert "2 probe sites: 2 on the jump tier, 0 refused" in r.stderr


def test_library_functions(progs):
    exe = progs / "shapes"
    libc = Path("/lib/x86_64-linux-gnu/libc.so.6").resolve()
    for point in ('process.library("libc.so.6").function("strtoul")',
                  f'process("{libc}").function("strtoul")'):
        r = run_utrace(["-c", f"{exe} libc 100", "-e",
                        f'global n, s probe {point} {{ n++ }} probe {point}.return '
                        '{ s += $return } probe end { printf("%d %d\\n", n, s) }'])
        assert r.returncode == 0, r.stderr
        out = r.stdout.splitlines()
        # the loop's 100 calls returned 5 or 7, adding up to the program's sum
        assert out[1] == f"100 {int(out[0].split()[1])}", point


def test_return_outside_a_return_probe_is_an_error(progs):
    r = run_utrace(["-p2", "-e", 'probe process("/bin/true").function("main") { println($return) }'])
    assert r.returncode != 0
    assert "not supported yet: target variable '$return'" in r.stderr
    r = run_utrace(["-p2", "-e", 'probe process("/bin/true").function("main").return '
                    '{ println(@defined($return), @defined($nope)) }'])
    assert r.returncode == 0, r.stderr


def test_ifunc_is_resolved_to_the_selected_implementation(progs):
    # T-27: libc's strlen is an IFUNC; the resolver runs in the target as ld.so runs it
    r = run_utrace(["-v", "-c", f"{progs / 'shapes'} ifunc 100", "-e",
                    'global n, s probe process.library("libc.so.6").function("strlen") { n++ } '
                    'probe process.library("libc.so.6").function("strlen").return { s += $return } '
                    'probe end { printf("%d %d\\n", n, s) }'])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["sum 500", "100 500"]  # strlen("ifunc") == 5
    assert re.search(r"site strlen at 0x[0-9a-f]+: jump \(IFUNC resolved to ", r.stderr)


@pytest.mark.parametrize("cet", [True, False])
def test_plt_probes(progs, tmp_path, cet):
    # .plt.sec stubs (CET) and classic lazy-binding .plt stubs, entry and .return
    exe = tmp_path / "plt"
    flags = [] if cet else ["-fcf-protection=none"]
    subprocess.run(["gcc", "-O2", *flags, "-o", str(exe), str(PROGS / "ret_shapes.c")],
                   check=True, timeout=120)
    r = run_utrace(["-c", f"{exe} libc 3", "-e",
                    'global n probe process.plt("strtoul") { n++ } '
                    'probe process.plt("strto*").return { printf("%s %d\\n", pp(), $return) } '
                    'probe end { println(n) }'])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "sum 17", f'process("{exe}").plt("strtol").return 3',  # main's atol(argv[2])
        *(f'process("{exe}").plt("strtoul").return {v}' for v in (5, 7, 5)), "3"]


_TINY = ('global n, s probe process.function("tiny") { n++ } '
         'probe process.function("tiny").return { s += $return } '
         'probe end { printf("%d %d\\n", n, s) }')


def test_trap_tier_for_a_function_too_short_for_a_jump(progs):
    # T-1 -> tier 2: tiny() is 4 bytes at -O2; an int3 and the SIGTRAP handler in the target
    exe = progs / "shapes"
    counts = subprocess.run(["objdump", "-d", str(exe)], capture_output=True, text=True).stdout
    need(re.search(r"<tiny>:\n.*\n.*ret", counts) is not None, "tiny() compiled to 4 bytes")
    r = run_utrace(["-v", "-c", f"{exe} tiny 1000", "-e", _TINY])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["sum 500500", "1000 500500"]
    assert re.search(r"site tiny at 0x[0-9a-f]+: trap \(too short", r.stderr)


def test_trap_tier_survives_a_program_that_blocks_sigtrap(progs):
    # T-16: blocked SIGTRAP at an int3 means death by the kernel's hand; the C
    # library's mask calls are hooked so SIGTRAP never gets blocked, also inside a
    # signal handler whose sa_mask is full.
    exe = progs / "shapes"
    r = run_utrace(["-v", "-c", f"{exe} blocktrap 10", "-e", _TINY])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["sum 66", "11 66"]  # 0..9 + 1, then tiny(SIGUSR1)
    for hook in ("sigprocmask", "pthread_sigmask", "__libc_sigaction"):
        assert re.search(rf"site {hook} at 0x[0-9a-f]+: (jump|trap)", r.stderr)


def test_trap_tier_chains_to_the_programs_own_sigtrap_handler(progs):
    exe = progs / "shapes"
    plain = subprocess.run([str(exe), "owntrap", "10"], capture_output=True, text=True)
    r = run_utrace(["-c", f"{exe} owntrap 10", "-e", _TINY])
    assert r.returncode == 0, r.stderr
    # the program counted its 3 raise()s and its own int3 (4000), the probes their 10 hits
    assert r.stdout.splitlines() == [plain.stdout.strip(), "10 55"]
    assert plain.stdout.strip() == "sum 4055"


def test_trap_tier_refused_when_a_thread_already_blocks_sigtrap(progs, tmp_path):
    # attach (-x) to a process whose thread blocks SIGTRAP: no int3 is ever written
    src = tmp_path / "blocked.c"
    src.write_text('#include <signal.h>\n#include <stdio.h>\n#include <unistd.h>\n'
                   '__attribute__((noinline)) int tiny(int x) { return x + 1; }\n'
                   'int main(void) { sigset_t s; sigemptyset(&s); sigaddset(&s, SIGTRAP);\n'
                   ' sigprocmask(SIG_BLOCK, &s, 0); printf("ready\\n"); fflush(stdout);\n'
                   ' long t = 0; for (int i = 0; i < 400; i++) { t += tiny(i); usleep(5000); }\n'
                   ' printf("%ld\\n", t); return 0; }\n')
    exe = tmp_path / "blocked"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(src)], check=True, timeout=60)
    p = subprocess.Popen([str(exe)], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        r = run_utrace(["-v", "-x", str(p.pid), "-T", "0.3", "-e",
                        'probe process.function("tiny") { }'])
        assert "blocks SIGTRAP: an int3 would kill the process (T-16)" in r.stderr
        assert p.wait(timeout=30) == 0  # the target finished normally
        assert p.stdout.read() == f"{sum(i + 1 for i in range(400))}\n"
    finally:
        p.kill()
        p.wait()


def test_trap_tier_handler_register_writes_reach_the_thread(progs):
    # set_int_arg at an int3 site: the signal context gets the register back
    r = run_utrace(["-g", "-c", f"{progs / 'shapes'} tiny 10", "-e",
                    'probe process.function("tiny") { set_int_arg(1, 100) }'])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["sum 1010"]  # tiny(100) == 101, ten times


def test_entry_values_in_return_probes(progs):
    # @entry(expr) is evaluated when the function is entered: tail_a(i) returns
    # (i + 2) * 5 + 1, checked for every call against the argument it was entered with;
    # recursion keeps one value per pending call.
    r = run_utrace(["-c", f"{progs / 'shapes'} tail 50", "-e",
                    'global bad, n probe process.function("tail_a").return '
                    '{ n++; if ($return != (@entry(int_arg(1)) + 2) * 5 + 1) bad++ } '
                    'probe end { printf("%d %d\\n", n, bad) }'])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1] == "50 0"
    r = run_utrace(["-c", f"{progs / 'shapes_nosib'} rec 30", "-e",
                    'global bad, n probe process.function("rec").return '
                    '{ n++; if ($return != @entry(int_arg(1)) + 1) bad++ } '
                    'probe end { printf("%d %d\\n", n, bad) }'])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1] == "31 0"  # rec(d) returns d + 1


def test_entry_outside_return_probes_and_of_strings(progs):
    r = run_utrace(["-p2", "-e", 'probe process("/bin/true").function("main") '
                    '{ println(@entry(1)) }'])
    assert r.returncode != 0 and "@entry is only valid in .return probes" in r.stderr
    r = run_utrace(["-p2", "-e", 'probe process("/bin/true").function("main").return '
                    '{ println(@entry(execname())) }'])
    assert r.returncode != 0 and "not supported yet: @entry of a string" in r.stderr


def test_x_session_ends_with_return_probes_pending(progs):
    # T-25: four threads sit 31 frames deep in return-probed recursion when the -x
    # session ends; the entry patches go, the trampolines stay, every frame returns home.
    from tests.injector.conftest import Target
    for cycle in range(3):
        t = Target([progs / "shapes", "sleepers", "1000"])  # ~2 s: outlives the attach
        try:
            r = run_utrace(["-x", str(t.pid), "-e",
                            'global n probe process.function("rec_sleep").return { n++ } '
                            'probe timer.ms(150) { exit() } probe end { println(n > 0) }'])
            assert (r.returncode, r.stdout) == (0, "1\n"), r.stderr
            rc, out = t.finish(timeout=60)
            assert (rc, out) == (0, f"sum {4 * 1000 * 31}\n"), cycle
        finally:
            t.kill()


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("dl")
    lib, host = out / "libplug.so", out / "dl_host"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(lib),
                    str(PROGS / "dl_plugin.c")], check=True, timeout=60)
    subprocess.run(["gcc", "-O2", "-o", str(host), str(PROGS / "dl_host.c")], check=True,
                   timeout=60)
    out.chmod(0o755)
    return host, lib


def test_libraries_loaded_later_get_their_probes(plugin):
    # T-26: a probe on a library the program dlopens later; three load/unload rounds,
    # every call of each round counted, the program's result unchanged.
    host, lib = plugin
    r = run_utrace(["-v", "-c", f"{host} {lib} 10", "-e",
                    'global n, s probe process.library("libplug.so").function("plugin_fn") '
                    '{ n++ } probe process.library("libplug.so").function("plugin_fn").return '
                    '{ s += $return } probe end { printf("%d %d\\n", n, s) }'])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["sum 300", "30 300"]
    assert re.search(r"site _dl_debug_state at 0x[0-9a-f]+: ptrace", r.stderr)


def test_x_session_leaves_ld_so_unpatched(plugin):
    # after a -x session that watched for libraries, later dlopens work untraced
    from tests.injector.conftest import Target
    host, lib = plugin
    t = Target([host, str(lib), "5", "12"])
    try:
        r = run_utrace(["-x", str(t.pid), "-e",
                        f'global n probe process("{lib}").function("plugin_fn") {{ n++ }} '
                        'probe timer.ms(400) { exit() } probe end { println(n > 0) }'])
        assert (r.returncode, r.stdout) == (0, "1\n"), r.stderr
        rc, out = t.finish(timeout=30)
        assert (rc, out) == (0, f"sum {12 * 25}\n")
    finally:
        t.kill()


def test_return_probes_refused_in_go_binaries(tmp_path):
    # T-13: a Go binary (.gopclntab) moves goroutine stacks; entry probes still work
    exe = tmp_path / "fakego"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(PROGS / "att_calls.c")], check=True)
    (tmp_path / "tab").write_bytes(b"\xfb\xff\xff\xff")
    subprocess.run(["objcopy", "--add-section", f".gopclntab={tmp_path / 'tab'}", str(exe)],
                   check=True)
    r = run_utrace(["-c", f"{exe} 10", "-e",
                    'global n, m probe process.function("work") { n++ } '
                    'probe process.function("work").return { m++ } '
                    'probe end { printf("%d %d\\n", n, m) }'])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1] == "10 0"
    assert "not supported yet: return probes in a Go binary (.gopclntab)" in r.stderr


RV_SRC = """#include <stdio.h>
__attribute__((noinline)) long f(long x) { __asm__ volatile("" : "+r"(x)); return x - 5; }
int main(void) { long s = 0; for (int i = 0; i < 3; i++) s += f(i * 2 + 1); printf("s %ld\\n", s); return 0; }
"""


def _rv(tmp_path: Path) -> Path:
    exe = tmp_path / "rv"
    subprocess.run(["gcc", "-O2", "-o", str(exe), "-x", "c", "-"], input=RV_SRC.encode(),
                   check=True, timeout=120)
    return exe


def test_returnval_and_errno_tapset(tmp_path):
    exe = _rv(tmp_path)
    r = run_utrace(["-c", str(exe), "-e",
                    'probe process.function("f").return { printf("%d|%s|%s\\n", returnval(), '
                    'returnstr(1), returnstr(2)) } probe end { printf("%s|%s|%s\\n", '
                    'return_str(3, 8), errno_str(2), errno_str(9999)) }'])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["s -6", "-4|-4 (EINTR)|-4 (EINTR)",
                                     "-2|-2 (ENOENT)|-2 (ENOENT)", "0|0|0x0", "010|ENOENT|E9999"]


def test_a_crashed_target_is_reported(tmp_path):
    """Whatever kills a traced process by a fatal signal is said, with where it happened
    (here a guru handler that writes through a null pointer, in the handler object)."""
    exe = _rv(tmp_path)
    r = run_utrace(["-g", "-c", str(exe), "-e",
                    'function boom() %{ *(volatile int *)0 = 1; %} '
                    'probe process.function("f") { boom() }'])
    assert "s -6" not in r.stdout
    assert re.search(r"WARNING: process \d+ \(rv\) was killed by SIGSEGV at pc 0x[0-9a-f]+ in "
                     r"\S*/utrace_[0-9a-f]+\.so", r.stderr), r.stderr


def test_embedded_c_calling_an_undeclared_function_fails_to_build():
    r = run_utrace(["-g", "-p4", "-e", 'function f:long () %{ STAP_RETURN((long)no_such_fn()); %} '
                    'probe begin { println(f()) }'])
    assert r.returncode == 1
    assert "no_such_fn" in r.stderr and "Traceback" not in r.stderr


def test_return_probes_in_a_thread_past_its_key_destructors(tmp_path):
    """A thread that exits frees its shadow stack in a key destructor, then glibc still
    calls free() for it: that return probe must neither use the unmapped stack (it did:
    SIGSEGV) nor leak a new one."""
    exe = tmp_path / "ex_app"
    subprocess.run(["gcc", "-O2", "-pthread", "-o", str(exe), str(PROGS / "ex_app.c")],
                   check=True, timeout=120)
    r = run_utrace(["-v", "-c", f"{exe} locks 6 200", "-e",
                    'global e, r probe process.library("libc.so.6").function("free").call '
                    '{ e[tid()]++ } probe process.library("libc.so.6").function("free").return '
                    '{ r[tid()]++ } probe end { foreach (t in e) '
                    'printf("%d %d\\n", e[t], r[t]) }'])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "locks total 1200"
    rows = [tuple(map(int, ln.split())) for ln in r.stdout.splitlines()[1:]]
    assert len(rows) >= 6 and all(a == b for a, b in rows), rows  # workers' frees counted
    assert "killed by" not in r.stderr and "shadow stack was full" not in r.stderr
