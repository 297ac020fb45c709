"""binfo procmaps: modules and load biases of this process and of a running fixture program."""
from __future__ import annotations

import ctypes
import mmap
import os
import shutil
import subprocess

import pytest

from tests.binfo.conftest import LIBC
from tests.conftest import need
from utrace_py.binfo import ElfError, ElfFile, find_functions
from utrace_py.binfo.procmaps import (AT_ENTRY, AT_SYSINFO_EHDR, find_module, main_executable,
                                      module_at, modules, parse_maps, read_auxv, readable_path)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_parse_maps_lines():
    text = ("55d0c0a00000-55d0c0a01000 r--p 00000000 08:01 1234   /usr/bin/my prog\n"
            "7f0000000000-7f0000001000 r-xp 00001000 fd:00 99  /tmp/gone.so (deleted)\n"
            "7f0000002000-7f0000003000 rwxp 00000000 00:00 0 \n"
            "7ffc00000000-7ffc00002000 r-xp 00000000 00:00 0  [vdso]\n")
    ms = parse_maps(text)
    assert ms[0].path == "/usr/bin/my prog" and ms[0].dev == (8, 1) and ms[0].inode == 1234
    assert ms[1].deleted and ms[1].path == "/tmp/gone.so" and ms[1].offset == 0x1000
    assert ms[2].path == "" and ms[2].executable and not ms[2].file_backed
    mods = modules(1, ms, open_files=False)
    kinds = {m.path: m.kind for m in mods}
    assert kinds["[vdso]"] == "vdso" and kinds["[anon]"] == "jit"
    assert kinds["/tmp/gone.so"] == "elf"
    assert all(m.unsupported for m in mods if m.kind in ("vdso", "jit"))


def test_own_process_libc_and_jit_region():
    need(os.path.exists(LIBC), LIBC)
    region = mmap.mmap(-1, 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
                       prot=mmap.PROT_READ | mmap.PROT_EXEC)
    mods = modules(os.getpid())
    libc = find_module(mods, "libc.so.6")
    assert len(libc) == 1 and libc[0].base is not None and libc[0].build_id
    malloc = ctypes.cast(ctypes.CDLL("libc.so.6").malloc, ctypes.c_void_p).value
    fn = find_functions(libc[0].readable_path, "malloc")[0]
    assert libc[0].base + fn.address == malloc
    assert module_at(mods, malloc) is libc[0]
    assert any(lo <= malloc < hi for lo, hi in libc[0].exec_ranges)
    jit = [m for m in mods if m.kind == "jit"]
    assert jit and all("JIT" in m.unsupported for m in jit)
    vdso = [m for m in mods if m.kind == "vdso"]
    auxv = read_auxv(os.getpid())
    assert vdso and vdso[0].start == auxv[AT_SYSINFO_EHDR] and vdso[0].unsupported
    exe = main_executable(os.getpid(), mods)
    assert exe is not None and exe.kind == "elf"
    region.close()


def _start(prog: str) -> tuple[subprocess.Popen, dict[str, int]]:
    p = subprocess.Popen([prog, "wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    addrs = {}
    for line in p.stdout:
        if line.strip() == "ready":
            break
        name, _, val = line.partition(" ")
        if val.startswith("0x"):
            addrs[name] = int(val, 16)
    return p, addrs


@pytest.mark.parametrize("variant", ["pie_O0", "nopie_O2", "pie_O2_strip", "pie_cet"])
def test_fixture_bases_match_printed_addresses(progs, variant):
    p, printed = _start(str(progs[variant]))
    try:
        mods = modules(p.pid)
        exe = main_executable(p.pid, mods)
        assert exe is not None and exe.path == str(progs[variant])
        if "nopie" in variant:
            assert exe.base == 0
        # The bias from the maps agrees with AT_ENTRY - e_entry (what dl_iterate_phdr reports).
        assert exe.base == read_auxv(p.pid)[AT_ENTRY] - ElfFile(exe.readable_path).entry
        for name in ("bi_add", "bi_loop", "main") + (() if "strip" in variant else ("bi_static",)):
            fn = find_functions(exe.readable_path, name)
            assert len(fn) == 1, name
            assert exe.base + fn[0].address == printed[name], name
        libc = find_module(mods, LIBC)
        assert libc and libc[0].base % 4096 == 0
    finally:
        p.stdin.close()
        p.wait(timeout=30)


def test_deleted_executable_read_through_map_files(progs, tmp_path):
    copy = tmp_path / "doomed"
    shutil.copy(progs["pie_O2"], copy)
    p, printed = _start(str(copy))
    try:
        copy.unlink()
        mods = modules(p.pid)
        exe = main_executable(p.pid, mods)
        assert exe is not None and exe.deleted and exe.path == str(copy)
        first = min(exe.mappings, key=lambda m: m.start)
        try:
            with open(f"/proc/{p.pid}/map_files/{first.start:x}-{first.end:x}", "rb"):
                privileged = True
        except OSError:
            privileged = False
        if not privileged:  # the documented refusal, with its reason
            assert exe.base is None and "map_files" in exe.error
            with pytest.raises(ElfError, match="CAP_SYS_ADMIN"):
                readable_path(p.pid, first)
            return
        assert exe.readable_path.startswith(f"/proc/{p.pid}/map_files/")
        fn = find_functions(exe.readable_path, "bi_add")[0]
        assert exe.base + fn.address == printed["bi_add"]
        assert exe.build_id == fn.build_id
    finally:
        p.stdin.close()
        p.wait(timeout=30)


def test_other_mount_namespace_read_through_proc_root(progs, tmp_path):
    need(shutil.which("unshare") is not None, "unshare")
    need(os.geteuid() == 0 or subprocess.run(["unshare", "-Ur", "true"],
                                             capture_output=True).returncode == 0,
         "mount namespaces (root, or unprivileged user namespaces)")
    # The program runs from a tmpfs mounted only in its namespace: the path in its maps
    # does not exist (or is another file) in ours.
    d = tmp_path / "ns"
    d.mkdir()
    script = (f"mount -t tmpfs none {d} && cp {progs['pie_O0']} {d}/prog && exec {d}/prog wait")
    cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c", script]
    if os.geteuid() != 0:
        cmd[1:1] = ["-r"]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    printed = {}
    for line in p.stdout:
        if line.strip() == "ready":
            break
        name, _, val = line.partition(" ")
        if val.startswith("0x"):
            printed[name] = int(val, 16)
    try:
        need(bool(printed), "unshare -m with a tmpfs mount: " + (p.stderr.read(500)
                                                                 if p.poll() is not None else ""))
        exe = main_executable(p.pid, modules(p.pid))
        assert exe is not None and not os.path.exists(exe.path)
        assert exe.readable_path == f"/proc/{p.pid}/root{exe.path}"
        fn = find_functions(exe.readable_path, "bi_add")[0]
        assert exe.base + fn.address == printed["bi_add"]
    finally:
        p.stdin.close()
        p.wait(timeout=30)
