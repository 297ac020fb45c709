"""Function extents from .eh_frame_hdr: sizes for functions a stripped binary does not name."""
from __future__ import annotations

import bisect
import os
import struct

from .elf import ElfFile

# DW_EH_PE encodings (the low nibble: format, the high: application)
_PE_OMIT = 0xFF
_FORMATS = {0x01: ("<H", 2), 0x02: ("<H", 2), 0x03: ("<I", 4), 0x04: ("<Q", 8),
            0x09: ("<h", 2), 0x0A: ("<h", 2), 0x0B: ("<i", 4), 0x0C: ("<q", 8),
            0x00: ("<Q", 8)}
_PCREL, _DATAREL = 0x10, 0x30


class _Reader:
    def __init__(self, elf: ElfFile, vaddr: int, data: bytes) -> None:
        self.elf, self.vaddr, self.data = elf, vaddr, data

    def encoded(self, pos: int, enc: int, datarel_base: int) -> tuple[int, int]:
        """(value, bytes used) of a DW_EH_PE-encoded pointer at data[pos]."""
        fmt = _FORMATS.get(enc & 0x0F)
        if fmt is None:
            raise ValueError(f"unsupported pointer encoding {enc:#x}")
        (v,) = struct.unpack_from(fmt[0], self.data, pos)
        app = enc & 0x70
        if app == _PCREL:
            v += self.vaddr + pos
        elif app == _DATAREL:
            v += datarel_base
        return v & (2**64 - 1), fmt[1]


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    v = shift = 0
    while True:
        b = data[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return v, pos


class EhFrameIndex:
    """The binary-search table of .eh_frame_hdr; FDEs decoded on demand."""

    def __init__(self, elf: ElfFile) -> None:
        self.elf = elf
        self.starts: list[int] = []
        self.fdes: list[int] = []
        hdr = elf.section(".eh_frame_hdr")
        frame = elf.section(".eh_frame")
        if hdr is None or frame is None:
            return
        h = _Reader(elf, hdr.addr, elf.section_data(hdr))
        self.frame = _Reader(elf, frame.addr, elf.section_data(frame))
        version, _ptr_enc, count_enc, table_enc = h.data[:4]
        if version != 1 or count_enc == _PE_OMIT or table_enc != 0x3B:
            return  # only the datarel|sdata4 table every linker writes
        pos = 4
        _, n = h.encoded(pos, h.data[1], hdr.addr)
        pos += n
        count, n = h.encoded(pos, count_enc, hdr.addr)
        pos += n
        table = struct.unpack_from(f"<{2 * count}i", h.data, pos)
        self.starts = [hdr.addr + v for v in table[0::2]]
        self.fdes = [hdr.addr + v for v in table[1::2]]

    def extent(self, vaddr: int) -> tuple[int, int] | None:
        """(start, size) of the FDE covering vaddr (link-time addresses), or None."""
        i = bisect.bisect_right(self.starts, vaddr) - 1
        if i < 0:
            return None
        try:
            start, size = self._fde_range(self.fdes[i])
        except (ValueError, struct.error, IndexError):
            return None
        return (start, size) if start <= vaddr < start + size else None

    def _fde_range(self, fde_vaddr: int) -> tuple[int, int]:
        r = self.frame
        pos = fde_vaddr - r.vaddr
        (length,) = struct.unpack_from("<I", r.data, pos)
        if length == 0xFFFFFFFF:
            raise ValueError("64-bit .eh_frame entries are not supported")
        (cie_off,) = struct.unpack_from("<I", r.data, pos + 4)
        enc = self._cie_fde_encoding(pos + 4 - cie_off)
        start, n = r.encoded(pos + 8, enc, 0)
        size, _ = r.encoded(pos + 8 + n, enc & 0x0F, 0)
        return start, size

    def _cie_fde_encoding(self, pos: int) -> int:
        """The 'R' augmentation of the CIE at data[pos] (absptr when absent)."""
        d = self.frame.data
        p = pos + 8  # length, CIE id, then version
        p += 1
        end = d.index(b"\0", p)
        aug = d[p:end].decode("ascii", "replace")
        p = end + 1
        if "eh" in aug:
            p += 8
        _, p = _uleb(d, p)              # code alignment
        while d[p] & 0x80:              # data alignment (sleb)
            p += 1
        p += 1
        p += 1                          # return address register (version 1: a byte)
        if not aug.startswith("z"):
            return 0
        _, p = _uleb(d, p)              # augmentation length
        for c in aug[1:]:
            if c == "R":
                return d[p]
            if c == "P":
                penc = d[p]
                p += 1 + _FORMATS.get(penc & 0x0F, ("", 8))[1]
            elif c == "L":
                p += 1
        return 0


_indexes: dict[tuple, EhFrameIndex] = {}


def _index(path: str) -> EhFrameIndex:
    # Keyed as ElfFile.identity is, from a stat: opening and parsing the headers for
    # every lookup cost more than the lookups (function("*") on libc: thousands).
    st = os.stat(path)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    idx = _indexes.get(key)
    if idx is None:
        idx = _indexes[key] = EhFrameIndex(ElfFile(path))
    return idx


def function_extent(path: str, vaddr: int) -> tuple[int, int] | None:
    """(start, size) of the function holding link-time address vaddr, from its unwind info."""
    return _index(path).extent(vaddr)

