"""SDT argument specs: parsing every x86-64 operand form, and the C emitter checked by gcc.

The C expressions from translate/sdt_c.py are compiled into a program with a stub
utr_uread_int over a fixed byte pattern at a fake address, and their values are
compared with ArgSpec.value() (the Python oracle), which is itself pinned down by
hand-computed cases here and by a real traced program in test_sdt.py.
"""
from __future__ import annotations

import random
import shutil
import subprocess

import pytest

from tests.conftest import ROOT, need
from utrace_py.binfo.sdt_args import (FORMS, REGISTERS, SdtError, extend, parse_arg,
                                      parse_args)
from utrace_py.translate.sdt_c import arg_c_expr

FIELDS = ("rip", "rsp", "r15", "r14", "r13", "r12", "r11", "r10", "r9", "r8",
          "rdi", "rsi", "rbp", "rbx", "rdx", "rcx", "rax", "rflags")
GPRS = [f for f in FIELDS if f not in ("rip", "rflags")]
VBASE = 0x10000000                         # where the stub's memory appears to be
MEM = bytes((i * 167 + 13) & 0xFF for i in range(4096))
SYMS = {"gvar": 0x4010, "garr": 0x4100}
PC = 0x1234
BIAS = VBASE + 0x100 - 0x4000             # bias + gvar lands inside MEM


def read(addr: int, size: int) -> bytes:
    off = addr - VBASE
    if not 0 <= off <= len(MEM) - size:
        raise MemoryError(addr)
    return MEM[off:off + size]


# -- parsing -----------------------------------------------------------------------------

@pytest.mark.parametrize("text,form,fields", [
    ("-4@%edi", "reg", dict(reg="edi", size=4, signed=True)),
    ("8@%r8", "reg", dict(reg="r8", size=8, signed=False)),
    ("1@%ah", "reg", dict(reg="ah")),
    ("-2@%r11w", "reg", dict(reg="r11w", size=2)),
    ("1@%r9b", "reg", dict(reg="r9b")),
    ("1@%sil", "reg", dict(reg="sil")),
    ("-4@$-5", "imm", dict(imm=-5)),
    ("2@$0x12345", "imm", dict(imm=0x12345)),
    ("-8@$-0x10", "imm", dict(imm=-16)),
    ("-4@-20(%rbp)", "mem", dict(base="rbp", disp=-20)),
    ("8@(%rdi)", "mem", dict(base="rdi", disp=0)),
    ("-8@0(%rbp,%rbx,8)", "mem-index", dict(base="rbp", index="rbx", scale=8)),
    ("-1@16(%rdi,%r8)", "mem-index", dict(base="rdi", index="r8", scale=1, disp=16)),
    ("8@(,%rcx,8)", "index", dict(base=None, index="rcx", scale=8)),
    ("-8@garr(,%rdx,8)", "index", dict(symbol="garr", addr=0x4100)),
    ("-4@gvar(%rip)", "rip-sym", dict(symbol="gvar", addr=0x4010)),
    ("-8@garr+8(%rip)", "rip-sym", dict(symbol="garr", disp=8, addr=0x4108)),
    ("-4@40+garr(%rip)", "rip-sym", dict(symbol="garr", disp=40, addr=0x4128)),
    ("-8@garr-8(%rip)", "rip-sym", dict(addr=0x40F8)),
    ("8@3(%rip)", "rip-disp", dict(disp=3, addr=PC + 3)),
    ("-4@-0x10(%rip)", "rip-disp", dict(addr=PC - 16)),
    ("-8@garr+32", "abs", dict(symbol="garr", addr=0x4120)),
    ("8@$garr+8", "imm", dict(symbol="garr", addr=0x4108)),
    ("-8@garr+8(%rdi)", "mem", dict(base="rdi", symbol="garr", addr=0x4108)),
    ("-4@%fs:tls@tpoff", "seg", dict(segment="fs", reloc="tpoff", symbol="tls")),
    ("-8@%fs:0x28", "seg", dict(segment="fs", disp=0x28)),
    ("8f@-8(%rbp)", "mem", dict(is_float=True, size=8)),
    ("4f@%edx", "reg", dict(is_float=True, reg="edx")),
    ("8f@%xmm1", "reg", dict(reg="xmm1")),
    ("%eax", "reg", dict(sized=False, size=8, signed=False, reg="eax")),
    ("4(%esi)", "mem", dict(sized=False, base="esi", disp=4)),
    ("$-3", "imm", dict(sized=False, imm=-3)),
    ("4@010(%rax)", "mem", dict(disp=8)),        # GNU as: a leading 0 is octal
])
def test_parse_forms(text, form, fields):
    spec = parse_arg(text, pc=PC, symbols=SYMS)
    assert spec.form == form and form in FORMS
    for k, v in fields.items():
        assert getattr(spec, k) == v, (k, getattr(spec, k))
    assert spec.text == text


