"""Folded stacks and the SVG flame graph utrace draws from them (--folded, --flamegraph)."""
from __future__ import annotations

import zlib
from xml.sax.saxutils import escape

WIDTH = 1200
ROW = 16
PAD_TOP = 40
PAD_SIDE = 10
MIN_WIDTH = 0.1  # pixels: narrower frames are left out (flamegraph.pl's minwidth)


class Folded:
    """Stacks and their counts, root first, as `frame;frame;frame count` lines."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add(self, stack: str, count: int) -> None:
        if stack:
            self.counts[stack] = self.counts.get(stack, 0) + count

    def text(self) -> str:
        return "".join(f"{s} {c}\n" for s, c in sorted(self.counts.items()))


class _Node:
    __slots__ = ("name", "count", "children")

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0
        self.children: dict[str, _Node] = {}


def _tree(counts: dict[str, int]) -> _Node:
    root = _Node("all")
    for stack, c in counts.items():
        root.count += c
        node = root
        for frame in stack.split(";"):
            node = node.children.setdefault(frame, _Node(frame))
            node.count += c
    return root


def _color(name: str) -> str:
    """Warm colours, stable per function name (as flamegraph.pl's default palette)."""
    h = zlib.crc32(name.encode())
    r = 205 + h % 50
    g = (h >> 8) % 230
    b = (h >> 16) % 55
    return f"rgb({r},{g},{b})"


def svg(counts: dict[str, int], title: str = "utrace flame graph") -> str:
    """A self-contained SVG: one rect per frame, its title the name, samples and percent,
    callers below callees (root at the bottom); hovering shows the title."""
    root = _tree(counts)
    total = root.count or 1

    def depth(n: _Node) -> int:
        return 1 + max((depth(c) for c in n.children.values()), default=0)

    levels = depth(root)
    height = PAD_TOP + levels * ROW + 2 * ROW
    scale = (WIDTH - 2 * PAD_SIDE) / total
    out = [
        '<?xml version="1.0" standalone="no"?>\n',
        f'<svg version="1.1" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        'xmlns="http://www.w3.org/2000/svg">\n',
        "<style>text { font-family: Verdana, sans-serif; font-size: 12px; fill: black; }"
        " rect:hover { stroke: black; stroke-width: 0.5; }</style>\n",
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="rgb(248,248,248)"/>\n',
        f'<text x="{WIDTH // 2}" y="24" text-anchor="middle" font-size="17">'
        f'{escape(title)}</text>\n',
    ]

    def draw(n: _Node, x: float, level: int) -> None:
        w = n.count * scale
        if w < MIN_WIDTH:
            return
        y = height - ROW * 2 - level * ROW
        label = f"{n.name} ({n.count} samples, {100.0 * n.count / total:.2f}%)"
        out.append(f'<g><title>{escape(label)}</title>'
                   f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{ROW - 1}" '
                   f'fill="{_color(n.name)}" rx="2" ry="2"/>')
        chars = int(w / 7)
        if chars >= 3:
            text = n.name if len(n.name) <= chars else n.name[:chars - 2] + ".."
            out.append(f'<text x="{x + 3:.1f}" y="{y + ROW - 4}">{escape(text)}</text>')
        out.append("</g>\n")
        cx = x
        for c in sorted(n.children.values(), key=lambda c: c.name):
            draw(c, cx, level + 1)
            cx += c.count * scale

    draw(root, PAD_SIDE, 0)
    out.append("</svg>\n")
    return "".join(out)
