"""Pass 4: compile the generated C and the runtime into a handler shared object, cached by content."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..cachedir import cache_dir, check_owned
from ..diag import UtraceError
from ..paths import native_dir

CFLAGS = ["-std=gnu11", "-O2", "-fPIC", "-pthread"]
LDFLAGS = ["-shared", "-Wl,--no-undefined", "-lpthread"]
# Bumped whenever how objects are built changes, so stale cache entries are not reused.
RECIPE = "2"
RUNTIME_WARN = ["-Wall", "-Wextra", "-Werror"]
# Generated code is checked for what would be a bug; embedded C from tapsets is the author's.
# An undeclared function in embedded C would be called as returning int, truncating a
# pointer result: a crash in the target, so it is an error here.
SCRIPT_WARN = ["-Wall", "-Wno-unused-label", "-Wno-unused-variable", "-Wno-unused-but-set-variable",
               "-Wno-unused-function", "-Werror=implicit-function-declaration",
               "-Werror=int-conversion"]


class BuildError(UtraceError):
    pass


def find_cc() -> str:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc or not shutil.which(cc.split()[0]):
        raise BuildError("ERROR: no C compiler found (looked for $CC, cc, gcc); utrace compiles "
                         "scripts to C: install one, e.g. `apt-get install gcc`")
    return cc


def _defines(defs: list[tuple[str, str]]) -> list[str]:
    return [f"-D{k}={v}" if v != "" else f"-D{k}" for k, v in defs]


def _run(cmd: list[str], what: str) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise BuildError(f"ERROR: {what} failed (exit {r.returncode}):\n{' '.join(cmd)}\n"
                         f"{r.stderr.strip()}")


def runtime_archive(cc: str, defs: list[tuple[str, str]], verbose: int = 0) -> Path:
    """The runtime sources compiled once per set of -D values."""
    nd = native_dir()
    srcs = sorted((nd / "src").glob("*.c"))
    headers = sorted((nd / "include").glob("*.h"))
    h = hashlib.sha256()
    h.update(" ".join([cc] + CFLAGS + RUNTIME_WARN + _defines(defs) + [RECIPE]).encode())
    for f in headers + srcs:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    out = cache_dir() / f"rt-{h.hexdigest()[:24]}.a"
    if out.exists():
        check_owned(out)
        return out
    tmp = Path(tempfile.mkdtemp(prefix="utrace-rt-", dir=cache_dir()))
    try:
        def one(src: Path) -> Path:
            obj = tmp / (src.stem + ".o")
            _run([cc, *CFLAGS, *RUNTIME_WARN, *_defines(defs), "-I", str(nd / "include"),
                  "-c", str(src), "-o", str(obj)], f"compiling the runtime ({src.name})")
            return obj
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
            objs = list(ex.map(one, srcs))
        part = tmp / "rt.a"
        _run(["ar", "rcs", str(part)] + [str(o) for o in objs], "archiving the runtime")
        os.replace(part, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def build_module(c_source: str, defs: list[tuple[str, str]], verbose: int = 0) -> tuple[Path, bool]:
    """Return (path of the .so, whether it came from the cache)."""
    cc = find_cc()
    rt = runtime_archive(cc, defs, verbose)
    h = hashlib.sha256()
    h.update(c_source.encode())
    h.update(rt.name.encode())
    h.update(" ".join(CFLAGS + LDFLAGS + SCRIPT_WARN + _defines(defs) + [RECIPE]).encode())
    out = cache_dir() / f"utrace_{h.hexdigest()[:32]}.so"
    if out.exists():
        check_owned(out)
        return out, True
    with tempfile.TemporaryDirectory(prefix="utrace-build-", dir=cache_dir()) as tmp:
        src = Path(tmp) / "script.c"
        src.write_text(c_source)
        part = Path(tmp) / "script.so"
        _run([cc, *CFLAGS, *SCRIPT_WARN, *_defines(defs), "-I", str(native_dir() / "include"),
              "-o", str(part), str(src), "-Wl,--whole-archive", str(rt),
              "-Wl,--no-whole-archive", *LDFLAGS],
             "compiling the script")
        os.chmod(part, 0o700)
        os.replace(part, out)
    return out, False
