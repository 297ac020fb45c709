"""SDT/USDT markers: the `.note.stapsdt` notes that sys/sdt.h's STAP_PROBEn/DTRACE_PROBEn leave.

Each marker is a `nop` in the code and one note (type 3, owner "stapsdt"):

    desc = pc, base, semaphore      (ELF class-sized addresses)
           provider\\0 name\\0 args\\0   (args: "-4@%edi 8@-24(%rbp) ...")

`base` is the link-time address of `_.stapsdt.base` as the assembler saw it.
When a tool like prelink has moved the file since, the `.stapsdt.base`
section's actual address differs, and pc and semaphore move by the same
amount (SystemTap's sdt_query::setup_note_probe_entry, bcc and libbpf alike).
The semaphore is an `unsigned short` in the `.probes` section that the
program tests (`PROVIDER_NAME_ENABLED()`); a tracer increments it while the
marker is enabled. Its file offset is given too (the kernel's uprobe
ref_ctr_offset and stapdyn both want the offset, not the vaddr).

Lazy: one pread of the note section (and of the symbol tables only when an
argument names a symbol, e.g. postgres's `-4@NBuffers(%rip)`); the parsed rows
are cached by build-id (cache.py). The very old `.probes`-only format
(sdt.h v1/v2, before 2010) is not read.
"""
from __future__ import annotations

import ctypes
import fnmatch
import os
import struct
from dataclasses import dataclass, field

from .elf import SHT_DYNSYM, SHT_SYMTAB, ElfError, ElfFile
from .sdt_args import ArgSpec, SdtError, parse_args, split_args, symbols_needed

NOTE_SECTION = ".note.stapsdt"
BASE_SECTION = ".stapsdt.base"
SEMAPHORE_SECTION = ".probes"
NT_STAPSDT = 3
EM_X86_64 = 62
STT_SECTION, STT_FILE, STT_TLS = 3, 4, 6
CACHE_KIND = "stapsdt1"  # bump with the row layout of _parse_rows

__all__ = ["Marker", "SdtError", "match_markers", "read_markers", "mark_name_pattern",
           "name_matches"]


@dataclass(frozen=True)
class Marker:
    """One SDT marker site. pc and semaphore are link-time vaddrs (add the load bias)."""

    provider: str
    name: str
    pc: int                        # the nop's address, .stapsdt.base-adjusted
    semaphore: int                 # the semaphore's address, or 0 when it has none
    arg_text: str                  # the note's argument string, as written
    semaphore_offset: int | None = None  # file offset of the semaphore (None: none/unbacked)
    path: str = ""
    parsed: tuple[ArgSpec, ...] | None = field(default=None, repr=False)
    error: str | None = field(default=None, repr=False)  # why the arguments do not parse

    @property
    def args(self) -> list[ArgSpec]:
        """The argument specs; raises SdtError naming this marker when one is malformed."""
        if self.parsed is None:
            raise SdtError(self.error or f"ERROR: marker {self.label}: arguments not parsed")
        return list(self.parsed)

    @property
    def nargs(self) -> int:
        """The number of arguments (also for a malformed argument string)."""
        return len(split_args(self.arg_text))

    @property
    def label(self) -> str:
        return f"{self.provider}:{self.name}@{self.pc:#x}"

    @property
    def has_semaphore(self) -> bool:
        return self.semaphore != 0


def mark_name_pattern(pattern: str) -> str:
    """mark("query-start") means the note name query__start (SystemTap PR10245).

    Every "-" becomes "__", even inside a bracket expression ("[a-m]*" means
    "[a__m]*"), and the provider is not rewritten: both as SystemTap does.
    """
    return pattern.replace("-", "__")


def _libc_fnmatch():
    try:
        libc = ctypes.CDLL(None, use_errno=False)
        fn = libc.fnmatch
        fn.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int)
        fn.restype = ctypes.c_int
        return fn
    except (OSError, AttributeError):  # pragma: no cover - every glibc/musl has it
        return None


