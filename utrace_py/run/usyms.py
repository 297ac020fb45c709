"""Symbol text for addresses of traced processes: expands the tokens usyms.c writes.

Handlers run in the target and know no symbols; what they print for
print_ubacktrace(), usymname()... is a token (ESC-GS kind pid ':' hex
addresses ESC-RS) that the tracer replaces while draining the output, in
SystemTap's formats. Modules come from /proc/PID/maps, read lazily and again
when an address falls outside every known module; symbol tables are read
once per file and cached by build-id (binfo/symbols.py), so no -d/--ldd is
needed.
"""
from __future__ import annotations

import os
import re
import struct
import time
from typing import Callable, NamedTuple

from ..binfo.demangle import demangle
from ..binfo.elf import ElfError
from ..binfo.procmaps import Module, modules
from ..binfo.symbols import symbol_table

TOKEN = re.compile(rb"\x1d([A-Z])(-?\d+):([^\x1d\x1e]*)\x1e")


class Sym(NamedTuple):
    """Where an address is: function name (None if unknown), offset in it, its size, module."""

    name: str | None
    offset: int
    size: int
    module: str | None
    module_offset: int


class Symbolizer:
    """Per-process module lists and the lookups and formats built on them."""

    def __init__(self) -> None:
        self._mods: dict[int, list[Module]] = {}
        self.default_pid: int | None = None
        self.fold: Callable[[str, int], None] | None = None  # --folded/--flamegraph sink
        self.pending = b""
        self._published: tuple | None = None  # the module set last published in the region
        self._seen: dict[tuple[int, int, bool], Sym] = {}  # lookups while modules are unchanged
        self._texts: dict[bytes, bytes] = {}  # token -> its text, same lifetime
        self._checked = 0.0

    # -- modules -------------------------------------------------------------
    def note_pid(self, pid: int) -> None:
        """Read pid's modules now (while it lives: end probes may print its stacks later)."""
        try:
            new = [m for m in modules(pid) if m.kind == "elf" and m.base is not None]
        except OSError:
            return
        # A library unloaded since keeps its place where nothing new overlaps it: stacks
        # taken while it was there may still be printed (end probes, aggregates).
        gone = [m for m in self._mods.get(pid, ())
                if not any(o.contains(mp.start) or m.contains(op.start)
                           for o in new for mp in m.mappings for op in o.mappings)]
        self._mods[pid] = new + gone
        self._seen.clear()  # an address may now be in a library it was not in
        self._texts.clear()
        if self.default_pid is None:
            self.default_pid = pid

    def _module(self, pid: int, addr: int) -> Module | None:
        pids = [pid] if pid > 0 else [p for p in (self.default_pid, *self._mods) if p]
        if pid > 0 and pid not in self._mods and not os.path.exists(f"/proc/{pid}/maps") \
                and self.default_pid is not None:
            pids.append(self.default_pid)  # a forked child gone since: its parent's layout
        for p in pids:
            for m in self._mods.get(p, ()):
                if m.contains(addr):
                    return m
        for p in pids:  # a library loaded since: read the maps again while the process lives
            if os.path.exists(f"/proc/{p}/maps"):
                self.note_pid(p)
                for m in self._mods.get(p, ()):
                    if m.contains(addr):
                        return m
        return None

    def lookup(self, pid: int, addr: int, ret: bool = False) -> Sym:
        """The symbol holding addr; ret: addr is a return address (look up addr - 1)."""
        key = (pid, addr, ret)
        s = self._seen.get(key)
        if s is None:
            if len(self._seen) > 1 << 16:
                self._seen.clear()
            s = self._seen[key] = self._lookup(pid, addr, ret)
        return s

    def _lookup(self, pid: int, addr: int, ret: bool) -> Sym:
        mod = self._module(pid, addr - 1 if ret else addr)
        if mod is None:
            return Sym(None, 0, 0, None, 0)
        base = mod.base or 0
        fn = None
        try:
            fn = symbol_table(mod.readable_path or mod.path).containing(
                addr - base - (1 if ret else 0))
        except (ElfError, OSError):
            pass
        if fn is None:
            return Sym(None, 0, 0, mod.path, addr - base)
        raw = fn.names[0]
        return Sym(demangle(raw) or raw, addr - base - fn.address, fn.size, mod.path,
                   addr - base)

    # -- formats (SystemTap's runtime/sym.c flags) -------------------------------
    def full(self, pid: int, addr: int, ret: bool) -> str:
        s = self.lookup(pid, addr, ret)
        if s.name is None:
            where = f" [{s.module}+{s.module_offset:#x}]" if s.module else ""
            return f" 0x{addr:016x}{where}\n"
        return f" 0x{addr:016x} : {s.name}+{s.offset:#x}/{s.size:#x} [{s.module}]\n"

    def brief(self, pid: int, addr: int, ret: bool) -> str:
        s = self.lookup(pid, addr, ret)
        return f"{s.name}+{s.offset:#x}\n" if s.name else f"0x{addr:016x}\n"

    def simple(self, pid: int, addr: int, ret: bool) -> str:
        s = self.lookup(pid, addr, ret)
        if s.name is None:
            return f"0x{addr:x}\n"
        return f"{s.name}+{s.offset:#x} [{os.path.basename(s.module or '')}]\n"

    def data(self, pid: int, addr: int, ret: bool = False) -> str:
        s = self.lookup(pid, addr, ret)
        if s.name is None:
            return f"0x{addr:x}" + (f" [{s.module}+{s.module_offset:#x}]" if s.module else "")
        return f"{s.name}+{s.offset:#x}/{s.size:#x} [{s.module}]"

    def frame_name(self, pid: int, addr: int, ret: bool) -> str:
        """A folded-stack frame: the function, else [module], else the address."""
        s = self.lookup(pid, addr, ret)
        if s.name:
            return s.name
        return f"[{os.path.basename(s.module)}]" if s.module else f"0x{addr:x}"

    def folded(self, pid: int, addrs: list[int]) -> str:
        return ";".join(self.frame_name(pid, a, i > 0) for i, a in reversed(list(enumerate(addrs))))

    # -- the table published for in-target lookups (native/src/usymtab.c) ------
    def table_bytes(self, pid: int, limit: int) -> bytes:
        """pid, counts, module ranges, symbols sorted by runtime address, names: as much
        as fits in limit bytes (modules left out are answered by tokens)."""
        mods, syms, names = [], [], bytearray()
        head = 16
        used = head
        strings: dict[str, int] = {}

        def name_ref(text: str) -> int:
            ref = strings.get(text)
            if ref is None:
                ref = strings[text] = len(names)
                names.extend(text.encode("utf-8", "replace") + b"\0")
            return ref

        for m in self._mods.get(pid, ()):
            try:
                fns = symbol_table(m.readable_path or m.path).functions()
            except (ElfError, OSError):
                fns = []
            cost = 24 * len(m.mappings) + 16 * len(fns) + sum(len(f.names[0]) + 1 for f in fns)
            if used + cost + len(m.path) + 1 > limit:
                continue
            used += cost + len(m.path) + 1
            mref = name_ref(m.path)
            mods.extend((mp.start, mp.end, mref) for mp in m.mappings)
            base = m.base or 0
            for f in fns:
                raw = f.names[0]
                syms.append((base + f.address, min(f.size, 0xffffffff),
                             name_ref(demangle(raw) or raw)))
        syms.sort()
        strbase = head + 24 * len(mods) + 16 * len(syms)
        out = bytearray(struct.pack("<iII", pid, len(syms), len(mods)))
        for lo, hi, ref in mods:
            out += struct.pack("<QQII", lo, hi, strbase + ref, 0)
        for addr, size, ref in syms:
            out += struct.pack("<QII", addr, size, strbase + ref)
        return bytes(out + names)

    def publish(self, lib, mm, force: bool = False) -> None:
        """Write the target's symbols into the region when the script uses them in the
        target; again when a lookup there missed and the process's modules changed."""
        want = int(lib.utr_usymtab_wanted())
        pid = self.default_pid
        if not want or pid is None:
            return
        if not force:
            if not want & 2 or time.monotonic() - self._checked < 0.2:
                return
            self._checked = time.monotonic()
            if not os.path.exists(f"/proc/{pid}/maps"):
                return
            self.note_pid(pid)
        key = tuple((m.path, m.start) for m in self._mods.get(pid, ()))
        if key == self._published and not force:
            return
        data = self.table_bytes(pid, int(lib.utr_usymtab_bytes()) - 4)
        off = int(lib.utr_usymtab_begin())
        if not off:
            return
        mm[off + 4:off + 4 + len(data)] = data
        lib.utr_usymtab_commit()
        self._published = key

    # -- tokens ----------------------------------------------------------------
    def _expand_one(self, m: re.Match) -> bytes:
        tok = m.group(0)
        text = self._texts.get(tok)
        if text is None:
            if len(self._texts) > 1 << 14:
                self._texts.clear()
            text = self._expand_new(m)
            if m.group(1) != b"K":  # a fold has an effect each time
                self._texts[tok] = text
        return text

    def _expand_new(self, m: re.Match) -> bytes:
        kind = m.group(1)
        pid = int(m.group(2))
        payload = m.group(3).decode("ascii", "replace")
        count = None
        if kind == b"K":
            payload, _, c = payload.rpartition("/")
            count = int(c or 0)
        words = payload.split()
        addrs = []
        for w in words:
            try:
                addrs.append(int(w, 16))
            except ValueError:
                addrs.append(0)
        if kind in (b"F", b"B", b"S"):
            fmt = {b"F": self.full, b"B": self.brief, b"S": self.simple}[kind]
            text = "".join(fmt(pid, a, i > 0) for i, a in enumerate(addrs))
            if kind == b"S":  # a string: stap copies all but the last newline
                text = text.removesuffix("\n")
            return text.encode()
        if kind == b"Y":
            return "".join(f" {w} : {self.data(pid, a, i > 0)}\n"
                           for i, (w, a) in enumerate(zip(words, addrs))).encode()
        if kind in (b"L", b"K"):
            line = self.folded(pid, addrs)
            if kind == b"L":
                return line.encode()
            if self.fold is not None:
                self.fold(line, count or 0)
                return b""
            return f"{line} {count}\n".encode()
        a = addrs[0] if addrs else 0
        if kind == b"N":
            s = self.lookup(pid, a)
            return (s.name or f"0x{a:x}").encode()
        if kind == b"D":
            return self.data(pid, a).encode()
        if kind == b"M":
            return (self.lookup(pid, a).module or "<unknown>").encode()
        return m.group(0)

    def expand(self, data: bytes, final: bool = False) -> bytes:
        """data with every complete token replaced; an incomplete one at the end waits for
        the rest (a record split in pieces) unless final."""
        if self.pending:
            data, self.pending = self.pending + data, b""
        if b"\x1d" not in data:
            return data
        cut = data.rfind(b"\x1d")
        if not final and data.find(b"\x1e", cut) < 0 and len(data) - cut < 1024:
            data, self.pending = data[:cut], data[cut:]
        out = TOKEN.sub(self._expand_one, data)
        if b"\x1d" in out:  # a token cut short by MAXSTRINGLEN: show what it held
            out = re.sub(rb"\x1d[A-Z]-?\d+:", b"", out).replace(b"\x1e", b"")
        return out
