"""Why is this queued? What a subtask that has not started waits for, in words: its
upstream steps (named), an operator (an upstream failed), an approval (a gate upstream,
or the subtask itself is one), no worker consuming its queue, or every worker on its
queue busy (with the queue's depth).

It reads the task's rows (tasks.selectors) and the fleet's presence (engine.selectors),
and routes the subtask with the sender's own rule (engine.dispatch.queue_for).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from taskcenter.accounts import access
from taskcenter.dashboard.presenters import format_duration
from taskcenter.engine import selectors as engine_selectors
from taskcenter.engine.dispatch import queue_for
from taskcenter.tasks import selectors
from taskcenter.tasks.models import (
    NodeType,
    SubtaskInstance,
    SubtaskStatus,
    TaskInstance,
    TaskRunMode,
    TaskStatus,
)

NAMES_SHOWN = 5  # upstream steps named; the others counted


@dataclass(frozen=True)
class Waiting:
    kind: str  # upstream, operator, approval, no_worker, busy, worker
    text: str
    queue: str = ""  # the queue, for a READY subtask (a link to its waiting attempts)


def waiting_for(user, task: TaskInstance, subtask: SubtaskInstance) -> Waiting | None:
    """What `subtask` waits for now; None when it does not wait (it runs, or ended)."""
    if subtask.node_type == NodeType.APPROVAL_TASK and subtask.status == SubtaskStatus.RUNNING:
        return Waiting("approval", "A person's decision: this step is an approval gate.")
    if subtask.status == SubtaskStatus.READY:
        return _in_queue(user, task, subtask)
    if subtask.status == SubtaskStatus.PENDING and task.operation != TaskRunMode.ROLLBACK:
        return _upstream(task, subtask)
    return None


def _names(rows) -> str:
    names = [f"“{row.name}”" for row in rows[:NAMES_SHOWN]]
    more = len(rows) - NAMES_SHOWN
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def _upstream(task: TaskInstance, subtask: SubtaskInstance) -> Waiting | None:
    not_done = [
        u
        for u in selectors.subtask_upstreams(subtask=subtask)
        if u.status != SubtaskStatus.SUCCESSFUL
    ]
    if not not_done:
        return None
    failed = [u for u in not_done if u.status == SubtaskStatus.FAILED]
    if failed:
        return Waiting(
            "operator",
            f"An operator: {_names(failed)} failed; retry or skip it for this step to run.",
        )
    gates = [
        u
        for u in not_done
        if u.node_type == NodeType.APPROVAL_TASK and u.status == SubtaskStatus.RUNNING
    ]
    if gates:
        return Waiting("approval", f"An approval: {_names(gates)} waits for a person's decision.")
    if task.status != TaskStatus.RUNNING:
        return Waiting("operator", "An operator: the task has stopped; retry it to go on.")
    return Waiting("upstream", f"Upstream steps to succeed: {_names(not_done)}.")


def _in_queue(user, task: TaskInstance, subtask: SubtaskInstance) -> Waiting:
    now = timezone.now()
    cluster = task.cluster.name if task.cluster_id and task.cluster else None
    queue = queue_for(node_type=subtask.node_type, cluster=cluster) or (
        engine_selectors.default_queue()
    )
    online = [w for w in engine_selectors.workers(now) if w.online]
    consumers = [w for w in online if queue in w.queues]
    if not consumers:
        return Waiting(
            "no_worker",
            f"A worker: none consumes the queue {queue} (start one with -Q {queue}).",
            queue,
        )
    row = next(
        (
            q
            for q in engine_selectors.queue_depths(online, clusters=access.visible_clusters(user))
            if q.name == queue
        ),
        None,
    )
    depth = row.depth if row else 1
    slots = sum(w.concurrency for w in consumers)
    busy = sum(w.running for w in consumers)
    if slots and busy >= slots:
        return Waiting(
            "busy",
            f"A free worker: all {len(consumers)} worker(s) on the queue {queue} are busy "
            f"({busy} of {slots} slots); {depth} attempt(s) wait in it.",
            queue,
        )
    waited = format_duration(now - subtask.ready_at) if subtask.ready_at else ""
    return Waiting(
        "worker",
        f"A worker to take it: {len(consumers)} worker(s) consume the queue {queue}, "
        f"{depth} attempt(s) wait in it" + (f"; queued for {waited}." if waited else "."),
        queue,
    )
