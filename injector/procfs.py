"""Small readers of /proc/PID files that the injector needs (maps, status, tasks, auxv)."""
from __future__ import annotations

import os
from dataclasses import dataclass

AT_ENTRY = 9
AT_SYSINFO_EHDR = 33


@dataclass(frozen=True)
class Mapping:
    """One line of /proc/PID/maps."""

    start: int
    end: int
    perms: str
    offset: int
    dev: str
    inode: int
    path: str

    @property
    def executable(self) -> bool:
        return "x" in self.perms

    @property
    def deleted(self) -> bool:
        return self.path.endswith(" (deleted)")

    @property
    def file_path(self) -> str:
        """The path without the " (deleted)" suffix."""
        return self.path[:-len(" (deleted)")] if self.deleted else self.path

    def __contains__(self, addr: int) -> bool:
        return self.start <= addr < self.end


def read_maps(pid: int) -> list[Mapping]:
    """Parse /proc/PID/maps."""
    out = []
    with open(f"/proc/{pid}/maps", "rb") as f:
        for raw in f.read().decode("utf-8", "surrogateescape").splitlines():
            parts = raw.split(None, 5)
            if len(parts) < 5:
                continue
            lo, hi = parts[0].split("-")
            out.append(Mapping(int(lo, 16), int(hi, 16), parts[1], int(parts[2], 16), parts[3],
                               int(parts[4]), parts[5] if len(parts) > 5 else ""))
    return out


def find_mapping(maps: list[Mapping], addr: int) -> Mapping | None:
    """The mapping containing addr, if any."""
    for m in maps:
        if addr in m:
            return m
    return None


def read_status(pid: int, tid: int | None = None) -> dict[str, str]:
    """/proc/PID/status (or a thread's) as a dict of stripped values."""
    path = f"/proc/{pid}/status" if tid is None else f"/proc/{pid}/task/{tid}/status"
    out = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def list_tasks(pid: int) -> list[int]:
    """Thread ids of a process (empty when it is gone)."""
    try:
        return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except FileNotFoundError:
        return []


def task_state(pid: int, tid: int) -> str:
    """The one-letter state of a thread from /proc/PID/task/TID/stat ('' when gone)."""
    try:
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return ""
    # comm may contain spaces and parentheses: the state follows the last ')'.
    return data[data.rfind(")") + 2:].split(" ", 1)[0]


def read_auxv(pid: int) -> dict[int, int]:
    """The auxiliary vector of a process (x86-64: pairs of 64-bit words)."""
    with open(f"/proc/{pid}/auxv", "rb") as f:
        data = f.read()
    out = {}
    for i in range(0, len(data) - 15, 16):
        key = int.from_bytes(data[i:i + 8], "little")
        if key == 0:
            break
        out[key] = int.from_bytes(data[i + 8:i + 16], "little")
    return out


def pending_caught_signals(pid: int, tid: int) -> int:
    """Signals pending for a thread that are unblocked and have a handler (a bit mask)."""
    st = read_status(pid, tid)
    pending = int(st.get("SigPnd", "0"), 16) | int(st.get("ShdPnd", "0"), 16)
    return pending & ~int(st.get("SigBlk", "0"), 16) & int(st.get("SigCgt", "0"), 16)


def has_cap_sys_ptrace() -> bool:
    """Whether this process holds CAP_SYS_PTRACE (bit 19 of CapEff)."""
    return bool(int(read_status(os.getpid()).get("CapEff", "0"), 16) >> 19 & 1)
