"""Reads the declarative corpus: cases of script, arguments, options and expected results."""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

SECTIONS = {"script", "args", "opts", "stdout", "stderr", "stderr-re", "exit", "stdout-re"}


@dataclass
class Case:
    name: str
    file: str
    script: str = ""
    args: list[str] = field(default_factory=list)
    opts: list[str] = field(default_factory=list)
    stdout: str | None = ""
    stderr: str | None = ""
    stdout_re: str | None = None
    stderr_re: str | None = None
    exit: int = 0


def load(path: Path) -> list[Case]:
    """`=== name` starts a case; `--- section` starts a section; text is taken verbatim.

    A section's text ends at the next marker.  Expected output is compared
    with a final newline added (when not empty); write `--- stdout!` or
    `--- stderr!` for output that does not end in a newline.
    """
    cases: list[Case] = []
    cur: Case | None = None
    sect: str | None = None
    keep_nl = False
    buf: list[str] = []

    def flush() -> None:
        nonlocal buf
        if cur is None or sect is None:
            buf = []
            return
        text = "".join(buf)
        if text.endswith("\n"):
            text = text[:-1]
        if sect in ("stdout", "stderr") and text and not keep_nl:
            text += "\n"
        if sect == "script":
            cur.script = text
        elif sect == "args":
            cur.args = shlex.split(text)
        elif sect == "opts":
            cur.opts = shlex.split(text)
        elif sect == "exit":
            cur.exit = int(text.strip())
        elif sect == "stdout":
            cur.stdout = text
        elif sect == "stderr":
            cur.stderr = text
        elif sect == "stdout-re":
            cur.stdout, cur.stdout_re = None, text
        elif sect == "stderr-re":
            cur.stderr, cur.stderr_re = None, text
        buf = []

    for line in path.read_text().splitlines(keepends=True):
        if line.startswith("=== "):
            flush()
            sect = None
            cur = Case(line[4:].strip(), path.name)
            cases.append(cur)
            continue
        if line.startswith("--- ") and cur is not None:
            flush()
            name = line[4:].strip()
            keep_nl = name.endswith("!")
            name = name.rstrip("!")
            if name not in SECTIONS:
                raise ValueError(f"{path}: unknown section {name!r}")
            sect = name
            continue
        if line.startswith("#") and sect is None:
            continue
        buf.append(line)
    flush()
    return cases
