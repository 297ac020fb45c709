"""Find tapset files on the search path, index their names cheaply, parse them on demand."""
from __future__ import annotations

import os
import re
from pathlib import Path

from .lang import ast as A
from .lang.parser import parse_text
from .lang.preprocess import PPContext
from .paths import tapset_dir


_FUNC_RE = re.compile(r"^[ \t]*(?:private[ \t]+)?function[ \t]+([A-Za-z_][A-Za-z0-9_]*)", re.M)
_GLOBAL_RE = re.compile(r"^[ \t]*(?:private[ \t]+)?global[ \t]+([^;\n]*)", re.M)
_ALIAS_RE = re.compile(r"^[ \t]*probe[ \t]+([^{=]*?)[ \t]*\+?=", re.M)


def tapset_dirs(extra: list[str]) -> list[Path]:
    dirs = []
    for d in [str(tapset_dir())] + list(extra):
        p = Path(d)
        if p.is_dir():
            dirs.append(p)
    return dirs


class TapsetLibrary:
    """Name index over every tapset file; a file is parsed only when something in it is needed."""

    def __init__(self, dirs: list[Path], pp: PPContext) -> None:
        self.pp = pp
        self.files: list[Path] = []
        for d in dirs:
            self.files.extend(sorted(p for p in d.rglob("*.stp")))
        self.func_index: dict[str, list[Path]] = {}
        self.global_index: dict[str, list[Path]] = {}
        self.alias_files: list[Path] = []
        self._parsed: dict[Path, A.StapFile] = {}
        self._texts: dict[Path, str] = {}
        for f in self.files:
            try:
                text = f.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            self._texts[f] = text
            for m in _FUNC_RE.finditer(text):
                self.func_index.setdefault(m.group(1), []).append(f)
            for m in _GLOBAL_RE.finditer(text):
                for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:%?\s*\[[^\]]*\])?\s*(?:=\s*[^,]+)?(?:,|$)",
                                       m.group(1)):
                    self.global_index.setdefault(name, []).append(f)
            if _ALIAS_RE.search(text):
                self.alias_files.append(f)

    def parse(self, path: Path) -> A.StapFile:
        f = self._parsed.get(path)
        if f is None:
            f = parse_text(self._texts[path], str(path), pp=self.pp, tapset=True)
            self._parsed[path] = f
        return f

    def text(self, path: Path) -> str:
        return self._texts.get(path, "")

    def function_files(self, name: str) -> list[Path]:
        return self.func_index.get(name, [])

    def global_files(self, name: str) -> list[Path]:
        return self.global_index.get(name, [])

    def all_function_names(self) -> list[str]:
        return sorted(self.func_index)


def search_path_from_env() -> list[str]:
    env = os.environ.get("SYSTEMTAP_TAPSET")
    return [env] if env else []
