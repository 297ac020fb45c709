"""process.function entry probes through jump trampolines: exact counts, target unchanged."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, need, run_utrace
from tests.injector.conftest import Target

PROGS = ROOT / "tests" / "testprogs"
COUNT = ('global n, m; probe process.function("work") { n++ } '
         'probe process.function("other") { m++ } '
         'probe end { printf("work=%d other=%d\\n", n, m) }')


@pytest.fixture(scope="module")
def progs(tmp_path_factory) -> Path:
    need(shutil.which("gcc") is not None, "gcc")
    out = tmp_path_factory.mktemp("fnprogs")
    for name, flags in (("calls_O0", ["-O0"]), ("calls_O2", ["-O2"]),
                        ("calls_cet", ["-O2", "-fcf-protection=full"]),
                        ("calls_nopie", ["-O2", "-no-pie", "-fno-pie"])):
        subprocess.run(["gcc", *flags, "-o", str(out / name), str(PROGS / "att_calls.c")],
                       check=True, timeout=120)
    subprocess.run(["gcc", "-O2", "-o", str(out / "loop"), str(PROGS / "att_loop.c")],
                   check=True, timeout=120)
    out.chmod(0o755)
    return out


@pytest.mark.parametrize("prog", ["calls_O0", "calls_O2", "calls_cet", "calls_nopie"])
def test_entry_counts_are_exact_and_output_unchanged(progs, prog):
    exe = progs / prog
    plain = subprocess.run([str(exe), "5000"], capture_output=True, text=True, timeout=60)
    r = run_utrace(["-v", "-c", f"{exe} 5000", "-e", COUNT])
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0] == plain.stdout.strip()  # the program's own output, as untraced
    assert out[1] == "work=5000 other=500"  # 4500 direct calls + 500 through other()
    assert "2 probe sites: 2 on the jump tier, 0 refused" in r.stderr


def test_handlers_run_in_the_target_thread(progs):
    r = run_utrace(["-c", f"{progs / 'calls_O2'} 3", "-e",
                    'global seen probe process.function("work") '
                    '{ seen[pid() == target(), tid() == pid(), execname()]++ } '
                    'probe end { foreach ([a, b, c] in seen) printf("%d %d %s %d\\n", a, b, c, seen[a, b, c]) }'])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1] == "1 1 calls_O2 3"


def test_runtime_error_in_a_function_probe_leaves_the_target_alone(progs):
    r = run_utrace(["-D", "MAXERRORS=1000", "-c", f"{progs / 'calls_O2'} 10", "-e",
                    'probe process.function("work") { x = 0; y = 1 / x }'])
    assert r.stdout.startswith("sum "), r.stderr  # the program ran to its end
    assert r.stderr.count("ERROR: division by 0 near operator '/'") == 10
    assert "WARNING: Number of errors: 10, skipped probes: 0" in r.stderr


def test_x_arms_live_code_and_puts_it_back(progs):
    from utrace_py.binfo import find_functions
    from utrace_py.binfo.elf import ElfFile
    from utrace_py.binfo.procmaps import main_executable, modules

    t = Target([progs / "loop"])
    try:
        r = run_utrace(["-x", str(t.pid), "-e",
                        'global n probe process.function("work") { n++ } '
                        'probe timer.ms(300) { exit() } probe end { printf("%d\\n", n > 0) }'])
        assert (r.returncode, r.stdout) == (0, "1\n"), r.stderr
        # After the session the function's code is the file's again, byte for byte.
        exe = main_executable(t.pid, modules(t.pid))
        fn = find_functions(exe.readable_path, "work")[0]
        with open(f"/proc/{t.pid}/mem", "rb") as mem:
            mem.seek(exe.base + fn.address)
            live = mem.read(fn.size)
        off = ElfFile(exe.readable_path).vaddr_to_offset(fn.address)
        assert live == Path(exe.readable_path).read_bytes()[off:off + fn.size]
        assert "TracerPid:\t0" in Path(f"/proc/{t.pid}/status").read_text()
        rc, out = t.finish(timeout=30)
        assert rc == 0 and out.startswith("done "), out
    finally:
        t.kill()


def _cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def test_vector_arguments_reach_the_probed_function_intact(tmp_path):
    """Entry trampolines keep xmm/ymm/zmm 0-7, MXCSR and the x87 CW while the handler
    runs string code that uses SIMD (glibc's memcpy/strlen)."""
    need(shutil.which("gcc") is not None, "gcc")
    flags = _cpu_flags()
    isa = ["-mavx512f"] if "avx512f" in flags else ["-mavx2"] if "avx2" in flags else []
    exe = tmp_path / "vec"
    subprocess.run(["gcc", "-O2", *isa, "-o", str(exe), str(PROGS / "att_vec.c")],
                   check=True, timeout=120)
    plain = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60).stdout
    script = ('global n, s probe process.function("*sum") { n++; '
              's = sprintf("%d %s %s", n, "abcdefghijklmnopqrstuvwxyz0123456789", s) } '
              'probe end { printf("hits %d\\n", n) }')
    r = run_utrace(["--no-global-var-display", "-c", str(exe), "-e", script])
    assert r.returncode == 0, r.stderr
    expected_hits = 1000 * (1 + ("avx2" in flags or "avx512f" in flags) + ("avx512f" in flags))
    assert r.stdout == plain + f"hits {expected_hits}\n"


