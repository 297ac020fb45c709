"""Function symbols of an ELF file: wildcard match, exact lookup by hash, address to function.

The table is .symtab, or .dynsym when the file is stripped. Exact lookups in
a .dynsym-only file go through .gnu.hash (or SysV .hash) and touch a handful
of entries; a wildcard or an address lookup needs the whole table, read in one
struct pass over the raw section (pyelftools' per-symbol objects are ~20 times
slower: 70 ms against 3 ms for libc) and cached by build-id (cache.py).
"""
from __future__ import annotations

import bisect
import fnmatch
import gc
import os
import re
import struct
from contextlib import contextmanager
from typing import Iterator, NamedTuple

from .elf import SHT_GNU_VERDEF, SHT_GNU_VERSYM, SHT_SYMTAB, ElfError, ElfFile

STT_FUNC = 2
STT_GNU_IFUNC = 10
BIND_NAMES = {0: "LOCAL", 1: "GLOBAL", 2: "WEAK", 10: "GNU_UNIQUE"}
_BIND_RANK = {"GLOBAL": 0, "GNU_UNIQUE": 1, "WEAK": 1, "LOCAL": 2}
VERSYM_HIDDEN = 0x8000
_WILD = re.compile(r"[*?\[]")
# Row layout shared with cache.py: (name, value, size, st_info, st_shndx, version, default).
ROW_FORMAT = 1


class Symbol(NamedTuple):
    """One function symbol as the table has it."""

    name: str
    value: int
    size: int
    bind: str
    type: str  # "FUNC" or "IFUNC" (STT_GNU_IFUNC)
    shndx: int
    section: str
    version: str | None = None
    default_version: bool = True  # False for a hidden version (name@VER, not name@@VER)

    @property
    def versioned_name(self) -> str:
        if self.version is None:
            return self.name
        return f"{self.name}{'@@' if self.default_version else '@'}{self.version}"


class Function(NamedTuple):
    """One probe site: every function symbol at one address (aliases) of one kind.

    For an IFUNC the address is the resolver's; the implementation selected at
    run time can only be found in the live process (resolver is set to flag it).
    """

    address: int  # st_value: link-time vaddr, add the load bias for a runtime address
    size: int
    names: tuple[str, ...]  # all aliases, preferred first
    symbols: tuple[Symbol, ...]
    ifunc: bool
    section: str
    path: str
    build_id: str | None
    matched: tuple[str, ...] = ()  # the names a query matched, when from a query

    @property
    def name(self) -> str:
        return self.matched[0] if self.matched else self.names[0]

    @property
    def resolver(self) -> int | None:
        """Address of the IFUNC resolver, or None for an ordinary function."""
        return self.address if self.ifunc else None

    @property
    def local(self) -> bool:
        return all(s.bind == "LOCAL" for s in self.symbols)

    def contains(self, vaddr: int) -> bool:
        return self.address <= vaddr < self.address + max(self.size, 1)


def is_pattern(text: str) -> bool:
    """Whether a function("...") argument has fnmatch wildcards."""
    return bool(_WILD.search(text))


def gnu_hash(name: bytes) -> int:
    h = 5381
    for c in name:
        h = (h * 33 + c) & 0xFFFFFFFF
    return h


def sysv_hash(name: bytes) -> int:
    h = 0
    for c in name:
        h = ((h << 4) + c) & 0xFFFFFFFF
        g = h & 0xF0000000
        if g:
            h ^= g >> 24
        h &= ~g
    return h


_COLD = re.compile(r"\.cold(\.\d+)?$|\[clone \.cold")


def _with_matched(fn: Function, matched: tuple[str, ...]) -> Function:
    # Not fn._replace(): that is 4x slower, and function("*") makes one per site.
    return tuple.__new__(Function, (*fn[:-1], matched))


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic GC while building many small tuples that hold no cycles.

    Each young-generation collection rescans the growing table: about a quarter of
    the time of function("*") on a 80,000-symbol binary.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _name_key(s: Symbol) -> tuple:
    # Prefer the default version, global names, and the fewest leading underscores:
    # malloc before __libc_malloc.
    return (not s.default_version, _BIND_RANK.get(s.bind, 3),
            len(s.name) - len(s.name.lstrip("_")), len(s.name), s.name)


