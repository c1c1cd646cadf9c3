"""What the pages say about a task or subtask: status labels, durations, list rows and
columns, the live cursor, and which buttons an operator gets, enabled or not and why.

Views and templates ask here so that the list, the header, the DAG and the live updates
all use the same words. Permissions come from taskcenter.accounts.access; which states
offer a verb and whether it is refused now are the verb's (taskcenter.tasks.verbs).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.urls import reverse
from django.utils import timezone

from taskcenter.accounts import access
from taskcenter.core.http import clean_query
from taskcenter.dashboard.verb_words import WORDS
from taskcenter.schedules import cron, describe
from taskcenter.tasks import verbs
from taskcenter.tasks.models import (
    SubtaskInstance,
    SubtaskRunMode,
    SubtaskStatus,
    TaskInstance,
    TaskRunMode,
    TaskStatus,
    TaskType,
)
from taskcenter.tasks.selectors import SubtaskNode

ACTIVE = {SubtaskStatus.READY, SubtaskStatus.RUNNING, SubtaskStatus.CANCELING}


# --- Status words ------------------------------------------------------------------------------

# The task types in plain words. The stored values are OCP's (its API spells "SYS_ONECE");
# that spelling belongs to the API, the pages say what the type means.
TASK_TYPE_LABELS: dict[str, str] = {
    TaskType.MANUAL: "Manual",
    TaskType.SYS_ONECE: "System, one-off",
    TaskType.SCHEDULED: "Scheduled",
    TaskType.SYS_SCHEDULED: "System, scheduled",
}
TASK_TYPE_CHOICES = [(value, TASK_TYPE_LABELS[value]) for value in TaskType.values]


def task_type_label(task_type: str) -> str:
    return TASK_TYPE_LABELS.get(task_type) or plain_words(task_type)


def plain_words(value: str) -> str:
    """An enum's value as words: "SUBTASK_RETRY" -> "Subtask retry"."""
    return value.replace("_", " ").capitalize()


# Keyed by plain strings: the labels are looked up with a row's stored values.
_RUNNING_TASK_LABELS: dict[str, str] = {
    TaskRunMode.ROLLBACK: "Rolling back",
    TaskRunMode.RETRY: "Running (retry)",
}


def task_label(status: str, operation: str) -> str:
    if status == TaskStatus.RUNNING:
        return _RUNNING_TASK_LABELS.get(operation, "Running")
    if status == TaskStatus.FAILED:
        return "Rollback failed" if operation == TaskRunMode.ROLLBACK else "Failed"
    return "Rolled back" if operation == TaskRunMode.ROLLBACK else "Successful"


def task_tone(status: str, operation: str) -> str:
    """The badge colour: running, failed, successful or rolledback."""
    if status == TaskStatus.SUCCESSFUL and operation == TaskRunMode.ROLLBACK:
        return "rolledback"
    return status.lower()


_SUBTASK_LABELS: dict[tuple[str, str], str] = {
    (SubtaskStatus.PENDING, SubtaskRunMode.ROLLBACK): "Rolled back",
    (SubtaskStatus.PENDING, SubtaskRunMode.ROLLBACK_SKIP): "Rollback skipped",
    (SubtaskStatus.READY, SubtaskRunMode.ROLLBACK): "Rollback queued",
    (SubtaskStatus.READY, SubtaskRunMode.RETRY): "Queued (retry)",
    (SubtaskStatus.RUNNING, SubtaskRunMode.ROLLBACK): "Rolling back",
    (SubtaskStatus.FAILED, SubtaskRunMode.CANCEL): "Canceled",
    (SubtaskStatus.FAILED, SubtaskRunMode.ROLLBACK): "Rollback failed",
    (SubtaskStatus.SUCCESSFUL, SubtaskRunMode.SKIP): "Skipped",
}
_SUBTASK_DEFAULT: dict[str, str] = {
    SubtaskStatus.PENDING: "Pending",
    SubtaskStatus.READY: "Queued",
    SubtaskStatus.RUNNING: "Running",
    SubtaskStatus.CANCELING: "Canceling",
    SubtaskStatus.FAILED: "Failed",
    SubtaskStatus.SUCCESSFUL: "Successful",
}


def subtask_label(status: str, operation: str) -> str:
    return _SUBTASK_LABELS.get((status, operation)) or _SUBTASK_DEFAULT.get(status, status.title())


