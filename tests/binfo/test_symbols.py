"""binfo symbols, ELF facts and PLT stubs, checked against readelf and objdump."""
from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from tests.binfo.conftest import LIBC, LIBPYTHON, LIB_VARIANTS, VARIANTS, objdump_plt, \
    readelf_functions
from tests.conftest import need
from utrace_py.binfo import ElfFile, SymbolTable, find_debug_file, find_functions, plt_entries
from utrace_py.binfo.symbols import symbol_table


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def ours(table: SymbolTable) -> set[tuple[str, int, int, str]]:
    return {(s.name, s.value, s.size, s.type) for fn in table.functions() for s in fn.symbols}


@pytest.mark.parametrize("variant", sorted(VARIANTS) + sorted(LIB_VARIANTS))
def test_symbols_match_readelf(progs, variant):
    path = progs[variant]
    table = SymbolTable(ElfFile(str(path)))
    stripped = "strip" in variant
    assert table.elf.stripped == stripped
    assert table.source == (".dynsym" if stripped else ".symtab")
    assert ours(table) == readelf_functions(path, table.source)
    # One site per (address, IFUNC or not): aliases are grouped, never listed twice.
    sites = [(fn.address, fn.ifunc) for fn in table.functions()]
    assert len(sites) == len(set(sites))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_fixture_program_facts(progs, variant):
    path = str(progs[variant])
    elf = ElfFile(path)
    pie = "nopie" not in variant
    assert elf.type == ("DYN" if pie else "EXEC")
    assert elf.is_pie == pie
    readelf = subprocess.run(["readelf", "-n", path], capture_output=True, text=True).stdout
    assert f"Build ID: {elf.build_id}" in readelf
    add = find_functions(path, "bi_add")
    assert len(add) == 1
    fn = add[0]
    # Aliases at one address are one site, reported with all names (T-27).
    assert set(fn.names) == {"bi_add", "bi_add_alias", "bi_add_weak"}
    assert fn.names[0] == "bi_add" and fn.matched == ("bi_add",)
    assert not fn.ifunc and fn.size > 0 and fn.build_id == elf.build_id
    assert find_functions(path, "bi_add_alias")[0].address == fn.address
    assert elf.is_executable_vaddr(fn.address)
    assert elf.offset_to_vaddr(elf.vaddr_to_offset(fn.address)) == fn.address
    wild = find_functions(path, "bi_add*")
    assert [w.address for w in wild] == [fn.address]
    assert set(wild[0].matched) == {"bi_add", "bi_add_alias", "bi_add_weak"}
    pick = find_functions(path, "bi_pick")
    assert len(pick) == 1
    if variant == "nopie_O2_strip":
        # A non-PIE program exporting an IFUNC gives it a canonical address: .dynsym then
        # holds a FUNC at the PLT stub (readelf agrees); only .symtab has the IFUNC.
        assert not pick[0].ifunc and pick[0].section.startswith(".plt")
    else:
        assert pick[0].ifunc and pick[0].resolver == pick[0].address
    statics = find_functions(path, "bi_st?tic")
    if "strip" in variant:
        assert statics == []  # static functions are only in .symtab
    else:
        assert len(statics) == 1 and statics[0].local
        # The resolver is a FUNC at the IFUNC's address, kept as its own site.
        res = find_functions(path, "bi_resolve_pick")
        assert len(res) == 1 and not res[0].ifunc and res[0].address == pick[0].address
    table = symbol_table(path)
    inside = table.containing(fn.address + 1)
    assert inside is not None and inside.address == fn.address
    assert find_functions(path, "no_such_function") == []
    assert find_functions(path, "[bq]i_loo[p]")[0].name == "bi_loop"


@pytest.mark.parametrize("variant", ["lib_gnuhash_strip", "lib_sysvhash_strip"])
def test_hash_lookup_equals_full_pass(progs, variant):
    path = str(progs[variant])
    elf = ElfFile(path)
    want_hash = ".gnu.hash" if "gnuhash" in variant else ".hash"
    assert elf.section(want_hash) is not None
    names = ["bil_one", "bil_one_alias", "bil_two", "bil_three", "bil_ifn", "bil_hidden", "nope"]
    hashed = SymbolTable(elf, use_cache=False)
    by_hash = {n: hashed.lookup(n) for n in names}
    assert hashed._members is None, "exact lookups must not read the whole table"
    full = SymbolTable(ElfFile(path), use_cache=False)
    full.functions()
    for n in names:
        assert by_hash[n] == full.lookup(n), n
    assert set(by_hash["bil_one"][0].names) == {"bil_one", "bil_one_alias"}
    assert by_hash["bil_ifn"][0].ifunc
    assert by_hash["bil_hidden"] == [] and by_hash["nope"] == []


