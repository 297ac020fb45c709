"""Random instruction sequences for the relocator's differential harness (PITFALLS T-3)."""
from __future__ import annotations

import os
import random
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import keystone

from injector.x86_64.decoder import decode_one
from injector.x86_64.relocator import Refusal, jmp_to, relocate_ex

HERE = Path(__file__).resolve().parent
SCR_COLLECT = 0x500000A0      # harness scratch: pointer to h_collect
SCR_EXIT = 0x50000098         # harness scratch: exit id
SRC_CHUNK = 0x1_0000_0000     # original code + stubs + data
SRC_LEN = 0x4000
SEQ = SRC_CHUNK + 0x200       # the relocated range starts here
SEQ_MAX = 100
BEFORE_STUBS = [SRC_CHUNK + 0x180 + 32 * k for k in range(4)]       # exit ids 1..4
AFTER_STUBS = [SRC_CHUNK + 0x280 + 32 * k for k in range(4)]        # exit ids 5..8
FAR_STUBS = [SRC_CHUNK + 0x1000 + 32 * k for k in range(4)]         # exit ids 9..12
DATA = SRC_CHUNK + 0x2000
DATA_LEN = 1024
PTR_SLOTS = [0x3C0, 0x3C8]    # data offsets holding code pointers for call/jmp [rip+d]
NEAR_DST = 0x1_4000_0000      # 1 GiB away: every rel32 reaches
FAR_DST = 0x11_0000_0000      # 60 GiB away: nothing rel32 reaches
DST_LEN = 0x1000
GPR64 = "rax rcx rdx rbx rbp rsi rdi r8 r9 r10 r11 r12 r13 r14 r15".split()
GPR32 = "eax ecx edx ebx ebp esi edi r8d r9d r10d r11d r12d r13d r14d r15d".split()
GPR16 = "ax cx dx bx bp si di r8w r9w r10w r11w r12w r13w r14w r15w".split()
GPR8 = "al cl dl bl bpl sil dil r8b r9b r10b r11b r12b r13b r14b r15b".split()
CCS = "o no b ae e ne be a s ns p np l ge le g".split()
SIZES = {8: ("byte", GPR8), 16: ("word", GPR16), 32: ("dword", GPR32), 64: ("qword", GPR64)}

# Every form the T-3 row names; "far" forms with a memory operand are expected to refuse.
FORMS = ["lea", "lea32", "mov_load", "mov_store", "cmp_imm8", "add_imm32", "call_mem",
         "jmp_mem", "push_mem", "movaps_load", "movaps_store", "vmovdqa", "evex_ymm",
         "jcc8_in", "jcc8_out", "jcc32_in", "jcc32_out", "jmp8_in", "jmp32_out", "call32",
         "call32_last", "getpc", "jrcxz", "loop", "loope", "loopne"]
MEM_FORMS = {"mov_load", "mov_store", "cmp_imm8", "add_imm32", "call_mem", "jmp_mem",
             "push_mem", "movaps_load", "movaps_store", "vmovdqa", "evex_ymm"}


def cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


@lru_cache(maxsize=1)
def _ks() -> keystone.Ks:
    return keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_64)


def asm(text: str, addr: int) -> bytes:
    return bytes(_ks().asm(text, addr)[0])


def stub(exit_id: int) -> bytes:
    """mov dword [SCR_EXIT], id; jmp [SCR_COLLECT] -- no register or flag touched."""
    return (b"\xc7\x04\x25" + struct.pack("<II", SCR_EXIT, exit_id)
            + b"\xff\x24\x25" + struct.pack("<I", SCR_COLLECT))


def _rip(text: str, addr: int, target: int) -> bytes:
    """Assemble text containing [rip+DISP] so that it refers to target."""
    raw = bytearray(asm(text.replace("DISP", "0x12345678"), addr))
    off = raw.find(bytes.fromhex("78563412"))
    struct.pack_into("<i", raw, off, target - (addr + len(raw)))
    return bytes(raw)


@dataclass
class Piece:
    """One instruction (or idiom) with a fixed length; emit(addr, labels) -> bytes."""

    size: int
    emit: object
    form: str = "filler"


@dataclass
class Sequence:
    forms: list[str]
    code: bytes
    ptr_slots: list[int] = field(default_factory=list)