def subtask_tone(status: str, operation: str) -> str:
    """The colour key: the status, except that a finished rollback reads as rolled back."""
    if status == SubtaskStatus.PENDING and operation in (
        SubtaskRunMode.ROLLBACK,
        SubtaskRunMode.ROLLBACK_SKIP,
    ):
        return "rolledback"
    if status == SubtaskStatus.SUCCESSFUL and operation == SubtaskRunMode.SKIP:
        return "skipped"
    return status.lower()


# --- Times ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShownDuration:
    """A duration as a page shows it: its text and, while it still grows, the ISO instant
    it counts from (the page's script ticks it each second from there, with no request)."""

    text: str
    since: str = ""
    skipped: bool = False


NO_DURATION = ShownDuration("—")
SKIPPED = {SubtaskRunMode.SKIP, SubtaskRunMode.ROLLBACK_SKIP}


def subtask_duration(
    status: str, operation: str, start: datetime | None, finish: datetime | None
) -> ShownDuration:
    """How long the subtask's latest attempt took, or runs.

    A skipped subtask did not run to its end: its start is the failed attempt's and its
    finish the moment of the skip (maybe days later), so it shows "Skipped", not the
    difference. A queued one (READY: a retry or a rollback waits for a worker) still holds
    the previous attempt's start, so it shows no duration either.
    """
    if operation in SKIPPED:
        return ShownDuration("Skipped", skipped=True)
    if start is None or (status in (SubtaskStatus.READY, SubtaskStatus.PENDING) and not finish):
        return NO_DURATION
    if status in (SubtaskStatus.RUNNING, SubtaskStatus.CANCELING) or finish is None:
        return ShownDuration(format_duration(timezone.now() - start), since=start.isoformat())
    return ShownDuration(format_duration(finish - start))


def task_duration(task: TaskInstance) -> ShownDuration:
    """The task's elapsed time: from its start to its finish, or to now while it runs
    (ticking). The list, its sort=duration and the detail page use this one meaning."""
    if task.start_time is None:
        return NO_DURATION
    if task.status == TaskStatus.RUNNING or task.finish_time is None:
        return ShownDuration(
            format_duration(timezone.now() - task.start_time), since=task.start_time.isoformat()
        )
    return ShownDuration(format_duration(task.finish_time - task.start_time))


def task_duration_parts(task: TaskInstance, waited: timedelta) -> dict | None:
    """The elapsed time split into working and waiting, when the task waited for an
    operator (failed, then retried, skipped or rolled back later): a task retried ten days
    after it failed took ten days, but ran only for its own minutes."""
    if task.start_time is None or waited <= timedelta(0):
        return None
    running = task.status == TaskStatus.RUNNING or task.finish_time is None
    end = timezone.now() if running else task.finish_time
    assert end is not None
    worked = max(timedelta(0), end - task.start_time - waited)
    return {
        "worked": ShownDuration(
            format_duration(worked),
            since=(task.start_time + waited).isoformat() if running else "",
        ),
        "waited": format_duration(waited),
    }


def format_duration(value: timedelta | None) -> str:
    if value is None:
        return "—"
    seconds = max(0, int(value.total_seconds()))
    if seconds < 60:
        if value.total_seconds() < 0.1:
            return "<0.1s"
        if value.total_seconds() < 1:
            return f"{value.total_seconds():.1f}s"
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


# --- Inputs and outputs ----------------------------------------------------------------------
# A task's parameters and a subtask's result as the detail page shows them. Values are
# text for the templates (which escape them); long ones are cut, with the whole value a
# click away, and a result of many rows shows its first rows with the rest one click on.

VALUE_CHARS = 200  # a value longer than this shows its start, and the rest on demand
VALUE_MAX_CHARS = 20_000  # past this, the page points to the task's API answer
RESULT_ROWS_SHOWN = 20  # rows shown at first; the others behind "Show all"
RESULT_ROWS_MAX = 500  # rows the page holds at most; the task's API answer has them all


@dataclass(frozen=True)
class ShownValue:
    short: str
    full: str = ""  # set when `short` is cut
    clipped: bool = False  # the full text itself was cut at VALUE_MAX_CHARS


def shown_value(value) -> ShownValue:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if len(text) <= VALUE_CHARS:
        return ShownValue(text)
    return ShownValue(
        text[:VALUE_CHARS] + "…", text[:VALUE_MAX_CHARS], clipped=len(text) > VALUE_MAX_CHARS
    )


