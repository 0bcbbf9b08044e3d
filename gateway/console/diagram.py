"""Layout of the flow diagram: agencies on an ellipse, transfers as curved arrows.

Server-side geometry only; the template draws it as inline SVG (no script, no library). An edge
bends to its left, so A → B and B → A never overlap. Every edge is a link to its decisions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from casebridge.gateway.console.data import Edge

WIDTH, HEIGHT = 660, 500
NODE_W, NODE_H = 214, 48
_BEND = 46.0


@dataclass(frozen=True, slots=True)
class NodeBox:
    """An agency's box."""

    id: str
    x: float
    y: float
    label: str
    kind: str

    @property
    def left(self) -> float:
        """x of the box's left side."""
        return self.x - NODE_W / 2

    @property
    def top(self) -> float:
        """y of the box's top side."""
        return self.y - NODE_H / 2


@dataclass(frozen=True, slots=True)
class EdgePath:
    """An edge's curve and where its counts are written."""

    edge: Edge
    path: str
    label_x: float
    label_y: float


def _border(cx: float, cy: float, dx: float, dy: float) -> tuple[float, float]:
    """Where a ray from a box's centre in direction (dx, dy) leaves the box (plus a gap)."""
    scale = min(
        (NODE_W / 2 + 6) / abs(dx) if dx else math.inf,
        (NODE_H / 2 + 6) / abs(dy) if dy else math.inf,
    )
    return cx + dx * scale, cy + dy * scale


def layout(
    edges: list[Edge], agencies: dict[str, tuple[str, str]]
) -> tuple[list[NodeBox], list[EdgePath]]:
    """Boxes for every agency on an edge, and a path per edge.

    ``agencies`` maps an agency id to ``(label, kind label)`` where known.
    """
    ids = sorted({e.sender for e in edges} | {e.recipient for e in edges})
    rx, ry = WIDTH / 2 - NODE_W / 2 - 10, HEIGHT / 2 - NODE_H / 2 - 30
    nodes: dict[str, NodeBox] = {}
    for n, agency in enumerate(ids):
        angle = -math.pi / 2 + 2 * math.pi * n / max(len(ids), 1)
        label, kind = agencies.get(agency, (agency, ""))
        nodes[agency] = NodeBox(agency, WIDTH / 2 + rx * math.cos(angle),
                                HEIGHT / 2 + ry * math.sin(angle), label, kind)
    paths = []
    for edge in edges:
        a, b = nodes[edge.sender], nodes[edge.recipient]
        if a is b:
            continue  # an agency sending to itself has no arrow; the table still lists it
        dx, dy = b.x - a.x, b.y - a.y
        length = math.hypot(dx, dy) or 1.0
        # control point: the midpoint pushed to the left of the direction of travel
        nx, ny = dy / length, -dx / length
        cx, cy = (a.x + b.x) / 2 + nx * _BEND, (a.y + b.y) / 2 + ny * _BEND
        sx, sy = _border(a.x, a.y, cx - a.x, cy - a.y)
        ex, ey = _border(b.x, b.y, cx - b.x, cy - b.y)
        mx, my = 0.25 * sx + 0.5 * cx + 0.25 * ex, 0.25 * sy + 0.5 * cy + 0.25 * ey
        paths.append(EdgePath(edge, f"M {sx:.1f} {sy:.1f} Q {cx:.1f} {cy:.1f} {ex:.1f} {ey:.1f}",
                              mx, my))
    return list(nodes.values()), paths
