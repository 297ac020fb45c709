"""Exceptions of the injector; each message says what happened and what the user can do."""
from __future__ import annotations


class InjectorError(Exception):
    """Base class of the injector's own errors (PtraceError is an OSError instead)."""


class AttachRefused(InjectorError):
    """Attaching was refused before anything in the target changed.

    `reason` is one of: "no-such-process", "other-user", "yama", "non-dumpable",
    "already-traced", "seccomp", "permission".
    """

    def __init__(self, pid: int, reason: str, message: str):
        self.pid = pid
        self.reason = reason
        super().__init__(message)


class TraceeExited(InjectorError):
    """The traced process went away while we were working on it."""

    def __init__(self, pid: int, message: str, status: int | None = None):
        self.pid = pid
        self.status = status
        super().__init__(message)


class InjectorTimeout(InjectorError):
    """A thread did not reach the expected stop in time; the target was left consistent."""


class RemoteError(InjectorError):
    """A remote syscall or call failed in the target (fault, seccomp, error return)."""


class SpawnError(InjectorError):
    """The command could not be started (exec failed)."""


class LoadError(InjectorError):
    """dlopen/dlsym in the target failed; the message carries dlerror()'s text."""
