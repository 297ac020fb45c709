"""The user's private cache directory, and the check every cached file passes before use."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from .diag import UtraceError


class CacheError(UtraceError):
    pass


def private_dir(d: Path) -> Path:
    """Create d mode 0700 if needed; refuse it unless it is the user's, and close it to others."""
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = d.stat()
    if st.st_uid != os.getuid():
        raise CacheError(f"ERROR: cache directory {d} is not owned by you (uid {st.st_uid}); "
                         "refusing to load code from it")
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        os.chmod(d, 0o700)
    return d


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return private_dir(Path(base) / "utrace")


def check_owned(path: Path) -> None:
    st = path.stat()
    if st.st_uid != os.getuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise CacheError(f"ERROR: cached object {path} is not owned by you or is writable by "
                         "others; refusing to load it (remove it and run again)")


