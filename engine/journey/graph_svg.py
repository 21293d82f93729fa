"""A journey :class:`~engine.journey.diagram.Diagram` as a self-contained SVG, laid out here.

No Graphviz, a small Sugiyama-style layout: (1) back edges (loops) found by a depth-first
search from the entry are set aside, leaving a DAG; (2) layers by longest path, in networkx
topological order with ties broken by file order (deterministic); (3) one waypoint per layer
crossed by a long edge; (4) order within a layer: children under their parents, then
barycenter sweeps, keeping the order with the fewest crossings; (5) x: each node pulled toward
its neighbours, overlaps pushed apart; (6) forward edges are S-curves labelled in the gap under
their source, back edges run round the right-hand side in lanes of their own.

Hooks for browser tests and a live dashboard: ``<g id="node-<id>" data-node="<id>"
class="node <kind>">`` per node, ``<text class="count">`` per figure line, and
``<g class="edge" data-source=".." data-target="..">`` per edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from itertools import pairwise

import networkx as nx

from engine.journey.diagram import COLORS, COUNT_COLOR, TEXT_COLOR, Diagram, DiagramNode, wrap

MARGIN, SEP, PAD, MIN_W, MAX_W, DUMMY_W = 20.0, 28.0, 9.0, 120.0, 320.0, 10.0
# (font size, line height, width per character, wrap width) per line class
STYLE: dict[str, tuple[int, float, float, int]] = {
    "title": (13, 17.0, 7.8, 30),
    "type": (10, 14.0, 5.9, 48),
    "fact": (11, 15.0, 6.3, 42),
    "count": (11, 15.0, 6.5, 42),
    "label": (10, 13.0, 5.9, 26),
    "note-title": (13, 18.0, 7.8, 48),
    "note": (11, 15.0, 6.3, 56),
}
RADIUS = {"entry": 16, "exit": 16, "wait": 12, "wait_for": 12, "branch": 3, "split": 3}
RADIUS["webhook"] = 8
EDGE_COLOR, LABEL_COLOR, TYPE_COLOR = "#546e7a", "#37474f", "#616161"


def _n(v: float) -> str:
    s = f"{v:.1f}".rstrip("0").rstrip(".")
    return "0" if s == "-0" else s


def _x(text: str) -> str:
    return escape(text, quote=True)


def _lines(cls: str, text: str) -> list[tuple[str, str]]:
    return [(cls, part) for part in wrap(text, STYLE[cls][3])]


def _size(lines: list[tuple[str, str]]) -> tuple[float, float]:
    width = max((len(t) * STYLE[c][2] for c, t in lines), default=0.0)
    height = sum(STYLE[c][1] for c, _ in lines)
    return width, height


@dataclass
class _Box:
    node: DiagramNode
    lines: list[tuple[str, str]]
    w: float
    h: float
    cx: float = 0.0  # final position: centre x, top y
    top: float = 0.0


def _box(n: DiagramNode) -> _Box:
    lines = _lines("title", n.title) + (_lines("type", n.type_line) if n.type_line else [])
    for fact in n.facts:
        lines += _lines("fact", fact)
    lines += [("count", c) for c in n.counts]
    w, h = _size(lines)
    height = h + 2 * PAD + (6 if n.counts else 0)
    return _Box(n, lines, min(max(w + 2 * PAD + 6, MIN_W), MAX_W), height)


@dataclass
class _Link:
    source: str
    target: str
    labels: list[str]
    back: bool = False
    chain: list[str] = field(default_factory=list)  # source, waypoints..., target
    points: list[tuple[float, float]] = field(default_factory=list)
    label_at: tuple[float, float] = (0.0, 0.0)
    label_size: tuple[float, float] = (0.0, 0.0)

    @property
    def label_lines(self) -> list[str]:
        return [part for lab in self.labels if lab for part in wrap(lab, STYLE["label"][3])]


def _links(d: Diagram) -> list[_Link]:
    """Edges with the same ends merged into one, their labels stacked."""
    merged: dict[tuple[str, str], _Link] = {}
    for e in d.edges:
        link = merged.setdefault((e.source, e.target), _Link(e.source, e.target, []))
        link.labels.append(e.label)
    return list(merged.values())


def _mark_back_edges(order: list[str], links: list[_Link]) -> None:
    succ: dict[str, list[_Link]] = {v: [] for v in order}
    for link in links:
        succ[link.source].append(link)
    state: dict[str, int] = {}  # 1: on the DFS stack, 2: done
    for root in order:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(succ[root]))]
        while stack:
            v, it = stack[-1]
            for link in it:
                seen = state.get(link.target, 0)
                if seen == 1:
                    link.back = True
                elif seen == 0:
                    state[link.target] = 1
                    stack.append((link.target, iter(succ[link.target])))
                    break
            else:
                state[v] = 2
                stack.pop()


def _layers(order: list[str], links: list[_Link]) -> dict[str, int]:
    dag = nx.DiGraph()
    dag.add_nodes_from(order)
    dag.add_edges_from((k.source, k.target) for k in links if not k.back)
    rank = {v: i for i, v in enumerate(order)}
    layer: dict[str, int] = {}
    for v in nx.lexicographical_topological_sort(dag, key=rank.__getitem__):
        preds = [layer[u] + 1 for u in dag.predecessors(v)]
        layer[str(v)] = max(preds) if preds else (0 if rank[v] == 0 else 1)
    return layer


def _crossings(rows: list[list[str]], down: dict[str, list[str]]) -> int:
    pos = {v: i for row in rows for i, v in enumerate(row)}
    total = 0
    for row in rows[:-1]:
        pairs = [(pos[u], pos[w]) for u in row for w in down[u]]
        for i, (a1, b1) in enumerate(pairs):
            total += sum(1 for a2, b2 in pairs[i + 1 :] if (a1 - a2) * (b1 - b2) < 0)
    return total


def _order(rows: list[list[str]], up: dict[str, list[str]], down: dict[str, list[str]]) -> None:
    """Children under their parents, then barycenter sweeps; keep the fewest crossings."""
    seq = {v: i for i, v in enumerate(v for row in rows for v in row)}
    for i in range(1, len(rows)):
        pos = {u: j for j, u in enumerate(rows[i - 1])}

        def first_parent(v: str, pos: dict[str, int] = pos) -> tuple[float, int]:
            keys = [(pos[u], down[u].index(v)) for u in up[v]]
            return min(keys) if keys else (float("inf"), seq[v])

        rows[i].sort(key=first_parent)
    best, fewest = [r[:] for r in rows], _crossings(rows, down)
    for sweep in range(6):
        downward = sweep % 2 == 0
        span = range(1, len(rows)) if downward else range(len(rows) - 2, -1, -1)
        for i in span:
            ref = {u: j for j, u in enumerate(rows[i - 1 if downward else i + 1])}
            near = up if downward else down

            def bary(
                item: tuple[int, str], ref: dict[str, int] = ref, near: dict[str, list[str]] = near
            ) -> float:
                found = [ref[u] for u in near[item[1]]]
                return sum(found) / len(found) if found else float(item[0])

            rows[i] = [v for _, v in sorted(enumerate(rows[i]), key=bary)]
        crossings = _crossings(rows, down)
        if crossings < fewest:
            best, fewest = [r[:] for r in rows], crossings
    rows[:] = best


def _place(
    row: list[str], want: dict[str, float], width: dict[str, float], sep: float, x: dict[str, float]
) -> None:
    """Put each item as close to ``want`` as the order and the spacing allow."""
    xs: list[float] = []
    for i, v in enumerate(row):
        at = want[v]
        if i:
            at = max(at, xs[-1] + (width[row[i - 1]] + width[v]) / 2 + sep)
        xs.append(at)
    shift = sum(want[v] - at for v, at in zip(row, xs, strict=True)) / max(len(row), 1)
    for v, at in zip(row, xs, strict=True):
        x[v] = at + shift


def _ports(center: float, width: float, keys: list[tuple[float, int]]) -> dict[int, float]:
    """Spread the ends of several edges over the middle of a box side, in x order."""
    ranked = sorted(keys)
    span = width * 0.7 if len(ranked) > 1 else 0.0
    step = span / (len(ranked) - 1) if len(ranked) > 1 else 0.0
    return {idx: center - span / 2 + step * i for i, (_, idx) in enumerate(ranked)}


def _rounded(points: list[tuple[float, float]], r: float = 10.0) -> str:
    """An orthogonal polyline with rounded corners."""
    out = [f"M{_n(points[0][0])},{_n(points[0][1])}"]
    for (ax, ay), (bx, by), (cx, cy) in zip(points, points[1:], points[2:], strict=False):
        la, lc = abs(bx - ax) + abs(by - ay), abs(cx - bx) + abs(cy - by)
        rr = min(r, la / 2, lc / 2)
        px = bx + (ax - bx) * rr / la if la else bx
        py = by + (ay - by) * rr / la if la else by
        qx = bx + (cx - bx) * rr / lc if lc else bx
        qy = by + (cy - by) * rr / lc if lc else by
        out.append(f"L{_n(px)},{_n(py)} Q{_n(bx)},{_n(by)} {_n(qx)},{_n(qy)}")
    out.append(f"L{_n(points[-1][0])},{_n(points[-1][1])}")
    return " ".join(out)


def _curved(points: list[tuple[float, float]]) -> str:
    """Vertical S-curves between points at different x, straight lines otherwise."""
    out = [f"M{_n(points[0][0])},{_n(points[0][1])}"]
    for (ax, ay), (bx, by) in pairwise(points):
        if abs(ax - bx) < 0.05:
            out.append(f"L{_n(bx)},{_n(by)}")
        else:
            my = (ay + by) / 2
            out.append(f"C{_n(ax)},{_n(my)} {_n(bx)},{_n(my)} {_n(bx)},{_n(by)}")
    return " ".join(out)


def to_svg(d: Diagram) -> str:
    boxes = {n.id: _box(n) for n in d.nodes}
    order = list(boxes)
    links = _links(d)
    _mark_back_edges(order, links)
    layer = _layers(order, links)

    # Vertices: the boxes plus one waypoint per layer crossed by a long edge.
    width = {v: b.w for v, b in boxes.items()}
    up: dict[str, list[str]] = {v: [] for v in order}
    down: dict[str, list[str]] = {v: [] for v in order}
    for k in (k for k in links if not k.back):
        k.chain = [k.source]
        for lay in range(layer[k.source] + 1, layer[k.target]):
            w = f" w{len(width)}"  # a leading space: never a node id
            width[w], layer[w], up[w], down[w] = DUMMY_W, lay, [], []
            k.chain.append(w)
        k.chain.append(k.target)
        for upper, lower in pairwise(k.chain):
            down[upper].append(lower)
            up[lower].append(upper)
    rows: list[list[str]] = [[] for _ in range(max(layer.values()) + 1)]
    for v in width:
        rows[layer[v]].append(v)
    _order(rows, up, down)

    x: dict[str, float] = {}
    for row in rows:
        total = sum(width[v] for v in row) + SEP * (len(row) - 1)
        at = -total / 2
        for v in row:
            x[v] = at + width[v] / 2
            at += width[v] + SEP
    for sweep in range(9):
        downward = sweep % 2 == 0
        span = range(1, len(rows)) if downward else range(len(rows) - 2, -1, -1)
        near = up if downward else down
        for i in span:
            want = {
                v: sum(x[u] for u in near[v]) / len(near[v]) if near[v] else x[v] for v in rows[i]
            }
            _place(rows[i], want, width, SEP, x)
    # Straighten long edges: each waypoint moves toward its chain's mean x, within its gap.
    for k in links:
        inner = k.chain[1:-1]
        line = sum(x[w] for w in inner) / len(inner) if inner else 0.0
        for w in inner:
            row = rows[layer[w]]
            j = row.index(w)
            lo = x[row[j - 1]] + (width[row[j - 1]] + DUMMY_W) / 2 + SEP if j else line
            hi = (
                x[row[j + 1]] - (width[row[j + 1]] + DUMMY_W) / 2 - SEP
                if j + 1 < len(row)
                else line
            )
            x[w] = min(max(line, lo), max(hi, lo))

    # y: rows, with room between them for the labels of the edges leaving each row.
    note_lines = _lines("note-title", d.title) + [
        line for text in d.note for line in _lines("note", text)
    ]
    note_w, note_h = _size(note_lines)
    note_w, note_h = note_w + 2 * PAD + 6, note_h + 2 * PAD
    row_h = [max([boxes[v].h for v in row if v in boxes] + [20.0]) for row in rows]
    gap = [44.0] * len(rows)
    for k in links:
        if not k.back:
            gap[layer[k.source]] = max(gap[layer[k.source]], 44.0 + 13.0 * len(k.label_lines))
    top = [MARGIN + note_h + 28.0]
    for i in range(1, len(rows)):
        top.append(top[-1] + row_h[i - 1] + gap[i - 1])

    def box_top(v: str) -> float:
        return top[layer[v]] + (row_h[layer[v]] - boxes[v].h) / 2

    # Edge ends: spread over the bottom (out) and top (in) of each box; back edges rightmost.
    def ahead(k: _Link, out: bool) -> float:
        if k.back:
            return float("inf")
        return x[k.chain[1]] if out else x[k.chain[-2]]

    out_port: dict[int, float] = {}
    in_port: dict[int, float] = {}
    for v in order:
        outs = [(ahead(k, True), i) for i, k in enumerate(links) if k.source == v]
        ins = [(ahead(k, False), i) for i, k in enumerate(links) if k.target == v]
        out_port.update(_ports(x[v], width[v], outs))
        in_port.update(_ports(x[v], width[v], ins))

    # Forward edges and their labels, pushed apart within each gap.
    by_row: dict[int, list[_Link]] = {}
    for i, k in enumerate(links):
        lines = k.label_lines
        lw, lh = _size([("label", t) for t in lines])
        k.label_size = (lw + 8, lh + 4) if lines else (0.0, 0.0)
        if k.back:
            continue
        s, t = k.source, k.target
        bottom = top[layer[s]] + row_h[layer[s]]
        pts = [(out_port[i], box_top(s) + boxes[s].h), (out_port[i], bottom)]
        for w in k.chain[1:-1]:
            pts += [(x[w], top[layer[w]]), (x[w], top[layer[w]] + row_h[layer[w]])]
        pts += [(in_port[i], top[layer[t]]), (in_port[i], box_top(t))]
        k.points = [p for j, p in enumerate(pts) if j == 0 or p != pts[j - 1]]
        k.label_at = ((out_port[i] + pts[2][0]) / 2, (bottom + pts[2][1]) / 2)
        if lines:
            by_row.setdefault(layer[s], []).append(k)
    for row_links in by_row.values():
        row_links.sort(key=lambda k: k.label_at[0])
        keys = [str(j) for j in range(len(row_links))]
        lx: dict[str, float] = {}
        pairs = list(zip(keys, row_links, strict=True))
        _place(
            keys,
            {n: k.label_at[0] for n, k in pairs},
            {n: k.label_size[0] for n, k in pairs},
            8.0,
            lx,
        )
        for n, k in pairs:
            k.label_at = (lx[n], k.label_at[1])

    # Back edges: down under the source row, up a lane on the right, into the target's top.
    def right_edge(lo: int, hi: int) -> float:
        edges = [x[v] + width[v] / 2 for v in width if lo <= layer[v] <= hi]
        edges += [
            k.label_at[0] + k.label_size[0] / 2
            for k in links
            if not k.back and k.label_lines and lo <= layer[k.source] <= hi
        ]
        return max(edges)

    lanes: list[tuple[int, int]] = []
    for i, k in enumerate(links):
        if not k.back:
            continue
        lo, hi = layer[k.target], layer[k.source]
        nth = sum(1 for a, b in lanes if a <= hi and lo <= b)
        lanes.append((lo, hi))
        lane = right_edge(lo, hi) + 30.0 + 26.0 * nth
        y1 = top[hi] + row_h[hi] + 12.0 + 4.0 * nth
        y2 = top[lo] - 12.0 - 4.0 * nth
        k.points = [
            (out_port[i], box_top(k.source) + boxes[k.source].h),
            (out_port[i], y1),
            (lane, y1),
            (lane, y2),
            (in_port[i], y2),
            (in_port[i], box_top(k.target)),
        ]
        k.label_at = (lane, (y1 + y2) / 2)

    # Bounds, then emit with everything shifted right of the margin.
    lefts = [x[v] - width[v] / 2 for v in width]
    rights = [x[v] + width[v] / 2 for v in width]
    for k in links:
        lefts.append(k.label_at[0] - k.label_size[0] / 2)
        rights.append(k.label_at[0] + k.label_size[0] / 2)
        rights.extend(p[0] for p in k.points)
    dx = MARGIN - min(lefts)
    for v, b in boxes.items():
        b.cx, b.top = x[v] + dx, box_top(v)
    for k in links:
        k.points = [(px + dx, py) for px, py in k.points]
        k.label_at = (k.label_at[0] + dx, k.label_at[1])
    total_w = max(max(rights) + dx + MARGIN, note_w + 2 * MARGIN)
    total_h = max([top[-1] + row_h[-1]] + [p[1] for k in links for p in k.points]) + MARGIN + 8
    return _emit(d, boxes, links, (total_w, total_h), note_lines, (note_w, note_h))


def _text(cls: str, cx: float, y: float, text: str, extra: str = "") -> str:
    size = STYLE[cls][0]
    bold = ' font-weight="bold"' if cls in ("title", "note-title") else ""
    color = {"type": TYPE_COLOR, "count": COUNT_COLOR, "label": LABEL_COLOR}.get(cls, TEXT_COLOR)
    return (
        f'<text class="{cls}" x="{_n(cx)}" y="{_n(y)}" font-size="{size}"{bold} '
        f'fill="{color}"{extra}>{_x(text)}</text>'
    )


def _emit(
    d: Diagram,
    boxes: dict[str, _Box],
    links: list[_Link],
    size: tuple[float, float],
    note_lines: list[tuple[str, str]],
    note_size: tuple[float, float],
) -> str:
    (total_w, total_h), (note_w, note_h) = size, note_size
    arrow = f"arrow-{d.journey_id}"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(total_w)}" height="{_n(total_h)}" '
        f'viewBox="0 0 {_n(total_w)} {_n(total_h)}" font-family="Helvetica, Arial, sans-serif" '
        f'role="img" aria-label="{_x(d.title)}" data-journey="{_x(d.journey_id)}">',
        f"<title>{_x(d.title)}</title>",
        f'<defs><marker id="{_x(arrow)}" viewBox="0 0 10 10" refX="9" refY="5" '
        f'markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" '
        f'fill="{EDGE_COLOR}"/></marker></defs>',
        '<rect class="background" width="100%" height="100%" fill="#ffffff"/>',
    ]
    fill, stroke = COLORS["note"]
    out.append(
        f'<g id="journey-note" class="note"><rect x="{_n(MARGIN)}" y="{_n(MARGIN)}" '
        f'width="{_n(note_w)}" height="{_n(note_h)}" rx="3" fill="{fill}" '
        f'stroke="{stroke}" stroke-dasharray="4 3"/>'
    )
    cursor = MARGIN + PAD
    for cls, text in note_lines:
        out.append(_text(cls, MARGIN + PAD + 3, cursor + STYLE[cls][0], text))
        cursor += STYLE[cls][1]
    out.append("</g>")
    for k in links:
        path = _rounded(k.points) if k.back else _curved(k.points)
        cls = "edge back" if k.back else "edge"
        out.append(
            f'<g class="{cls}" data-source="{_x(k.source)}" data-target="{_x(k.target)}">'
            f'<path d="{path}" fill="none" stroke="{EDGE_COLOR}" stroke-width="1.4" '
            f'marker-end="url(#{_x(arrow)})"/></g>'
        )
    for k in links:
        lines = k.label_lines
        if not lines:
            continue
        (cx, cy), (lw, lh) = k.label_at, k.label_size
        out.append(
            f'<g class="edge-label" data-source="{_x(k.source)}" '
            f'data-target="{_x(k.target)}"><rect x="{_n(cx - lw / 2)}" '
            f'y="{_n(cy - lh / 2)}" width="{_n(lw)}" height="{_n(lh)}" rx="3" '
            f'fill="#ffffff" fill-opacity="0.92"/>'
        )
        for j, line in enumerate(lines):
            y = cy - lh / 2 + 2 + STYLE["label"][1] * j + 10
            out.append(_text("label", cx, y, line, ' text-anchor="middle"'))
        out.append("</g>")
    for b in boxes.values():
        n = b.node
        bx, by = b.cx - b.w / 2, b.top
        fill, stroke = COLORS[n.kind]
        dash = ' stroke-dasharray="5 3"' if n.kind == "missing" else ""
        out.append(f'<g id="node-{_x(n.id)}" data-node="{_x(n.id)}" class="node {n.kind}">')
        tip = f"{n.id}: {n.tooltip}" if n.tooltip else n.id
        out.append(f"<title>{_x(tip)}</title>")
        out.append(
            f'<rect x="{_n(bx)}" y="{_n(by)}" width="{_n(b.w)}" height="{_n(b.h)}" '
            f'rx="{RADIUS.get(n.kind, 4)}" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="1.4"{dash}/>'
        )
        cursor = by + PAD
        for j, (cls, text) in enumerate(b.lines):
            if cls == "count" and b.lines[j - 1][0] != "count":
                cursor += 3
                out.append(
                    f'<line class="separator" x1="{_n(bx + 8)}" y1="{_n(cursor)}" '
                    f'x2="{_n(bx + b.w - 8)}" y2="{_n(cursor)}" stroke="{stroke}" '
                    f'stroke-opacity="0.5"/>'
                )
                cursor += 3
            baseline = cursor + STYLE[cls][0] + (2 if cls == "title" else 1)
            out.append(_text(cls, b.cx, baseline, text, ' text-anchor="middle"'))
            cursor += STYLE[cls][1]
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"
