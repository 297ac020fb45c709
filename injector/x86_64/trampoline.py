"""Entry trampolines and site jump patches for the jump tier: hand-encoded bytes, no ptrace.

Trampoline layout (T-17, T-18, T-19):

    lea rsp,[rsp-128]            skip the probed code's red zone (T-18)
    pushfq; push rax..r15        save every GPR and rflags
    push <rsp at site>; push <site address>   -> struct utrace_regs at rsp (REGS_FIELDS)
    mov rbx, rsp                 rbx is callee-saved: survives the handler
    lea/and rsp                  64-byte aligned save area below the struct (T-19: the call
                                 happens with rsp % 16 == 0 whatever the site's alignment)
    xsave64 / fxsave64 [rsp]     x87, MXCSR, xmm0-15, ymm/zmm uppers, opmask per SimdSave
    cld; fninit; ldmxcsr 0x1f80; vzeroupper   the handler gets the ABI's default FP state
    mov edi, site_id; mov rsi, rbx; mov rax, handler; call rax
    xrstor64 / fxrstor64 [rsp]
    mov rsp, rbx; pop the struct (the handler may have edited GPRs/flags in it)
    lea rsp,[rsp+128]
    <displaced instructions relocated here>
    jmp site + len(displaced)    (rel32, or jmp [rip+0]; dq when out of reach)

Contract with the handler: ``void handler(uint64_t site_id, struct utrace_regs *r)``, a
normal SysV function.  Everything architectural a C function may touch is restored bit for
bit except ``errno`` (thread-local memory): the runtime's dispatcher saves and restores it.
AMX tile state and PKRU are not saved (the handler must not use them).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from .relocator import Refusal, fits_rel32, jmp_abs, jmp_to, push_imm64, relocate_ex

RED_ZONE = 128
# struct utrace_regs, lowest address first; every field is a uint64_t.
REGS_FIELDS = ("rip", "rsp", "r15", "r14", "r13", "r12", "r11", "r10", "r9", "r8",
               "rdi", "rsi", "rbp", "rbx", "rdx", "rcx", "rax", "rflags")
REGS_OFFSETS = {name: 8 * i for i, name in enumerate(REGS_FIELDS)}

_PUSH_ORDER = ("rax", "rcx", "rdx", "rbx", "rbp", "rsi", "rdi",
               "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
_GPR_NUM = {n: i for i, n in enumerate(
    "rax rcx rdx rbx rsp rbp rsi rdi r8 r9 r10 r11 r12 r13 r14 r15".split())}


@dataclass(frozen=True)
class SimdSave:
    """How the trampoline preserves FP/SIMD state around the handler."""

    mode: str = "xsave"     # "xsave", "fxsave" (no ymm uppers) or "none" (handler uses no FP)
    mask: int = 0x07        # XSAVE requested-feature bitmap (ANDed with XCR0 by the CPU)
    size: int = 832         # bytes of the standard-format save area covering mask
    avx: bool = True        # vzeroupper is legal

    @classmethod
    def for_entry(cls, flags: set[str] | frozenset[str]) -> "SimdSave":
        """Every vector register at full width (xmm/ymm 0-15, or zmm 0-31 and k0-7 with
        AVX-512), MXCSR and the x87 control word, with plain moves: what a C handler can
        touch (it never uses the x87 stack).  Caller-saved registers cannot be treated as
        dead even at a function's entry: GCC's interprocedural register allocation keeps
        values in registers it knows a callee in the same file leaves alone.  A few dozen
        ns where a full XSAVE/XRSTOR pair costs ~170 ns.  (mask holds the vector width.)"""
        width = 64 if "avx512f" in flags else 32 if "avx" in flags else 16
        nregs = 32 if width == 64 else 16
        return cls("entry", width, nregs * 64 + 128, "avx" in flags)

    @classmethod
    def for_cpu_flags(cls, flags: set[str] | frozenset[str]) -> "SimdSave":
        """Choose from /proc/cpuinfo flags: x87+SSE, +AVX, +AVX-512 (opmask, zmm)."""
        if "xsave" not in flags:
            return cls("fxsave", 0, 512, False)
        if "avx512f" in flags:
            return cls("xsave", 0xE7, 2688, True)
        if "avx" in flags:
            return cls("xsave", 0x07, 832, True)
        return cls("xsave", 0x03, 576, False)


def _push(reg: str) -> bytes:
    n = _GPR_NUM[reg]
    return (b"\x41" if n >= 8 else b"") + bytes([0x50 | (n & 7)])


def _pop(reg: str) -> bytes:
    n = _GPR_NUM[reg]
    return (b"\x41" if n >= 8 else b"") + bytes([0x58 | (n & 7)])


def _mask_regs(simd: SimdSave) -> bytes:
    # mov eax, mask_lo; mov edx, mask_hi
    return (b"\xb8" + struct.pack("<I", simd.mask & 0xFFFFFFFF)
            + b"\xba" + struct.pack("<I", simd.mask >> 32))


def _vec_move(i: int, width: int, store: bool) -> bytes:
    """mov{dqu,dqu,dqu64} between vector register i and [rsp + 64*i]."""
    op = b"\x7f" if store else b"\x6f"
    tail = bytes([0x84 | ((i & 7) << 3), 0x24]) + struct.pack("<i", 64 * i)
    if width == 16:                                             # movdqu xmm (REX.R for 8-15)
        return b"\xf3" + (b"\x44" if i >= 8 else b"") + b"\x0f" + op + tail
    if width == 32:                                             # vmovdqu ymm (VEX.256.F3)
        return b"\xc5" + (b"\x7e" if i >= 8 else b"\xfe") + op + tail
    p0 = 0x61 | ((~i >> 3) & 1) << 7 | ((~i >> 4) & 1) << 4     # EVEX: R, R' from i
    return bytes([0x62, p0, 0xfe, 0x48]) + op + tail            # vmovdqu64 zmm (EVEX.512.F3.W1)


def _kmov(i: int, store: bool, at: int) -> bytes:
    """kmovq [rsp+at], k_i / kmovq k_i, [rsp+at] (VEX.L0.0F.W1 91/90)."""
    return (b"\xc4\xe1\xf8" + (b"\x91" if store else b"\x90") + bytes([0x84 | (i << 3), 0x24])
            + struct.pack("<i", at))


def _entry_layout(simd: SimdSave) -> tuple[int, int]:
    nregs = 32 if simd.mask == 64 else 16
    return nregs, nregs * 64  # registers, offset of the masks, MXCSR and x87 CW


def _entry_save(simd: SimdSave) -> bytes:
    nregs, ctl = _entry_layout(simd)
    c = b"".join(_vec_move(i, simd.mask, True) for i in range(nregs))
    if simd.mask == 64:
        c += b"".join(_kmov(i, True, ctl + 8 * i) for i in range(8))
    c += b"\x0f\xae\x9c\x24" + struct.pack("<i", ctl + 64)       # stmxcsr [rsp+ctl+64]
    c += b"\xd9\xbc\x24" + struct.pack("<i", ctl + 68)            # fnstcw [rsp+ctl+68]
    return c


def _entry_restore(simd: SimdSave) -> bytes:
    nregs, ctl = _entry_layout(simd)
    c = b"\x0f\xae\x94\x24" + struct.pack("<i", ctl + 64)        # ldmxcsr [rsp+ctl+64]
    c += b"\xd9\xac\x24" + struct.pack("<i", ctl + 68)            # fldcw [rsp+ctl+68]
    if simd.mask == 64:
        c += b"".join(_kmov(i, False, ctl + 8 * i) for i in range(8))
    return c + b"".join(_vec_move(i, simd.mask, False) for i in range(nregs))


def _prologue(site_addr: int, handler_addr: int, site_id: int, simd: SimdSave,
              red_zone: bool) -> bytes:
    c = bytearray()
    if red_zone:
        c += b"\x48\x8d\x64\x24\x80"                    # lea rsp,[rsp-128]
    c += b"\x9c"                                        # pushfq
    for r in _PUSH_ORDER:
        c += _push(r)
    above = 8 * (len(_PUSH_ORDER) + 1) + (RED_ZONE if red_zone else 0)
    c += b"\x48\x8d\x84\x24" + struct.pack("<i", above)  # lea rax,[rsp+above] = site rsp
    c += b"\x50"                                        # push rax      (regs.rsp)
    c += push_imm64(site_addr)                          # push site     (regs.rip)
    c += b"\x48\x89\xe3"                                # mov rbx, rsp
    if simd.mode != "none":
        c += b"\x48\x8d\xa4\x24" + struct.pack("<i", -simd.size)  # lea rsp,[rsp-size]
        c += b"\x48\x83\xe4\xc0"                        # and rsp,-64
    else:
        c += b"\x48\x83\xe4\xf0"                        # and rsp,-16
    if simd.mode == "xsave":
        # XRSTOR (standard form) faults unless header bytes 8..23 are zero; the stack is
        # garbage and XSAVE only writes XSTATE_BV, so clear the header first.
        c += b"\x31\xc0"                                # xor eax,eax
        for off in (512, 520, 528):
            c += b"\x48\x89\x84\x24" + struct.pack("<i", off)  # mov [rsp+off],rax
        c += _mask_regs(simd)
        c += b"\x48\x0f\xae\x24\x24"                    # xsave64 [rsp]
    elif simd.mode == "fxsave":
        c += b"\x48\x0f\xae\x04\x24"                    # fxsave64 [rsp]
    elif simd.mode == "entry":
        c += _entry_save(simd)
    c += b"\xfc"                                        # cld (the ABI wants DF=0)
    if simd.mode == "entry":
        # The x87 stack is empty at a call boundary: no fninit, the CW is restored.
        c += b"\xc7\x44\x24\xfc\x80\x1f\x00\x00"        # mov dword [rsp-4],0x1f80
        c += b"\x0f\xae\x54\x24\xfc"                    # ldmxcsr [rsp-4]
        if simd.avx:
            c += b"\xc5\xf8\x77"                        # vzeroupper
    elif simd.mode != "none":
        c += b"\xdb\xe3"                                # fninit: empty x87 stack, default CW
        c += b"\xc7\x44\x24\xfc\x80\x1f\x00\x00"        # mov dword [rsp-4],0x1f80
        c += b"\x0f\xae\x54\x24\xfc"                    # ldmxcsr [rsp-4]
        if simd.avx:
            c += b"\xc5\xf8\x77"                        # vzeroupper (avoid SSE/AVX penalties)
    if site_id < 2**32:
        c += b"\xbf" + struct.pack("<I", site_id)       # mov edi, site_id
    else:
        c += b"\x48\xbf" + struct.pack("<Q", site_id)   # movabs rdi, site_id
    c += b"\x48\x89\xde"                                # mov rsi, rbx
    c += b"\x48\xb8" + struct.pack("<Q", handler_addr)  # movabs rax, handler
    c += b"\xff\xd0"                                    # call rax
    if simd.mode == "xsave":
        c += _mask_regs(simd)
        c += b"\x48\x0f\xae\x2c\x24"                    # xrstor64 [rsp]
    elif simd.mode == "fxsave":
        c += b"\x48\x0f\xae\x0c\x24"                    # fxrstor64 [rsp]
    elif simd.mode == "entry":
        c += _entry_restore(simd)
    c += b"\x48\x89\xdc"                                # mov rsp, rbx
    c += b"\x48\x8d\x64\x24\x10"                        # lea rsp,[rsp+16]: drop rip, rsp
    for r in reversed(_PUSH_ORDER):
        c += _pop(r)
    c += b"\x9d"                                        # popfq
    if red_zone:
        c += b"\x48\x8d\xa4\x24\x80\x00\x00\x00"        # lea rsp,[rsp+128]
    return bytes(c)


def build_entry_trampoline(site_addr: int, displaced: bytes, tramp_addr: int,
                           handler_addr: int, site_id: int, *,
                           simd: SimdSave = SimdSave(), red_zone: bool = True,
                           exact_return: bool = True) -> bytes | Refusal:
    """Bytes of a trampoline placed at tramp_addr for the jump patch at site_addr."""
    head = _prologue(site_addr, handler_addr, site_id, simd, red_zone)
    rel = relocate_ex(displaced, site_addr, tramp_addr + len(head), exact_return=exact_return)
    if isinstance(rel, Refusal):
        return rel
    back = site_addr + len(displaced)
    tail_at = tramp_addr + len(head) + len(rel.code)
    return head + rel.code + jmp_to(tail_at, back)


def max_trampoline_size(displaced_len: int, simd: SimdSave = SimdSave()) -> int:
    """Upper bound for the allocator: prologue + worst-case relocation + long jump back."""
    head = len(_prologue(2**63, 2**63, 2**63, simd, True))
    # Worst relocation per source byte: a 2-byte jcc/loop becomes at most 20 bytes, a
    # 5-byte last call 20 + 14.
    return head + 12 * displaced_len + 34 + 14


def jump_patch(site_addr: int, tramp_addr: int, length: int) -> bytes | Refusal:
    """Bytes to write at the site: a jump to the trampoline padded with int3 to length.

    int3 padding (not nop) makes a stray jump into the patched range trap instead of
    running half an instruction.  Without trampoline memory within ±2 GiB (T-4) the
    14-byte ``jmp [rip+0]; dq`` form is used when the displaced range is long enough.
    """
    if fits_rel32(site_addr + 5, tramp_addr):
        code = b"\xe9" + struct.pack("<i", tramp_addr - site_addr - 5)
    else:
        code = jmp_abs(tramp_addr)
    if len(code) > length:
        return Refusal(f"{length}-byte site cannot hold a {len(code)}-byte jump to "
                       f"{tramp_addr:#x}")
    return code + b"\xcc" * (length - len(code))


def build_return_trampoline(handler_addr: int, simd: SimdSave = SimdSave()) -> bytes:
    """Where hijacked return addresses point: position-independent, one per process.

    A probed function returned here with rsp one slot above its return address's
    slot.  ``lea rsp,[rsp-8]`` makes that slot the top of the stack again;
    ``handler(0, regs)`` finds the real return address by regs->rsp (the slot),
    writes it there and runs the return probes; everything is restored and ``ret``
    goes home.  The function's frame is dead, so no red zone needs skipping; rax and
    rdx, xmm0/xmm1 and the x87 stack (a long double result) come back untouched.
    """
    return (b"\x48\x8d\x64\x24\xf8"                      # lea rsp,[rsp-8]
            + _prologue(0, handler_addr, 0, simd, False)
            + b"\xc3")                                   # ret


def return_trampoline_size(simd: SimdSave = SimdSave()) -> int:
    return len(build_return_trampoline(2**63, simd))