def _filler(r: random.Random) -> Piece:
    a, b = r.sample(range(len(GPR64)), 2)
    text = r.choice([
        f"add {GPR64[a]}, {GPR64[b]}", f"xor {GPR32[a]}, {r.randrange(1 << 31)}",
        f"inc {GPR16[a]}", f"sub {GPR8[a]}, {GPR8[b]}", f"cmp {GPR64[a]}, {GPR64[b]}",
        f"imul {GPR64[a]}, {GPR64[b]}", f"set{r.choice(CCS)} {GPR8[a]}",
        f"cmov{r.choice(CCS)} {GPR64[a]}, {GPR64[b]}", f"shl {GPR64[a]}, cl",
        f"bt {GPR64[a]}, {GPR64[b]}", f"neg {GPR32[a]}", "stc", "cmc",
        f"rcl {GPR64[a]}, 1", f"adc {GPR32[a]}, {GPR32[b]}",
    ])
    raw = asm(text, SEQ)
    return Piece(len(raw), lambda addr, labels, t=text: asm(t, addr))


def _branch(kind: str, r: random.Random, form: str, own: int, npieces: int) -> Piece:
    """Relative branch pieces hand-encoded so rel8/rel32 is the one we asked for."""
    internal = form.endswith("_in") or (form in ("jrcxz", "loop", "loope", "loopne")
                                        and r.random() < 0.5)
    if internal:
        dest = ("label", r.randrange(own + 1, npieces + 1))
    else:
        pool = (BEFORE_STUBS[2:] + AFTER_STUBS[:2]) if kind in ("jcc8", "jmp8", "x8") else (
            BEFORE_STUBS + AFTER_STUBS + FAR_STUBS)
        dest = ("abs", r.choice(pool))
    cc = r.randrange(16)
    opcode = {"loop": 0xE2, "loope": 0xE1, "loopne": 0xE0, "jrcxz": 0xE3}.get(form)
    prefix = b"\x67" if form == "jrcxz" and r.random() < 0.3 else b""   # jecxz

    def emit(addr: int, labels: dict[int, int]) -> bytes:
        t = labels[dest[1]] if dest[0] == "label" else dest[1]
        if kind == "x8":
            head = prefix + bytes([opcode])
        elif kind == "jcc8":
            head = bytes([0x70 | cc])
        elif kind == "jcc32":
            head = bytes([0x0F, 0x80 | cc])
        elif kind == "jmp8":
            head = b"\xeb"
        else:
            head = b"\xe9"
        wide = kind in ("jcc32", "jmp32")
        rel = t - (addr + len(head) + (4 if wide else 1))
        if wide:
            return head + struct.pack("<i", rel)
        if not -128 <= rel <= 127:
            raise OverflowError
        return head + struct.pack("<b", rel)
    size = {"x8": len(prefix) + 2, "jcc8": 2, "jmp8": 2, "jcc32": 6, "jmp32": 5}[kind]
    return Piece(size, emit, form)


