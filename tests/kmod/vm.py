"""Boots Debian's module-capable kernel under qemu (TCG) and runs shell jobs in it.

The guest sees the host's / read-only over 9p under a tmpfs overlay, so every
program installed on the host (python3, this checkout, the build cache) is
there.  A second, writable 9p share is mounted at the same path as on the host:
the host drops job scripts into it and the guest's /init loop runs them one by
one, writing each job's stdout, stderr and exit status back.  One boot serves
many jobs (a boot costs ~6 s, see ../shared/KMOD-VM.md).
"""
from __future__ import annotations

import lzma
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# Where .ci/run unpacks `apt-get download linux-image-KVER` (as root, readable by all).
KERNEL_ROOT = Path(os.environ.get("UTRACE_KMOD_KERNELS", "/var/cache/utrace-kmod"))
BOOT_MODULES = ["virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
                "virtio_pci", "netfs", "fscache", "9pnet", "9pnet_virtio", "9p", "overlay"]
BUSYBOX = Path("/bin/busybox")


def find_kernel() -> tuple[str, Path] | None:
    """(KVER, unpacked image dir) of a kernel whose headers are installed too."""
    if not KERNEL_ROOT.is_dir():
        return None
    for d in sorted(KERNEL_ROOT.iterdir(), reverse=True):
        kver = d.name
        if (d / "boot" / f"vmlinuz-{kver}").exists() and \
                Path(f"/lib/modules/{kver}/build/Makefile").exists():
            return kver, d
    return None


def missing_parts() -> list[str]:
    """What the host lacks to boot a test guest (empty when all is there)."""
    out = []
    if shutil.which("qemu-system-x86_64") is None:
        out.append("qemu-system-x86 (apt)")
    if not BUSYBOX.exists():
        out.append("busybox-static (apt)")
    if find_kernel() is None:
        out.append(f"a Debian kernel image unpacked under {KERNEL_ROOT}/KVER with "
                   "linux-headers-KVER installed (.ci/run does both)")
    return out


def extract_vmlinux(vmlinuz: Path, dest: Path) -> Path:
    """The uncompressed kernel inside a bzImage (xz payload): boots twice as fast."""
    if dest.exists():
        return dest
    data = vmlinuz.read_bytes()
    at = data.find(b"\xfd7zXZ\x00")
    if at < 0:
        raise RuntimeError(f"{vmlinuz}: no xz payload found")
    raw = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[at:])
    tmp = dest.with_suffix(f".{os.getpid()}")
    tmp.write_bytes(raw)
    os.replace(tmp, dest)
    return dest


def _modinfo_depends(ko: bytes) -> list[str]:
    at = ko.find(b"depends=")
    if at < 0:
        return []
    end = ko.index(b"\0", at)
    val = ko[at + 8:end].decode()
    return [x for x in val.split(",") if x]


def _cpio(entries: list[tuple[str, int, bytes]]) -> bytes:
    """An uncompressed newc archive of (name, mode, data) entries."""
    out = bytearray()
    for ino, (name, mode, data) in enumerate(entries + [("TRAILER!!!", 0, b"")], 1):
        nb = name.encode() + b"\0"
        hdr = "070701" + "".join(f"{v:08x}" for v in (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nb), 0))
        out += hdr.encode() + nb
        out += b"\0" * (-len(out) % 4)
        out += data
        out += b"\0" * (-len(out) % 4)
    return bytes(out)


INIT = r"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in MODULES; do insmod /mod/$m.ko || echo "insmod $m failed"; done
mkdir -p /r /o
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose root /r
mount -t tmpfs -o size=512m tmpfs /o
mkdir -p /o/u /o/w /o/m
mount -t overlay overlay -o lowerdir=/r,upperdir=/o/u,workdir=/o/w /o/m
M=/o/m
mkdir -p $M/JOBDIR
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 job $M/JOBDIR
mount -t proc proc $M/proc; mount -t sysfs sys $M/sys; mount -t devtmpfs dev $M/dev
mkdir -p $M/dev/pts; mount -t devpts devpts $M/dev/pts
mount -t tracefs tracefs $M/sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs $M/sys/kernel/debug 2>/dev/null
mount -t tmpfs tmpfs $M/run; mkdir -p $M/dev/shm; mount -t tmpfs tmpfs $M/dev/shm
echo up > $M/JOBDIR/ready
chroot $M /bin/sh JOBDIR/loop.sh
poweroff -f
"""

# Runs job N when N.sh appears; N.rc (written last, by rename) says it is done.
LOOP = r"""cd /
export HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1
n=1
while :; do
  if [ -f JOBDIR/$n.sh ]; then
    sh JOBDIR/$n.sh > JOBDIR/$n.out 2> JOBDIR/$n.err < /dev/null
    echo $? > JOBDIR/$n.tmp; mv JOBDIR/$n.tmp JOBDIR/$n.rc
    n=$((n+1))
  elif [ -f JOBDIR/quit ]; then
    exit 0
  else
    sleep 0.1
  fi