def test_library_functions_by_path(tmp_path):
    need(shutil.which("gcc") is not None, "gcc")
    exe = tmp_path / "hello"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(PROGS / "att_hello.c")], check=True,
                   timeout=120)
    libc = next(p for p in ("/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6")
                if Path(p).exists())
    r = run_utrace(["-v", "-c", str(exe), "-e",
                    f'global n probe process("{libc}").function("printf") {{ n++ }} '
                    f'probe process("{libc}").function("fflush") {{ n += 100 }} '
                    'probe end { println(n) }'])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1:] == ["101"]  # printf once, fflush once
    assert "site fflush at" in r.stderr  # named by the alias asked for, not _IO_fflush


def test_pp_names_the_resolved_site(progs):
    exe = progs / "calls_O2"
    r = run_utrace(["-c", f"{exe} 12", "-e",
                    'global seen probe process.function("work"), process.function("oth*") '
                    '{ seen[pp(), ppfunc(), probefunc()]++ } '
                    'probe end { foreach ([a, b, c] in seen+) printf("%s %s %s %d\\n", a, b, c, seen[a, b, c]) }'])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1:] == [
        f'process("{exe}").function("other") other other 2',
        f'process("{exe}").function("work") work work 12']


def test_unmatched_and_doubly_probed_functions_are_reported(progs):
    exe = progs / "calls_O2"
    r = run_utrace(["-v", "-c", f"{exe} 5", "-e",
                    'global a, b probe process.function("work") { a++ } '
                    'probe process.function("w*") { b += 10 } '
                    'probe process.function("no_such_function") { } '
                    'probe end { printf("%d %d\\n", a, b) }'])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1] == "5 50"  # both probes run at the one patched site
    assert "1 probe sites: 1 on the jump tier, 0 refused" in r.stderr
    assert (f'WARNING: process("{exe}").function("no_such_function") matched no function'
            in r.stderr)


FOREIGN_JUMP = r"""
#include <stdio.h>
/* stub() ends in a jump to the second instruction of f(), as glibc's mempcpy does
 * into memmove: a jump patch over f's first bytes would be entered mid-way. */
__asm__(".text\n.globl stub\n.type stub,@function\nstub:\n.cfi_startproc\n"
        "  mov %rdi, %rax\n  add $100, %rax\n  jmp f_second\n.cfi_endproc\n.size stub, .-stub\n"
        ".globl f\n.type f,@function\nf:\n.cfi_startproc\n  mov %rdi, %rax\n"
        "f_second:\n  add $2, %rax\n  add $3, %rax\n  nop\n  nop\n  nop\n  ret\n"
        ".cfi_endproc\n.size f, .-f\n");
long stub(long);
long f(long);
int main(void)
{
    long s = 0;
    for (long i = 0; i < 10; i++)
        s += stub(i) + f(i);
    printf("sum %ld\n", s);
    return 0;
}
"""


@pytest.mark.parametrize("strip", [False, True])
def test_a_jump_from_another_function_into_the_patch_is_seen(tmp_path, strip):
    """The whole module's branches are swept (from its unwind table, also when stripped),
    not only the probed function's own."""
    exe = tmp_path / "fj"
    subprocess.run(["gcc", "-O1", "-rdynamic", "-o", str(exe), "-x", "c", "-"],
                   input=FOREIGN_JUMP.encode(), check=True, timeout=120)
    if strip:  # as Debian ships binaries: .dynsym (f is exported) and .eh_frame only
        subprocess.run(["strip", "-s", str(exe)], check=True)
    plain = subprocess.run([str(exe)], capture_output=True, text=True).stdout
    r = run_utrace(["-v", "-c", str(exe), "-e",
                    'global n probe process.function("f") { n++ } probe end { printf("n %d\\n", n) }'])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [plain.strip(), "n 10"]  # stub's jump is not f's entry
    assert re.search(r"site f at 0x[0-9a-f]+: trap \(a branch in other code of the module "
                     r"targets 0x[0-9a-f]+, inside the displaced range", r.stderr), r.stderr
