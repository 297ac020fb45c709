"""The test guest itself: Debian's kernel boots, can load modules and sees the host's files."""
from __future__ import annotations

from tests.kmod.vm import _cpio


def test_cpio_newc_layout():
    data = _cpio([("init", 0o100755, b"#!x\n")])
    assert data.startswith(b"070701")
    assert b"init\0" in data and b"TRAILER!!!\0" in data
    assert len(data) % 4 == 0


def test_guest_runs_the_debian_kernel_with_modules(guest):
    r = guest.run("uname -r; test -e /proc/modules && echo modules; "
                  "test -e /sys/kernel/tracing/events/syscalls && echo tracing; id -u")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [guest.kver, "modules", "tracing", "0"]


def test_guest_sees_the_host_checkout_and_reports_failure(guest):
    from tests.conftest import ROOT
    r = guest.run(f"test -f {ROOT}/utrace_py/driver.py && echo ok; exit 3")
    assert (r.stdout, r.returncode) == ("ok\n", 3)