@pytest.mark.parametrize("text,why", [
    ("3@%eax", "size 3"),
    ("16@%rax", "size 16"),
    ("8@%rip", "%rip cannot be a register operand"),
    ("8@(%rip,%rax)", "index"),
    ("8@(%rax,%rip)", "%rip cannot be an index register"),
    ("8@%foo", "unknown register %foo"),
    ("8@(,%rsp,2)", "%rsp cannot be an index"),
    ("8@(%rax,%rbx,3)", "scale"),
    ("8@()", "no register"),
    ("8@a+b(%rip)", "two symbols"),
    ("8@4(%rax", "unbalanced"),
    ("8@(%ax)", "cannot be used in an address"),
    ("8@(%eax,%rbx)", "different widths"),
    ("4@", "empty operand"),
    ("-@%eax", "malformed SIZE@"),
    ("8@%es:4(%rax)", "segment %es"),
    ("8@gvar@GOTPCREL(%rip)", "relocation @GOTPCREL"),
])
def test_malformed_spec_is_a_clear_error(text, why):
    with pytest.raises(SdtError) as e:
        parse_args(f"-4@%edi {text}", where="marker prov:name at 0x10 in /bin/x")
    msg = str(e.value)
    assert msg.startswith("ERROR: marker prov:name at 0x10 in /bin/x argument 2: ")
    assert f"'{text}'" in msg and why in msg, msg


def test_refusals_name_the_marker():
    specs = parse_args("-4@%fs:tls@tpoff 8f@%xmm0 -4@nosuch(%rip) 8@3(%rip)",
                       where="marker p:n", symbols={})
    msgs = [s.refusal() for s in specs]
    assert "thread-local" in msgs[0] and "marker p:n argument 1" in msgs[0]
    assert "%xmm0" in msgs[1]
    assert "'nosuch'" in msgs[2] and "symbol tables" in msgs[2]
    assert "probe address" in msgs[3]  # no pc given
    for s in specs:
        with pytest.raises(SdtError):
            arg_c_expr(s)
        with pytest.raises(SdtError):
            s.value({}, read, 0)


# -- values, computed by hand -------------------------------------------------------------

