"""A job's history grid: its last runs as columns, its steps as rows.

A step is matched across runs and versions by its definition key (its name for subtasks
stored without one), so a step renamed in a later version keeps its row and a step that
a version added or dropped shows as an empty cell in the runs without it. Rows follow
the newest run's order; steps only older runs had come after them.

The grid is two queries whatever its size (tasks.selectors.job_history_runs and
job_history_cells) and is built as one string: 100 runs x 65 steps is 6,500 cells, and a
template loop over them would take most of the page's time budget. Each cell is a link to
that subtask's log, coloured by the step's outcome (a one-letter class per tone), with
its outcome and duration as its title: on hover, and for screen readers under the row's
and the column's headers. The grid is one roving tab stop (static/js/app.js,
[data-roving="grid"], its items the grid's links): the arrow keys move between the run
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
    SKIPPED,
    format_duration,
    subtask_label,
    subtask_tone,
    task_label,
    task_tone,
)
from taskcenter.tasks.models import SubtaskStatus
from taskcenter.tasks.selectors import RUN_OUTCOMES, GridCell, GridRun

RUN_COUNTS = ("25", "50", "100")
ACTIVE = (SubtaskStatus.RUNNING, SubtaskStatus.CANCELING)
WAITING = (SubtaskStatus.READY, SubtaskStatus.PENDING)
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
        for cell in by_run.get(run.pk, ()):  # in series order (job_history_cells)
            key = cell.key or cell.name
            step = rows.get(key)
            if step is None:
                step = rows[key] = Step(key=key, name=cell.name)
            step.cells.setdefault(run.pk, cell)
    return list(rows.values())


def _cell_text(
    cell: GridCell, labels: dict[tuple[str, str], tuple[str, str]], now: datetime
) -> tuple[str, str]:
    """(class, "Label, duration") of a cell: its tone's letter (CELL_CLASS) and presenters'
    words, looked up once per state."""
    state = (cell.status, cell.operation)
    found = labels.get(state)
    if found is None:
        found = labels[state] = (
            CELL_CLASS[subtask_tone(cell.status, cell.operation)],
            subtask_label(cell.status, cell.operation),
        )
    tone, label = found
    # subtask_duration's rules, inlined: it is called 6,500 times for one grid.
    start, finish = cell.start_time, cell.finish_time
    if start is None or cell.operation in SKIPPED:
        return tone, label
    if finish is None or cell.status in ACTIVE:
        if cell.status not in ACTIVE:
            return tone, label  # queued or waiting: the start is an earlier attempt's
        finish = now
    elif cell.status in WAITING:
        return tone, label
    return tone, f"{label}, {format_duration(finish - start)}"


# A cell's tone as one letter: 6,500 cells share these classes (static/css/app.css, .hgrid).
CELL_CLASS = {
    "successful": "s",
    "failed": "f",
    "running": "r",
    "canceling": "c",
    "pending": "p",
    "ready": "q",
    "skipped": "k",
    "rolledback": "b",
}


def render(runs: list[GridRun], cells: list[GridCell], *, task_prefix: str, job: str) -> SafeString:
    """The grid's table: runs newest first from left to right (the newest, the one an
    operator looks at, next to the step names, never scrolled off), steps as rows.

    Each cell is as light as it can be (100 x 65 cells are most of the page): a link and
    nothing else, `<td><a class=f href=".." title="Failed, 3s"></a>` (`</td>` is optional
    in HTML), whose one-letter class (CELL_CLASS) colours it, whose title gives outcome and
    duration on hover and, with the table's row and column headers, the words a screen
    reader says. The keyboard finds the cells by the grid's own selector (static/js/app.js),
    and the table's fixed layout sizes every column from its first row."""
    if not runs:
        return mark_safe("")
    zone = timezone.get_current_timezone()
    now = timezone.now()
    rows = steps(runs, cells)
    out: list[str] = [
        f'<table class="hgrid" id="history-grid" data-hgrid style="--runs:{len(runs)}"'
        f' aria-label="{escape(job)}: {len(rows)} steps by {len(runs)} runs">'
        '<thead><tr><th scope="col" class="hg-corner">Step</th>'
    ]
    for run in runs:
        label = task_label(run.status, run.operation)
        where = f" · {run.cluster_name}" if run.cluster_name else ""
        version = f" · v{run.version}" if run.version else ""
        when = run.create_time.astimezone(zone).strftime("%m-%d %H:%M")
        title = f"#{run.pk} {label}{where}{version} · {when}"
        out.append(
            f'<th scope="col" class="hg-run"><a class="tone-{task_tone(run.status, run.operation)}"'
            f' href="{task_prefix}{run.pk}/" title="{escape(title)}">'
            f'<span class="hg-run-dot" aria-hidden="true"></span>'
            f'<span class="hg-run-id">#{run.pk}</span><span class="vh"> {escape(label)}</span></a></th>'
        )
    out.append("</tr></thead><tbody>")
    labels: dict[tuple[str, str], tuple[str, str]] = {}
    heads = [f'"{task_prefix}{run.pk}/?view=log&amp;subtask=' for run in runs]
    for step in rows:
        out.append(f'<tr><th scope="row" class="hg-step" title="{escape(step.key)}">')
        out.append(escape(step.name))
        out.append("</th>")
        for run, head in zip(runs, heads, strict=True):
            cell = step.cells.get(run.pk)
            if cell is None:
                out.append('<td class=n title="Not in this run">')
                continue
            letter, text = _cell_text(cell, labels, now)
            out.append(f'<td><a class={letter} href={head}{cell.pk}" title="{text}"></a>')
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