def _form_piece(form: str, r: random.Random, own: int, npieces: int, avx: bool,
                evex: bool, slots: list[int]) -> Piece:
    reg = r.randrange(len(GPR64))
    off = r.randrange(0, 0x300) & ~7   # below PTR_SLOTS

    def rip_piece(text: str, target: int) -> Piece:
        size = len(_rip(text, SEQ, target))
        return Piece(size, lambda addr, labels: _rip(text, addr, target), form)

    if form == "lea":
        return rip_piece(f"lea {GPR64[reg]}, [rip+DISP]",
                         r.choice([DATA + off, SEQ + r.randrange(8), SEQ - r.randrange(1 << 30)]))
    if form == "lea32":
        return rip_piece(f"lea {GPR32[reg]}, [rip+DISP]", DATA + off)
    if form in ("mov_load", "mov_store"):
        width, regs = SIZES[r.choice([8, 16, 32, 64])]
        mem = f"{width} ptr [rip+DISP]"
        text = f"mov {regs[reg]}, {mem}" if form == "mov_load" else f"mov {mem}, {regs[reg]}"
        return rip_piece(text, DATA + off)
    if form == "cmp_imm8":
        return rip_piece(f"cmp byte ptr [rip+DISP], {r.randrange(256)}", DATA + off)
    if form == "add_imm32":
        return rip_piece(f"add dword ptr [rip+DISP], {r.randrange(1 << 31)}", DATA + off)
    if form in ("call_mem", "jmp_mem"):
        slot = r.choice(PTR_SLOTS)
        slots.append(slot)
        return rip_piece(f"{form[:-4]} qword ptr [rip+DISP]", DATA + slot)
    if form == "push_mem":
        return rip_piece("push qword ptr [rip+DISP]", DATA + off)
    if form == "movaps_load":
        return rip_piece(f"movaps xmm{r.randrange(16)}, xmmword ptr [rip+DISP]",
                         DATA + (off & ~15))
    if form == "movaps_store":
        return rip_piece(f"movaps xmmword ptr [rip+DISP], xmm{r.randrange(16)}",
                         DATA + (off & ~15))
    if form == "vmovdqa" and avx:
        return rip_piece(f"vmovdqa ymm{r.randrange(16)}, ymmword ptr [rip+DISP]",
                         DATA + (off & ~31))
    if form == "evex_ymm" and evex:
        n = r.randrange(8)
        target = DATA + off

        def emit(addr: int, labels) -> bytes:
            # keystone lacks AVX512VL: take the zmm encoding and set EVEX.L'L to 256 bits
            raw = bytearray(_rip(f"vmovdqu64 zmm{n}, zmmword ptr [rip+DISP]", addr, target))
            raw[3] = (raw[3] & 0x9F) | 0x20
            return bytes(raw)
        return Piece(len(emit(SEQ, {})), emit, form)
    if form in ("jcc8_in", "jcc8_out"):
        return _branch("jcc8", r, form, own, npieces)
    if form in ("jcc32_in", "jcc32_out"):
        return _branch("jcc32", r, form, own, npieces)
    if form == "jmp8_in":
        return _branch("jmp8", r, form, own, npieces)
    if form == "jmp32_out":
        return _branch("jmp32", r, form, own, npieces)
    if form in ("jrcxz", "loop", "loope", "loopne"):
        return _branch("x8", r, form, own, npieces)
    if form in ("call32", "call32_last"):
        target = r.choice(BEFORE_STUBS + AFTER_STUBS + FAR_STUBS)
        return Piece(5, lambda addr, labels: asm(f"call {target:#x}", addr), form)
    if form == "getpc":
        reg2 = GPR64[reg]
        size = len(asm(f"call {SEQ + 5:#x}; pop {reg2}", SEQ))
        return Piece(size, lambda addr, labels: asm(f"call {addr + 5:#x}; pop {reg2}", addr),
                     form)
    return _filler(r)


def make_sequence(r: random.Random, forms: list[str], avx: bool, evex: bool) -> Sequence | None:
    """Lay out fillers and forms; None when a rel8 target ended up out of reach."""
    items: list[str] = []
    for f in forms:
        items += ["filler"] * r.randrange(0, 2) + [f]
    if "call32_last" in items:
        items.remove("call32_last")
        items.append("call32_last")
    elif r.random() < 0.5:
        items.append("filler")
    slots: list[int] = []
    pieces = [_form_piece(f, r, k, len(items), avx, evex, slots) if f != "filler"
              else _filler(r) for k, f in enumerate(items)]
    labels, addr = {}, SEQ
    for k, p in enumerate(pieces):
        labels[k] = addr
        addr += p.size
    labels[len(pieces)] = addr
    if addr - SEQ > SEQ_MAX:
        return None
    try:
        code = b"".join(p.emit(labels[k], labels) for k, p in enumerate(pieces))
    except OverflowError:
        return None
    assert len(code) == addr - SEQ
    return Sequence(items, code, slots)


def src_chunk(seq: Sequence) -> bytes:
    """The original chunk: stubs, the sequence, exit 0 where it falls through, data."""
    mem = bytearray(b"\xcc" * SRC_LEN)
    for k, a in enumerate(BEFORE_STUBS + AFTER_STUBS + FAR_STUBS):
        s = stub(k + 1)
        mem[a - SRC_CHUNK:a - SRC_CHUNK + len(s)] = s
    mem[SEQ - SRC_CHUNK:SEQ - SRC_CHUNK + len(seq.code)] = seq.code
    end = SEQ - SRC_CHUNK + len(seq.code)
    mem[end:end + 18] = stub(0)
    return bytes(mem)


