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


# One parsed symbol table per library file and process: building pyelftools'
# section map costs ~10 ms a time, and an attach looks up dozens of names.
_tables: dict[tuple, object] = {}
# Where resolved symbols persist between runs (set by the session; None: memory only).
_persist_dir: str | None = None
_persisted: dict[tuple, dict] = {}


def set_cache_dir(path: str | None) -> None:
    """Keep resolved dynamic symbols in `path` (a private directory) across processes."""
    global _persist_dir
    _persist_dir = path


def _persist_file(fid: tuple) -> str | None:
    if _persist_dir is None:
        return None
    return os.path.join(_persist_dir, "elfsyms-%x-%x-%x-%x.json" % fid)


def _persisted_table(fid: tuple) -> dict:
    if fid not in _persisted:
        table: dict = {}
        path = _persist_file(fid)
        if path is not None:
            try:
                st = os.stat(path)
                if st.st_uid == os.getuid() and not st.st_mode & 0o022:
                    import json
                    with open(path, encoding="utf-8") as f:
                        table = json.load(f)
            except (OSError, ValueError):
                table = {}
        _persisted[fid] = table
    return _persisted[fid]


def _remember(fid: tuple, name: str, found: tuple[int, int] | None) -> None:
    table = _persisted_table(fid)
    table[name] = list(found) if found else None
    path = _persist_file(fid)
    if path is None:
        return
    import json
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            json.dump(table, f)
        os.replace(tmp, path)
    except OSError:
        pass  # only a cache


def _table(path: str, fid: tuple):
    t = _tables.get(fid)
    if t is None:
        f = open(path, "rb")  # kept open: the ELFFile reads lazily from it
        elf = ELFFile(f)
        t = elf.get_section_by_name(".gnu.hash") or elf.get_section_by_name(".dynsym")
        _tables[fid] = t
    return t


def dynsym(path: str, name: str) -> tuple[int, int] | None:
    """(st_value, st_size) of a defined dynamic symbol of an ELF file, or None."""
    fid = _file_id(path)
    key = (fid, name)
    if key in _cache:
        return _cache[key]
    known = _persisted_table(fid)
    if name in known:
        found = tuple(known[name]) if known[name] else None
        _cache[key] = found
        return found
    found = None
    table = _table(path, fid)
    if table is not None:
        if table.name == ".gnu.hash":
            sym = table.get_symbol(name)
            syms = [sym] if sym is not None else []
        else:
            syms = table.get_symbol_by_name(name) or []
        for sym in syms:
            if sym["st_shndx"] != "SHN_UNDEF" and sym["st_value"]:
                found = (sym["st_value"], sym["st_size"])
                break
    _cache[key] = found
    _remember(fid, name, found)
    return found


def resolve(obj: LoadedObject, name: str) -> tuple[int, int] | None:
    """(address in the target, size) of a dynamic symbol of a loaded object."""
    hit = dynsym(obj.elf_path, name)
    return None if hit is None else (obj.base + hit[0], hit[1])


LIBC = r"libc(\.so\.6|-2\.\d+\.so)$"
LIBDL = r"libdl(\.so\.2|-2\.\d+\.so)$"
LDSO = r"ld-linux-x86-64\.so\.2$|ld-2\.\d+\.so$"
