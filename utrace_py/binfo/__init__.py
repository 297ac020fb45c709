"""Binary facts for probe points: function symbols, PLT stubs, build-ids, process modules.

Lazy by design (DESIGN.md §4): opening a file reads its ELF, program and
section headers only; an exact name is found through .gnu.hash when only
.dynsym is present; a wildcard reads the one symbol table it needs in a
single pass, cached by build-id under $XDG_CACHE_HOME/utrace/binfo/.

    elf.py       headers, build-id, debuglink, segments, separate debug file
    symbols.py   Function sites (aliases grouped, IFUNCs flagged), match/lookup/containing
    plt.py       PLT stubs (.plt, .plt.sec, .plt.got) and their GOT slots
    cache.py     the symbol-table (and SDT note) cache
    sdt.py       SDT/USDT markers from .note.stapsdt: sites, semaphores, match by provider/name
    sdt_args.py  marker argument specs (-4@%edi, 8@16(%rbp,%rax,8), ...): parse, evaluate
    procmaps.py  /proc/PID/maps and auxv: modules, load biases, unsupported regions

Addresses are link-time vaddrs; add a module's load bias (procmaps.Module.base)
for the address in a process. Nothing here stops or traces a process.
"""
from __future__ import annotations

from .elf import ElfError, ElfFile, find_debug_file
from .plt import PltEntry, PltTable
from .sdt import Marker, match_markers, read_markers
from .sdt_args import ArgSpec, SdtError
from .symbols import Function, Symbol, SymbolTable, is_pattern, symbol_table

__all__ = ["ArgSpec", "ElfError", "ElfFile", "Function", "Marker", "PltEntry", "PltTable",
           "SdtError", "Symbol", "SymbolTable", "find_debug_file", "find_functions", "is_pattern",
           "match_markers", "plt_entries", "read_markers", "symbol_table"]

_plts: dict[tuple, PltTable] = {}


def find_functions(path: str, pattern: str, use_cache: bool = True) -> list[Function]:
    """Sites matching function("PATTERN") in the ELF file at path, by address.

    Each site lists all its names (aliases at one address are one site), its
    size, whether it is an IFUNC (address is then the resolver's) and the
    file's build-id.
    """
    return symbol_table(path, use_cache).match(pattern)


def plt_entries(path: str, pattern: str = "*") -> list[PltEntry]:
    """PLT stubs matching .plt("PATTERN") in the ELF file at path, by address."""
    table = symbol_table(path)  # shares the open file and its identity check
    key = table.elf.identity + (path,)
    plt = _plts.get(key)
    if plt is None:
        plt = _plts[key] = PltTable(table.elf)
    return plt.match(pattern)
