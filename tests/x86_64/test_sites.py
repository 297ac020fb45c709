"""Site selection (T-1, T-2, T-20, jump tables) and relocator refusals and idioms."""
from __future__ import annotations

import struct

import pytest

keystone = pytest.importorskip("keystone")
pytest.importorskip("capstone")

from injector.x86_64.decoder import decode, decode_one  # noqa: E402
from injector.x86_64.relocator import Refusal, relocate, relocate_ex  # noqa: E402
from injector.x86_64.sites import choose_entry_site  # noqa: E402
from injector.x86_64.trampoline import jump_patch  # noqa: E402

ENDBR64 = bytes.fromhex("f30f1efa")
BASE = 0x401000
_ks = keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_64)


def asm(text: str, addr: int = BASE) -> bytes:
    return bytes(_ks.asm(text, addr)[0])


def test_endbr64_is_skipped():
    body = asm("push rbp; mov rbp, rsp; mov eax, edi; pop rbp; ret", BASE + 4)
    c = choose_entry_site(ENDBR64 + body, BASE, 4 + len(body))
    assert c.ok and c.site_addr == BASE + 4
    assert [i.mnemonic for i in c.displaced] == ["push", "mov", "mov"]
    assert c.patch_len == c.displaced_len == 6
    assert decode_one(ENDBR64, BASE).is_endbr64


def test_branch_into_range_refused_t2():
    code = asm("push rbx; mov ebx, edi; L: dec ebx; jnz L; pop rbx; ret")
    c = choose_entry_site(code, BASE, len(code))
    assert not c.ok and c.tier == "trap" and "T-2" in c.reason
    assert c.inside_targets == [(BASE + 5, BASE + 3)]


def test_external_tail_jump_into_range_refused():
    code = asm("push rbx; push rbp; push r12; mov eax, edi; pop r12; pop rbp; pop rbx; ret")
    assert choose_entry_site(code, BASE, len(code)).ok
    c = choose_entry_site(code, BASE, len(code), extra_targets=(BASE + 4,))
    assert not c.ok and "T-2" in c.reason


def test_too_short_function_t1():
    f3 = asm("xor eax, eax; ret")
    g = asm("mov eax, 1; ret", BASE + 3)
    c = choose_entry_site(f3 + g, BASE, len(f3))
    assert not c.ok and c.tier == "trap" and "too short" in c.reason
    # with endbr64 the 5 bytes must come after it
    c = choose_entry_site(ENDBR64 + f3 + g, BASE, 4 + len(f3))
    assert not c.ok and "too short" in c.reason


def test_jump_table_flagged():
    table = asm("cmp edi, 7; ja L; mov eax, edi; jmp qword ptr [rax*8 + 0x601000]; L: xor eax,"
                " eax; ret")
    c = choose_entry_site(table, BASE, len(table))
    assert not c.ok and c.indirect_jumps and "indirect jump" in c.reason
    # -fPIC relative table with CET: movsxd/add/notrack jmp reg
    pic = asm("cmp edi, 7; ja L; lea rdx, [rip + 0x1000]; movsxd rax, dword ptr [rdx + rdi*4];"
              " add rax, rdx; L2: nop; nop; nop; L: xor eax, eax; ret")
    k = pic.index(b"\x90\x90\x90")
    pic = pic[:k] + b"\x3e\xff\xe0" + pic[k + 3:]     # notrack jmp rax (keystone lacks it)
    assert any(i.mnemonic == "notrack jmp" for i in decode(pic, BASE))
    c = choose_entry_site(pic, BASE, len(pic))
    assert not c.ok and c.indirect_jumps == [BASE + k]


def test_got_tail_call_is_not_a_jump_table():
    code = asm("push rbx; mov ebx, edi; pop rbx; jmp qword ptr [rip + 0x2000]")
    assert choose_entry_site(code, BASE, len(code)).ok


def test_call_mid_range_noted_t7():
    code = asm("call rax; mov edi, eax; mov eax, 1; ret")
    c = choose_entry_site(code, BASE, len(code))
    assert c.ok and any("T-7" in n for n in c.notes)


def test_getpc_yields_original_address():
    code = asm("call 0x401005; pop rax")
    out = relocate(code, BASE, 0x7F0000000000)
    assert out[:1] == b"\x68" and struct.unpack("<i", out[1:5])[0] == BASE + 5


def test_last_call_returns_to_original_code():
    code = asm("mov eax, 1; call 0x402000")
    r = relocate_ex(code, BASE, BASE + 0x10000)
    insns = decode(r.code, BASE + 0x10000)
    assert [i.mnemonic for i in insns][-2:] == ["push", "jmp"]
    assert r.return_map == {}
    mid = relocate_ex(asm("call 0x402000; mov eax, 1"), BASE, BASE + 0x10000)
    assert mid.return_map == {BASE + 0x10000 + 5: BASE + 5}


@pytest.mark.parametrize("text,why", [
    ("call 0x401006; nop; ret; ret", "call into the relocated range"),
    ("mov eax, dword ptr [rip - 6]", "inside the overwritten range"),
])
def test_refusals(text, why):
    r = relocate(asm(text), BASE, BASE + 0x10000)
    assert isinstance(r, Refusal) and why in r.reason and not r


def test_xbegin_refused():
    code = b"\xc7\xf8" + struct.pack("<i", 0x100) + b"\x90"
    assert decode_one(code, BASE).mnemonic == "xbegin"
    r = relocate(code, BASE, BASE + 0x10000)
    assert isinstance(r, Refusal) and "cannot relocate" in r.reason


def test_branch_into_instruction_middle_refused():
    code = b"\xeb\x01" + asm("mov eax, 1", BASE + 2)      # jmp into the mov's immediate
    r = relocate(code, BASE, BASE + 0x10000)
    assert isinstance(r, Refusal) and "middle" in r.reason


def test_partial_instruction_refused():
    assert isinstance(relocate(asm("mov eax, 1")[:3], BASE, BASE + 0x100), Refusal)


def test_jump_patch_forms():
    near = jump_patch(BASE, BASE + 0x1000, 7)
    assert near[:1] == b"\xe9" and near[5:] == b"\xcc\xcc"
    far = jump_patch(BASE, 0x7F0000000000, 14)
    assert far[:6] == b"\xff\x25\x00\x00\x00\x00" and far[6:] == struct.pack("<Q", 0x7F0000000000)
    assert isinstance(jump_patch(BASE, 0x7F0000000000, 8), Refusal)   # T-4: caller falls back
