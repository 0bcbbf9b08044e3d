"""Layout of the flow diagram: agencies on a ring, transfers as curved arrows with count labels.

Server-side geometry only; the template draws it as inline SVG (no script, no library). An edge
bends to its left, so A → B and B → A never overlap. Every edge is a link to its decisions.

Legibility at any size of region: the ring grows with the number of agencies so that no two
boxes touch, and each edge's count label sits *on its own curve* (a point of the curve is the
label's centre). Labels are placed one after the other: for each, points along the curve and
then stronger bends of the curve are tried until the label touches no other label and no box;
if some label finds no place, the whole ring is drawn larger and placement starts again. Labels
show only the non-zero counts, so they stay short.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from casebridge.gateway.console.data import Edge

NODE_W, NODE_H = 236, 54
_MARGIN = 16
_GAP = 4.0  # between a label and anything else
_LABEL_H = 26.0
_SYMBOLS = {"permit": "✓", "partial": "◐", "block": "✕", "override": "§"}
#: estimated widths at the label's font (15 px, bold) — generous, so the text stays inside
_SYMBOL_W, _DIGIT_W, _PART_GAP, _PAD = 15.0, 9.5, 7.0, 9.0
_NAME_CHARS = 27  # per line of a box (13 px bold); longer names take two lines, then are cut
#: where along its curve a label may sit (middle first), and how strongly a curve may bend
_POSITIONS = tuple(sorted((0.15 + 0.035 * i for i in range(21)), key=lambda t: abs(t - 0.5)))
_BENDS = (1.0, 1.4, 0.6, 1.9, 0.3, 2.5, 3.2)


@dataclass(frozen=True, slots=True)
class NodeBox:
    """An agency's box."""

    id: str
    x: float
    y: float
    lines: tuple[str, ...]
    kind: str
    name: str

    @property
    def left(self) -> float:
        """x of the box's left side."""
        return self.x - NODE_W / 2

    @property
    def top(self) -> float:
        """y of the box's top side."""
        return self.y - NODE_H / 2


@dataclass(frozen=True, slots=True)
class LabelPart:
    """One count of a label: its outcome, symbol, number and x offset from the label's left."""

    outcome: str
    symbol: str
    count: int
    dx: float


@dataclass(frozen=True, slots=True)
class EdgePath:
    """An edge's curve and its count label (centre on the curve, size, parts)."""

    edge: Edge
    path: str
    label_x: float
    label_y: float
    label_w: float
    parts: tuple[LabelPart, ...]

    @property
    def text(self) -> str:
        """The label's visible text."""
        return " ".join(f"{p.symbol}{p.count}" for p in self.parts)


@dataclass(frozen=True, slots=True)
class Diagram:
    """The drawing: its size, the boxes and the edges."""

    width: int
    height: int
    nodes: list[NodeBox]
    paths: list[EdgePath]


Rect = tuple[float, float, float, float]  # left, top, right, bottom


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _grown(r: Rect, by: float) -> Rect:
    return r[0] - by, r[1] - by, r[2] + by, r[3] + by


def _wrap(name: str) -> tuple[str, ...]:
    """A name on one line, or on two lines split between words where the longer line is
    shortest; a line still longer than ``_NAME_CHARS`` is cut with … (the box's title holds
    the whole name)."""
    if len(name) <= _NAME_CHARS:
        return (name,)
    words = name.split()
    splits = [(" ".join(words[:i]), " ".join(words[i:])) for i in range(1, len(words))]
    if not splits:  # one very long word
        splits = [(name[:_NAME_CHARS], name[_NAME_CHARS:])]
    first, rest = min(splits, key=lambda pair: max(len(pair[0]), len(pair[1])))

    def cut(line: str) -> str:
        return line if len(line) <= _NAME_CHARS else line[:_NAME_CHARS - 1].rstrip() + "…"

    return cut(first), cut(rest)


def _parts(edge: Edge) -> tuple[tuple[LabelPart, ...], float]:
    parts, x = [], _PAD
    for outcome, symbol in _SYMBOLS.items():
        count = edge.counts.get(outcome, 0)
        if count:
            parts.append(LabelPart(outcome, symbol, count, x))
            x += _SYMBOL_W + _DIGIT_W * len(str(count)) + _PART_GAP
    return tuple(parts), x - _PART_GAP + _PAD


def _border(cx: float, cy: float, dx: float, dy: float) -> tuple[float, float]:
    """Where a ray from a box's centre in direction (dx, dy) leaves the box (plus a gap)."""
    scale = min(
        (NODE_W / 2 + 6) / abs(dx) if dx else math.inf,
        (NODE_H / 2 + 6) / abs(dy) if dy else math.inf,
    )
    return cx + dx * scale, cy + dy * scale


