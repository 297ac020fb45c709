"""C++ symbol names as function("NAME") matches them: demangled, without parameters."""
from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache

_demangler = None


def _cxa_demangle():
    """libstdc++'s own demangler (every Debian system has libstdc++6): exact, no dependency."""
    global _demangler
    if _demangler is None:
        try:
            lib = ctypes.CDLL(ctypes.util.find_library("stdc++") or "libstdc++.so.6")
            f = lib.__cxa_demangle
            f.restype = ctypes.c_void_p
            f.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p,
                          ctypes.POINTER(ctypes.c_int)]
            libc = ctypes.CDLL(None)
            libc.free.argtypes = [ctypes.c_void_p]
            _demangler = (f, libc.free)
        except (OSError, AttributeError):
            _demangler = False
    return _demangler


@lru_cache(maxsize=65536)
def demangle(name: str) -> str | None:
    """The full demangled text of a mangled C++ name, or None."""
    if not name.startswith("_Z"):
        return None
    d = _cxa_demangle()
    if not d:
        return None
    f, free = d
    status = ctypes.c_int(0)
    p = f(name.encode(), None, None, ctypes.byref(status))
    if not p or status.value != 0:
        return None
    try:
        return ctypes.string_at(p).decode(errors="replace")
    finally:
        free(p)


def function_name(name: str) -> str | None:
    """"ns::Cls::method" for a mangled method: what SystemTap's DWARF-less matching
    and pp() show — the qualified name without its parameter list."""
    text = demangle(name)
    if text is None:
        return None
    if " [clone" in text:  # "f(long) [clone .cold]", "[clone .isra.0]": compiler parts
        return None
    depth = 0
    for i in range(len(text) - 1, -1, -1):  # the last top-level "(...)" is the parameters
        c = text[i]
        if c == ")":
            depth += 1
        elif c == "(":
            depth -= 1
            if depth == 0:
                return _drop_return_type(text[:i])
    return text


def _drop_return_type(head: str) -> str:
    """Template functions demangle with their return type: "int foo<int>" -> "foo<int>"."""
    depth, cut = 0, -1
    for i, c in enumerate(head):
        if c in "<(":
            depth += 1
        elif c in ">)":
            depth -= 1
        elif c == " " and depth == 0 and not head[:i].endswith("operator"):
            cut = i
    return head[cut + 1:]


def basename(qualified: str) -> str:
    """The last component of "ns::Cls::method" (what function("method") matches)."""
    depth = 0
    for i in range(len(qualified) - 1, 0, -1):
        c = qualified[i]
        if c == ">":
            depth += 1
        elif c == "<":
            depth -= 1
        elif c == ":" and depth == 0 and qualified[i - 1] == ":":
            return qualified[i + 1:]
    return qualified
