"""A task's timeline (a Gantt chart): every attempt of every subtask as a bar on one time
axis, drawn on the server as SVG like the flow view.

- Each attempt is its own bar: the part it waited for a worker (READY to its start) light,
  the part it ran solid, a rollback hatched. The attempts a retry or a rollback replaced
  come from the attempt history (tasks.models.SubtaskAttempt), the current one from the
  subtask's row.
- Waits for a person are shaded: from an attempt's end to the retry or rollback an
  operator asked for, and the time an approval step waits for its approver.
- The critical path is marked: from the subtask that ended last, back through the
  upstream that ended last, to a root; the steps that made the task as long as it is.
- Rows follow the flow view's layers (the longest distance from a root), and siblings of a
  fan-out (the same upstreams and downstreams, at least dag.GROUP_MIN of them) share one
  row, their bars drawn over each other, so 1,000 subtasks stay a chart of a few rows.
  `expand` (a group's first subtask id) lists one group's members a row each.

Every bar is a link carrying data-sid, so the page's roving tab stop (static/js/app.js)
moves between bars with the arrow keys and Enter selects one, as in the flow view.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from html import escape
from operator import attrgetter

from taskcenter.core.graph import topological_order
from taskcenter.dashboard.dag import GROUP_MIN
from taskcenter.dashboard.presenters import format_duration, subtask_label, subtask_tone
from taskcenter.tasks.models import SubtaskRunMode, SubtaskStatus
from taskcenter.tasks.selectors import PastAttempt, SubtaskNode

LABEL_W = 260
CHART_W = 900
ROW_H = 26
BAR_H = 14
AXIS_H = 30
PAD = 12
TICK_STEPS = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
    86400, 172800, 604800,
]  # fmt: skip
# A subtask kind that waits for a person while it runs (approval gates).
APPROVAL_KIND = "APPROVAL_TASK"
ACTIVE = (SubtaskStatus.RUNNING, SubtaskStatus.CANCELING)
BY_OPERATOR = (SubtaskRunMode.RETRY, SubtaskRunMode.ROLLBACK)
SKIPS = (SubtaskRunMode.SKIP, SubtaskRunMode.ROLLBACK_SKIP)
# Keyed by plain strings: looked up with a row's stored operation.
ATTEMPT_MODES: dict[str, str] = {
    SubtaskRunMode.RETRY: "retry",
    SubtaskRunMode.ROLLBACK: "rollback",
    SubtaskRunMode.SKIP: "skipped",
    SubtaskRunMode.ROLLBACK_SKIP: "rollback skipped",
    SubtaskRunMode.CANCEL: "canceled",
}


@dataclass
class Attempt:
    sid: int
    number: int
    operation: str
    status: str
    ready: datetime | None
    start: datetime | None
    end: datetime | None
    waited_for_operator: datetime | None = None  # the previous attempt's end, if a person
    # was waited for before this one was asked


@dataclass
class Row:
    members: list[SubtaskNode]
    grouped: bool = False
    critical: bool = False
    attempts: list[Attempt] = field(default_factory=list)


@dataclass
class Timeline:
    rows: list[Row]
    start: datetime | None
    end: datetime | None
    critical_path: list[SubtaskNode]
    subtask_count: int
    expanded: int | None = None


Marks = dict[int, tuple[int, datetime | None]]  # subtask id: (attempt, ready_at)


def attempts_of(
    nodes: list[SubtaskNode], marks: Marks, past: list[PastAttempt], now: datetime
) -> dict[int, list[Attempt]]:
    """Every attempt of every subtask, oldest first, with the person waited for before each."""
    result: dict[int, list[Attempt]] = {node.pk: [] for node in nodes}
    for row in past:
        if row.subtask_id in result:
            result[row.subtask_id].append(
                Attempt(
                    row.subtask_id,
                    row.attempt,
                    row.operation,
                    row.status,
                    row.ready_at,
                    row.start_time,
                    row.finish_time,
                )
            )
    for node in nodes:
        attempts = result[node.pk]
        current = _current(node, *marks.get(node.pk, (0, None)), now)
        if current is not None and attempts and attempts[-1].number == current.number:
            # Its attempt is in the history already: a rollback marked it (not begun
            # yet), or a skip ended it, which shows as a mark when it happened.
            skipped = current.operation in SKIPS
            current = replace(current, ready=None, start=None) if skipped else None
        if current is not None:
            attempts.append(current)
        for before, after in zip(attempts, attempts[1:], strict=False):
            if (
                after.operation in BY_OPERATOR
                and before.end is not None
                and after.ready is not None
                and after.ready > before.end
            ):
                after.waited_for_operator = before.end
    return result


def _current(
    node: SubtaskNode, number: int, ready_at: datetime | None, now: datetime
) -> Attempt | None:
    if number == 0 or ready_at is None:
        return None
    started = node.start_time is not None and node.start_time >= ready_at
    start = node.start_time if started else None
    if node.status in ACTIVE:
        end: datetime | None = now
    elif node.status == SubtaskStatus.READY:
        end = None
    else:
        end = node.finish_time
    return Attempt(node.pk, number, node.operation, node.status, ready_at, start, end)


def _rows(nodes: list[SubtaskNode], expand: int | None) -> list[Row]:
    """Rows in the flow view's layers; a fan-out's siblings share a row unless expanded."""
    in_order, on_cycle = topological_order(
        nodes, key=attrgetter("pk"), upstreams=attrgetter("upstream_ids")
    )
    layer: dict[int, int] = {}
    for node in [*in_order, *on_cycle]:
        layer[node.pk] = max((layer[u] + 1 for u in node.upstream_ids if u in layer), default=0)
    buckets: dict[tuple, list[SubtaskNode]] = {}
    for node in sorted(nodes, key=lambda n: (layer[n.pk], n.series_id, n.pk)):
        key = (layer[node.pk], tuple(sorted(node.upstream_ids)), tuple(sorted(node.downstream_ids)))
        buckets.setdefault(key, []).append(node)
    rows: list[Row] = []
    for members in buckets.values():
        if len(members) >= GROUP_MIN and members[0].pk != expand:
            rows.append(Row(members=members, grouped=True))
        else:
            rows.extend(Row(members=[member]) for member in members)
    return rows


def critical_path(nodes: list[SubtaskNode], ends: dict[int, datetime]) -> list[SubtaskNode]:
    """From the subtask that ended last, back through the upstream that ended last."""
    by_id = {node.pk: node for node in nodes}
    ended = [node for node in nodes if node.pk in ends]
    if not ended:
        return []
    node = max(ended, key=lambda n: (ends[n.pk], -n.series_id))
    path = [node]
    seen = {node.pk}
    while True:
        ups = [by_id[u] for u in node.upstream_ids if u in ends and u in by_id and u not in seen]
        if not ups:
            break
        node = max(ups, key=lambda n: (ends[n.pk], -n.series_id))
        path.append(node)
        seen.add(node.pk)
    return list(reversed(path))


def build(
    nodes: list[SubtaskNode],
    marks: Marks,
    past: list[PastAttempt],
    *,
    now: datetime,
    expand: int | None = None,
) -> Timeline:
    attempts = attempts_of(nodes, marks, past, now)
    instants = [
        t
        for items in attempts.values()
        for a in items
        for t in (a.ready, a.start, a.end, a.waited_for_operator)
        if t is not None
    ]
    ends = {pk: items[-1].end for pk, items in attempts.items() if items and items[-1].end}
    path = critical_path(nodes, {pk: end for pk, end in ends.items() if end is not None})
    on_path = {node.pk for node in path}
    rows = _rows(nodes, expand)
    for row in rows:
        row.critical = any(member.pk in on_path for member in row.members)
        row.attempts = [a for member in row.members for a in attempts[member.pk]]
    return Timeline(
        rows=rows,
        start=min(instants) if instants else None,
        end=max(instants) if instants else None,
        critical_path=path,
        subtask_count=len(nodes),
        expanded=expand,
    )


def _tick_step(span: float) -> int:
    for step in TICK_STEPS:
        if span / step <= 8:
            return step
    return TICK_STEPS[-1]


def _attempt_words(member: SubtaskNode, attempt: Attempt) -> str:
    mode = ATTEMPT_MODES.get(attempt.operation, "run")
    label = subtask_label(attempt.status, attempt.operation)
    parts = [f"{member.name} — attempt {attempt.number} ({mode}): {label}"]
    if attempt.waited_for_operator and attempt.ready:
        waited = format_duration(attempt.ready - attempt.waited_for_operator)
        parts.append(f"waited {waited} for an operator")
    if attempt.ready and attempt.start:
        parts.append(f"queued {format_duration(attempt.start - attempt.ready)}")
    if attempt.start and attempt.end:
        verb = "waited for approval" if member.node_type == APPROVAL_KIND else "ran"
        parts.append(f"{verb} {format_duration(attempt.end - attempt.start)}")
    return ", ".join(parts)


def render_svg(
    timeline: Timeline, *, now: datetime, selected_id: int | None, link: str, expand_link: str
) -> str:
    """The chart. `link` is a URL prefix a subtask id completes; `expand_link` one that a
    group's first id completes (an empty id folds the group again)."""
    if timeline.start is None or timeline.end is None:
        return ""
    link, expand_link = escape(link), escape(expand_link)
    t0 = timeline.start
    span = max((timeline.end - t0).total_seconds(), 1.0)
    scale = CHART_W / span

    def x(t: datetime) -> float:
        return LABEL_W + (t - t0).total_seconds() * scale

    width = LABEL_W + CHART_W + 4 * PAD  # room for the last tick's label
    height = AXIS_H + len(timeline.rows) * ROW_H + PAD
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="tl" id="timeline-svg" width="{width}"'
        f' height="{height}" viewBox="0 0 {width} {height}" role="group"'
        f' aria-label="Timeline, {timeline.subtask_count} subtasks in {len(timeline.rows)} rows">',
        '<defs><pattern id="tl-hatch" width="6" height="6" patternUnits="userSpaceOnUse"'
        ' patternTransform="rotate(45)"><rect class="tl-hatch-bg" width="6" height="6"/>'
        '<line class="tl-hatch-line" x1="0" y1="0" x2="0" y2="6"/></pattern></defs>',
        '<g class="tl-axis" aria-hidden="true">',
    ]
    step = _tick_step(span)
    tick = 0
    while tick <= span:
        tx = LABEL_W + tick * scale
        out.append(
            f'<line class="tl-tick" x1="{tx:.1f}" y1="{AXIS_H - 6}" x2="{tx:.1f}" y2="{height - PAD}"/>'
            f'<text class="tl-tick-label" x="{tx + 3:.1f}" y="{AXIS_H - 12}">'
            f"{escape(format_duration(timedelta(seconds=tick)) if tick else '0s')}</text>"
        )
        tick += step
    out.append("</g>")
    for index, row in enumerate(timeline.rows):
        out.append(_row(row, index, x, now, selected_id, link, expand_link, timeline.expanded))
    out.append("</svg>")
    return "".join(out)