def _ring(ids: list[str], agencies: dict[str, tuple[str, str]],
          grow: float) -> tuple[int, int, dict[str, NodeBox]]:
    """Boxes on an ellipse large enough that no two boxes (with room between) overlap."""
    n = max(len(ids), 1)
    # neighbours on a circle of radius r are 2 r sin(π/n) apart: room for a box and a gap
    r = max(190.0, (NODE_W + 24) / (2 * math.sin(math.pi / n)) if n > 2 else 190.0) * grow
    rx, ry = r, max(r * 0.72, 150.0)
    while True:
        centres = [(rx * math.cos(-math.pi / 2 + 2 * math.pi * k / n),
                    ry * math.sin(-math.pi / 2 + 2 * math.pi * k / n)) for k in range(n)]
        boxes = [(x - NODE_W / 2, y - NODE_H / 2, x + NODE_W / 2, y + NODE_H / 2)
                 for x, y in centres]
        if not any(_overlaps(_grown(boxes[i], 20), boxes[j])
                   for i in range(len(ids)) for j in range(i + 1, len(ids))):
            break
        rx, ry = rx * 1.1, ry * 1.1
    width = int(2 * rx + NODE_W + 2 * _MARGIN + 2 * _LABEL_H)
    height = int(2 * ry + NODE_H + 2 * _MARGIN + 2 * _LABEL_H)
    nodes = {}
    for agency, (x, y) in zip(ids, centres, strict=False):
        name, kind = agencies.get(agency, (agency, ""))
        nodes[agency] = NodeBox(agency, width / 2 + x, height / 2 + y, _wrap(name), kind, name)
    return width, height, nodes


def _curve(a: NodeBox, b: NodeBox, bend: float) -> tuple[tuple[float, float], ...]:
    """Start, control and end point of the quadratic curve from ``a`` to ``b``."""
    dx, dy = b.x - a.x, b.y - a.y
    length = math.hypot(dx, dy) or 1.0
    # control point: the midpoint pushed to the left of the direction of travel
    push = (30.0 + 0.12 * length) * bend
    nx, ny = dy / length, -dx / length
    cx, cy = (a.x + b.x) / 2 + nx * push, (a.y + b.y) / 2 + ny * push
    return _border(a.x, a.y, cx - a.x, cy - a.y), (cx, cy), _border(b.x, b.y, cx - b.x, cy - b.y)


def _point(curve: tuple[tuple[float, float], ...], t: float) -> tuple[float, float]:
    (sx, sy), (cx, cy), (ex, ey) = curve
    u = 1 - t
    return u * u * sx + 2 * u * t * cx + t * t * ex, u * u * sy + 2 * u * t * cy + t * t * ey


def _place(edges: list[Edge], nodes: dict[str, NodeBox], width: int,
           height: int) -> list[EdgePath] | None:
    """A path and a free label position for every edge; None if some label finds no place."""
    taken: list[Rect] = [_grown((n.left, n.top, n.left + NODE_W, n.top + NODE_H), _GAP)
                         for n in nodes.values()]
    placed = []
    # the busiest edges choose first: their labels get the middle of their curves
    for edge in sorted(edges, key=lambda e: (-e.total, e.sender, e.recipient)):
        a, b = nodes[edge.sender], nodes[edge.recipient]
        if a is b:
            continue  # an agency sending to itself has no arrow; the table still lists it
        parts, label_w = _parts(edge)
        spot = None
        for bend in _BENDS:
            curve = _curve(a, b, bend)
            for t in _POSITIONS:
                x, y = _point(curve, t)
                rect = (x - label_w / 2, y - _LABEL_H / 2, x + label_w / 2, y + _LABEL_H / 2)
                inside = rect[0] >= 0 and rect[1] >= 0 and rect[2] <= width and rect[3] <= height
                if inside and not any(_overlaps(rect, other) for other in taken):
                    spot = curve, x, y, rect
                    break
            if spot:
                break
        if spot is None:
            return None
        curve, x, y, rect = spot
        taken.append(_grown(rect, _GAP))
        (sx, sy), (cx, cy), (ex, ey) = curve
        placed.append(EdgePath(edge, f"M {sx:.1f} {sy:.1f} Q {cx:.1f} {cy:.1f} {ex:.1f} {ey:.1f}",
                               x, y, label_w, parts))
    return sorted(placed, key=lambda p: (p.edge.sender, p.edge.recipient))


def layout(edges: list[Edge], agencies: dict[str, tuple[str, str]]) -> Diagram:
    """Boxes for every agency on an edge, and a path with a free label spot per edge.

    ``agencies`` maps an agency id to ``(name, kind label)`` where known.
    """
    ids = sorted({e.sender for e in edges} | {e.recipient for e in edges})
    grow = 1.0
    while True:
        width, height, nodes = _ring(ids, agencies, grow)
        paths = _place(edges, nodes, width, height)
        if paths is not None:
            return Diagram(width, height, list(nodes.values()), paths)
        grow *= 1.08  # terminates: a large enough ring leaves room for every label
