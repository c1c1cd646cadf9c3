"""The subtask DAG as an SVG, laid out on the server so the page needs no graph library.

Layout (layered, top to bottom):

1. Each subtask's layer is its longest distance from a root, so every edge points down.
2. Within a layer, siblings that share exactly the same upstreams and downstreams (the
   parallel branches of a fan-out) of at least GROUP_MIN members become one *group*: a
   framed block whose members are drawn as full nodes in a grid, or, past FULL_GROUP_MAX,
   as small tiles (a 1,000-way fan-out is a 40 x 25 block, not a 200,000 px row). The
   edges of a group go to its frame, which is exact: every member has those edges.
3. Units (nodes and groups) are ordered by the mean x of their upstreams (barycenter),
   ties by series id, and each layer is centred; a layer wider than MAX_ROW_WIDTH wraps.
4. Edges are cubic curves from the bottom of the upstream unit to the top of the other.

Rendering is plain string building (thousands of nodes in a few milliseconds, where a
template loop would take a large part of the page's time budget). Every node carries
data-sid, data-status and data-op so the page's script can recolour it from the live
status feed, and a text label, so status never depends on colour alone.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from html import escape
from operator import attrgetter

from taskcenter.core.graph import topological_order
from taskcenter.dashboard.presenters import subtask_label, subtask_tone
from taskcenter.tasks.selectors import SubtaskNode

NODE_W, NODE_H = 220, 60
H_GAP, V_GAP = 24, 60
ROW_GAP = 28
PAD = 32
GROUP_MIN = 8
FULL_GROUP_MAX = 60
GROUP_COLS = 4
GROUP_PAD = 14
GROUP_HEAD = 40
TILE, TILE_GAP = 18, 5
TILE_COLS = 40
MAX_ROW_WIDTH = 2800
NAME_CHARS = 25  # what fits on one line of a node at 13px


@dataclass
class Unit:
    members: list[SubtaskNode]
    grouped: bool = False
    compact: bool = False
    cols: int = 1
    w: float = NODE_W
    h: float = NODE_H
    x: float = 0.0
    y: float = 0.0
    order: float = 0.0
    index: int = 0

    @property
    def cx(self) -> float:
        return self.x + self.w / 2


@dataclass
class Layout:
    width: float
    height: float
    units: list[Unit] = field(default_factory=list)
    edges: list[tuple[float, float, float, float]] = field(default_factory=list)
    node_count: int = 0


def layout(subtasks: list[SubtaskNode]) -> Layout:
    if not subtasks:
        return Layout(width=0, height=0)
    ordered = sorted(subtasks, key=lambda s: (s.series_id, s.pk))
    layers = _units_by_layer(ordered)
    result = Layout(width=0, height=0, node_count=len(subtasks))
    unit_of: dict[int, Unit] = {}  # subtask id -> the unit drawn for it, once placed
    y: float = PAD
    for depth in sorted(layers):
        units = layers[depth]
        _order_by_upstreams(units, unit_of)
        y = _place_layer(units, y)
        for index, unit in enumerate(units):
            unit.index = index
            for member in unit.members:
                unit_of[member.pk] = unit
        result.units.extend(units)
        y += V_GAP
    _shift_right_of_padding(result)
    result.height = y - V_GAP + PAD
    result.edges = _edges(result.units, unit_of)
    return result


def _units_by_layer(ordered: list[SubtaskNode]) -> dict[int, list[Unit]]:
    """Units per layer: groups of identical siblings, else single nodes."""
    by_id = {s.pk: s for s in ordered}
    layer = _layers(ordered)
    buckets: dict[tuple, list[SubtaskNode]] = {}
    for sub in ordered:
        key = (
            layer[sub.pk],
            tuple(sorted(u for u in sub.upstream_ids if u in by_id)),
            tuple(sorted(d for d in sub.downstream_ids if d in by_id)),
        )
        buckets.setdefault(key, []).append(sub)
    layers: dict[int, list[Unit]] = defaultdict(list)
    for key, members in buckets.items():
        if len(members) >= GROUP_MIN:
            layers[key[0]].append(_group(members))
        else:
            layers[key[0]].extend(Unit(members=[m]) for m in members)
    return layers


def _placed_upstreams(unit: Unit, unit_of: dict[int, Unit]) -> set[int]:
    return {u for m in unit.members for u in m.upstream_ids if u in unit_of}


def _order_by_upstreams(units: list[Unit], unit_of: dict[int, Unit]) -> None:
    """Sort a layer by the mean x of each unit's placed upstreams (barycenter), ties and
    roots by series id."""
    for unit in units:
        ups = _placed_upstreams(unit, unit_of)
        if ups:
            unit.order = sum(unit_of[u].cx for u in ups) / len(ups)
        else:
            unit.order = float(unit.members[0].series_id)
    units.sort(key=lambda u: (u.order, u.members[0].series_id))


def _shift_right_of_padding(result: Layout) -> None:
    """Layers were centred on x = 0: move everything right of the padding, and size it."""
    min_x = min(u.x for u in result.units)
    for unit in result.units:
        unit.x += PAD - min_x
    result.width = max(u.x + u.w for u in result.units) + PAD


def _edges(units: list[Unit], unit_of: dict[int, Unit]) -> list[tuple[float, float, float, float]]:
    """One curve per pair of units joined by at least one subtask edge."""
    edges = []
    seen: set[tuple[int, int]] = set()
    for unit in units:
        for up_id in _placed_upstreams(unit, unit_of):
            source = unit_of[up_id]
            pair = (id(source), id(unit))
            if pair in seen or source is unit:
                continue
            seen.add(pair)
            edges.append((source.cx, source.y + source.h, unit.cx, unit.y))
    return edges


def _layers(ordered: list[SubtaskNode]) -> dict[int, int]:
    """Longest path from a root, walking the subtasks in topological order."""
    in_order, on_cycle = topological_order(
        ordered, key=attrgetter("pk"), upstreams=attrgetter("upstream_ids")
    )
    layer: dict[int, int] = {}

    def below_upstreams(sub: SubtaskNode) -> int:
        return max((layer[u] + 1 for u in sub.upstream_ids if u in layer), default=0)

    for sub in in_order:
        layer[sub.pk] = below_upstreams(sub)
    # Never drop a node, even from a (forbidden) cycle: it goes below its placed upstreams.
    layer.update({sub.pk: below_upstreams(sub) for sub in on_cycle})
    return layer


def _group(members: list[SubtaskNode]) -> Unit:
    count = len(members)
    if count <= FULL_GROUP_MAX:
        cols = min(count, GROUP_COLS)
        rows = -(-count // cols)
        w = cols * NODE_W + (cols - 1) * H_GAP + 2 * GROUP_PAD
        h = GROUP_HEAD + rows * NODE_H + (rows - 1) * 16 + GROUP_PAD
        return Unit(members=members, grouped=True, cols=cols, w=w, h=h)
    cols = min(count, TILE_COLS)
    rows = -(-count // cols)
    w = max(cols * (TILE + TILE_GAP) - TILE_GAP + 2 * GROUP_PAD, 2 * NODE_W)
    h = GROUP_HEAD + rows * (TILE + TILE_GAP) - TILE_GAP + GROUP_PAD
    return Unit(members=members, grouped=True, compact=True, cols=cols, w=w, h=h)


def _place_layer(units: list[Unit], y: float) -> float:
    """Lay units left to right centred on x = 0, wrapping rows; return the layer's bottom."""
    rows: list[list[Unit]] = [[]]
    width = 0.0
    for unit in units:
        extra = unit.w + (H_GAP if rows[-1] else 0)
        if rows[-1] and width + extra > MAX_ROW_WIDTH:
            rows.append([])
            width, extra = 0.0, unit.w
        rows[-1].append(unit)
        width += extra
    for row in rows:
        row_width = sum(u.w for u in row) + H_GAP * (len(row) - 1)
        x = -row_width / 2
        height = max(u.h for u in row)
        for unit in row:
            unit.x, unit.y = x, y + (height - unit.h) / 2
            x += unit.w + H_GAP
        y += height + ROW_GAP
    return y - ROW_GAP


