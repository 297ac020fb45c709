"""binfo fixtures: test programs built with gcc in several layouts, and readelf/objdump oracles."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import need

HERE = Path(__file__).resolve().parent
LIBC = "/lib/x86_64-linux-gnu/libc.so.6"
LIBPYTHON = "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0"

# name -> gcc flags; "strip" means the output is stripped afterwards.
VARIANTS = {
    "pie_O0": ["-O0", "-pie", "-fPIE"],
    "nopie_O0": ["-O0", "-no-pie", "-fno-PIE"],
    "pie_O2": ["-O2", "-pie", "-fPIE"],
    "nopie_O2": ["-O2", "-no-pie", "-fno-PIE"],
    "pie_O2_strip": ["-O2", "-pie", "-fPIE", "-rdynamic", "strip"],
    "nopie_O2_strip": ["-O2", "-no-pie", "-fno-PIE", "-rdynamic", "strip"],
    "pie_cet": ["-O2", "-fcf-protection=full", "-Wl,-z,ibtplt"],
    "pie_now": ["-O2", "-Wl,-z,now"],
    "nopie_cet_now": ["-O2", "-no-pie", "-fno-PIE", "-fcf-protection=full", "-Wl,-z,ibtplt",
                      "-Wl,-z,now"],
}
LIB_VARIANTS = {
    "lib_gnuhash_strip": ["-Wl,--hash-style=gnu", "strip"],
    "lib_sysvhash_strip": ["-Wl,--hash-style=sysv", "strip"],
    "lib_cet": ["-fcf-protection=full", "-Wl,-z,ibtplt"],
}


def _build(out: Path, name: str, src: str, flags: list[str], shared: bool) -> Path:
    target = out / (name + (".so" if shared else ""))
    cflags = [f for f in flags if f != "strip"]
    extra = ["-shared", "-fPIC"] if shared else []
    subprocess.run(["gcc", "-g0", *cflags, *extra, "-o", str(target), str(HERE / src)],
                   check=True, timeout=120)
    if "strip" in flags:
        subprocess.run(["strip", str(target)], check=True, timeout=60)
    return target


@pytest.fixture(scope="session")
def progs(tmp_path_factory) -> dict[str, Path]:
    for tool in ("gcc", "strip", "readelf", "objdump"):
        need(shutil.which(tool) is not None, tool)
    out = tmp_path_factory.mktemp("binfo")
    built = {n: _build(out, n, "bi_funcs.c", f, False) for n, f in VARIANTS.items()}
    built.update({n: _build(out, n, "bi_lib.c", f, True) for n, f in LIB_VARIANTS.items()})
    out.chmod(0o755)
    return built


def _size(text: str) -> int:
    return int(text, 16) if text.startswith("0x") else int(text)


def readelf_functions(path: str | Path, table: str) -> set[tuple[str, int, int, str]]:
    """(name without version, value, size, FUNC|IFUNC) of defined functions in one table."""
    opt = "--dyn-syms" if table == ".dynsym" else "--syms"
    text = subprocess.run(["readelf", "-W", opt, str(path)], check=True, capture_output=True,
                          text=True).stdout
    out, inside = set(), False
    for line in text.splitlines():
        if line.startswith("Symbol table"):
            inside = f"'{table}'" in line
            continue
        parts = line.split()
        if not inside or len(parts) < 8 or not parts[0].endswith(":"):
            continue
        _num, value, size, typ, _bind, _vis, ndx, name = parts[:8]
        if typ in ("FUNC", "IFUNC") and ndx != "UND":
            out.add((re.split(r"@", name, maxsplit=1)[0], int(value, 16), _size(size), typ))
    return out


def objdump_plt(path: str | Path) -> dict[str, int]:
    """name -> stub address from objdump's synthetic name@plt labels."""
    text = subprocess.run(["objdump", "-d", "-j", ".plt", "-j", ".plt.sec", "-j", ".plt.got",
                           str(path)], capture_output=True, text=True).stdout
    out = {}
    for m in re.finditer(r"^([0-9a-f]+) <(.+)@plt>:$", text, re.M):
        out[m.group(2)] = int(m.group(1), 16)
    return out