def test_values_by_hand():
    regs = dict.fromkeys(FIELDS, 0)
    regs.update(rax=0x1122_3344_D566_8077, rsi=0x8877_6655_4433_2211, r9=0xF0,
                rbx=VBASE + 16, rcx=3, rdi=0xDEAD_BEEF_0000_0000 | (VBASE + 8))

    def v(text: str) -> int:
        return parse_arg(text, pc=PC, symbols=SYMS).value(regs, read, BIAS)

    assert v("1@%ah") == 0x80 and v("-1@%ah") == -128
    assert v("-1@%al") == 0x77 and v("-8@%eax") == -(2**32 - 0xD5668077)
    assert v("4@%rsi") == 0x44332211 and v("1@%sil") == 0x11
    assert v("-1@%r9b") == -16 and v("8@%r9b") == 0xF0 and v("-8@%r9b") == -16
    assert v("%eax") == 0xD5668077                            # old style: 8 bytes unsigned
    assert v("4@$-5") == 0xFFFFFFFB and v("1@$-56") == 200     # gcc's constants for unsigned
    assert v("-4@$0xfffffff0") == -16 and v("2@$0x12345") == 0x2345
    le = int.from_bytes
    assert v("8@(%rbx)") == le(MEM[16:24], "little")
    assert v("-2@-4(%rbx,%rcx,2)") == extend(le(MEM[18:20], "little"), 2, True)
    assert v("4@4(%edi)") == le(MEM[12:16], "little")         # addr32: upper half ignored
    assert v("-4@gvar(%rip)") == extend(le(MEM[0x110:0x114], "little"), 4, True)
    assert v("8@$garr+8") == BIAS + 0x4108


# -- the C emitter, compiled ----------------------------------------------------------------