# --- SVG ----------------------------------------------------------------------------------------


def render_svg(plan: Layout, *, selected_id: int | None, link: str) -> str:
    """The SVG markup. `link` is a URL prefix that a subtask id completes (?view=flow&subtask=)."""
    if not plan.units:
        return ""
    w, h = round(plan.width), round(plan.height)
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="dag" id="dag-svg" width="{w}" '
        f'height="{h}" viewBox="0 0 {w} {h}" data-width="{w}" data-height="{h}" '
        f'role="group" aria-label="Subtask graph, {plan.node_count} subtasks">',
        '<defs><marker id="dag-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker>'
        "</defs>",
        '<g class="dag-edges" aria-hidden="true">',
    ]
    for x1, y1, x2, y2 in plan.edges:
        mid = (y2 - y1) / 2
        out.append(
            f'<path d="M{x1:.0f},{y1:.0f} C{x1:.0f},{y1 + mid:.0f} {x2:.0f},{y2 - mid:.0f} '
            f'{x2:.0f},{y2 - 2:.0f}" marker-end="url(#dag-arrow)"/>'
        )
    out.append('</g><g class="dag-nodes">')
    for unit in plan.units:
        if not unit.grouped:
            out.append(_node(unit.members[0], unit.x, unit.y, selected_id, link))
            continue
        out.append(_group_svg(unit, selected_id, link))
    out.append("</g></svg>")
    return "".join(out)


