"""Dynamic symbols of a library loaded in a target: which file, which load bias, which address.

The file is read from the path shown in /proc/PID/maps when its device and
inode match the mapping; otherwise through /proc/PID/root (mount namespaces)
and, for a deleted or replaced file, /proc/PID/map_files (needs
CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE, so root only). Lookups use the
.gnu.hash table, so a symbol costs well under a millisecond and the whole
table of a large library is never built.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from elftools.elf.elffile import ELFFile

from .errors import InjectorError
from .procfs import Mapping

_cache: dict[tuple, tuple[int, int] | None] = {}
_phdr_cache: dict[tuple, int] = {}


@dataclass(frozen=True)
class LoadedObject:
    """An ELF file mapped in a target: its mappings and load bias."""

    path: str  # as shown in maps, without " (deleted)"
    mappings: tuple[Mapping, ...]
    elf_path: str  # where we can read the same file
    base: int  # load bias: runtime address = base + st_value

    def text_ranges(self) -> list[tuple[int, int]]:
        """[start, end) of the executable mappings."""
        return [(m.start, m.end) for m in self.mappings if m.executable]


def _file_id(path: str) -> tuple:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def _dev_matches(m: Mapping, path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    major, minor = (int(x, 16) for x in m.dev.split(":"))
    return st.st_ino == m.inode and (os.major(st.st_dev), os.minor(st.st_dev)) == (major, minor)


def _readable_path(pid: int, m: Mapping) -> str:
    candidates = []
    if not m.deleted:
        candidates += [m.file_path, f"/proc/{pid}/root{m.file_path}"]
    for path in candidates:
        if _dev_matches(m, path):
            return path
    mf = f"/proc/{pid}/map_files/{m.start:x}-{m.end:x}"
    try:
        with open(mf, "rb"):
            return mf
    except OSError:
        pass
    why = "deleted" if m.deleted else "not the mapped file (another mount namespace?)"
    raise InjectorError(f"cannot read {m.file_path} of process {pid}: the file on disk is {why},"
                        " and /proc/PID/map_files needs root")


def find_object(pid: int, maps: list[Mapping], pattern: str) -> LoadedObject | None:
    """The first mapped file whose basename matches the regex pattern (re.match)."""
    rx = re.compile(pattern)
    groups: dict[str, list[Mapping]] = {}
    for m in maps:
        if m.inode and m.path.startswith("/") and rx.match(os.path.basename(m.file_path)):
            groups.setdefault(m.file_path, []).append(m)
    for path, ms in groups.items():
        first = min((m for m in ms if m.offset == 0), key=lambda m: m.start, default=None)
        if first is None:
            continue
        elf_path = _readable_path(pid, first)
        base = first.start - _first_load_vaddr(elf_path)
        return LoadedObject(path, tuple(ms), elf_path, base)
    return None


def _first_load_vaddr(path: str) -> int:
    key = _file_id(path)
    if key not in _phdr_cache:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
            first = min(loads, key=lambda s: s["p_vaddr"])
            _phdr_cache[key] = first["p_vaddr"] - first["p_offset"]
    return _phdr_cache[key]


def dynsym(path: str, name: str) -> tuple[int, int] | None:
    """(st_value, st_size) of a defined dynamic symbol of an ELF file, or None."""
    key = (_file_id(path), name)
    if key in _cache:
        return _cache[key]
    found = None
    with open(path, "rb") as f:
        elf = ELFFile(f)
        table = elf.get_section_by_name(".gnu.hash")
        if table is not None:
            sym = table.get_symbol(name)
            syms = [sym] if sym is not None else []
        else:
            table = elf.get_section_by_name(".dynsym")
            syms = table.get_symbol_by_name(name) or [] if table is not None else []
        for sym in syms:
            if sym["st_shndx"] != "SHN_UNDEF" and sym["st_value"]:
                found = (sym["st_value"], sym["st_size"])
                break
    _cache[key] = found
    return found


def resolve(obj: LoadedObject, name: str) -> tuple[int, int] | None:
    """(address in the target, size) of a dynamic symbol of a loaded object."""
    hit = dynsym(obj.elf_path, name)
    return None if hit is None else (obj.base + hit[0], hit[1])


LIBC = r"libc(\.so\.6|-2\.\d+\.so)$"
LIBDL = r"libdl(\.so\.2|-2\.\d+\.so)$"
LDSO = r"ld-linux-x86-64\.so\.2$|ld-2\.\d+\.so$"
