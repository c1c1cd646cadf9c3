"""A job's history grid: its last runs as columns, its steps as rows.

A step is matched across runs and versions by its definition key (its name for subtasks
stored without one), so a step renamed in a later version keeps its row and a step that
a version added or dropped shows as an empty cell in the runs without it. Rows follow
the newest run's order; steps only older runs had come after them.

The grid is two queries whatever its size (tasks.selectors.job_history_runs and
job_history_cells) and is built as one string: 100 runs x 65 steps is 6,500 cells, and a
template loop over them would take most of the page's time budget. Each cell is a link to
that subtask's log, coloured by the step's outcome (the tone classes), with its outcome
and duration as text for screen readers and as a title on hover. The grid is one roving
tab stop (static/js/app.js, [data-roving="grid"]): the arrow keys move between the run
headers and the cells as drawn, Home and End to the first and last, Enter opens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape
from urllib.parse import urlencode

from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from taskcenter.core import params as parse
from taskcenter.dashboard.presenters import (
    subtask_duration,
    subtask_label,
    subtask_tone,
    task_label,
    task_tone,
)
from taskcenter.tasks.selectors import RUN_OUTCOMES, GridCell, GridRun

RUN_COUNTS = ("25", "50", "100")
PERIODS: dict[str, timedelta | None] = {
    "": None,
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
PERIOD_LABELS = {"": "Any time", "24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days"}
OUTCOME_LABELS = {
    "": "Any outcome",
    "failed": "Failed",
    "successful": "Successful",
    "running": "Running",
    "rolledback": "Rolled back",
}


@dataclass(frozen=True)
class GridFilters:
    """The grid's filters, read from the job page's query string (shareable URLs)."""

    outcome: str = ""
    cluster: int | None = None
    period: str = ""
    runs: int = 25

    @classmethod
    def parse(cls, params) -> GridFilters:
        """The filters in `params`; InvalidParameter (a 400 page) names a bad one."""
        return cls(
            outcome=parse.choice(params, "outcome", ["", *RUN_OUTCOMES], default=""),
            cluster=parse.integer(params, "cluster", minimum=1),
            period=parse.choice(params, "period", PERIODS, default=""),
            runs=int(parse.choice(params, "runs", RUN_COUNTS, default=RUN_COUNTS[0])),
        )

    def since(self, now: datetime) -> datetime | None:
        span = PERIODS[self.period]
        return now - span if span else None

    @property
    def active(self) -> bool:
        return bool(self.outcome or self.cluster or self.period)

    def query(self) -> str:
        """The query string that shows these filters again."""
        pairs = {
            "outcome": self.outcome,
            "cluster": self.cluster or "",
            "period": self.period,
            "runs": self.runs if self.runs != int(RUN_COUNTS[0]) else "",
        }
        return urlencode({k: v for k, v in pairs.items() if v})


@dataclass
class Step:
    key: str
    name: str
    cells: dict[int, GridCell] = field(default_factory=dict)


def steps(runs: list[GridRun], cells: list[GridCell]) -> list[Step]:
    """The grid's rows: one per step key, newest run's order first."""
    by_run: dict[int, list[GridCell]] = {}
    for cell in cells:
        by_run.setdefault(cell.task_id, []).append(cell)
    rows: dict[str, Step] = {}
    for run in runs:  # newest first: the newest run names and orders the steps
        for cell in sorted(by_run.get(run.pk, ()), key=lambda c: (c.series_id, c.pk)):
            key = cell.key or cell.name
            step = rows.get(key)
            if step is None:
                step = rows[key] = Step(key=key, name=cell.name)
            step.cells.setdefault(run.pk, cell)
    return list(rows.values())


def _short_time(value: datetime | None) -> str:
    if value is None:
        return ""
    return timezone.localtime(value).strftime("%m-%d %H:%M")


def render(runs: list[GridRun], cells: list[GridCell], *, task_prefix: str, job: str) -> SafeString:
    """The grid's table: runs newest first from left to right (the newest, the one an
    operator looks at, next to the step names, never scrolled off), steps as rows."""
    if not runs:
        return mark_safe("")
    columns = runs
    rows = steps(runs, cells)
    out: list[str] = [
        f'<table class="hgrid" id="history-grid" data-hgrid aria-rowcount="{len(rows) + 1}"'
        f' aria-label="{escape(job)}: {len(rows)} steps by {len(columns)} runs">'
        '<thead><tr><th scope="col" class="hg-corner">Step</th>'
    ]
    for run in columns:
        label = task_label(run.status, run.operation)
        where = f" · {run.cluster_name}" if run.cluster_name else ""
        version = f" · v{run.version}" if run.version else ""
        title = f"#{run.pk} {label}{where}{version} · {_short_time(run.create_time)}"
        out.append(
            f'<th scope="col" class="hg-run"><a class="tone-{task_tone(run.status, run.operation)}"'
            f' href="{task_prefix}{run.pk}/" data-sid="r{run.pk}" title="{escape(title)}">'
            f'<span class="hg-run-dot" aria-hidden="true"></span>'
            f'<span class="hg-run-id">#{run.pk}</span><span class="vh"> {escape(label)}</span></a></th>'
        )
    out.append("</tr></thead><tbody>")
    for step in rows:
        name = escape(step.name)
        out.append(f'<tr><th scope="row" class="hg-step" title="{escape(step.key)}">{name}</th>')
        for run in columns:
            cell = step.cells.get(run.pk)
            if cell is None:
                out.append('<td class="hg-none"><span class="vh">not in this run</span></td>')
                continue
            label = subtask_label(cell.status, cell.operation)
            took = subtask_duration(cell.status, cell.operation, cell.start_time, cell.finish_time)
            text = label if took.text in ("—", "Skipped") else f"{label}, {took.text}"
            out.append(
                f'<td><a class="hg-cell tone-{subtask_tone(cell.status, cell.operation)}"'
                f' href="{task_prefix}{run.pk}/?view=log&amp;subtask={cell.pk}" data-sid="{cell.pk}"'
                f' title="{name} · #{run.pk} · {escape(text)}"><span class="vh">{escape(text)}</span></a></td>'
            )
        out.append("</tr>")
    out.append("</tbody></table>")
    return mark_safe("".join(out))


def filter_menus(filters: GridFilters, clusters: list[tuple[int, str]]) -> dict:
    """The filter form's options, each with whether it is the chosen one."""
    return {
        "outcomes": [(k, v, k == filters.outcome) for k, v in OUTCOME_LABELS.items()],
        "periods": [(k, v, k == filters.period) for k, v in PERIOD_LABELS.items()],
        "clusters": [(pk, name, pk == filters.cluster) for pk, name in clusters],
        "run_counts": [(n, n, int(n) == filters.runs) for n in RUN_COUNTS],
    }