_fnmatch = _libc_fnmatch()


def name_matches(name: str, pattern: str) -> bool:
    """fnmatch(pattern, name, 0), as SystemTap's dwflpp::function_name_matches_pattern.

    libc's own fnmatch, so `[!...]`, `[^...]`, `[[:alpha:]]` and backslash escapes
    mean exactly what they mean to stap; Python's fnmatchcase only without libc.
    """
    if _fnmatch is not None:
        return _fnmatch(pattern.encode("utf-8", "surrogateescape"),
                        name.encode("utf-8", "surrogateescape"), 0) == 0
    return fnmatch.fnmatchcase(name, pattern)  # pragma: no cover


def match_markers(path: str, provider_pattern: str | None, name_pattern: str,
                  use_cache: bool = True) -> list[Marker]:
    """Markers of the file matching process("path").provider("P").mark("N"), in note order.

    provider_pattern None (or "") matches every provider, like a mark probe
    without .provider(). The same provider:name may have several sites.
    """
    pat = mark_name_pattern(name_pattern)
    return [m for m in read_markers(path, use_cache)
            if name_matches(m.name, pat)
            and (not provider_pattern or name_matches(m.provider, provider_pattern))]


# -- reading ------------------------------------------------------------------------------

_memo: dict[tuple, list[Marker]] = {}