done
"""


@dataclass
class JobResult:
    returncode: int
    stdout: str
    stderr: str


class GuestError(RuntimeError):
    pass


class Guest:
    """One booted guest; run() executes a shell script in it as root."""

    def __init__(self, workdir: Path | None = None, memory: str = "2G") -> None:
        found = find_kernel()
        if found is None:
            raise GuestError("no kernel: " + ", ".join(missing_parts()))
        self.kver, kdir = found
        self.work = Path(workdir or tempfile.mkdtemp(prefix="utrace-vm-"))
        self.jobs = self.work / "jobs"
        self.jobs.mkdir(parents=True, exist_ok=True)
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "utrace-vm"
        cache.mkdir(parents=True, exist_ok=True)
        self.vmlinux = extract_vmlinux(kdir / "boot" / f"vmlinuz-{self.kver}",
                                       cache / f"vmlinux-{self.kver}")
        self.initrd = self.work / "initrd.cpio"
        self._write_initrd(kdir / "lib" / "modules" / self.kver)
        (self.jobs / "loop.sh").write_text(LOOP.replace("JOBDIR", str(self.jobs)))
        self.n = 0
        self.console = self.work / "console.log"
        self.memory = memory
        self.proc: subprocess.Popen | None = None
        self.boot_seconds = 0.0

    def _write_initrd(self, moddir: Path) -> None:
        kos = {p.name.split(".ko")[0]: p for p in moddir.rglob("*.ko")}
        order: list[str] = []

        def add(m: str) -> None:
            if m in order:
                return
            for d in _modinfo_depends(kos[m].read_bytes()):
                add(d)
            order.append(m)
        for m in BOOT_MODULES:
            add(m)
        init = INIT.replace("MODULES", " ".join(order)).replace("JOBDIR", str(self.jobs))
        entries = [("bin", 0o40755, b""), ("mod", 0o40755, b""),
                   ("bin/busybox", 0o100755, BUSYBOX.read_bytes()),
                   ("bin/sh", 0o120777, b"busybox"),
                   ("init", 0o100755, init.encode())]
        entries += [(f"mod/{m}.ko", 0o100644, kos[m].read_bytes()) for m in order]
        self.initrd.write_bytes(_cpio(entries))

    def start(self, timeout: float = 120) -> None:
        t0 = time.monotonic()
        cmd = ["qemu-system-x86_64", "-accel", "tcg", "-M", "q35", "-cpu", "max",
               "-smp", "2", "-m", self.memory, "-kernel", str(self.vmlinux),
               "-initrd", str(self.initrd),
               "-append", "console=ttyS0 panic=-1 quiet loglevel=3 mitigations=off nokaslr "
                          "tsc=reliable no_timer_check rdinit=/init",
               "-fsdev", "local,id=r,path=/,security_model=none,readonly=on,multidevs=remap",
               "-device", "virtio-9p-pci,fsdev=r,mount_tag=root",
               "-fsdev", f"local,id=j,path={self.jobs},security_model=none",
               "-device", "virtio-9p-pci,fsdev=j,mount_tag=job",
               "-serial", f"file:{self.console}", "-display", "none", "-no-reboot",
               "-nodefaults", "-monitor", "none"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.work / "qemu.err", "wb"))
        ready = self.jobs / "ready"
        while not ready.exists():
            if self.proc.poll() is not None or time.monotonic() - t0 > timeout:
                self.stop()
                raise GuestError("guest did not come up:\n" + self.log())
            time.sleep(0.1)
        self.boot_seconds = time.monotonic() - t0

    def log(self) -> str:
        parts = []
        for f in (self.console, self.work / "qemu.err"):
            try:
                parts.append(f.read_text(errors="replace")[-4000:])
            except OSError:
                pass
        return "\n".join(parts)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def run(self, script: str, timeout: float = 300) -> JobResult:
        """Run a /bin/sh script in the guest as root; stdout/stderr come back as text."""
        if not self.alive():
            raise GuestError("guest is not running:\n" + self.log())
        self.n += 1
        n = self.n
        tmp = self.jobs / f"{n}.sh.tmp"
        tmp.write_text(script)
        os.replace(tmp, self.jobs / f"{n}.sh")
        rc = self.jobs / f"{n}.rc"
        t0 = time.monotonic()
        while not rc.exists():
            if not self.alive():
                raise GuestError(f"guest died during job {n}:\n" + self.log())
            if time.monotonic() - t0 > timeout:
                self.stop()  # the loop is stuck in this job: the guest is lost
                raise GuestError(f"job {n} timed out after {timeout} s:\n" + self.log())
            time.sleep(0.05)
        text = rc.read_text().strip()
        return JobResult(int(text or -1), (self.jobs / f"{n}.out").read_text(errors="replace"),
                         (self.jobs / f"{n}.err").read_text(errors="replace"))

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            (self.jobs / "quit").write_text("")
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