def _state(sub: SubtaskNode) -> tuple[str, str]:
    label = subtask_label(sub.status, sub.operation)
    return label, subtask_tone(sub.status, sub.operation)


def _name_lines(name: str) -> list[str]:
    """One or two lines of at most NAME_CHARS, breaking at a space, with an ellipsis."""
    if len(name) <= NAME_CHARS:
        return [name]
    cut = name.rfind(" ", 0, NAME_CHARS + 1)
    if cut <= 0:
        cut = NAME_CHARS
    first, rest = name[:cut], name[cut:].strip()
    if len(rest) > NAME_CHARS:
        rest = rest[: NAME_CHARS - 1].rstrip() + "…"
    return [first, rest]


def _node(sub: SubtaskNode, x: float, y: float, selected_id: int | None, link: str) -> str:
    label, tone = _state(sub)
    lines = _name_lines(sub.name)
    full = escape(f"{sub.name} — {label}")
    runs = f" · run {sub.run_time}" if sub.run_time > 1 else ""
    selected = " is-selected" if sub.pk == selected_id else ""
    if len(lines) == 1:
        name = f'<text class="dag-name" x="16" y="25">{escape(lines[0])}</text>'
        state_y = 44
    else:
        name = (
            f'<text class="dag-name" x="16" y="20">{escape(lines[0])}'
            f'<tspan x="16" dy="15">{escape(lines[1])}</tspan></text>'
        )
        state_y = 51
    return (
        f'<a class="dag-node{selected}" href="{link}{sub.pk}" data-sid="{sub.pk}" '
        f'data-status="{sub.status}" data-op="{sub.operation}" data-tone="{tone}" '
        f'aria-label="{full}" transform="translate({x:.0f},{y:.0f})">'
        f"<title>{full}</title>"
        f'<rect class="dag-box" width="{NODE_W}" height="{NODE_H}" rx="8"/>'
        f'<rect class="dag-stripe" width="5" height="{NODE_H}" rx="2"/>'
        f"{name}"
        f'<text class="dag-state" x="16" y="{state_y}"><tspan class="dag-label">{escape(label)}'
        f'</tspan><tspan class="dag-runs">{runs}</tspan></text></a>'
    )


def _group_svg(unit: Unit, selected_id: int | None, link: str) -> str:
    members = unit.members
    first, last = members[0].name, members[-1].name
    title = f"{len(members)} parallel subtasks"
    span = f"{first} … {last}"
    if len(span) > 70:
        span = span[:69] + "…"
    parts = [
        f'<g class="dag-group" transform="translate({unit.x:.0f},{unit.y:.0f})" '
        f'data-count="{len(members)}">',
        f'<rect class="dag-frame" width="{unit.w:.0f}" height="{unit.h:.0f}" rx="12"/>',
        f'<text class="dag-group-title" x="{GROUP_PAD}" y="18">{escape(title)}'
        f'<tspan class="dag-group-span" dx="8">{escape(span)}</tspan></text>',
        f'<text class="dag-group-counts" x="{GROUP_PAD}" y="33">{escape(_counts_text(members))}'
        "</text>",
    ]
    for index, sub in enumerate(members):
        row, col = divmod(index, unit.cols)
        if unit.compact:
            x = GROUP_PAD + col * (TILE + TILE_GAP)
            y = GROUP_HEAD + row * (TILE + TILE_GAP)
            parts.append(_tile(sub, x, y, selected_id, link))
        else:
            x = GROUP_PAD + col * (NODE_W + H_GAP)
            y = GROUP_HEAD + row * (NODE_H + 16)
            parts.append(_node(sub, x, y, selected_id, link))
    parts.append("</g>")
    return "".join(parts)


def _tile(sub: SubtaskNode, x: float, y: float, selected_id: int | None, link: str) -> str:
    label, tone = _state(sub)
    full = escape(f"{sub.name} — {label}")
    selected = " is-selected" if sub.pk == selected_id else ""
    return (
        f'<a class="dag-tile{selected}" href="{link}{sub.pk}" data-sid="{sub.pk}" '
        f'data-status="{sub.status}" data-op="{sub.operation}" data-tone="{tone}" '
        f'aria-label="{full}" transform="translate({x},{y})"><title>{full}</title>'
        f'<rect width="{TILE}" height="{TILE}" rx="4"/></a>'
    )


def _counts_text(members: list[SubtaskNode]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for sub in members:
        counts[subtask_label(sub.status, sub.operation)] += 1
    return " · ".join(
        f"{n} {label.lower()}" for label, n in sorted(counts.items(), key=lambda kv: -kv[1])
    )