def _row(row, index, x, now, selected_id, link, expand_link, expanded) -> str:
    y = AXIS_H + index * ROW_H
    first = row.members[0]
    critical = " is-critical" if row.critical else ""
    out = [f'<g class="tl-row{critical}" data-row="{index}">']
    out.append(
        f'<rect class="tl-band" x="0" y="{y}" width="{LABEL_W + CHART_W}" height="{ROW_H}"/>'
    )
    if row.grouped:
        name = f"{first.name} … ×{len(row.members)}"
        out.append(
            f'<a class="tl-expand" href="{expand_link}{first.pk}"'
            f' aria-label="Show the {len(row.members)} parallel subtasks one per row">'
            f'<text class="tl-label tl-group-label" x="8" y="{y + 17}">{escape(_cut(name))}</text></a>'
        )
    else:
        back = ""
        if expanded is not None and first.pk == expanded:
            back = (
                f'<a class="tl-expand" href="{expand_link}" aria-label="Fold the parallel'
                f' subtasks into one row"><text class="tl-fold" x="{LABEL_W - 18}"'
                f' y="{y + 17}">▴</text></a>'
            )
        mark = "◆ " if row.critical else ""
        out.append(
            f'<text class="tl-label" x="8" y="{y + 17}"><title>{escape(first.name)}</title>'
            f"{mark}{escape(_cut(first.name))}</text>{back}"
        )
    top = y + (ROW_H - BAR_H) / 2
    member_of = {m.pk: m for m in row.members}
    for attempt in row.attempts:
        member = member_of[attempt.sid]
        out.append(_bar(member, attempt, x, top, now, selected_id, link, row.critical))
    out.append("</g>")
    return "".join(out)


