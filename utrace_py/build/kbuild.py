"""Pass 4 for --runtime=kmod: build the script and the kernel runtime into a module with kbuild."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..cachedir import cache_dir, check_owned
from ..paths import native_dir
from .compiler import BuildError, _defines

# Runtime files compiled unchanged from native/src (freestanding; see native/kmod/kcompat.h).
SHARED_SRC = ["map.c", "stat.c", "format.c", "str.c", "lock.c", "region.c", "output.c",
              "tapset_support.c"]
KMOD_SRC = ["kmain.c", "kctx.c"]
HEADERS = [("include", "utrace_rt.h"), ("src", "rt_internal.h"), ("kmod", "utrace_kmod.h"),
           ("kmod", "kcompat.h")]
RECIPE = "1"
# Generated code declares as it goes and leaves labels and helpers unused.
SCRIPT_FLAGS = ["-Wno-declaration-after-statement", "-Wno-unused-label",
                "-Wno-unused-variable", "-Wno-unused-function", "-Wno-unused-but-set-variable"]


def kernel_build_dir(kver: str) -> Path:
    return Path(f"/lib/modules/{kver}/build")


def _inputs() -> list[tuple[str, bytes]]:
    nd = native_dir()
    files = [(name, (nd / "src" / name).read_bytes()) for name in SHARED_SRC]
    files += [(name, (nd / "kmod" / name).read_bytes()) for name in KMOD_SRC]
    files += [(name, (nd / sub / name).read_bytes()) for sub, name in HEADERS]
    shim = nd / "kmod" / "shim"
    files += [(str(p.relative_to(shim.parent)), p.read_bytes())
              for p in sorted(shim.rglob("*.h"))]
    return files


def build_kmod(c_source: str, defs: list[tuple[str, str]], kver: str,
               verbose: int = 0) -> tuple[Path, bool]:
    """Return (path of the .ko, whether it came from the cache)."""
    return build_kmods([c_source], defs, kver, verbose)[0]


def _check_tree(kdir: Path, kver: str) -> None:
    if not (kdir / "Makefile").exists():
        raise BuildError(f"ERROR: no kernel build tree for {kver} at {kdir}: install "
                         f"linux-headers-{kver} (or give another kernel with -r)")
    if shutil.which("make") is None:
        raise BuildError("ERROR: kbuild needs make: install it, e.g. `apt-get install make`")


def build_kmods(sources: list[str], defs: list[tuple[str, str]], kver: str,
                verbose: int = 0) -> list[tuple[Path, bool]]:
    """Modules for many scripts in one kbuild run: the runtime is compiled once for all."""
    kdir = kernel_build_dir(kver)
    _check_tree(kdir, kver)
    files = _inputs()
    common = hashlib.sha256()
    for part in [kver, repr(_defines(defs)), RECIPE, str(kdir.resolve())]:
        common.update(part.encode() + b"\0")
    for name, data in files:
        common.update(name.encode() + b"\0" + data)
    results: list[tuple[Path, bool]] = []
    todo: dict[str, str] = {}
    for src in sources:
        h = common.copy()
        h.update(src.encode())
        name = f"utrace_{h.hexdigest()[:20]}"
        out = cache_dir() / f"{name}.ko"
        if out.exists():
            check_owned(out)
            results.append((out, True))
        else:
            todo[name] = src
            results.append((out, False))
    if todo:
        _kbuild(todo, files, defs, kdir, verbose)
    return results


def _kbuild(todo: dict[str, str], files, defs, kdir: Path, verbose: int) -> None:
    with tempfile.TemporaryDirectory(prefix="utrace-kbuild-", dir=cache_dir()) as tmp:
        d = Path(tmp)
        for fname, data in files:
            (d / fname).parent.mkdir(parents=True, exist_ok=True)
            (d / fname).write_bytes(data)
        rt = " ".join(Path(f).stem + ".o" for f in [*SHARED_SRC, *KMOD_SRC])
        flags = " ".join(["-I$(src)/shim", "-I$(src)", *_defines(defs), *SCRIPT_FLAGS])
        mk = [f"ccflags-y := {flags}"]
        for name, src in todo.items():
            (d / f"s_{name}.c").write_text(src)
            mk += [f"obj-m += {name}.o", f"{name}-y := s_{name}.o {rt}"]
        (d / "Makefile").write_text("\n".join(mk) + "\n")
        jobs = str(min(len(todo), os.cpu_count() or 1) + 1)
        cmd = ["make", "-j", jobs, "-C", str(kdir), f"M={d}", "modules"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        log = (r.stdout + r.stderr).strip()
        if r.returncode != 0:
            raise BuildError(f"ERROR: kbuild failed (exit {r.returncode}):\n"
                             f"{' '.join(cmd)}\n{log[-6000:]}")
        if verbose > 1:
            print(log, file=sys.stderr)
        for name in todo:
            part = d / f"{name}.ko"
            os.chmod(part, 0o600)
            os.replace(part, cache_dir() / f"{name}.ko")
