"""SDT markers of real binaries: notes against readelf, argument forms, values at the marker.

tests/testprogs/sdt_args.c + sdt_sema.c are built at -O0 and -O2 (PIE, non-PIE,
stripped with -rdynamic).  The strongest check runs each build under ptrace with an
int3 on every marker's nop (the nop does nothing, so the program simply continues
after the trap): at each hit the arguments are computed from the registers and
memory, in Python (ArgSpec.value) and by the C expressions of translate/sdt_c.py
compiled against a snapshot of that hit, and both must equal what the program
prints for that marker.  Semaphores are set through their addresses first, so the
guarded markers fire only if those addresses are right.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, need
from utrace_py.binfo import cache as binfo_cache
from utrace_py.binfo import sdt
from utrace_py.binfo.elf import ElfFile
from utrace_py.binfo.sdt import match_markers, read_markers
from utrace_py.binfo.sdt_args import FORMS, SdtError
from utrace_py.binfo.symbols import symbol_table
from utrace_py.translate.sdt_c import arg_c_expr

PROGS = ROOT / "tests" / "testprogs"
SDT_H = ("/usr/include/x86_64-linux-gnu/sys/sdt.h", "/usr/include/sys/sdt.h")
PYTHON311 = "/usr/bin/python3.11"
FIELDS = ("rip", "rsp", "r15", "r14", "r13", "r12", "r11", "r10", "r9", "r8",
          "rdi", "rsi", "rbp", "rbx", "rdx", "rcx", "rax", "rflags")
VARIANTS = {
    "pie_O0": ["-O0", "-pie", "-fPIE"],
    "pie_O2": ["-O2", "-pie", "-fPIE"],
    "nopie_O2": ["-O2", "-no-pie", "-fno-PIE"],
    "pie_O2_strip": ["-O2", "-pie", "-fPIE", "-rdynamic", "strip"],
}
# name -> argument count, as sdt_args.c / sdt_sema.c declare them
DECLARED = {"regs": 6, "consts": 4, "fields": 4, "elem": 3, "globals": 2, "widths": 8,
            "locals": 3, "pointers": 2, "floats": 2, "tls": 1, "noargs": 0, "forced_regs": 8,
            "forced_mem": 9, "oldstyle": 3, "guarded": 2, "query__start": 1}
WITH_SEMAPHORE = {"guarded", "query__start"}
SEED = 7


def _have_sdt_h() -> bool:
    return any(os.path.exists(p) for p in SDT_H)


@pytest.fixture(scope="session")
def sdt_progs(tmp_path_factory) -> dict[str, Path]:
    need(shutil.which("gcc") is not None, "gcc")
    need(_have_sdt_h(), "sys/sdt.h (Debian package systemtap-sdt-dev)")
    out = tmp_path_factory.mktemp("sdt")
    built = {}
    for name, flags in VARIANTS.items():
        exe = out / name
        subprocess.run(["gcc", "-g0", *[f for f in flags if f != "strip"], "-o", str(exe),
                        str(PROGS / "sdt_args.c"), str(PROGS / "sdt_sema.c")],
                       check=True, timeout=300)
        if "strip" in flags:
            subprocess.run(["strip", str(exe)], check=True, timeout=60)
        built[name] = exe
    return built


def readelf_notes(path) -> list[dict]:
    """The stapsdt notes as readelf -n prints them."""
    text = subprocess.run(["readelf", "-W", "-n", str(path)], check=True, capture_output=True,
                          text=True).stdout
    out = []
    for block in re.split(r"\n\s*stapsdt\s+0x[0-9a-f]+\s+NT_STAPSDT", text)[1:]:
        f = dict(re.findall(r"(?<!\S)(Provider|Name|Arguments):[ \t]*(.*)$", block, re.M))
        loc = re.search(r"Location: (0x[0-9a-f]+), Base: (0x[0-9a-f]+), Semaphore: "
                        r"(0x[0-9a-f]+)", block)
        out.append(dict(provider=f["Provider"], name=f["Name"], args=f.get("Arguments", ""),
                        pc=int(loc.group(1), 16), base=int(loc.group(2), 16),
                        semaphore=int(loc.group(3), 16)))
    return out


def _check_against_readelf(path) -> list[sdt.Marker]:
    need(shutil.which("readelf") is not None, "readelf")
    markers = read_markers(str(path), use_cache=False)
    want = readelf_notes(path)
    with ElfFile(str(path)) as elf:
        base = elf.section(".stapsdt.base")
        probes = elf.section(".probes")
        assert [(m.provider, m.name, m.pc, m.semaphore, m.arg_text) for m in markers] == \
            [(w["provider"], w["name"], w["pc"], w["semaphore"], w["args"].strip())
             for w in want]
        assert all(w["base"] == base.addr for w in want)  # not prelinked: no adjustment
        for m in markers:
            if m.semaphore:
                assert probes is not None and probes.contains(m.semaphore)
                assert m.semaphore_offset == m.semaphore - probes.addr + probes.offset
                assert elf.read(m.semaphore_offset, 2) == b"\0\0"
            else:
                assert m.semaphore_offset is None
    return markers


# -- the test program ----------------------------------------------------------------------

def test_declared_markers(sdt_progs):
    for name, path in sdt_progs.items():
        markers = _check_against_readelf(path)
        assert {m.provider for m in markers} == {"sdt"}
        assert {m.name: m.nargs for m in markers} == DECLARED, name
        assert len(markers) == len(DECLARED)
        assert {m.name for m in markers if m.has_semaphore} == WITH_SEMAPHORE
        for m in markers:
            assert len(m.args) == m.nargs and m.error is None, (name, m.error)


def test_every_form_occurs(sdt_progs):
    seen: dict[str, set[str]] = {}
    for name, path in sdt_progs.items():
        for m in read_markers(str(path)):
            for a in m.args:
                seen.setdefault(a.form, set()).add(name)
    assert set(seen) == set(FORMS)
    # What gcc itself emits (the forced_* markers aside):
    natural: dict[str, set[str]] = {}
    for name, path in sdt_progs.items():
        for m in read_markers(str(path)):
            if not m.name.startswith(("forced", "oldstyle")):
                for a in m.args:
                    natural.setdefault(a.form, set()).add(name)
    assert {"reg", "imm", "mem"} <= set(natural)
    assert "pie_O0" in natural["mem"] and "pie_O2" in natural["mem-index"]
    assert {"pie_O2", "nopie_O2"} <= natural["rip-sym"]          # g_int(%rip), 8+g_table(%rip)
    assert "pie_O2" in natural["seg"]                             # %fs:tls_counter@tpoff
    widths = {(a.size, a.signed) for p in sdt_progs.values() for m in read_markers(str(p))
              for a in m.args}
    assert widths == {(s, g) for s in (1, 2, 4, 8) for g in (False, True)}
    floats = [a for m in read_markers(str(sdt_progs["pie_O0"])) for a in m.args if a.is_float]
    assert len(floats) == 2 and {a.size for a in floats} == {4, 8}


def test_symbolic_operands_resolve(sdt_progs):
    for name, path in sdt_progs.items():
        with ElfFile(str(path)) as elf:
            syms = sdt.lookup_data_symbols(elf, {"g_table", "g_int", "tls_counter", "nope"})
        assert syms["nope"] is None and syms["tls_counter"] is None   # TLS: an offset, refused
        fm = next(m for m in read_markers(str(path)) if m.name == "forced_mem")
        by_text = {a.operand: a for a in fm.args}
        assert by_text["g_table(,%rdx,8)"].addr == syms["g_table"]
        assert by_text["g_table+32"].addr == syms["g_table"] + 32
        assert by_text["$g_table+8"].addr == syms["g_table"] + 8
        assert by_text["3(%rip)"].addr == fm.pc + 3                # relative to the nop
        if name != "pie_O0":
            glob = next(m for m in read_markers(str(path)) if m.name == "globals")
            assert [a.addr for a in glob.args] == [syms["g_int"], syms["g_table"] + 8]


def _wait(pid: int, deadline: float):
    from injector import ptrace as pt
    while True:
        st = pt.waitpid(pid, pt.WNOHANG)
        if st is not None:
            return st
        if time.monotonic() > deadline:
            raise TimeoutError(f"process {pid} did not stop")
        time.sleep(0.0005)


def trace_markers(exe: Path, markers: list[sdt.Marker]):
    """Run exe under ptrace with int3 on every marker and its semaphores set.

    Returns (bias, hits, stdout lines); a hit is (marker, regs, {(addr, size): bytes}).
    """
    from injector import ptrace as pt
    from injector.tracee import Tracee
    from utrace_py.binfo import procmaps
    r, w = os.pipe()
    tr = Tracee.spawn([str(exe), str(SEED)], stdout=w)
    os.close(w)
    pid = tr.pid
    hits = []
    try:
        main = procmaps.main_executable(pid, procmaps.modules(pid))
        bias = main.base
        by_addr = {}
        for m in markers:
            assert tr.read(bias + m.pc, 1) == b"\x90", m.label      # the marker's nop
            tr.write(bias + m.pc, b"\xcc")
            by_addr[bias + m.pc] = m
            if m.semaphore:
                tr.write(bias + m.semaphore, struct.pack("<H", 1))
        deadline = time.monotonic() + 60
        pt.cont(pid, 0)
        while True:
            st = _wait(pid, deadline)
            if st.exited or st.signaled:
                tr.exit_status = st
                break
            sig = 0
            if st.is_signal_delivery_stop:
                sig = st.stop_signal
                if sig == signal.SIGTRAP:
                    regs = pt.getregs(pid)
                    m = by_addr[regs.rip - 1]
                    snap = {f: getattr(regs, "eflags" if f == "rflags" else f) for f in FIELDS}
                    snap["rip"] = regs.rip - 1        # the site's address, as a trampoline has it
                    mem = {}
                    for a in m.args:
                        if a.is_memory and not a.refusal():
                            addr = a.address(snap, bias)
                            mem[(addr, a.size)] = tr.read(addr, a.size)
                    hits.append((m, snap, mem))
                    sig = 0     # execution goes on after the nop: nothing to restore
            pt.cont(pid, sig)
        assert st.exited and st.exit_code == 0, str(st)
        out = b""
        while chunk := os.read(r, 65536):
            out += chunk
    finally:
        os.close(r)
        if tr.exit_status is None:
            os.kill(pid, signal.SIGKILL)
            pt.waitpid(pid, 0)
            tr.exit_status = True
        tr.kill()   # only closes /proc/PID/mem now
    return bias, hits, out.decode().splitlines()


def _c_snapshot_program(cases: list[tuple], bias: int) -> str:
    """C evaluating each (spec, regs, mem) case with a utr_uread_int over its snapshot."""
    ents, regs_init, body = [], [], []
    for k, (spec, regs, mem) in enumerate(cases):
        for (addr, size), data in mem.items():
            ents.append(f"  {{{k}, UINT64_C({addr:#x}), {size}, "
                        f"UINT64_C({int.from_bytes(data, 'little'):#x})}},")
        regs_init.append("  {" + ", ".join(f".{f} = UINT64_C({regs[f]:#x})" for f in FIELDS)
                         + "},")
        body.append(f"    cur = {k}; fault = 0; v = {arg_c_expr(spec, f'&R[{k}]', 'bias')};"
                    f" printf(\"%lld %d\\n\", (long long)v, fault);")
    return "\n".join([
        "#include <stdio.h>", '#include "utrace_rt.h"',
        "struct ent { int k; uint64_t addr; int size; uint64_t bits; };",
        "static const struct ent mem[] = {", *ents, "  {-1, 0, 0, 0}};",
        "static int cur;",
        "int64_t utr_uread_int(uint64_t addr, int size, int is_signed, int *fault) {",
        "    for (const struct ent *e = mem; e->k >= 0; e++)",
        "        if (e->k == cur && e->addr == addr && e->size == size) {",
        "            uint64_t u = e->bits;",
        "            if (size < 8 && is_signed && (u >> (8 * size - 1)) & 1)",
        "                u |= ~UINT64_C(0) << (8 * size);",
        "            return (int64_t)u;",
        "        }",
        "    *fault = 1; return 0; }",
        "static const struct utrace_regs R[] = {", *regs_init, "};",
        "int main(void) {", "    int fault; int64_t v;",
        f"    const uint64_t bias = UINT64_C({bias:#x});", *body, "    return 0;", "}", ""])


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_values_at_markers_under_ptrace(sdt_progs, variant, tmp_path):
    exe = sdt_progs[variant]
    markers = read_markers(str(exe))
    bias, hits, lines = trace_markers(exe, markers)
    assert "semaphores 1 1" in lines                      # set through m.semaphore + bias
    printed = [ln.split() for ln in lines if not ln.startswith("semaphores ")]
    assert [m.name for m, _, _ in hits] == [p[0] for p in printed]
    assert sorted({m.name for m, _, _ in hits}) == sorted(DECLARED)   # every marker fired
    assert sum(1 for m, _, _ in hits if m.name == "elem") == 3
    cases, want, refused = [], [], 0
    for (m, regs, mem), p in zip(hits, printed):
        expect = [int(x) for x in p[1:]]
        assert len(expect) == len(m.args)
        for a, e in zip(m.args, expect):
            if a.refusal():
                assert a.form == "seg" and m.name == "tls"
                refused += 1
                continue
            got = a.value(regs, lambda addr, size: mem[(addr, size)], bias)
            assert got == e, (variant, m.name, a.text, got, e)
            cases.append((a, regs, mem))
            want.append(e)
    assert refused == (0 if variant == "pie_O0" else 1)
    from tests.binfo.test_sdt_args import compile_and_run
    got = compile_and_run(tmp_path, _c_snapshot_program(cases, bias))
    assert [tuple(map(int, g.split())) for g in got] == [(e, 0) for e in want]


# -- matching ---------------------------------------------------------------------------

def test_match_markers(sdt_progs):
    p = str(sdt_progs["pie_O2"])
    names = lambda ms: sorted(m.name for m in ms)  # noqa: E731
    assert names(match_markers(p, None, "query-start")) == ["query__start"]   # "-" is "__"
    assert names(match_markers(p, None, "query__start")) == ["query__start"]
    assert names(match_markers(p, "sdt", "query-*")) == ["query__start"]
    assert names(match_markers(p, None, "*")) == sorted(DECLARED)
    assert names(match_markers(p, "s?t", "f[il]*")) == ["fields", "floats"]
    assert names(match_markers(p, None, "[!c-n]*")) == sorted(
        n for n in DECLARED if n[0] not in "c_n")      # SystemTap rewrites a range's "-" too
    assert names(match_markers(p, None, "[!c-n]*")) == names(match_markers(p, None, "[!c__n]*"))
    assert names(match_markers(p, None, "[[:upper:]]*")) == []          # libc's fnmatch classes
    assert match_markers(p, "other", "*") == [] and match_markers(p, None, "nomatch") == []
    assert match_markers(p, "sdt-x", "*") == []         # the provider is not rewritten
    assert sdt.name_matches("a*b", "a\\*b") and not sdt.name_matches("axb", "a\\*b")


# -- malformed notes, prelink adjustment, cache --------------------------------------------

def test_malformed_argument_names_the_marker(tmp_path):
    need(shutil.which("gcc") is not None and _have_sdt_h(), "gcc and sys/sdt.h")
    src = tmp_path / "bad.c"
    src.write_text('#include <sys/sdt.h>\nint main(void) {\n'
                   '  __asm__ volatile (STAP_PROBE_ASM(bad, spec, -4@%edi 8@%bogus));\n'
                   '  STAP_PROBE1(good, one, 5);\n  return 0;\n}\n')
    exe = tmp_path / "bad"
    subprocess.run(["gcc", "-O1", "-o", str(exe), str(src)], check=True, timeout=120)
    bad, good = read_markers(str(exe), use_cache=False)
    assert good.args[0].imm == 5 and good.error is None
    assert bad.nargs == 2 and bad.error
    with pytest.raises(SdtError) as e:
        bad.args
    assert f"marker bad:spec at {bad.pc:#x} in {exe} argument 2" in str(e.value)
    assert "'8@%bogus'" in str(e.value) and "unknown register %bogus" in str(e.value)


def test_stapsdt_base_adjusts_pc_and_semaphore(sdt_progs, tmp_path):
    """A prelinked file: notes keep the assembly-time base, the section moved by delta."""
    src = sdt_progs["nopie_O2"]
    orig = read_markers(str(src), use_cache=False)
    data = bytearray(src.read_bytes())
    with ElfFile(str(src)) as elf:
        note = elf.section(".note.stapsdt")
        base = elf.section(".stapsdt.base").addr
    delta = 0x40
    pos, end, patched = note.offset, note.offset + note.size, 0
    while pos < end:
        namesz, descsz, _ = struct.unpack_from("<III", data, pos)
        desc = pos + 12 + ((namesz + 3) & ~3)
        assert struct.unpack_from("<Q", data, desc + 8)[0] == base
        struct.pack_into("<Q", data, desc + 8, base - delta)   # as if the section moved up
        patched += 1
        pos = desc + ((descsz + 3) & ~3)
    moved = tmp_path / "moved"
    moved.write_bytes(bytes(data))
    got = read_markers(str(moved), use_cache=False)
    assert patched == len(orig) == len(got)
    for a, b in zip(orig, got):
        assert b.pc == a.pc + delta
        assert b.semaphore == (a.semaphore + delta if a.semaphore else 0)


def test_markers_are_cached_by_build_id(sdt_progs, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = str(sdt_progs["pie_O2"])
    sdt._memo.clear()
    first = read_markers(path)
    with ElfFile(path) as elf:
        entry = binfo_cache.entry_path(elf, sdt.CACHE_KIND)
        assert entry.exists() and elf.build_id in entry.name
        rows = binfo_cache.load_rows(elf, sdt.CACHE_KIND)
    assert rows is not None and len(rows) == len(first)
    sdt._memo.clear()
    second = read_markers(path)
    assert second == first
    sdt._memo.clear()


# -- jump-tier sites at real markers --------------------------------------------------------

def test_choose_site_at_real_markers(sdt_progs):
    pytest.importorskip("capstone")
    from injector.x86_64.sites import choose_site_at
    for name, path in sdt_progs.items():
        markers = read_markers(str(path))
        table = symbol_table(str(path), use_cache=False)
        pcs = tuple(m.pc for m in markers)
        ok = 0
        for m in markers:
            fn = table.containing(m.pc)
            assert fn is not None, (name, m.label)
            code = table.elf.read_vaddr(fn.address, fn.size)
            c = choose_site_at(code, fn.address, fn.size, m.pc,
                               other_sites=tuple(p for p in pcs if p != m.pc))
            assert c.ok or c.reason, (name, m.label)
            if c.ok:
                ok += 1
                assert c.displaced[0].address == m.pc and c.displaced[0].raw == b"\x90"
                assert c.patch_len >= 5 and m.pc + c.patch_len <= fn.address + fn.size
        assert ok >= 3, name


# -- Debian's binaries --------------------------------------------------------------------

def test_python311_markers():
    need(os.path.exists(PYTHON311), PYTHON311)
    markers = _check_against_readelf(PYTHON311)
    assert {m.provider for m in markers} == {"python"}
    assert {m.name for m in markers} == {
        "function__entry", "function__return", "line", "gc__start", "gc__done",
        "import__find__load__start", "import__find__load__done", "audit"}
    assert all(m.has_semaphore for m in markers)
    for m in markers:
        for a in m.args:
            assert a.refusal() is None and a.form in ("reg", "mem"), a.text
    (fe,) = match_markers(PYTHON311, "python", "function-entry")
    assert [a.size for a in fe.args] == [8, 8, 4]      # filename, funcname, lineno


def _postgres() -> str | None:
    import glob
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return found[-1] if found else None


def test_postgres_markers():
    pg = _postgres()
    need(pg is not None, "postgres (Debian package postgresql)")
    markers = _check_against_readelf(pg)
    assert {m.provider for m in markers} == {"postgresql"}
    names = {m.name for m in markers}
    assert {"transaction__start", "query__start", "query__done", "lock__wait__start",
            "checkpoint__start", "checkpoint__done", "buffer__read__start"} <= names
    assert all(m.has_semaphore for m in markers)
    assert len(match_markers(pg, None, "query-start")) >= 1
    with ElfFile(pg) as elf:
        assert elf.stripped                             # symbols come from .dynsym
        syms = sdt.lookup_data_symbols(elf, {"CheckpointStats", "NBuffers"})
    (done,) = match_markers(pg, "postgresql", "checkpoint-done")
    assert [a.form for a in done.args] == ["rip-sym"] * 5
    assert done.args[0].addr == syms["CheckpointStats"] + 40      # -4@40+CheckpointStats(%rip)
    assert done.args[1].addr == syms["NBuffers"]
    for m in markers:
        for a in m.args:
            assert a.refusal() is None, a.refusal()
            arg_c_expr(a, "r", "bias")
