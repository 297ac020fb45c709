"""Fault-safe user memory (native/src/umem.c) and the uconversions/registers tapsets,
used from function probes that run inside the traced process."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, need, run_utrace
from tests.injector.conftest import Target

PROGS = ROOT / "tests" / "testprogs"
NATIVE = ROOT / "native"


@pytest.fixture(scope="module")
def progs(tmp_path_factory) -> Path:
    need(shutil.which("gcc") is not None, "gcc")
    out = tmp_path_factory.mktemp("umemprogs")
    for name, flags in (("args_O2", ["-O2"]), ("args_O0", ["-O0"])):
        subprocess.run(["gcc", *flags, "-o", str(out / name), str(PROGS / "att_args.c")],
                       check=True, timeout=120)
    subprocess.run(["gcc", "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror",
                    "-I", str(NATIVE / "include"), "-o", str(out / "umem_harness"),
                    str(PROGS / "umem_harness.c"), str(NATIVE / "src" / "umem.c")],
                   check=True, timeout=120)
    out.chmod(0o755)
    return out


# ---- umem.c on its own ------------------------------------------------------------

def test_umem_reads_and_writes_never_fault(progs):
    r = subprocess.run([str(progs / "umem_harness"), "check"], capture_output=True, text=True,
                       timeout=60)
    lines = r.stdout.splitlines()
    bad = [ln for ln in lines if not ln.endswith(" ok")]
    assert r.returncode == 0 and not bad, r.stdout + r.stderr
    # every case ran (a crash half-way would leave some out)
    for case in ("null", "kernel_addr", "prot_none_read", "readonly_write", "write_str_bounded",
                 "string_ends_at_page_end", "string_runs_into_hole",
                 "bounded_string_stops_before_hole", "string_crossing_pages",
                 "fork_child_reads_itself", "errno_kept"):
        assert f"{case} ok" in lines, case


# ---- arguments, registers and user memory inside the target ----------------------

TAKE = r'''
probe process.function("take") {
  printf("take s=%s n=%d l=%d sh=%d id=%d kind=%d name=%s u8=%d a7=%d a8=%d p=%d\n",
         user_string(pointer_arg(1)), int_arg(2), long_arg(3), register("cx"),
         user_int(pointer_arg(5)), user_short(pointer_arg(5) + 4),
         user_string(pointer_arg(5) + 16), uint_arg(6) & 0xff, long_arg(7), int_arg(8),
         register("rdi"))
  printf("regs %d %d %d %d %d %d %d\n", uint_arg(2), u_register("esi"), register("esi"),
         register("si"), u_register("si"), s64_arg(3) == longlong_arg(3),
         pointer_arg(1) == u_register("rdi") && ulong_arg(5) == register("r8"))
  printf("n3 %s|%s|%s\n", user_string_n(pointer_arg(1), 3), user_string_n(pointer_arg(1), 0),
         user_string_n_quoted(pointer_arg(1), 2))
  printf("where %d %d %d\n", uaddr() == register("rip"), registers_valid(), user_mode())
}
'''


@pytest.mark.parametrize("prog", ["args_O2", "args_O0"])
def test_arguments_and_user_memory_match_what_the_program_passed(progs, prog):
    r = run_utrace(["-c", f"{progs / prog} 3", "-e", TAKE])
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    # The program prints what it passes (with p = the string's address); the probe
    # prints the same line from the registers and the target's memory.
    told = [ln for ln in out if ln.startswith("take ")]
    assert len(told) == 6, r.stdout
    for line in set(told):
        assert told.count(line) == 2, (line, r.stdout)
    assert "value 42" in out and "exit" not in r.stderr
    regs = [ln.split()[1:] for ln in out if ln.startswith("regs ")]
    assert len(regs) == 3
    for i, (u32, uesi, esi, si, usi, same64, ptr) in enumerate(regs):
        n = -5 * i - 1                    # the int argument, in esi
        assert (int(u32), int(uesi), int(esi)) == (n & 0xffffffff, n & 0xffffffff, n)
        assert (int(si), int(usi)) == (n, n & 0xffff)
        assert (same64, ptr) == ("1", "1")
    assert [ln for ln in out if ln.startswith("n3 ")] == ['n3 str||"st"'] * 3
    assert [ln for ln in out if ln.startswith("where ")] == ["where 1 1 1"] * 3


def test_strings_next_to_an_unreadable_page(progs):
    script = r'''
probe process.function("edge") { printf("edge=%s\n", user_string(pointer_arg(1))) }
probe process.function("nonul") {
  printf("n4=%s n2=%s dflt=%s\n", user_string_n(pointer_arg(1), 4),
         user_string_n(pointer_arg(1), 2), user_string(pointer_arg(1), "FAULT"))
  printf("quoted=%d\n", user_string_quoted(pointer_arg(1)) == sprintf("0x%x", pointer_arg(1)))
  try { println(user_string(pointer_arg(1))) } catch (e) {
    printf("%d\n", e == sprintf("user string copy fault -14 at 0x%x [man error::fault]", pointer_arg(1)))
  }
}'''
    r = run_utrace(["-c", f"{progs / 'args_O2'} 1", "-e", script])
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    # "edge" ends with the page's last byte: read without touching the next page.
    assert "edge=edge" in out
    # "abcd" runs into the unreadable page: user_string faults, user_string_n(.., 4)
    # reads only 4 bytes (stap's kernel semantics) and is fine.
    assert "n4=abcd n2=ab dflt=FAULT" in out
    assert "quoted=1" in out
    assert "1" in out  # the caught message is stap's, with the address


def test_a_bad_pointer_is_stap_error_and_the_target_finishes(progs):
    plain = subprocess.run([str(progs / "args_O2"), "3"], capture_output=True, text=True,
                           timeout=60)
    assert plain.returncode == 7
    r = run_utrace(["-c", f"{progs / 'args_O2'} 3", "-e",
                    'probe process.function("take") { println(user_string(0)) }'])
    assert r.returncode == 1

    def no_addr(text: str) -> str:  # the stack address differs from run to run
        return re.sub(r" p=\d+", "", text)
    assert no_addr(r.stdout) == no_addr(plain.stdout)  # the program ran to its end, unchanged
    assert re.search(r"^ERROR: user string copy fault -14 at 0x0 \[man error::fault\] "
                     r"near identifier 'user_string_n' at \S+/uconversions\.stp:\d+:\d+$",
                     r.stderr, re.M), r.stderr
    assert "WARNING: Number of errors: 1, skipped probes: 0" in r.stderr


def test_integer_faults_follow_stap(progs):
    # user_long() is 0 on a fault (no error); user_long_error() is the error;
    # user_long_warn() warns and returns 0.
    script = ('probe process.function("take") { printf("%d %d|", user_long(1), user_int(0)) '
              'x = user_long_warn(1) printf("%d\\n", user_long_error(1)) }')
    r = run_utrace(["-D", "MAXERRORS=10", "-c", f"{progs / 'args_O2'} 2", "-e", script])
    assert r.returncode == 1, r.stderr  # errors happened: "Pass 5: run failed"
    assert r.stdout.count("0 0|") == 2
    assert r.stderr.count("WARNING: user long copy fault 0x1 [man error::fault]") == 2
    assert len(re.findall(r"^ERROR: read fault \[man error::fault\] at 0x1 near identifier "
                          r"'user_long_error' at <input>:1:\d+$", r.stderr, re.M)) == 2, r.stderr
    assert "sum " in r.stdout


def test_x_session_with_faults_leaves_the_target_running(progs):
    t = Target([progs / "args_O2", "loop"])
    try:
        r = run_utrace(["-x", str(t.pid), "-e",
                        'probe process.function("take") { println(user_long_error(8)) }'])
        assert r.returncode == 1
        assert "ERROR: read fault [man error::fault] at 0x8 near identifier 'user_long_error'" \
            in r.stderr
        rc, out = t.finish(timeout=30)
        assert rc == 7 and out.startswith("done "), (rc, out)
    finally:
        t.kill()


def test_stack_arguments_past_the_sixth(progs):
    script = ('probe process.function("take") { printf("%d %d %d\\n", longlong_arg(7), '
              's32_arg(8), u32_arg(8)) }')
    r = run_utrace(["-c", f"{progs / 'args_O2'} 2", "-e", script])
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert f"7000000000 -8 {(-8) & 0xffffffff}" in out
    assert f"7000000001 -9 {(-9) & 0xffffffff}" in out


def test_register_and_arg_errors_in_a_function_probe(progs):
    script = ('probe process.function("take") { try { register("xmm0") } catch (e) { println(e) } '
              'try { int_arg(0) } catch (e) { println(e) } '
              'try { regparm(7) } catch (e) { println(e) } '
              'regparm(0) printf("%d\\n", long_arg(1) == 7000000000 + 0) }')
    r = run_utrace(["-c", f"{progs / 'args_O2'} 1", "-e", script])
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert "Unknown register: xmm0" in out
    assert "cannot access arg(0)" in out
    assert "For x86_64, regparm value must be in the range 0-6." in out
    assert out[out.index("For x86_64, regparm value must be in the range 0-6.") + 1] == "1"


# ---- writes: guru mode only ---------------------------------------------------------

def test_set_user_long_needs_guru_mode(progs):
    script = 'probe process.function("poke") { set_user_long(pointer_arg(1), 1234) }'
    r = run_utrace(["-c", f"{progs / 'args_O2'} 1", "-e", script])
    assert r.returncode == 1
    assert r.stderr.startswith("semantic error: function may not be used unless -g is "
                               "specified: identifier 'set_user_long' at <input>:1:34\n"), r.stderr
    assert "Pass 2: analysis failed.  [man error::pass2]" in r.stderr
    assert "value" not in r.stdout  # refused before anything ran


def test_set_user_long_with_guru_mode_changes_the_program(progs):
    script = 'probe process.function("poke") { set_user_long(pointer_arg(1), 1234) }'
    r = run_utrace(["-g", "-c", f"{progs / 'args_O2'} 1", "-e", script])
    assert r.returncode == 0, r.stderr
    assert "value 1234" in r.stdout.splitlines()


def test_guru_writes_that_fault_and_argument_writes(progs):
    plain = subprocess.run([str(progs / "args_O2"), "1"], capture_output=True, text=True,
                           timeout=60)
    psum = int(plain.stdout.split("sum ")[1])
    script = ('probe process.function("poke") { set_user_int(0, 1) } '
              'probe process.function("take") { set_long_arg(3, 0) set_s32_arg(8, 100) }')
    r = run_utrace(["-g", "-D", "MAXERRORS=5", "-c", f"{progs / 'args_O2'} 1", "-e", script])
    assert "ERROR: user int copy fault at 0x0000000000000000 [man error::fault]" in r.stderr
    # take() sees l = 0 instead of -1234567890123 (a register) and a8 = 100 instead
    # of -8 (a stack slot)
    assert int(r.stdout.split("sum ")[1]) == psum + 1234567890123 + 108, (plain.stdout, r.stdout)


def test_utf32_and_utf16_strings(progs):
    script = r'''probe process.function("wide") {
  println(user_string_utf32(pointer_arg(1)), "|", user_string_utf16(pointer_arg(2)))
  try { println(user_string_utf32(pointer_arg(3))) } catch (e) {
    println(e == sprintf("invalid UTF-32 character U+D800 at 0x%x", pointer_arg(3) + 4)) }
  try { println(user_string_utf16(pointer_arg(4))) } catch (e) {
    println(e == sprintf("invalid UTF-16 character U+DC00 at 0x%x", pointer_arg(4) + 2)) }
  println(user_string_utf16(pointer_arg(4), "E16"), user_string2_utf32(0, "E32"))
}'''
    r = run_utrace(["-c", f"{progs / 'args_O2'} 0", "-e", script])
    assert r.returncode == 0, r.stderr
    mine = [ln for ln in r.stdout.splitlines() if not ln.startswith(("value ", "sum "))]
    assert mine == ["h\u00e9llo \u20ac\U0001d11e|h\u00e9llo \u20ac\U0001d11e", "1", "1", "E16E32"]