def _cut(name: str, limit: int = 34) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _bar(member, attempt: Attempt, x, top, now, selected_id, link, critical) -> str:
    tone = subtask_tone(attempt.status, attempt.operation)
    words = escape(_attempt_words(member, attempt))
    classes = ["tl-bar", f"tone-{tone}"]
    if attempt.operation in (SubtaskRunMode.ROLLBACK, SubtaskRunMode.ROLLBACK_SKIP):
        classes.append("is-rollback")
    if critical:
        classes.append("is-critical")
    if member.pk == selected_id:
        classes.append("is-selected")
    parts = []
    if attempt.waited_for_operator and attempt.ready:
        x1, x2 = x(attempt.waited_for_operator), x(attempt.ready)
        parts.append(
            f'<rect class="tl-wait-operator" x="{x1:.1f}" y="{top - 4}" width="{max(x2 - x1, 1):.1f}"'
            f' height="{BAR_H + 8}"/>'
        )
    if attempt.ready:
        queue_end = attempt.start or attempt.end or now
        x1, x2 = x(attempt.ready), x(queue_end)
        if x2 - x1 >= 0.5:
            parts.append(
                f'<rect class="tl-queue" x="{x1:.1f}" y="{top + 3}" width="{x2 - x1:.1f}"'
                f' height="{BAR_H - 6}"/>'
            )
    if attempt.start and attempt.end:
        x1, x2 = x(attempt.start), x(attempt.end)
        kind = "tl-wait-approval" if member.node_type == APPROVAL_KIND else "tl-run"
        parts.append(
            f'<rect class="{kind}" x="{x1:.1f}" y="{top}" width="{max(x2 - x1, 2):.1f}"'
            f' height="{BAR_H}" rx="2"/>'
        )
    elif not parts:
        # Never started nor queued long enough to draw: a mark where it happened.
        at = attempt.end or attempt.ready or now
        parts.append(
            f'<rect class="tl-run" x="{x(at) - 1:.1f}" y="{top}" width="2" height="{BAR_H}"/>'
        )
    return (
        f'<a class="{" ".join(classes)}" id="tlb-{member.pk}-{attempt.number}"'
        f' href="{link}{member.pk}" data-sid="{member.pk}" data-status="{member.status}"'
        f' data-op="{member.operation}" data-run="{member.run_time or 1}" aria-label="{words}">'
        f"<title>{words}</title>{''.join(parts)}</a>"
    )
