"""The flow diagram's layout stays legible at any size: no two boxes or labels overlap, every
label sits on its own edge, everything is inside the drawing."""

from __future__ import annotations

import math

from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from casebridge.gateway.app import create_app
from casebridge.gateway.console.data import OUTCOMES, Edge
from casebridge.gateway.console.diagram import NODE_H, NODE_W, Diagram, layout
from tests.console.conftest import sign_in
from tests.console.html import page
from tests.console.region import region_table
from tests.console.seed import Seeded

Rect = tuple[float, float, float, float]


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _on_curve(path: str, x: float, y: float) -> float:
    """Distance from (x, y) to the quadratic curve ``M sx sy Q cx cy ex ey``."""
    _m, sx, sy, _q, cx, cy, ex, ey = path.split()
    p0, p1, p2 = (float(sx), float(sy)), (float(cx), float(cy)), (float(ex), float(ey))
    best = math.inf
    for i in range(2001):
        t = i / 2000
        u = 1 - t
        px = u * u * p0[0] + 2 * u * t * p1[0] + t * t * p2[0]
        py = u * u * p0[1] + 2 * u * t * p1[1] + t * t * p2[1]
        best = min(best, math.hypot(px - x, py - y))
    return best


def check_legible(diagram: Diagram) -> None:
    """The invariants of a legible diagram."""
    boxes = [(n.left, n.top, n.left + NODE_W, n.top + NODE_H) for n in diagram.nodes]
    labels = [(p.label_x - p.label_w / 2, p.label_y - 13, p.label_x + p.label_w / 2,
               p.label_y + 13) for p in diagram.paths]
    for i, a in enumerate(boxes):
        assert 0 <= a[0] and 0 <= a[1] and a[2] <= diagram.width and a[3] <= diagram.height
        assert not any(_overlap(a, b) for b in boxes[i + 1:]), "two agency boxes overlap"
    for i, a in enumerate(labels):
        assert 0 <= a[0] and 0 <= a[1] and a[2] <= diagram.width and a[3] <= diagram.height
        assert not any(_overlap(a, b) for b in labels[i + 1:]), "two count labels overlap"
        assert not any(_overlap(a, b) for b in boxes), "a count label covers an agency"
    for p in diagram.paths:
        assert _on_curve(p.path, p.label_x, p.label_y) < 0.5, "a label is off its edge"
        assert p.text and all(part.count > 0 for part in p.parts)


def _region_edges() -> tuple[list[Edge], dict[str, tuple[str, str]]]:
    table = region_table()
    names = {a["id"]: (a["name"], a["kind"]) for a in table["agencies"]}  # type: ignore[index]
    edges = []
    for k, route in enumerate(table["routes"]):  # type: ignore[arg-type]
        edge = Edge(route["sender"], route["recipients"][0])
        # varied, some large, counts: labels of different widths
        edge.counts.update({"permit": k * 37 % 120, "partial": k % 4, "block": k % 7 * 11,
                            "override": 1 if k % 5 == 0 else 0})
        edges.append(edge)
    return edges, names


def test_twelve_agencies_and_forty_routes_are_legible() -> None:
    edges, names = _region_edges()
    diagram = layout(edges, names)
    assert len(diagram.nodes) == 12 and len(diagram.paths) == 40
    check_legible(diagram)
    # legible on a laptop: drawn at more than 90 % of its size in a 1366 px wide window
    assert diagram.width <= 1450


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_any_region_is_legible(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 12), label="agencies")
    ids = [f"agency-{i:02d}" for i in range(n)]
    pairs = data.draw(st.lists(st.tuples(st.sampled_from(ids), st.sampled_from(ids)),
                               min_size=1, max_size=40, unique=True), label="edges")
    edges = []
    for sender, recipient in pairs:
        edge = Edge(sender, recipient)
        for outcome in OUTCOMES:
            edge.counts[outcome] = data.draw(st.integers(0, 5000), label=outcome)
        if edge.total == 0:
            edge.counts["block"] = 1
        edges.append(edge)
    diagram = layout(edges, {})
    check_legible(diagram)
    assert len(diagram.paths) == len([e for e in edges if e.sender != e.recipient])


def test_the_region_page_draws_every_agency_and_route(region_data: Seeded) -> None:
    app = create_app(region_data.settings())
    with TestClient(app, follow_redirects=False) as client:
        sign_in(client, "dana-dpo")
        answer = client.get("/console/flows")
    assert answer.status_code == 200
    svg = page(answer.text).xpath("//*[local-name()='svg']")[0]
    assert len(svg.xpath(".//*[local-name()='g'][@class='node']")) == 12
    edges = svg.xpath(".//*[local-name()='a'][@class='edge']")
    assert len(edges) == 40
    labels = [e.get("aria-label") for e in edges]
    assert any("Jobcenter Duisburg → Jugendamt Essen" in label for label in labels)
