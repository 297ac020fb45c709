"""An ELF file's headers only: sections, load segments, build-id, debuglink, separate debug file.

Headers are decoded with struct over os.pread rather than pyelftools: pyelftools
builds a Container per header field, which costs 3-10 ms for libc's 64 section
headers, more than a whole cached symbol table takes to load. os.pread instead
of mmap because a file replaced on disk while mapped would raise SIGBUS.
Section contents are read only when a caller asks for them.
"""
from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass

from ..diag import UtraceError

ET_NAMES = {0: "NONE", 1: "REL", 2: "EXEC", 3: "DYN", 4: "CORE"}
PT_LOAD = 1
PT_DYNAMIC = 2
PT_INTERP = 3
PF_X = 1
SHT_SYMTAB = 2
SHT_NOBITS = 8
SHT_DYNSYM = 11
SHT_GNU_HASH = 0x6FFFFFF6
SHT_GNU_VERDEF = 0x6FFFFFFD
SHT_GNU_VERSYM = 0x6FFFFFFF
SHF_COMPRESSED = 0x800
NT_GNU_BUILD_ID = 3
DF_1_PIE = 0x08000000
DT_FLAGS_1 = 0x6FFFFFFB
DT_SONAME = 14
PAGE = 4096
DEBUG_ROOT = "/usr/lib/debug"


class ElfError(UtraceError):
    pass


@dataclass(frozen=True, slots=True)
class Section:
    """One section header."""

    index: int
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    entsize: int

    def contains(self, vaddr: int) -> bool:
        return self.addr <= vaddr < self.addr + self.size


@dataclass(frozen=True, slots=True)
class Segment:
    """One PT_LOAD program header: enough for address <-> file offset arithmetic."""

    vaddr: int
    memsz: int
    offset: int
    filesz: int
    flags: int
    align: int

    @property
    def executable(self) -> bool:
        return bool(self.flags & PF_X)

    def contains_vaddr(self, vaddr: int) -> bool:
        return self.vaddr <= vaddr < self.vaddr + self.memsz

    def contains_offset(self, offset: int) -> bool:
        return self.offset <= offset < self.offset + self.filesz


