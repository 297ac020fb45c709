"""Every direct branch target in a module's code, to prove a patch safe against branches
from anywhere in the module, not only from the function it is in."""
from __future__ import annotations

import bisect
import os
from array import array

from . import cache
from .ehframe import EhFrameIndex
from .elf import ElfError, ElfFile

CACHE_KIND = "branch-targets"
_memo: dict[tuple, array] = {}


def _build(elf: ElfFile) -> array:
    """Each function (FDE) decoded linearly from its start: the unwind table names every
    function, also in a stripped binary and also GCC's f.cold fragments, and decoding from
    its start keeps instruction boundaries right where padding separates functions."""
    from injector.x86_64.decoder import branch_targets
    idx = EhFrameIndex(elf)
    out: set[int] = set()
    for fde in idx.fdes:
        try:
            start, size = idx._fde_range(fde)
            code = elf.read_vaddr(start, size) if size > 0 else b""
        except (ValueError, ElfError, IndexError):
            continue
        out.update(branch_targets(code, start))
    return array("q", sorted(out))


def targets(path: str) -> array:
    """Sorted link-time targets of the module's direct jumps and calls (cached by build-id)."""
    st = os.stat(path)  # the memo's key without opening the file: asked once per site
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    got = _memo.get(key)
    if got is not None:
        return got
    elf = ElfFile(path)
    try:
        rows = cache.load_rows(elf, CACHE_KIND, width=1)
        if rows:
            got = array("q")
            got.frombytes(rows[0][0])
        else:
            got = _build(elf)
            cache.store_rows(elf, CACHE_KIND, [(got.tobytes(),)])
        _memo[key] = got
        return got
    finally:
        elf.close()


def targets_between(path: str, lo: int, hi: int) -> list[int]:
    """Link-time branch targets t with lo < t < hi: what lands inside a patch at lo."""
    t = targets(path)
    return list(t[bisect.bisect_right(t, lo):bisect.bisect_left(t, hi)])
