"""Modules of a live process from /proc/PID/maps and auxv: paths, load biases, code ranges.

Only /proc files are read; the process itself is never stopped or traced.
A module's ELF file is read from its path when the device and inode there
still match the mapping, else through /proc/PID/root (another mount
namespace), else through /proc/PID/map_files (a deleted or replaced file;
opening those needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE).
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

from .elf import ElfError, ElfFile

DELETED = " (deleted)"
AT_PHDR = 3
AT_BASE = 7
AT_ENTRY = 9
AT_SYSINFO_EHDR = 33


@dataclass(frozen=True, slots=True)
class Mapping:
    """One line of /proc/PID/maps."""

    start: int
    end: int
    perms: str
    offset: int
    dev: tuple[int, int]
    inode: int
    path: str  # without " (deleted)"
    deleted: bool

    @property
    def executable(self) -> bool:
        return "x" in self.perms

    @property
    def file_backed(self) -> bool:
        return self.inode != 0 and self.path.startswith("/")

    def __contains__(self, addr: int) -> bool:
        return self.start <= addr < self.end


@dataclass
class Module:
    """Everything mapped from one file (or one special region) in the process."""

    path: str
    kind: str  # "elf", "vdso", "vsyscall", "jit" (anonymous executable), "other"
    mappings: list[Mapping] = field(default_factory=list)
    deleted: bool = False
    base: int | None = None  # load bias: runtime address = base + st_value
    readable_path: str | None = None  # where this process can read the same file
    build_id: str | None = None
    error: str | None = None  # why the file could not be read

    @property
    def exec_ranges(self) -> list[tuple[int, int]]:
        return [(m.start, m.end) for m in self.mappings if m.executable]

    @property
    def start(self) -> int:
        return min(m.start for m in self.mappings)

    @property
    def unsupported(self) -> str | None:
        """Why probes cannot go here (T-34), or None."""
        if self.kind == "vdso":
            return "the [vdso] is kernel-provided code shared by all processes; not probed"
        if self.kind == "vsyscall":
            return "[vsyscall] is an emulated kernel page; not probed"
        if self.kind == "jit":
            return ("anonymous executable memory (JIT or self-modifying code) has no symbols "
                    "and may be rewritten under the probe; not probed")
        if self.error:
            return self.error
        return None

    def contains(self, addr: int) -> bool:
        return any(addr in m for m in self.mappings)


def parse_maps(text: str) -> list[Mapping]:
    """Parse the text of /proc/PID/maps (paths may contain spaces)."""
    out = []
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 5:
            continue
        lo, hi = parts[0].split("-")
        major, minor = parts[3].split(":")
        path = parts[5] if len(parts) > 5 else ""
        deleted = path.endswith(DELETED)
        if deleted:
            path = path[:-len(DELETED)]
        out.append(Mapping(int(lo, 16), int(hi, 16), parts[1], int(parts[2], 16),
                           (int(major, 16), int(minor, 16)), int(parts[4]), path, deleted))
    return out


def read_maps(pid: int) -> list[Mapping]:
    with open(f"/proc/{pid}/maps", "rb") as f:
        return parse_maps(f.read().decode("utf-8", "surrogateescape"))


def read_auxv(pid: int) -> dict[int, int]:
    """The auxiliary vector (AT_* -> value) of a process."""
    with open(f"/proc/{pid}/auxv", "rb") as f:
        raw = f.read()
    out: dict[int, int] = {}
    for key, val in struct.iter_unpack("<QQ", raw[:len(raw) - len(raw) % 16]):
        if key == 0:
            break
        out[key] = val
    return out


def _same_file(path: str, m: Mapping) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_ino == m.inode and (os.major(st.st_dev), os.minor(st.st_dev)) == m.dev


def readable_path(pid: int, m: Mapping) -> str:
    """A path this process can open to read the file behind mapping m (T-33).

    Raises ElfError with the reason when there is none.
    """
    if not m.deleted:
        for cand in (m.path, f"/proc/{pid}/root{m.path}"):
            if _same_file(cand, m):
                return cand
    mf = f"/proc/{pid}/map_files/{m.start:x}-{m.end:x}"
    try:
        with open(mf, "rb"):
            return mf
    except OSError as e:
        detail = e.strerror
    why = ("was deleted or replaced on disk" if m.deleted
           else "on disk is not the mapped one (another mount namespace, or replaced)")
    raise ElfError(f"ERROR: cannot read {m.path} of process {pid}: the file {why}, and "
                   f"{mf} cannot be opened ({detail}; it needs CAP_SYS_ADMIN or "
                   "CAP_CHECKPOINT_RESTORE)")


def modules(pid: int, maps: list[Mapping] | None = None, open_files: bool = True) -> list[Module]:
    """The process's modules in address order; ELF files opened only for their headers."""
    if maps is None:
        maps = read_maps(pid)
    mods: dict[tuple, Module] = {}
    for m in maps:
        if m.file_backed:
            key: tuple = ("file", m.dev, m.inode, m.path)
            mod = mods.get(key)
            if mod is None:
                mod = mods[key] = Module(m.path, "elf", deleted=m.deleted)
        elif m.path in ("[vdso]", "[vsyscall]"):
            key = ("special", m.path)
            mod = mods.setdefault(key, Module(m.path, m.path.strip("[]")))
        elif m.executable:
            # Each anonymous executable region is its own unsupported module.
            key = ("jit", m.start)
            mod = mods[key] = Module(m.path or "[anon]", "jit")
        else:
            continue
        mod.mappings.append(m)
    out = sorted(mods.values(), key=lambda mod: mod.start)
    if open_files:
        for mod in out:
            if mod.kind == "elf":
                _fill_elf(pid, mod)
    return out


def _fill_elf(pid: int, mod: Module) -> None:
    first = min(mod.mappings, key=lambda m: m.start)
    try:
        mod.readable_path = readable_path(pid, first)
        with ElfFile(mod.readable_path) as elf:
            mod.base = elf.bias_for_mapping(first.start, first.offset)
            mod.build_id = elf.build_id
    except ElfError as e:
        if mod.readable_path is not None and "not an ELF" in str(e):
            mod.kind = "other"  # a data file mapped executable, e.g. a locale archive
        else:
            mod.error = str(e)


def module_at(mods: list[Module], addr: int) -> Module | None:
    for mod in mods:
        if mod.contains(addr):
            return mod
    return None


def find_module(mods: list[Module], name: str) -> list[Module]:
    """Modules whose path is `name`, or whose file name is (library("libc.so.6"))."""
    if "/" in name:
        real = os.path.realpath(name)
        return [m for m in mods if m.path in (name, real)]
    return [m for m in mods if os.path.basename(m.path) == name]


def main_executable(pid: int, mods: list[Module]) -> Module | None:
    """The module holding the program's entry point (AT_ENTRY)."""
    try:
        entry = read_auxv(pid).get(AT_ENTRY)
    except OSError:
        return None
    return module_at(mods, entry) if entry else None
