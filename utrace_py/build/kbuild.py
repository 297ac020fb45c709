"""Pass 4 for --runtime=kmod: build the script and the kernel runtime into a module with kbuild."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
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
    kdir = kernel_build_dir(kver)
    if not (kdir / "Makefile").exists():
        raise BuildError(f"ERROR: no kernel build tree for {kver} at {kdir}: install "
                         f"linux-headers-{kver} (or give another kernel with -r)")
    if shutil.which("make") is None:
        raise BuildError("ERROR: kbuild needs make: install it, e.g. `apt-get install make`")
    files = _inputs()
    h = hashlib.sha256()
    for part in [c_source, kver, repr(_defines(defs)), RECIPE, str(kdir.resolve())]:
        h.update(part.encode())
        h.update(b"\0")
    for name, data in files:
        h.update(name.encode() + b"\0" + data)
    name = f"utrace_{h.hexdigest()[:20]}"
    out = cache_dir() / f"{name}.ko"
    if out.exists():
        check_owned(out)
        return out, True
    with tempfile.TemporaryDirectory(prefix="utrace-kbuild-", dir=cache_dir()) as tmp:
        d = Path(tmp)
        for fname, data in files:
            (d / fname).parent.mkdir(parents=True, exist_ok=True)
            (d / fname).write_bytes(data)
        (d / "script.c").write_text(c_source)
        objs = " ".join(Path(f).stem + ".o" for f in ["script.c", *SHARED_SRC, *KMOD_SRC])
        flags = " ".join(["-I$(src)/shim", "-I$(src)", *_defines(defs), *SCRIPT_FLAGS])
        (d / "Makefile").write_text(f"obj-m := {name}.o\n{name}-y := {objs}\n"
                                    f"ccflags-y := {flags}\n")
        cmd = ["make", "-C", str(kdir), f"M={d}", "modules"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if verbose > 1 or r.returncode != 0:
            log = (r.stdout + r.stderr).strip()
            if r.returncode != 0:
                raise BuildError(f"ERROR: kbuild failed (exit {r.returncode}):\n"
                                 f"{' '.join(cmd)}\n{log[-6000:]}")
        part = d / f"{name}.ko"
        os.chmod(part, 0o600)
        os.replace(part, out)
    return out, False