class SymbolTable:
    """The function symbols of one ELF file, read lazily."""

    def __init__(self, elf: ElfFile, use_cache: bool = True) -> None:
        self.elf = elf
        self.use_cache = use_cache
        sec = elf.section(".symtab")
        if sec is None or sec.type != SHT_SYMTAB:
            sec = elf.section(".dynsym")
        self.symsec = sec
        self.source = sec.name if sec is not None else ""
        self.from_cache = False
        self._data: bytes | None = None
        self._strtab: bytes | None = None
        self._versions: tuple[bytes, dict[int, str]] | None = None
        self._rows: list[tuple] | None = None
        self._by_name: dict[str, list[int]] | None = None
        self._members: dict[tuple[int, bool], list[int]] | None = None
        self._groups: dict[tuple[int, bool], Function] = {}
        self._starts: list[tuple[int, bool]] | None = None
        self._secnames: dict[int, str] = {}
        is64 = elf.is64
        self._entsize = 24 if is64 else 16
        self._fmt = elf.endian + ("IBBHQQ" if is64 else "IIIBBH")

    # -- raw table ----------------------------------------------------------------------------

    def _raw(self) -> tuple[bytes, bytes]:
        if self._data is None:
            if self.symsec is None:
                self._data, self._strtab = b"", b""
            else:
                self._data = self.elf.section_data(self.symsec)
                strsec = self.elf.section_at(self.symsec.link)
                self._strtab = self.elf.section_data(strsec) if strsec else b""
        return self._data, self._strtab  # type: ignore[return-value]

    def _version_info(self) -> tuple[bytes, dict[int, str]]:
        """(.gnu.version bytes, version index -> name from .gnu.version_d); dynsym only."""
        if self._versions is None:
            versym, names = b"", {}
            if self.source == ".dynsym":
                vs = next((s for s in self.elf.sections if s.type == SHT_GNU_VERSYM), None)
                vd = next((s for s in self.elf.sections if s.type == SHT_GNU_VERDEF), None)
                if vs is not None:
                    versym = self.elf.section_data(vs)
                if vd is not None:
                    names = self._parse_verdef(vd)
            self._versions = (versym, names)
        return self._versions

    def _parse_verdef(self, vd) -> dict[int, str]:
        data = self.elf.section_data(vd)
        strsec = self.elf.section_at(vd.link)
        strs = self.elf.section_data(strsec) if strsec else b""
        e = self.elf.endian
        out, pos = {}, 0
        for _ in range(vd.info or 1000):
            if pos + 20 > len(data):
                break
            _ver, _flags, ndx, cnt, _hash, aux, nxt = struct.unpack_from(e + "HHHHIII", data, pos)
            if cnt and pos + aux + 8 <= len(data):
                nm = struct.unpack_from(e + "I", data, pos + aux)[0]
                out[ndx] = strs[nm:strs.find(b"\0", nm)].decode("utf-8", "surrogateescape")
            if not nxt:
                break
            pos += nxt
        return out

    def _secname(self, shndx: int) -> str:
        name = self._secnames.get(shndx)
        if name is None:
            sec = self.elf.section_at(shndx) if shndx < 0xFF00 else None
            name = self._secnames[shndx] = sec.name if sec else ""
        return name

    def _row_at(self, index: int) -> tuple | None:
        """The row for symbol `index` if it is a defined function, else None."""
        data, strtab = self._raw()
        fields = struct.unpack_from(self._fmt, data, index * self._entsize)
        return self._make_row(index, fields, strtab)

    def _make_row(self, index: int, fields: tuple, strtab: bytes) -> tuple | None:
        if self.elf.is64:
            nm, info, _other, shndx, value, size = fields
        else:
            nm, value, size, info, _other, shndx = fields
        t = info & 0xF
        if (t != STT_FUNC and t != STT_GNU_IFUNC) or shndx == 0:
            return None
        name = strtab[nm:strtab.find(b"\0", nm)].decode("utf-8", "surrogateescape")
        version, default = None, True
        if self.source == ".dynsym":
            versym, vnames = self._version_info()
            if len(versym) >= 2 * index + 2:
                v = struct.unpack_from(self.elf.endian + "H", versym, 2 * index)[0]
                version = vnames.get(v & 0x7FFF) if (v & 0x7FFF) > 1 else None
                default = not v & VERSYM_HIDDEN
        elif "@" in name:  # .symtab spells versions into the name: memcpy@GLIBC_2.2.5
            name, _, rest = name.partition("@")
            default = rest.startswith("@")
            version = rest.lstrip("@")
        return (name, value, size, info, shndx, version, default)

    def _symbol(self, row: tuple) -> Symbol:
        name, value, size, info, shndx, version, default = row
        return Symbol(name, value, size, BIND_NAMES.get(info >> 4, str(info >> 4)),
                      "IFUNC" if info & 0xF == STT_GNU_IFUNC else "FUNC", shndx,
                      self._secname(shndx), version, default)

    # -- the whole table, once ----------------------------------------------------------------

    def _parse_rows(self) -> list[tuple]:
        data, strtab = self._raw()
        if len(data) % self._entsize:
            raise ElfError(f"ERROR: {self.elf.path}: {self.source} size is not a whole number "
                           "of entries")
        with _no_gc():
            return self._scan(data, strtab)

    def _scan(self, data: bytes, strtab: bytes) -> list[tuple]:
        make = self._make_row
        rows = []
        for i, fields in enumerate(struct.iter_unpack(self._fmt, data)):
            info = fields[1] if self.elf.is64 else fields[3]
            t = info & 0xF
            if t == STT_FUNC or t == STT_GNU_IFUNC:  # filter before decoding any name
                row = make(i, fields, strtab)
                if row is not None:
                    rows.append(row)
        return rows

    def rows(self) -> list[tuple]:
        """Every defined function symbol as a plain tuple (the cached form)."""
        if self._rows is None:
            rows = None
            if self.use_cache:
                from . import cache
                rows = cache.load_rows(self.elf, self.source)
                self.from_cache = rows is not None
            if rows is None:
                rows = self._parse_rows()
                if self.use_cache:
                    from . import cache
                    cache.store_rows(self.elf, self.source, rows)
            self._rows = rows
        return self._rows

    def _index(self) -> None:
        # Only plain dicts of row numbers here; Function objects are made when asked
        # for, since building 2,000 of them costs more than reading the table.
        if self._members is not None:
            return
        rows = self.rows()
        by_name: dict[str, list[int]] = {}
        members: dict[tuple[int, bool], list[int]] = {}
        with _no_gc():
            self._fill(rows, by_name, members)
        self._by_name = by_name
        self._members = members
        self._starts = sorted(members)

    @staticmethod
    def _fill(rows: list[tuple], by_name: dict, members: dict) -> None:
        for i, row in enumerate(rows):
            by_name.setdefault(row[0], []).append(i)
            # An IFUNC and its resolver's own FUNC symbol share an address but are
            # different requests (implementation vs resolver): keep them apart.
            members.setdefault((row[1], row[3] & 0xF == STT_GNU_IFUNC), []).append(i)

    def _site(self, key: tuple[int, bool]) -> Function:
        fn = self._groups.get(key)
        if fn is None:
            rows = self.rows()
            idx = self._members[key]  # type: ignore[index]
            if len(idx) == 1:  # most sites have one name: skip the alias sorting
                s = self._symbol(rows[idx[0]])
                fn = Function(s.value, s.size, (s.name,), (s,), s.type == "IFUNC", s.section,
                              self.elf.path, self.elf.build_id)
            else:
                fn = self._group([self._symbol(rows[i]) for i in idx])
            self._groups[key] = fn
        return fn

    def _group(self, syms: list[Symbol]) -> Function:
        syms.sort(key=_name_key)
        names = tuple(dict.fromkeys(s.name for s in syms))
        return Function(syms[0].value, max(s.size for s in syms), names, tuple(syms),
                        syms[0].type == "IFUNC", syms[0].section, self.elf.path,
                        self.elf.build_id)

    # -- queries ------------------------------------------------------------------------------

    def functions(self) -> list[Function]:
        """Every function site, by address."""
        self._index()
        with _no_gc():
            return [self._site(k) for k in self._starts]  # type: ignore[union-attr]

    def lookup(self, name: str) -> list[Function]:
        """Sites with a symbol named exactly `name` (all versions; default version first)."""
        if self._members is None and self.source == ".dynsym":
            hits = self._hash_lookup(name)
            if hits is not None:
                return self._sites_for_rows(hits, name)
        self._index()
        rows = self.rows()
        return self._sites_for_rows([rows[i] for i in self._by_name.get(name, ())], name)

    def match(self, pattern: str) -> list[Function]:
        """Sites with a name matching an fnmatch pattern, as function("PATTERN") does.

        C++ functions match by their demangled name without parameters, qualified
        ("ns::Cls::method") or not ("method"), as SystemTap's DWARF names do.
        """
        found = self._match_plain(pattern)
        if not found:
            found = self._match_cxx(pattern)
        # GCC's hot/cold splitting: "f.cold" is the middle of f, entered by a jump,
        # never a function entry (a return probe there would corrupt the stack).
        return [fn for fn in found if not all(_COLD.search(n) for n in fn.matched or fn.names)]

    def _cxx_names(self) -> dict[str, list[str]]:
        """Demangled name (qualified and last component) -> mangled names; built once."""
        if getattr(self, "_cxx", None) is None:
            from .demangle import basename, function_name
            self._index()
            cxx: dict[str, list[str]] = {}
            for name in self._by_name:  # type: ignore[union-attr]
                if name.startswith("_Z"):
                    q = function_name(name)
                    if q:
                        cxx.setdefault(q, []).append(name)
                        b = basename(q)
                        if b != q:
                            cxx.setdefault(b, []).append(name)
            self._cxx = cxx
        return self._cxx

    def _match_cxx(self, pattern: str) -> list[Function]:
        if pattern.strip("*") == "":
            return []
        cxx = self._cxx_names()
        if not cxx:
            return []
        from .demangle import function_name
        if is_pattern(pattern):
            rx = re.compile(fnmatch.translate(pattern))
            mangled = {m for k, ms in cxx.items() if rx.match(k) for m in ms}
        else:
            mangled = set(cxx.get(pattern, ()))
        out: dict[int, Function] = {}
        for m in sorted(mangled):
            for fn in self.lookup(m):
                if fn.address not in out:
                    out[fn.address] = _with_matched(fn, (function_name(m) or m,))
        return [out[a] for a in sorted(out)]

    def _match_plain(self, pattern: str) -> list[Function]:
        if not is_pattern(pattern):
            return self.lookup(pattern)
        if pattern.strip("*") == "":  # function("*"): every site, no regex or regrouping
            with _no_gc():
                return [_with_matched(fn, fn.names) for fn in self.functions()]
        rx = re.compile(fnmatch.translate(pattern))
        self._index()
        rows = self.rows()
        matched: dict[tuple[int, bool], list[str]] = {}
        for name, idx in self._by_name.items():  # type: ignore[union-attr]
            if rx.match(name):
                for i in idx:
                    r = rows[i]
                    matched.setdefault((r[1], r[3] & 0xF == STT_GNU_IFUNC), []).append(name)
        out = []
        with _no_gc():
            for key in sorted(matched):
                fn = self._site(key)
                names = matched[key]
                if len(names) != len(fn.names):
                    names = [n for n in fn.names if n in names]
                out.append(_with_matched(fn, tuple(names)))
        return out

    def at(self, vaddr: int) -> list[Function]:
        """The sites starting exactly at vaddr (an IFUNC and its resolver can share one)."""
        self._index()
        return [self._site(k) for k in ((vaddr, False), (vaddr, True))
                if k in self._members]  # type: ignore[operator]

    def containing(self, vaddr: int) -> Function | None:
        """The function whose extent [address, address+size) holds vaddr."""
        self._index()
        starts = self._starts
        i = bisect.bisect_right(starts, (vaddr, True))  # type: ignore[arg-type]
        # Zero-size or overlapping symbols can sit between: look back a little.
        for j in range(i - 1, max(i - 9, -1), -1):
            fn = self._site(starts[j])  # type: ignore[index]
            if fn.contains(vaddr):
                return fn
        return None

    def _sites_for_rows(self, rows: list[tuple], name: str) -> list[Function]:
        keys = list(dict.fromkeys((r[1], r[3] & 0xF == STT_GNU_IFUNC) for r in rows))
        out = []
        for key in keys:
            fn = self._site(key) if self._members is not None else self._alias_site(*key)
            if fn is not None:
                out.append(_with_matched(fn, (name,)))
        # The default version first, then by address: memcpy@@GLIBC_2.14 before memcpy@GLIBC_2.2.5.
        out.sort(key=lambda f: (not any(s.name == name and s.default_version for s in f.symbols),
                                f.address))
        return out

    def _alias_site(self, value: int, ifunc: bool) -> Function | None:
        """All function symbols at one address, without a full pass over the table.

        Searches the raw bytes for the st_value (C speed) and decodes only the hits.
        """
        data, _ = self._raw()
        needle = struct.pack(self.elf.endian + ("Q" if self.elf.is64 else "I"), value)
        voff = 8 if self.elf.is64 else 4
        syms, pos = [], data.find(needle)
        while pos >= 0:
            if pos % self._entsize == voff:
                row = self._row_at(pos // self._entsize)
                if row is not None and (row[3] & 0xF == STT_GNU_IFUNC) == ifunc:
                    syms.append(self._symbol(row))
            pos = data.find(needle, pos + 1)
        return self._group(syms) if syms else None

    # -- hash tables --------------------------------------------------------------------------

    def _hash_lookup(self, name: str) -> list[tuple] | None:
        """Rows named `name` found through .gnu.hash or .hash; None when neither exists."""
        key = name.encode("utf-8", "surrogateescape")
        sec = self.elf.section(".gnu.hash")
        if sec is not None and sec.link == self.symsec.index:
            idx = self._gnu_hash_indices(self.elf.section_data(sec), key)
        else:
            sec = self.elf.section(".hash")
            if sec is None or sec.link != self.symsec.index:
                return None
            idx = self._sysv_hash_indices(self.elf.section_data(sec), key)
        rows = []
        for i in idx:
            row = self._row_at(i)
            if row is not None:
                rows.append(row)
        return rows

    def _name_at(self, index: int) -> bytes:
        data, strtab = self._raw()
        nm = struct.unpack_from(self.elf.endian + "I", data, index * self._entsize)[0]
        return strtab[nm:strtab.find(b"\0", nm)]

    def _gnu_hash_indices(self, ht: bytes, key: bytes) -> list[int]:
        e = self.elf.endian
        word = 8 if self.elf.is64 else 4
        nbuckets, symoffset, bloom_size, shift = struct.unpack_from(e + "IIII", ht, 0)
        if not nbuckets:
            return []
        h = gnu_hash(key)
        bits = word * 8
        bloom = struct.unpack_from(e + ("Q" if word == 8 else "I"), ht,
                                   16 + word * ((h // bits) % bloom_size))[0]
        if not (bloom >> (h % bits)) & (bloom >> ((h >> shift) % bits)) & 1:
            return []
        buckets_at = 16 + word * bloom_size
        chain_at = buckets_at + 4 * nbuckets
        i = struct.unpack_from(e + "I", ht, buckets_at + 4 * (h % nbuckets))[0]
        if i < symoffset:
            return []
        out = []
        nsyms = len(self._raw()[0]) // self._entsize
        while i < nsyms:
            h2 = struct.unpack_from(e + "I", ht, chain_at + 4 * (i - symoffset))[0]
            if (h | 1) == (h2 | 1) and self._name_at(i) == key:
                out.append(i)  # keep going: other versions of the name share the chain
            if h2 & 1:
                break
            i += 1
        return out

    def _sysv_hash_indices(self, ht: bytes, key: bytes) -> list[int]:
        e = self.elf.endian
        nbucket, nchain = struct.unpack_from(e + "II", ht, 0)
        if not nbucket:
            return []
        i = struct.unpack_from(e + "I", ht, 8 + 4 * (sysv_hash(key) % nbucket))[0]
        out, seen = [], 0
        while i and i < nchain and seen < nchain:
            if self._name_at(i) == key:
                out.append(i)
            i = struct.unpack_from(e + "I", ht, 8 + 4 * nbucket + 4 * i)[0]
            seen += 1
        return out


# One table per file identity in this process: a session asks many questions of one library.
_tables: dict[tuple, SymbolTable] = {}


def symbol_table(path: str, use_cache: bool = True) -> SymbolTable:
    """The (memoised) symbol table of the ELF file at path."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise ElfError(f"ERROR: cannot open {path}: {e.strerror}") from None
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, path, use_cache)
    table = _tables.get(key)
    if table is None:
        if len(_tables) >= 64:  # each holds an open file: keep the most recent only
            _tables.pop(next(iter(_tables)))
        table = _tables[key] = SymbolTable(ElfFile(path), use_cache)
    return table
