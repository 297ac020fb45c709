"""x86-64 PLT stubs: which stub calls which imported function, and through which GOT slot.

Each stub in .plt, .plt.sec (IBT/CET: the stub callers actually call) and
.plt.got (imports also used as data, bound via GLOB_DAT) is decoded: its
`jmp *disp(%rip)` names a GOT slot, and the relocation of that slot names the
symbol. This needs no knowledge of the entry order, so lazy, `-z now` and IBT
layouts from ld.bfd and lld are handled alike; an index-order guess is kept
only for stubs that do not decode.
"""
from __future__ import annotations

import fnmatch
import struct
from typing import NamedTuple

from .elf import ElfError, ElfFile

EM_X86_64 = 62
R_X86_64_GLOB_DAT = 6
R_X86_64_JUMP_SLOT = 7
R_X86_64_IRELATIVE = 37
RELOC_NAMES = {R_X86_64_GLOB_DAT: "GLOB_DAT", R_X86_64_JUMP_SLOT: "JUMP_SLOT",
               R_X86_64_IRELATIVE: "IRELATIVE"}
PLT_SECTIONS = (".plt", ".plt.sec", ".plt.got")
_ENDBR64 = b"\xf3\x0f\x1e\xfa"


class PltEntry(NamedTuple):
    """One PLT stub. address and got are link-time vaddrs (add the load bias)."""

    name: str  # imported symbol; for IRELATIVE the local IFUNC's name, or *ABS*+0x...
    address: int  # the stub callers call (.plt.sec's when there is one)
    got: int  # the GOT slot the stub jumps through
    section: str
    reloc: str  # JUMP_SLOT, GLOB_DAT or IRELATIVE
    size: int


def _decode_stub(code: bytes, pos: int) -> int | None:
    """Offset just past a `[endbr64] [bnd] jmp *disp32(%rip)` at pos, and its disp, or None."""
    for start in (pos, pos + 4):
        if start == pos + 4 and code[pos:pos + 4] != _ENDBR64:
            break
        p = start
        if code[p:p + 1] == b"\xf2":  # bnd prefix (MPX-era IBT stubs)
            p += 1
        if code[p:p + 2] == b"\xff\x25" and p + 6 <= len(code):
            return p
    return None


