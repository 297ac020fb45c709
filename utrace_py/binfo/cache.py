"""Parsed symbol tables kept by build-id in the user's private cache directory.

Entries live in $XDG_CACHE_HOME/utrace/binfo/ (mode 0700) and pass the same
ownership check as compiled handlers (utrace_py/cachedir.py). The format is
marshal: it loads several times faster than JSON and, unlike pickle, cannot
run code on load. An entry records the build-id, size and mtime of the file
it came from and is ignored (then overwritten) when any differs.
"""
from __future__ import annotations

import hashlib
import marshal
import os
from pathlib import Path

from ..cachedir import cache_dir, check_owned, private_dir
from .elf import ElfFile

# Bumped whenever the cached row layout or its meaning changes.
FORMAT = "binfo-rows-1"


def binfo_cache_dir() -> Path:
    """$XDG_CACHE_HOME/utrace/binfo, created 0700 and checked to be the user's."""
    return private_dir(cache_dir() / "binfo")


def _entry_name(elf: ElfFile, kind: str) -> str:
    bid = elf.build_id
    if bid:
        key = bid
    else:
        # No build-id: key on the file's identity; such entries go stale with the file.
        dev, ino, size, mtime = elf.identity
        key = "nobid-" + hashlib.sha256(
            f"{os.path.realpath(elf.path)}\0{dev}\0{ino}\0{size}\0{mtime}".encode(
                "utf-8", "surrogateescape")).hexdigest()[:32]
    return f"{key}.{kind.strip('.')}.marshal"


def entry_path(elf: ElfFile, kind: str) -> Path:
    return binfo_cache_dir() / _entry_name(elf, kind)


def load_rows(elf: ElfFile, kind: str, width: int = 7) -> list[tuple] | None:
    """The cached rows for this file and table kind, or None on a miss or a stale entry.

    Raises CacheError for an entry not owned by the user or writable by others.
    """
    path = entry_path(elf, kind)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError:
        return None
    try:
        check_owned(path)
        with os.fdopen(fd, "rb") as f:
            fd = -1
            blob = f.read()
    finally:
        if fd >= 0:
            os.close(fd)
    try:
        fmt, bid, size, mtime, rows = marshal.loads(blob)
    except (EOFError, ValueError, TypeError):
        return None
    if fmt != FORMAT or bid != elf.build_id or size != elf.size or mtime != elf.mtime_ns:
        return None
    if not isinstance(rows, list) or (rows and not (isinstance(rows[0], tuple) and
                                                    len(rows[0]) == width)):
        return None
    return rows


def store_rows(elf: ElfFile, kind: str, rows: list[tuple]) -> None:
    """Write the rows atomically; a cache that cannot be written is silently skipped."""
    try:
        path = entry_path(elf, kind)
        blob = marshal.dumps((FORMAT, elf.build_id, elf.size, elf.mtime_ns, rows))
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.replace(tmp, path)
    except (OSError, ValueError):
        pass  # only a cache