@dataclass
class Job:
    seq: Sequence
    dst: int
    blob: bytes
    refusal: Refusal | None = None


def build_job(seq: Sequence, dst: int, ncases: int, seed: int, avx: bool,
              broken: bool = False) -> Job:
    """One harness test; broken=True copies the bytes unrelocated (the harness must notice)."""
    rel = relocate_ex(seq.code, SEQ, dst)
    if isinstance(rel, Refusal):
        return Job(seq, dst, b"", rel)
    code = seq.code if broken else rel.code
    copy = code + jmp_to(dst + len(code), SEQ + len(seq.code))
    dchunk = dst & ~0xFFF
    dmem = bytearray(b"\xcc" * DST_LEN)
    dmem[dst - dchunk:dst - dchunk + len(copy)] = copy
    b = bytearray(struct.pack("<QII", seed, ncases, int(avx)))
    chunks = [(SRC_CHUNK, src_chunk(seq)), (dchunk, bytes(dmem))]
    b += struct.pack("<I", len(chunks))
    for a, data in chunks:
        b += struct.pack("<QI", a, len(data)) + data
    b += struct.pack("<QQQ", SEQ, dst, DATA)
    targets = BEFORE_STUBS + AFTER_STUBS + FAR_STUBS
    slots = sorted(set(seq.ptr_slots))
    b += struct.pack("<I", len(slots))
    for s in slots:
        vals = targets[:8]
        b += struct.pack("<II", s, len(vals)) + struct.pack(f"<{len(vals)}Q", *vals)
    rmap = list(rel.return_map.items())[:16]
    b += struct.pack("<I", len(rmap))
    for rb, ra in rmap:
        b += struct.pack("<QQ", rb, ra)
    return Job(seq, dst, bytes(b))


@lru_cache(maxsize=1)
def harness_binary() -> Path:
    out = Path(tempfile.gettempdir()) / f"utrace_reloc_harness_{os.getuid()}"
    src = HERE / "harness.c"
    if not out.exists() or out.stat().st_mtime < src.stat().st_mtime:
        subprocess.run(["gcc", "-O2", "-o", str(out), str(src)], check=True)
    return out


def run_jobs(jobs: list[Job]) -> list[tuple[int, int, int, list[str]]]:
    """Run the jobs in one harness process: (cases, mismatches, exit bitmask, diff lines)."""
    todo = [j for j in jobs if j.refusal is None]
    data = struct.pack("<I", len(todo)) + b"".join(j.blob for j in todo)
    p = subprocess.run([str(harness_binary())], input=data, capture_output=True, timeout=600)
    results, diffs = [], []
    for line in p.stdout.decode().splitlines():
        if line.startswith("diff"):
            diffs.append(line)
        elif line.startswith("test"):
            w = line.split()
            results.append((int(w[3]), int(w[5]), int(w[7], 16), diffs))
            diffs = []
    if p.returncode != 0 or len(results) != len(todo):
        raise RuntimeError(f"harness failed rc={p.returncode}: {p.stdout[-2000:]!r} "
                           f"{p.stderr[-2000:]!r}")
    return results


def generate(nseq: int, seed: int, avx: bool, evex: bool) -> list[Sequence]:
    """nseq sequences; every form appears as the main form of some sequence in turn."""
    r = random.Random(seed)
    forms = [f for f in FORMS if (f != "vmovdqa" or avx) and (f != "evex_ymm" or evex)]
    out: list[Sequence] = []
    k = 0
    while len(out) < nseq:
        main = forms[k % len(forms)]
        extra = r.sample(forms, r.randrange(0, 3))
        s = make_sequence(r, [main] + [e for e in extra if e != "call32_last"], avx, evex)
        if s is not None:
            out.append(s)
            k += 1
    return out


def expected_far_refusal(seq: Sequence) -> bool:
    return any(f in MEM_FORMS for f in seq.forms)


__all__ = ["FORMS", "generate", "build_job", "run_jobs", "NEAR_DST", "FAR_DST", "cpu_flags",
           "expected_far_refusal", "decode_one"]