def parameter_rows(parameters) -> list[tuple[str, ShownValue]]:
    if not isinstance(parameters, dict):
        return [("value", shown_value(parameters))] if parameters else []
    return [(str(name), shown_value(value)) for name, value in parameters.items()]


def _is_tabular(result) -> bool:
    """OCP's tabular result: {"schema": [columns], "data": [rows]}."""
    return (
        isinstance(result, dict)
        and isinstance(result.get("schema"), list)
        and isinstance(result.get("data"), list)
    )


def _column_name(column) -> str:
    return str(column.get("name", "")) if isinstance(column, dict) else str(column)


def _result_shape(result) -> tuple[str, list[str], list[list]] | None:
    """The result's kind, columns and rows; None for a scalar (shown as one value)."""
    if _is_tabular(result):
        columns = [_column_name(col) for col in result["schema"]]
        return "tabular", columns, [r if isinstance(r, list) else [r] for r in result["data"]]
    if isinstance(result, list) and result and all(isinstance(r, dict) for r in result):
        keys = list(dict.fromkeys(key for row in result for key in row))
        return "records", keys, [[row.get(key, "") for key in keys] for row in result]
    if isinstance(result, dict):
        return "object", ["Key", "Value"], [[k, v] for k, v in result.items()]
    if isinstance(result, list):
        return "list", ["Value"], [[v] for v in result]
    return None


def result_table(result) -> dict | None:
    """A subtask's result as a table: OCP's tabular {schema, data} by its columns, a list of
    objects by their keys, an object as key/value rows, any other list as one column; a
    scalar as one value."""
    if result is None:
        return None
    shape = _result_shape(result)
    if shape is None:
        return {"kind": "value", "value": shown_value(result)}
    kind, columns, rows = shape
    width = max([len(columns), *(len(row) for row in rows)])
    columns += [""] * (width - len(columns))
    held = rows[:RESULT_ROWS_MAX]
    return {
        "kind": kind,
        "columns": columns,
        "rows": [
            [shown_value(cell) for cell in row] + [ShownValue("")] * (width - len(row))
            for row in held
        ],
        "total": len(rows),
        "shown": min(len(rows), RESULT_ROWS_SHOWN),
        "held": len(held),
        "clipped": len(rows) > RESULT_ROWS_MAX,
    }


def subtask_io(subtask: SubtaskInstance) -> dict:
    """What goes in and comes out of a subtask: its description, timeout, automatic
    retries allowed, and its result."""
    return {
        "description": subtask.description,
        "timeout": format_duration(timedelta(seconds=subtask.timeout)),
        "timeout_seconds": subtask.timeout,
        "retry_count": subtask.retry_count,
        "result": result_table(subtask.result),
    }


# --- Buttons -------------------------------------------------------------------------------------
# Which verbs a page offers, enabled or not and why. Which states offer a verb and when it
# is refused are the verb's own (taskcenter.tasks.verbs); the words are verb_words'. This
# part only shows them, to the users who may do them.


@dataclass(frozen=True)
class Button:
    op: str
    label: str
    enabled: bool
    why: str  # why it is disabled, or what it does when it is enabled
    confirm_url: str
    danger: bool = False


def _permitted_buttons(
    user, offered: list[verbs.Verb], task: TaskInstance, subtask: SubtaskInstance | None, url: str
) -> list[Button]:
    """A button for each offered verb the user's roles allow on this task; the others are
    not shown at all. Enabled exactly when the verb's refusal predicate has no objection."""
    buttons = []
    for verb in offered:
        if not access.can_operate(user, verb.key, task):
            continue
        refused = verb.refused(task, subtask, actor=user)
        words = WORDS[verb.key]
        why = refused.why if refused else words.hint_for(subtask)
        url_of_verb = f"{url}op={verb.key}"
        buttons.append(
            Button(verb.key, words.label, refused is None, why, url_of_verb, verb.danger)
        )
    return buttons


def task_buttons(user, task: TaskInstance) -> list[Button]:
    """The task's verbs its state offers (Retry and Roll back until it succeeded, Cancel
    task while it runs)."""
    url = reverse("dashboard:confirm", args=[task.pk]) + "?"
    return _permitted_buttons(user, verbs.offered_verbs(task), task, None, url)


