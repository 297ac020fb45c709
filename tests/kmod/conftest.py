"""One qemu guest per test session for the kernel-module runtime's tests (see vm.py)."""
from __future__ import annotations

import pytest

from tests.conftest import need
from tests.kmod.vm import Guest, GuestError, missing_parts


class GuestPool:
    """Hands out the running guest, booting a new one if a job killed the last."""

    def __init__(self, tmp) -> None:
        self.tmp = tmp
        self.guest: Guest | None = None
        self.boots = 0

    def get(self) -> Guest:
        if self.guest is None or not self.guest.alive():
            self.boots += 1
            self.guest = Guest(self.tmp / f"boot{self.boots}")
            self.guest.start()
        return self.guest

    def close(self) -> None:
        if self.guest is not None:
            self.guest.stop()


@pytest.fixture(scope="session")
def guest_pool(tmp_path_factory):
    pool = GuestPool(tmp_path_factory.mktemp("vm"))
    yield pool
    pool.close()


def _booted(pool) -> Guest:
    missing = missing_parts()
    need(not missing, "; ".join(missing))
    try:
        return pool.get()
    except GuestError as e:
        pytest.fail(str(e))


@pytest.fixture
def guest(guest_pool) -> Guest:
    return _booted(guest_pool)


@pytest.fixture(scope="module")
def module_guest(guest_pool) -> Guest:
    """The guest for module-scoped fixtures (one batch job per test module)."""
    return _booted(guest_pool)