class ElfFile:
    """An ELF file opened for lazy reading; headers are decoded at once, contents on demand."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise ElfError(f"ERROR: cannot open {path}: {e.strerror}") from None
        try:
            st = os.fstat(self._fd)
            # Identity of the bytes we read: the cache and the memo key on it.
            self.identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            self.size = st.st_size
            self.mtime_ns = st.st_mtime_ns
            self._parse_headers()
        except BaseException:
            os.close(self._fd)
            raise
        self._build_id: str | None | bool = False  # False: not read yet
        self._dyn: dict[int, int] | None = None

    # -- raw reading -------------------------------------------------------------------------

    def read(self, offset: int, size: int) -> bytes:
        """size bytes at a file offset (short only at end of file)."""
        return os.pread(self._fd, size, offset)

    def section_data(self, sec: Section) -> bytes:
        if sec.type == SHT_NOBITS:
            return b""
        if sec.flags & SHF_COMPRESSED:
            raise ElfError(f"ERROR: {self.path}: section {sec.name} is compressed")
        data = self.read(sec.offset, sec.size)
        if len(data) != sec.size:
            raise ElfError(f"ERROR: {self.path}: section {sec.name} runs past the end of the file")
        return data

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "ElfFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # -- headers -----------------------------------------------------------------------------

    def _parse_headers(self) -> None:
        ident = self.read(0, 64)
        if len(ident) < 52 or ident[:4] != b"\x7fELF":
            raise ElfError(f"ERROR: {self.path} is not an ELF file")
        if ident[4] not in (1, 2) or ident[5] not in (1, 2):
            raise ElfError(f"ERROR: {self.path}: unknown ELF class or data encoding")
        self.is64 = ident[4] == 2
        self.endian = "<" if ident[5] == 1 else ">"
        e = self.endian
        if self.is64:
            (etype, machine, _v, self.entry, phoff, shoff, _fl, _eh, phentsize, phnum,
             shentsize, shnum, shstrndx) = struct.unpack_from(e + "HHIQQQIHHHHHH", ident, 16)
        else:
            (etype, machine, _v, self.entry, phoff, shoff, _fl, _eh, phentsize, phnum,
             shentsize, shnum, shstrndx) = struct.unpack_from(e + "HHIIIIIHHHHHH", ident, 16)
        self.etype = etype
        self.machine = machine
        self.segments, self.interp_present, self.dynamic = self._parse_phdrs(
            phoff, phentsize, phnum)
        self.sections = self._parse_shdrs(shoff, shentsize, shnum, shstrndx)
        self._by_name: dict[str, Section] = {}
        for s in self.sections:
            self._by_name.setdefault(s.name, s)

    def _parse_phdrs(self, off: int, entsize: int, num: int
                     ) -> tuple[list[Segment], bool, tuple[int, int] | None]:
        loads: list[Segment] = []
        interp = False
        dynamic = None
        if not off or not num:
            return loads, interp, dynamic
        raw = self.read(off, entsize * num)
        for i in range(num):
            if self.is64:
                ptype, flags, poff, vaddr, _pa, filesz, memsz, align = struct.unpack_from(
                    self.endian + "IIQQQQQQ", raw, i * entsize)
            else:
                ptype, poff, vaddr, _pa, filesz, memsz, flags, align = struct.unpack_from(
                    self.endian + "IIIIIIII", raw, i * entsize)
            if ptype == PT_LOAD:
                loads.append(Segment(vaddr, memsz, poff, filesz, flags, align))
            elif ptype == PT_INTERP:
                interp = True
            elif ptype == PT_DYNAMIC:
                dynamic = (poff, filesz)
        loads.sort(key=lambda s: s.vaddr)
        return loads, interp, dynamic

    def _parse_shdrs(self, off: int, entsize: int, num: int, strndx: int) -> list[Section]:
        if not off:
            return []
        fmt = self.endian + ("IIQQQQIIQQ" if self.is64 else "IIIIIIIIII")
        first = self.read(off, entsize)
        if num == 0 and len(first) >= entsize:  # more than 0xff00 sections: count in sh_size
            num = struct.unpack_from(fmt, first)[5]
        raw = self.read(off, entsize * num)
        if len(raw) < entsize * num:
            raise ElfError(f"ERROR: {self.path}: truncated section header table")
        hdrs = [struct.unpack_from(fmt, raw, i * entsize) for i in range(num)]
        if strndx == 0xFFFF and hdrs:  # SHN_XINDEX: real index in sh_link of section 0
            strndx = hdrs[0][6]
        names = b""
        if 0 < strndx < num:
            h = hdrs[strndx]
            names = self.read(h[4], h[5])
        out = []
        for i, (nm, typ, flags, addr, soff, size, link, info, _al, ent) in enumerate(hdrs):
            end = names.find(b"\0", nm)
            name = names[nm:end if end >= 0 else len(names)].decode("utf-8", "replace")
            out.append(Section(i, name, typ, flags, addr, soff, size, link, info, ent))
        return out

    # -- facts -------------------------------------------------------------------------------

    def section(self, name: str) -> Section | None:
        return self._by_name.get(name)

    def section_at(self, index: int) -> Section | None:
        return self.sections[index] if 0 <= index < len(self.sections) else None

    @property
    def type(self) -> str:
        """EXEC, DYN, REL, CORE (DYN covers both PIE executables and shared libraries)."""
        return ET_NAMES.get(self.etype, f"0x{self.etype:x}")

    @property
    def is_pie(self) -> bool:
        """DF_1_PIE when present; else a DYN with an interpreter and no DT_SONAME.

        The soname test is needed because libc.so.6 and ld.so have PT_INTERP too.
        """
        if self.etype != 3:
            return False
        dyn = self.dynamic_tags()
        if DT_FLAGS_1 in dyn:
            return bool(dyn[DT_FLAGS_1] & DF_1_PIE)
        return self.interp_present and DT_SONAME not in dyn

    def dynamic_tags(self) -> dict[int, int]:
        """The first value of each tag in PT_DYNAMIC (small: read whole, once)."""
        if self._dyn is None:
            self._dyn = {}
            if self.dynamic:
                off, size = self.dynamic
                fmt = self.endian + ("qQ" if self.is64 else "iI")
                raw = self.read(off, size)
                raw = raw[:len(raw) - len(raw) % struct.calcsize(fmt)]
                for t, v in struct.iter_unpack(fmt, raw):
                    if t == 0:
                        break
                    self._dyn.setdefault(t, v)
        return self._dyn

    @property
    def stripped(self) -> bool:
        """No .symtab: only the dynamic symbols are left (Debian's packaged binaries)."""
        return self.section(".symtab") is None

    @property
    def build_id(self) -> str | None:
        """The GNU build-id as lowercase hex, or None."""
        if self._build_id is False:
            self._build_id = self._read_build_id()
        return self._build_id  # type: ignore[return-value]

    def _read_build_id(self) -> str | None:
        sec = self.section(".note.gnu.build-id")
        notes = [sec] if sec is not None else [s for s in self.sections if s.type == 7]
        for s in notes:
            data = self.section_data(s)
            pos = 0
            while pos + 12 <= len(data):
                namesz, descsz, ntype = struct.unpack_from(self.endian + "III", data, pos)
                name_at = pos + 12
                desc_at = name_at + ((namesz + 3) & ~3)
                if ntype == NT_GNU_BUILD_ID and data[name_at:name_at + namesz] == b"GNU\0":
                    return data[desc_at:desc_at + descsz].hex()
                pos = desc_at + ((descsz + 3) & ~3)
        return None

    @property
    def debuglink(self) -> tuple[str, int] | None:
        """(file name, CRC-32) from .gnu_debuglink, or None."""
        sec = self.section(".gnu_debuglink")
        if sec is None:
            return None
        data = self.section_data(sec)
        end = data.find(b"\0")
        if end <= 0:
            return None
        crc_at = (end + 4) & ~3
        crc = 0
        if crc_at + 4 <= len(data):
            crc = struct.unpack_from(self.endian + "I", data, crc_at)[0]
        return data[:end].decode("utf-8", "surrogateescape"), crc

    # -- address arithmetic -------------------------------------------------------------------

    @property
    def link_base(self) -> int:
        """Page-aligned vaddr that file offset 0 would have: load bias = mapping start - this."""
        if not self.segments:
            return 0
        first = self.segments[0]
        return (first.vaddr & ~(PAGE - 1)) - (first.offset & ~(PAGE - 1))

    def bias_for_mapping(self, start: int, offset: int) -> int:
        """Load bias given one mapping of this file (its start address and file offset)."""
        for seg in self.segments:
            if seg.offset & ~(PAGE - 1) <= offset < seg.offset + max(seg.filesz, 1):
                return start - offset - ((seg.vaddr & ~(PAGE - 1)) - (seg.offset & ~(PAGE - 1)))
        return start - offset - self.link_base

    def vaddr_to_offset(self, vaddr: int) -> int | None:
        for seg in self.segments:
            if seg.vaddr <= vaddr < seg.vaddr + seg.filesz:
                return vaddr - seg.vaddr + seg.offset
        return None

    def offset_to_vaddr(self, offset: int) -> int | None:
        for seg in self.segments:
            if seg.contains_offset(offset):
                return offset - seg.offset + seg.vaddr
        return None

    def read_vaddr(self, vaddr: int, size: int) -> bytes:
        """File bytes backing [vaddr, vaddr+size) as linked (not relocated)."""
        off = self.vaddr_to_offset(vaddr)
        if off is None:
            raise ElfError(f"ERROR: {self.path}: address 0x{vaddr:x} is not backed by the file")
        return self.read(off, size)

    def is_executable_vaddr(self, vaddr: int) -> bool:
        return any(s.executable and s.contains_vaddr(vaddr) for s in self.segments)


def debug_file_candidates(elf: ElfFile, roots: tuple[str, ...] = (DEBUG_ROOT,)) -> list[str]:
    """Where GDB would look for the separate debug file, most specific first."""
    out = []
    bid = elf.build_id
    if bid and len(bid) > 2:
        out += [os.path.join(r, ".build-id", bid[:2], bid[2:] + ".debug") for r in roots]
    link = elf.debuglink
    if link:
        d = os.path.dirname(os.path.realpath(elf.path))
        out += [os.path.join(d, link[0]), os.path.join(d, ".debug", link[0])]
        out += [os.path.join(r + d, link[0]) for r in roots]
    return out


def find_debug_file(elf: ElfFile, roots: tuple[str, ...] = (DEBUG_ROOT,),
                    check_crc: bool = False) -> str | None:
    """Locate the separate debug file (by build-id, then .gnu_debuglink); None if absent.

    A build-id path is trusted as is; a debuglink candidate is the file
    itself when it has the same name, so it is skipped, and with check_crc
    its CRC-32 must match (reading the whole file, hence off by default).
    """
    link = elf.debuglink
    self_path = os.path.realpath(elf.path)
    bid_paths = set(debug_file_candidates(elf, roots)[:len(roots)] if elf.build_id else [])
    for cand in debug_file_candidates(elf, roots):
        if not os.path.isfile(cand) or os.path.realpath(cand) == self_path:
            continue
        if check_crc and link and cand not in bid_paths and _crc32(cand) != link[1]:
            continue
        return cand
    return None


def _crc32(path: str) -> int:
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
    return crc & 0xFFFFFFFF