def _cases() -> list[tuple[str, dict]]:
    rnd = random.Random(20240611)
    out = []

    def rand_regs() -> dict:
        r = {f: rnd.getrandbits(64) for f in FIELDS}
        r["rip"] = PC
        return r

    for name in REGISTERS:
        for size in (1, 2, 4, 8):
            for sign in ("", "-"):
                out.append((f"{sign}{size}@%{name}", rand_regs()))
    for text in ("%eax", "%r10w", "%ch", "4f@%edx"):
        out.append((text, rand_regs()))
    for imm in ("$-5", "$0", "$255", "$-56", "$0x12345", "$-0x10", "$9223372036854775807",
                "$-9223372036854775808", "$0xffffffffffffffff"):
        for size in (1, 2, 4, 8):
            for sign in ("", "-"):
                out.append((f"{sign}{size}@{imm}", rand_regs()))
    full = [r for r in REGISTERS if REGISTERS[r][1] == 8]
    for base in full:
        for disp in ("", "8", "-16", "0x7f", "300"):
            size = rnd.choice((1, 2, 4, 8))
            sign = rnd.choice(("", "-"))
            r = rand_regs()
            r[base] = VBASE + 1024 + rnd.randrange(0, 512)
            out.append((f"{sign}{size}@{disp}(%{base})", r))
    for base in full:
        for index in full:
            if index == "rsp" or index == base:
                continue
            scale = rnd.choice((1, 2, 4, 8))
            r = rand_regs()
            r[base] = VBASE + 512 + rnd.randrange(0, 512)
            r[index] = rnd.randrange(0, 200)
            disp = rnd.choice(("", "4", "-12"))
            out.append((f"-{rnd.choice((1, 2, 4, 8))}@{disp}(%{base},%{index},{scale})", r))
            if scale == 1:
                out.append((f"{rnd.choice((1, 2, 4, 8))}@{disp}(%{base},%{index})", r))
    for index in ("rax", "rcx", "r13", "r15", "rbp"):
        for scale in (1, 2, 4, 8):
            r = rand_regs()
            r[index] = (VBASE + 256) // scale + rnd.randrange(0, 64)
            out.append((f"-8@16(,%{index},{scale})", r))
            r = rand_regs()
            r[index] = rnd.randrange(0, 30)
            out.append((f"4@garr(,%{index},{scale})", r))
    for text, reg32 in (("4(%esi)", ("rsi",)), ("-2@(%eax,%ebx,2)", ("rax", "rbx")),
                        ("-8@-8(%r9d,%r10d,4)", ("r9", "r10")), ("1@(,%ecx,4)", ("rcx",))):
        r = rand_regs()
        for n, f in enumerate(reg32):
            r[f] = (rnd.getrandbits(32) << 32) | (VBASE + 600 + 40 * n if n == 0 else 7)
        if text.startswith("1@(,"):
            r["rcx"] = (rnd.getrandbits(32) << 32) | ((VBASE + 800) // 4)
        out.append((text, r))
    for text in ("-4@gvar(%rip)", "8@gvar+8(%rip)", "-8@40+garr(%rip)", "-2@garr-4(%rip)",
                 "8@garr+16", "-8@$garr+8", "4@$gvar", "-4@garr+8(%rdi)", "8f@gvar(%rip)",
                 "8@0x2e00(%rip)", "-4@0x2f00(%rip)"):
        r = rand_regs()
        r["rdi"] = 64
        out.append((text, r))
    for text in ("8@(%rax)", "-4@-8(%rbx,%rcx,8)", "2@0x40"):
        r = rand_regs()
        r["rax"] = 16
        out.append((text, r))   # faults: outside the stub's memory
    return out


def _c_program(cases: list[tuple[object, dict]], bias: int) -> str:
    lines = ['#include <stdio.h>', '#include <string.h>', '#include "utrace_rt.h"',
             f"static const unsigned char mem[{len(MEM)}] = {{{','.join(map(str, MEM))}}};",
             "int64_t utr_uread_int(uint64_t addr, int size, int is_signed, int *fault) {",
             f"    uint64_t off = addr - UINT64_C({VBASE:#x}); uint64_t u = 0;",
             "    if (off > sizeof mem - (uint64_t)size) { *fault = 1; return 0; }",
             "    memcpy(&u, mem + off, (size_t)size);",
             "    if (size < 8 && is_signed && (u >> (8 * size - 1)) & 1)",
             "        u |= ~UINT64_C(0) << (8 * size);",
             "    *fault = 0; return (int64_t)u; }",
             "static const struct utrace_regs R[] = {"]
    for _, regs in cases:
        lines.append("  {" + ", ".join(f".{f} = UINT64_C({regs[f]:#x})" for f in FIELDS) + "},")
    lines += ["};", "int main(void) {", "    int fault = 0; int64_t v;",
              f"    const uint64_t bias = UINT64_C({bias & (2**64 - 1):#x});"]
    for k, (spec, _) in enumerate(cases):
        expr = arg_c_expr(spec, f"&R[{k}]", "bias", "&fault")
        lines.append(f"    fault = 0; v = {expr}; printf(\"%lld %d\\n\", (long long)v, fault);")
    lines += ["    (void)bias; return 0;", "}"]
    return "\n".join(lines) + "\n"


def compile_and_run(tmp_path, source: str) -> list[str]:
    need(shutil.which("gcc") is not None, "gcc")
    src = tmp_path / "sdt_exprs.c"
    exe = tmp_path / "sdt_exprs"
    src.write_text(source)
    subprocess.run(["gcc", "-O1", "-Wall", "-Wextra", "-Werror", "-I",
                    str(ROOT / "native" / "include"), "-o", str(exe), str(src)], check=True,
                   timeout=300)
    return subprocess.run([str(exe)], check=True, capture_output=True, text=True,
                          timeout=60).stdout.splitlines()


def test_c_emitter_matches_python_for_every_form(tmp_path):
    cases = [(parse_arg(t, pc=PC, symbols=SYMS), r) for t, r in _cases()]
    forms = {s.form for s, _ in cases}
    assert forms == set(FORMS) - {"seg"}       # seg is refused (test_refusals_name_the_marker)
    assert {s.reg for s, _ in cases if s.form == "reg"} >= set(REGISTERS)
    got = compile_and_run(tmp_path, _c_program(cases, BIAS))
    assert len(got) == len(cases)
    faults = 0
    for (spec, regs), line in zip(cases, got):
        value, fault = map(int, line.split())
        try:
            want, want_fault = spec.value(regs, read, BIAS), 0
        except MemoryError:
            want, want_fault = 0, 1
        faults += want_fault
        assert (value, fault) == (want, want_fault), (spec.text, regs)
    assert faults == 3