@pytest.mark.parametrize("variant", sorted(VARIANTS) + ["lib_cet"])
def test_plt_matches_objdump(progs, variant):
    path = str(progs[variant])
    table = symbol_table(path)
    want = {}
    for name, addr in objdump_plt(path).items():
        if name.startswith("*ABS*+0x"):  # objdump's name for an IRELATIVE slot: the resolver
            sites = [f for f in table.at(int(name[8:], 16)) if f.ifunc]
            name = sites[0].names[0]
        want[name] = addr
    got = {e.name: e.address for e in plt_entries(path)}
    for e in plt_entries(path):
        if e.name not in want and e.reloc == "IRELATIVE":
            # The canonical PLT address of an exported IFUNC (non-PIE): objdump labels it
            # with the .dynsym symbol there instead of name@plt.
            assert e.name in table.at(e.address)[0].names
            want[e.name] = e.address
    assert got == want
    assert "puts" in got or "lib" in variant
    if "cet" in variant:
        assert ElfFile(path).section(".plt.sec") is not None
        assert all(e.section != ".plt" for e in plt_entries(path))
    for e in plt_entries(path, "str*"):
        assert e.name.startswith("str") and e.got > 0


def test_debug_file_lookup(progs, tmp_path):
    need(shutil.which("objcopy") is not None, "objcopy")
    exe = tmp_path / "prog"
    shutil.copy(progs["pie_O0"], exe)
    elf = ElfFile(str(exe))
    bid = elf.build_id
    assert find_debug_file(elf, roots=(str(tmp_path / "dbg"),)) is None
    dbg = tmp_path / "dbg" / ".build-id" / bid[:2] / (bid[2:] + ".debug")
    dbg.parent.mkdir(parents=True)
    subprocess.run(["objcopy", "--only-keep-debug", str(exe), str(dbg)], check=True)
    assert find_debug_file(elf, roots=(str(tmp_path / "dbg"),)) == str(dbg)
    # .gnu_debuglink next to the file, with its CRC checked.
    side = tmp_path / "prog.dbg"
    subprocess.run(["objcopy", "--only-keep-debug", str(exe), str(side)], check=True)
    linked = tmp_path / "linked"
    subprocess.run(["objcopy", "--strip-debug", f"--add-gnu-debuglink={side}", str(exe),
                    str(linked)], check=True)
    lelf = ElfFile(str(linked))
    assert lelf.debuglink[0] == "prog.dbg"
    assert find_debug_file(lelf, roots=(str(tmp_path / "none"),), check_crc=True) == str(side)


def _readelf_sites(path: str) -> tuple[int, set[str]]:
    rows = readelf_functions(path, ".dynsym")
    return len({(v, t == "IFUNC") for _n, v, _s, t in rows}), {n for n, *_ in rows}


@pytest.mark.parametrize("lib", [LIBC, LIBPYTHON])
def test_debian_library(lib, capsys):
    need(os.path.exists(lib), lib)
    elf = ElfFile(lib)
    assert elf.stripped and elf.type == "DYN" and not elf.is_pie and elf.build_id
    t0 = time.perf_counter()
    exact = SymbolTable(elf, use_cache=False).lookup("PyObject_GetAttr" if "python" in lib
                                                     else "malloc")
    t1 = time.perf_counter()
    cold = SymbolTable(ElfFile(lib))
    allf = cold.match("*")
    t2 = time.perf_counter()
    warm = SymbolTable(ElfFile(lib))
    again = warm.match("*")
    t3 = time.perf_counter()
    assert not cold.from_cache and warm.from_cache and again == allf
    count, names = _readelf_sites(lib)
    assert len(allf) == count
    assert {n for f in allf for n in f.names} == names
    assert len(exact) == 1 and exact[0].size > 0
    with capsys.disabled():
        print(f"\n{os.path.basename(lib)}: {len(allf)} sites; exact lookup "
              f"{(t1 - t0) * 1e3:.2f} ms, function(\"*\") cold {(t2 - t1) * 1e3:.1f} ms, "
              f"cached {(t3 - t2) * 1e3:.1f} ms")
    assert t2 - t1 < 5.0  # a sanity bound only; the goal (well under 1 s) is printed


def test_libc_malloc_and_memcpy():
    need(os.path.exists(LIBC), LIBC)
    malloc = find_functions(LIBC, "malloc")
    assert len(malloc) == 1 and not malloc[0].ifunc
    assert "__libc_malloc" in malloc[0].names and malloc[0].name == "malloc"
    memcpy = find_functions(LIBC, "memcpy")
    # Default version first: memcpy@@GLIBC_2.14 is an IFUNC; the old memcpy@GLIBC_2.2.5 follows.
    assert memcpy[0].ifunc and memcpy[0].resolver == memcpy[0].address
    sym = next(s for s in memcpy[0].symbols if s.name == "memcpy")
    assert sym.type == "IFUNC" and sym.default_version and sym.version == "GLIBC_2.14"
    assert all(not s.default_version for f in memcpy[1:] for s in f.symbols if s.name == "memcpy")
    assert {f.address for f in find_functions(LIBC, "mem*")} >= {f.address for f in memcpy}
    plts = {e.name: e for e in plt_entries(LIBC)}
    assert plts and all(e.reloc in ("JUMP_SLOT", "GLOB_DAT", "IRELATIVE") for e in plts.values())
    dbg = find_debug_file(ElfFile(LIBC))
    if dbg is not None:  # libc6-dbg installed: the build-id path
        assert f"/.build-id/{malloc[0].build_id[:2]}/" in dbg