def subtask_buttons(user, subtask: SubtaskInstance, task: TaskInstance) -> list[Button]:
    """The subtask's verbs its state offers (Retry and Skip when failed, Cancel while
    queued or running)."""
    url = reverse("dashboard:confirm", args=[subtask.task_id]) + f"?subtask={subtask.pk}&"
    return _permitted_buttons(user, verbs.offered_verbs(task, subtask), task, subtask, url)


def current_subtask(subtasks: list[SubtaskNode]) -> SubtaskNode | None:
    """Where the task is now: the first running, else failed, else queued subtask, else the
    last one that started. "Locate current progress" and the default selection use this."""
    for wanted in (
        (SubtaskStatus.RUNNING, SubtaskStatus.CANCELING),
        (SubtaskStatus.FAILED,),
        (SubtaskStatus.READY,),
    ):
        for subtask in subtasks:
            if subtask.status in wanted:
                return subtask
    started = [s for s in subtasks if s.start_time is not None]
    if started:
        return max(started, key=lambda s: (s.start_time, s.series_id))
    return subtasks[0] if subtasks else None


# --- The task list ---------------------------------------------------------------------------

SORTABLE = {
    "id": ("ID", "desc"),
    "name": ("Name", "asc"),
    "status": ("Status", "asc"),
    "startTime": ("Start", "desc"),
    "duration": ("Duration", "desc"),
}


def current_sort(params) -> tuple[str, str]:
    value = (params.getlist("sort") or [""])[0]
    field, _, direction = value.partition(",")
    return field.strip(), (direction.strip().lower() or "asc")


def sort_columns(params) -> dict[str, dict]:
    """Each sortable column's header: its link (the next order) and its current order."""
    field, direction = current_sort(params)
    columns = {}
    for key, (label, first) in SORTABLE.items():
        active = key == field or (not field and key == "id")
        current = direction if key == field else ("desc" if active else None)
        following = ("asc" if current == "desc" else "desc") if active else first
        query = params.copy()
        query.setlist("sort", [f"{key},{following}"])
        query.pop("page", None)
        columns[key] = {
            "label": label,
            "url": f"?{clean_query(query)}",
            "aria_sort": {"asc": "ascending", "desc": "descending"}.get(current or "", "none"),
            "arrow": {"asc": "↑", "desc": "↓"}.get(current or "", ""),
        }
    return columns


def list_row(task: TaskInstance, detail_prefix: str) -> dict:
    """Everything a list row shows, as ready strings (a template lookup per cell is cheap;
    a filter or a method call per cell is what made 50 rows slow)."""
    total = task.subtask_total
    done = getattr(task, "subtask_successful", 0)
    start = timezone.localtime(task.start_time) if task.start_time else None
    return {
        "pk": task.pk,
        "url": f"{detail_prefix}{task.pk}/",
        "name": task.name,
        "status": task.status,
        "kind": task_type_label(task.type)
        + ("" if task.operation == "EXECUTE" else f" · {plain_words(task.operation)}"),
        "cluster": task.cluster.name if task.cluster else "",
        "tenant": task.tenant.name if task.tenant else "",
        "creator": task.creator.get_username() if task.creator else "",
        "label": task_label(task.status, task.operation),
        "tone": task_tone(task.status, task.operation),
        "done": done,
        "total": total,
        "percent": round(100 * done / total) if total else 0,
        "start_iso": start.isoformat() if start else "",
        "start_text": start.strftime("%Y-%m-%d %H:%M:%S") if start else "",
        "duration": task_duration(task),
    }


def list_rows(tasks) -> list[dict]:
    # '/tasks/' of '/tasks/<id>/', reversed once per request instead of once per row.
    prefix = reverse("dashboard:task_detail", args=[0])[: -len("0/")]
    return [list_row(task, prefix) for task in tasks]


# --- Subtask states on the detail page ----------------------------------------------------------

TONE_ORDER = [
    ("running", "Running"),
    ("canceling", "Canceling"),
    ("failed", "Failed"),
    ("ready", "Queued"),
    ("pending", "Pending"),
    ("successful", "Successful"),
    ("skipped", "Skipped"),
    ("rolledback", "Rolled back"),
]


def tone_counts(states) -> list[tuple[str, str, int]]:
    """(tone, label, count) for the legend, in a fixed order; states as in task_subtask_states."""
    counter = Counter(subtask_tone(status, op) for _, status, op, _ in states)
    return [(tone, label, counter[tone]) for tone, label in TONE_ORDER if counter[tone]]