class PltTable:
    """The PLT stubs of one ELF file, decoded once when first asked for."""

    def __init__(self, elf: ElfFile) -> None:
        self.elf = elf
        self._entries: list[PltEntry] | None = None
        self._rela_dyn: bytes | None = None
        self._dyn: tuple[bytes, bytes] | None = None
        self._symbols = None

    def entries(self) -> list[PltEntry]:
        if self._entries is None:
            self._entries = self._decode()
        return self._entries

    def lookup(self, name: str) -> list[PltEntry]:
        return [e for e in self.entries() if e.name == name]

    def match(self, pattern: str) -> list[PltEntry]:
        """Stubs whose name matches an fnmatch pattern, as .plt("PATTERN") does."""
        return [e for e in self.entries() if fnmatch.fnmatchcase(e.name, pattern)]

    # -- decoding -----------------------------------------------------------------------------

    def _decode(self) -> list[PltEntry]:
        elf = self.elf
        if elf.machine != EM_X86_64 or not elf.is64:
            raise ElfError(f"ERROR: {elf.path}: PLT decoding supports x86-64 only")
        slots = self._jump_slots()
        found: dict[int, PltEntry] = {}  # by GOT slot; .plt.sec wins over the lazy .plt entry
        for secname in PLT_SECTIONS:
            sec = elf.section(secname)
            if sec is None or not sec.size:
                continue
            code = elf.section_data(sec)
            step = sec.entsize if sec.entsize in (8, 16) else 16
            for off in range(0, len(code) - step + 1, step):
                p = _decode_stub(code, off)
                if p is None:
                    continue
                disp = struct.unpack_from("<i", code, p + 2)[0]
                got = sec.addr + p + 6 + disp
                rel = slots.get(got)
                if rel is None and secname == ".plt.got":
                    rel = self._glob_dat(got)
                if rel is None:
                    continue  # PLT0's jump through GOT[2], or padding
                name = rel[0]
                if name.startswith("*ABS*"):
                    # A non-PIE program exporting an IFUNC: the stub is its canonical
                    # address and .dynsym names it even when the resolver is stripped.
                    name = self._name_at(sec.addr + off) or name
                prev = found.get(got)
                if prev is None or secname == ".plt.sec":
                    found[got] = PltEntry(name, sec.addr + off, got, secname, rel[1], step)
        self._guess_undecoded(slots, found)
        return sorted(found.values(), key=lambda e: e.address)

    def _guess_undecoded(self, slots: dict[int, tuple[str, str, int]],
                         found: dict[int, PltEntry]) -> None:
        # The classic order: .plt.sec entry i, or .plt entry i+1 after PLT0.
        sec = self.elf.section(".plt.sec")
        first = 0 if sec is not None else 1
        sec = sec or self.elf.section(".plt")
        if sec is None:
            return
        for got, (name, kind, index) in slots.items():
            addr = sec.addr + 16 * (index + first)
            if got not in found and kind == "JUMP_SLOT" and addr + 16 <= sec.addr + sec.size:
                found[got] = PltEntry(name, addr, got, sec.name, kind, 16)

    def _jump_slots(self) -> dict[int, tuple[str, str, int]]:
        """GOT slot -> (name, relocation kind, index) from .rela.plt."""
        sec = self.elf.section(".rela.plt")
        if sec is None:
            return {}
        out = {}
        data = self.elf.section_data(sec)
        for i, (off, info, addend) in enumerate(struct.iter_unpack("<QQq", data)):
            rtype, symidx = info & 0xFFFFFFFF, info >> 32
            if rtype == R_X86_64_JUMP_SLOT:
                out[off] = (self._dynsym_name(symidx), "JUMP_SLOT", i)
            elif rtype == R_X86_64_IRELATIVE:
                out[off] = (self._ifunc_name(addend), "IRELATIVE", i)
        return out

    def _glob_dat(self, got: int) -> tuple[str, str, int] | None:
        """The GLOB_DAT relocation of one slot: a raw search, not a pass over .rela.dyn."""
        sec = self.elf.section(".rela.dyn")
        if sec is None:
            return None
        if self._rela_dyn is None:
            self._rela_dyn = self.elf.section_data(sec)
        data = self._rela_dyn
        needle = struct.pack("<Q", got)
        pos = data.find(needle)
        while pos >= 0:
            if pos % 24 == 0:
                _off, info, _add = struct.unpack_from("<QQq", data, pos)
                if info & 0xFFFFFFFF == R_X86_64_GLOB_DAT:
                    return (self._dynsym_name(info >> 32), "GLOB_DAT", pos // 24)
            pos = data.find(needle, pos + 1)
        return None

    def _dynsym_name(self, index: int) -> str:
        if self._dyn is None:
            sym = self.elf.section(".dynsym")
            strsec = self.elf.section_at(sym.link) if sym is not None else None
            self._dyn = (self.elf.section_data(sym) if sym else b"",
                         self.elf.section_data(strsec) if strsec else b"")
        data, strs = self._dyn
        if (index + 1) * 24 > len(data):
            return f"#sym{index}"
        nm = struct.unpack_from("<I", data, index * 24)[0]
        return strs[nm:strs.find(b"\0", nm)].decode("utf-8", "surrogateescape")

    def _sites_at(self, vaddr: int) -> list:
        if self._symbols is None:
            from .symbols import SymbolTable
            self._symbols = SymbolTable(self.elf)
        return self._symbols.at(vaddr)

    def _ifunc_name(self, resolver: int) -> str:
        # A local IFUNC called in a non-PIE program goes through an IRELATIVE slot whose
        # addend is the resolver, i.e. the IFUNC symbol's own value.
        for fn in self._sites_at(resolver):
            if fn.ifunc:
                return fn.names[0]
        return f"*ABS*+0x{resolver:x}"  # objdump's spelling

    def _name_at(self, vaddr: int) -> str | None:
        sites = self._sites_at(vaddr)
        return sites[0].names[0] if sites else None


def plt_table(path: str) -> PltTable:
    return PltTable(ElfFile(path))
