"""binfo cache: hits by build-id, invalidation on size/mtime, refusal of foreign entries."""
from __future__ import annotations

import os
import shutil
import stat
import time

import pytest

from tests.binfo.conftest import LIBC
from tests.conftest import need
from utrace_py.binfo import ElfFile, SymbolTable
from utrace_py.binfo.cache import binfo_cache_dir, entry_path
from utrace_py.cachedir import CacheError


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_second_lookup_hits_and_stale_entry_is_replaced(progs, tmp_path):
    prog = tmp_path / "prog"
    shutil.copy(progs["pie_O2"], prog)
    first = SymbolTable(ElfFile(str(prog)))
    rows = first.rows()
    assert not first.from_cache
    d = binfo_cache_dir()
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    entry = entry_path(first.elf, first.source)
    assert entry.exists() and entry.name.startswith(first.elf.build_id)
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    second = SymbolTable(ElfFile(str(prog)))
    assert second.rows() == rows and second.from_cache
    assert second.match("bi_*") == first.match("bi_*")
    # Same build-id but another mtime: the entry is stale, parsed again and rewritten.
    os.utime(prog, ns=(time.time_ns(), time.time_ns() - 10**9))
    third = SymbolTable(ElfFile(str(prog)))
    assert third.rows() == rows and not third.from_cache
    fourth = SymbolTable(ElfFile(str(prog)))
    assert fourth.rows() == rows and fourth.from_cache


def test_entry_writable_by_others_is_refused(progs):
    table = SymbolTable(ElfFile(str(progs["pie_O0"])))
    table.rows()
    entry = entry_path(table.elf, table.source)
    os.chmod(entry, 0o666)
    with pytest.raises(CacheError, match="not owned by you or is writable by others"):
        SymbolTable(ElfFile(str(progs["pie_O0"]))).rows()


def test_cache_hit_is_faster_than_a_parse(capsys):
    need(os.path.exists(LIBC), LIBC)

    def best(use_cache: bool) -> float:
        times = []
        for _ in range(5):
            t = time.perf_counter()
            SymbolTable(ElfFile(LIBC), use_cache=use_cache).rows()
            times.append(time.perf_counter() - t)
        return min(times)

    SymbolTable(ElfFile(LIBC)).rows()  # fill the cache
    parse, hit = best(False), best(True)
    with capsys.disabled():
        print(f"\nlibc symbol table: parse {parse * 1e3:.2f} ms, cache hit {hit * 1e3:.2f} ms")
    assert hit < parse