def read_markers(path: str, use_cache: bool = True) -> list[Marker]:
    """Every SDT marker of the ELF file at path, in note order ([] when it has none)."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise ElfError(f"ERROR: cannot open {path}: {e.strerror}") from None
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, path)
    hit = _memo.get(key)
    if hit is not None:
        return list(hit)
    with ElfFile(path) as elf:
        markers = _read(elf, use_cache)
    if len(_memo) >= 64:
        _memo.pop(next(iter(_memo)))
    _memo[key] = markers
    return list(markers)


def _read(elf: ElfFile, use_cache: bool) -> list[Marker]:
    if elf.section(NOTE_SECTION) is None:
        return []
    rows = None
    if use_cache:
        from . import cache
        rows = cache.load_rows(elf, CACHE_KIND)
    if rows is None:
        rows = _parse_rows(elf)
        if use_cache:
            from . import cache
            cache.store_rows(elf, CACHE_KIND, rows)
    return [_marker(elf, row) for row in rows]


def _marker(elf: ElfFile, row: tuple) -> Marker:
    provider, name, pc, sem, sem_off, text, syms = row
    where = f"marker {provider}:{name} at {pc:#x} in {elf.path}"
    parsed, error = None, None
    if elf.machine != EM_X86_64:
        error = f"ERROR: {where}: argument specs are only understood for x86-64"
    else:
        try:
            parsed = parse_args(text, pc=pc, where=where, symbols=dict(syms))
        except SdtError as e:
            error = str(e)
    return Marker(provider, name, pc, sem, text, None if sem_off < 0 else sem_off, elf.path,
                  parsed, error)


def _parse_rows(elf: ElfFile) -> list[tuple]:
    """(provider, name, pc, semaphore, semaphore offset or -1, args, ((sym, addr|None), ...)).

    Seven plain values per row: the width cache.load_rows accepts.
    """
    notes = _notes(elf)
    base_sec = elf.section(BASE_SECTION)
    actual_base = base_sec.addr if base_sec is not None else 0
    wanted: set[str] = set()
    for n in notes:
        wanted |= symbols_needed(n[5])
    resolved = lookup_data_symbols(elf, wanted) if wanted else {}
    rows = []
    for provider, name, pc, base_ref, sem, text in notes:
        if actual_base and base_ref:  # prelinked since assembly: move with the section
            delta = actual_base - base_ref
            pc = (pc + delta) & _mask(elf)
            if sem:
                sem = (sem + delta) & _mask(elf)
        sem_off = elf.vaddr_to_offset(sem) if sem else None
        syms = tuple((s, resolved.get(s)) for s in sorted(symbols_needed(text)))
        rows.append((provider, name, pc, sem, -1 if sem_off is None else sem_off, text, syms))
    return rows


def _mask(elf: ElfFile) -> int:
    return (1 << 64) - 1 if elf.is64 else (1 << 32) - 1


def _notes(elf: ElfFile) -> list[tuple[str, str, int, int, int, str]]:
    """(provider, name, pc, base, semaphore, args) of each well-formed stapsdt note."""
    sec = elf.section(NOTE_SECTION)
    data = elf.section_data(sec)
    e = elf.endian
    asz = 8 if elf.is64 else 4
    addrs = e + ("QQQ" if elf.is64 else "III")
    out = []
    pos = 0
    while pos + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from(e + "III", data, pos)
        name_at = pos + 12
        desc_at = name_at + ((namesz + 3) & ~3)
        nxt = desc_at + ((descsz + 3) & ~3)
        if nxt > len(data):
            raise ElfError(f"ERROR: {elf.path}: truncated note in {NOTE_SECTION}")
        if ntype == NT_STAPSDT and data[name_at:name_at + namesz] == b"stapsdt\0" \
                and descsz >= 3 * asz + 3:
            desc = data[desc_at:desc_at + descsz]
            pc, base, sem = struct.unpack_from(addrs, desc, 0)
            strings = desc[3 * asz:].split(b"\0")
            # provider, name, args, then the terminating empty string (as SystemTap checks)
            if len(strings) >= 3 and desc.endswith(b"\0"):
                provider, name, args = (s.decode("utf-8", "surrogateescape")
                                        for s in strings[:3])
                out.append((provider, name, pc, base, sem, args))
        pos = nxt
    return out


def lookup_data_symbols(elf: ElfFile, names: set[str]) -> dict[str, int | None]:
    """Link-time addresses of named objects from .symtab, then .dynsym.

    Only the entries whose st_name points at the name are decoded (found with
    bytes.find over the raw table). A global definition wins over locals, as in
    SystemTap; several different local ones, or a TLS symbol (its value is an
    offset in the TLS block), leave the name unresolved (None).
    """
    out: dict[str, int | None] = {n: None for n in names}
    todo = set(names)
    for secname, stype in ((".symtab", SHT_SYMTAB), (".dynsym", SHT_DYNSYM)):
        sec = elf.section(secname)
        if not todo or sec is None or sec.type != stype:
            continue
        strsec = elf.section_at(sec.link)
        if strsec is None:
            continue
        data = elf.section_data(sec)
        strtab = elf.section_data(strsec)
        for n in sorted(todo):
            addr = _find_symbol(elf, data, strtab, n)
            if addr is not None:
                out[n] = addr
                todo.discard(n)
    return out


def _find_symbol(elf: ElfFile, data: bytes, strtab: bytes, name: str) -> int | None:
    e = elf.endian
    entsize = 24 if elf.is64 else 16
    fmt = e + ("IBBHQQ" if elf.is64 else "IIIBBH")
    key = name.encode("utf-8", "surrogateescape") + b"\0"
    offsets = []
    p = strtab.find(key)
    while p >= 0:  # the name itself, or the tail of a longer string (suffix sharing)
        offsets.append(p)
        p = strtab.find(key, p + 1)
    glob, local = set(), set()
    for off in offsets:
        needle = struct.pack(e + "I", off)
        p = data.find(needle)
        while p >= 0:
            if p % entsize == 0 and p + entsize <= len(data):
                f = struct.unpack_from(fmt, data, p)
                if elf.is64:
                    _nm, info, _other, shndx, value, _size = f
                else:
                    _nm, value, _size, info, _other, shndx = f
                typ, bind = info & 0xF, info >> 4
                if shndx != 0 and typ not in (STT_SECTION, STT_FILE, STT_TLS):
                    (local if bind == 0 else glob).add(value)
            p = data.find(needle, p + 1)
    for group in (glob, local):
        if len(group) == 1:
            return next(iter(group))
        if group:
            return None  # ambiguous: never read the wrong object silently
    return None
