"""Where the runtime sources and tapsets live, in a checkout or an installed package."""
from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _find(name: str, installed: str) -> Path:
    checkout = _HERE.parent / name
    if checkout.is_dir():
        return checkout
    try:
        import importlib
        mod = importlib.import_module(installed)
        return Path(mod.__path__[0])
    except ImportError:
        return checkout


def native_dir() -> Path:
    return _find("native", "utrace_native")


def tapset_dir() -> Path:
    return _find("tapsets", "utrace_tapsets")