def digest(task: TaskInstance, states) -> str:
    """The live cursor of a detail page: changes whenever anything it shows changes."""
    h = hashlib.blake2b(digest_size=8)
    h.update(f"{task.status}|{task.operation}|{task.prohibit_rollback}|".encode())
    for pk, status, operation, run_time in states:
        h.update(f"{pk}:{status}:{operation}:{run_time};".encode())
    return h.hexdigest()


def progress_digest(progress: dict[int, int]) -> str:
    """The live list's mark of the progress of the running tasks it shows (task id ->
    successful subtasks): changes whenever a progress bar on the page would."""
    h = hashlib.blake2b(digest_size=6)
    for pk, done in sorted(progress.items()):
        h.update(f"{pk}:{done};".encode())
    return h.hexdigest()


def states_json(states) -> str:
    """Subtask ids grouped by status|operation, with the words and colour of each group."""
    groups: dict[str, list[int]] = {}
    for pk, status, operation, _ in states:
        groups.setdefault(f"{status}|{operation}", []).append(pk)
    runs = {pk: run for pk, _, _, run in states if run > 1}
    payload = {
        "groups": {
            key: {
                "status": key.split("|")[0],
                "op": key.split("|")[1],
                "label": subtask_label(*key.split("|")),
                "tone": subtask_tone(*key.split("|")),
                "ids": ids,
            }
            for key, ids in groups.items()
        },
        "runs": runs,
    }
    return json.dumps(payload, separators=(",", ":"))


# --- Schedules -----------------------------------------------------------------------------------

# A context's jobStatus (taskcenter.schedules.status) as the pages colour and name it.
JOB_STATUS_TONES = {
    "NONE": ("pending", "No run yet"),
    "PENDING": ("ready", "Pending"),
    "RUNNING": ("running", "Running"),
    "SUCCESSFUL": ("successful", "Successful"),
    "FAILED": ("failed", "Failed"),
    "CANCELLED": ("canceling", "Cancelled"),
}
FIRE_OUTCOME_TONES = {"STARTED": "running", "SKIPPED": "canceling", "MISSED": "failed"}


def job_status_badge(job_status: str) -> dict:
    tone, label = JOB_STATUS_TONES.get(job_status, ("pending", job_status.title()))
    return {"tone": tone, "label": label}


def trigger_words(item) -> str:
    """A plan item in words: "every Sunday at 00:15 (GMT+08:00)", "after NOTEBOOK/1 succeeds"."""
    if item.trigger_type == "CRON_JOB":
        try:
            return describe.describe(item.cron_desc, item.time_zone or None)
        except cron.InvalidCron:
            return f"cron {item.cron_desc} ({item.time_zone})"
    if item.trigger_type == "DEPENDENCY":
        return dependency_words(item.trigger_by_jobs)
    return "once, on demand"


def dependency_words(jobs: list[dict[str, str]]) -> str:
    """A DEPENDENCY trigger's jobs in words: "after NOTEBOOK/1 or NOTEBOOK/2 succeeds"."""
    names = [f"{job['entityGroup']}/{job['entityKey']}" for job in jobs]
    return "after " + " or ".join(names) + " succeeds"


def attempt_label(attempt, *, latest: bool) -> str:
    """A log's attempt in the picker: its number, when it began writing, and which is the
    latest (selectors.LogAttempt)."""
    if attempt.attempt == 0:
        label = "Before the first run"
    else:
        label = f"Attempt {attempt.attempt}"
    if attempt.started_at is not None:
        label += f" · {timezone.localtime(attempt.started_at):%H:%M:%S}"
    elif attempt.size == 0:
        label += " · no output"
    return label + (" · latest" if latest else "")


# --- The audit trail's reasons -------------------------------------------------------------------

# A time written into a reason (a fire's time, in ISO 8601, with its offset).
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")
_CONTEXT = re.compile(r"\bcontext (\d+)\b")


def audit_reason(reason: str) -> str:
    """A reason as the reader reads it: each time in it in the reader's zone (the active
    one), without fractions of a second, and a run named as its task ("task #332"), as
    the rows written before these words were chosen still say "context 332"."""

    def local(found: re.Match[str]) -> str:
        try:
            moment = datetime.fromisoformat(found.group(0).replace("Z", "+00:00"))
        except ValueError:
            return found.group(0)
        return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z")

    return _CONTEXT.sub(r"task #\1", _ISO_TIME.sub(local, reason))
