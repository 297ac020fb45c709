"""Site selection (T-1, T-2, T-20, jump tables) and relocator refusals and idioms."""
from __future__ import annotations

import struct

import pytest

keystone = pytest.importorskip("keystone")
pytest.importorskip("capstone")

from injector.x86_64.decoder import decode, decode_one  # noqa: E402
from injector.x86_64.relocator import Refusal, relocate, relocate_ex  # noqa: E402
from injector.x86_64.sites import (choose_entry_site, choose_site_at,  # noqa: E402
                                   direct_branch_targets)
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


# -- sites inside a function (SDT markers): choose_site_at ------------------------------------

def test_marker_site_mid_function():
    code = asm("push rbx; mov ebx, edi; nop; mov eax, ebx; add eax, 1; pop rbx; ret")
    nop = code.index(b"\x90")
    c = choose_site_at(code, BASE, len(code), BASE + nop)
    assert c.ok and c.site_addr == BASE + nop and c.func_addr == BASE
    assert [i.mnemonic for i in c.displaced] == ["nop", "mov", "add"] and c.patch_len == 6


def test_marker_branch_to_site_itself_is_fine():
    code = asm("push rbx; mov ebx, edi; L: nop; mov eax, ebx; add eax, 1; dec ebx; jnz L;"
               " pop rbx; ret")
    nop = code.index(b"\x90")
    c = choose_site_at(code, BASE, len(code), BASE + nop)
    assert c.ok and not c.inside_targets


def test_marker_branch_into_range_refused_t2():
    # The loop jumps to the instruction after the nop: a join point right behind a marker.
    code = asm("push rbx; mov ebx, edi; nop; L: mov eax, ebx; add eax, 1; dec ebx; jnz L;"
               " pop rbx; ret")
    nop = code.index(b"\x90")
    c = choose_site_at(code, BASE, len(code), BASE + nop)
    assert not c.ok and c.tier == "trap" and "T-2" in c.reason
    assert c.inside_targets and c.inside_targets[0][1] == BASE + nop + 1
    # a branch from another function (extra_targets) counts too
    code = asm("push rbx; mov ebx, edi; nop; mov eax, ebx; add eax, 1; pop rbx; ret")
    c = choose_site_at(code, BASE, len(code), BASE + 3, extra_targets=(BASE + 6,))
    assert not c.ok and "T-2" in c.reason


def test_marker_at_function_end_too_short():
    f = asm("mov eax, edi; add eax, 2; nop; ret")
    g = asm("mov eax, 1; ret", BASE + len(f))
    nop = f.index(b"\x90")
    c = choose_site_at(f + g, BASE, len(f), BASE + nop)
    assert not c.ok and "too short" in c.reason and c.tier == "trap"
    assert not c.displaced  # never takes bytes of the next function


def test_marker_call_in_range():
    code = asm("push rbx; nop; call 0x402000; pop rbx; ret")
    c = choose_site_at(code, BASE, len(code), BASE + 1)
    assert c.ok and c.displaced[-1].is_call       # the call is last: returns past the patch
    code = asm("push rbx; nop; call rax; mov ebx, eax; mov eax, ebx; pop rbx; ret")
    c = choose_site_at(code, BASE, len(code), BASE + 1)
    assert not c.ok and "T-7" in c.reason and "returns inside" in c.reason


def test_marker_range_past_unconditional_transfer_refused():
    # After `ret` the bytes are entered from somewhere no direct branch shows
    # (an exception landing pad, say): patching across them is unsafe.
    code = asm("push rbx; pop rbx; nop; ret; mov eax, 1; add eax, 2; ret")
    c = choose_site_at(code, BASE, len(code), BASE + 2)
    assert not c.ok and "does not fall through" in c.reason


def test_marker_jump_table_refused():
    code = asm("nop; mov eax, 1; mov ecx, 2; cmp edi, 7; ja L; jmp qword ptr [rdi*8 + 0x601000];"
               " L: xor eax, eax; ret")
    c = choose_site_at(code, BASE, len(code), BASE)
    assert not c.ok and c.indirect_jumps and "indirect jump" in c.reason


def test_marker_not_on_instruction_boundary():
    code = asm("mov eax, 0x90909090; nop; mov ecx, 1; mov edx, 2; ret")
    c = choose_site_at(code, BASE, len(code), BASE + 1)     # inside the mov's immediate
    assert not c.ok and "instruction boundary" in c.reason
    c = choose_site_at(code, BASE, len(code), BASE + len(code) + 3)
    assert not c.ok and "outside the function" in c.reason
    bad = b"\x06" + asm("nop; mov ecx, 1; mov edx, 2; ret", BASE + 1)  # 0x06: invalid in 64-bit
    c = choose_site_at(bad, BASE, len(bad), BASE + 1)
    assert not c.ok and "undecodable" in c.reason


def test_marker_range_covering_another_site_refused():
    # Two markers back to back (gcc emits this for consecutive STAP_PROBEs).
    code = asm("nop; nop; mov ecx, 1; mov edx, 2; ret")
    assert choose_site_at(code, BASE, len(code), BASE).ok
    c = choose_site_at(code, BASE, len(code), BASE, other_sites=(BASE + 1,))
    assert not c.ok and "another probe site" in c.reason
    assert choose_site_at(code, BASE, len(code), BASE + 1, other_sites=(BASE,)).ok


def test_marker_site_relocates_rip_relative_neighbour():
    code = asm("push rbx; nop; mov eax, dword ptr [rip + 0x2000]; pop rbx; ret")
    c = choose_site_at(code, BASE, len(code), BASE + 1)
    assert c.ok and c.displaced[1].rip_disp_offset is not None


def test_marker_in_cold_fragment_needs_the_hot_part_s_branches():
    # f.cold holds the marker; f (elsewhere) jumps back into f.cold right after the nop.
    cold_at = BASE + 0x1000
    cold = asm("nop; mov edi, eax; add eax, 1; ret", cold_at)
    hot = asm(f"test edi, edi; jne {cold_at + 1:#x}; ret")
    assert choose_site_at(cold, cold_at, len(cold), cold_at).ok     # alone: looks safe
    c = choose_site_at(cold, cold_at, len(cold), cold_at,
                       extra_targets=direct_branch_targets(hot, BASE))
    assert not c.ok and "T-2" in c.reason and c.inside_targets == [(0, cold_at + 1)]


@pytest.mark.parametrize("tail,table", [
    ("mov rsp, rcx; pop rcx; jmp rcx", False),               # libgcc's jump to a landing pad
    ("mov rax, qword ptr [rdi + 8]; jmp rax", False),        # tail call through a pointer
    ("movsxd rax, dword ptr [rdx + rax*4]; add rax, rdx; jmp rax", True),  # PIC jump table
    ("jmp qword ptr [rax*8 + 0x1000]", True),                # absolute jump table
    ("add rax, rdx; jmp rax", True),                         # origin not visible: assume one
])
def test_indirect_jump_shapes(tail, table):
    # The whole function is swept: only a jump that may land inside it refuses the entry.
    code = asm("push rbp; mov rbp, rsp; mov eax, 1; " + tail, 0x1000)
    choice = choose_entry_site(code, 0x1000, len(code))
    assert (not choice.ok) == table, choice.reason
    if table:
        assert "indirect jump" in choice.reason
