"""Approval gates on the pages: the list of pending approvals, the top bar's count of
those awaiting the reader's decision, and a gate's box on the task page.

Deciding is the approve and reject verbs (taskcenter.tasks.verbs.approval) through the
usual confirmation dialog (verb_views), which shows the task's parameters to judge by;
who may decide is the verbs' permission in the task's cluster plus the gate's own rules
(four eyes, a role, a permission), asked through `Verb.refused(..., actor=user)`.
"""

from __future__ import annotations

from datetime import timedelta

from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from taskcenter.accounts import access
from taskcenter.core.http import is_partial, page, signed_in_view
from taskcenter.dashboard import presenters
from taskcenter.tasks import selectors
from taskcenter.tasks.definitions import approval_settings
from taskcenter.tasks.models import NodeType, SubtaskInstance, SubtaskStatus, TaskInstance
from taskcenter.tasks.verbs import VERBS

dashboard_view = signed_in_view(access.require_view)

DECISIONS = ("approve", "reject")


@dashboard_view
@require_GET
def approvals(request):
    """Every approval gate waiting for a decision that the reader may see, the longest
    waiting first, with the task's parameters and Approve and Reject (or why not)."""
    rows = pending(request.user)
    context = {"nav": "approvals", "rows": rows, "seen": 0}
    if is_partial(request, "approval-list"):
        return render(request, "dashboard/_approval_list.html", context)
    return page(request, "dashboard/approvals.html", context)


def pending(user) -> list[dict]:
    visible = access.visible_tasks(user)
    rows = []
    for gate in selectors.waiting_gates(visible=visible):
        task = gate.task
        rows.append(
            {
                "gate": gate,
                "task": task,
                "box": approval_box(user, task, gate),
                "parameters": presenters.parameter_rows(selectors.shown_parameters(task)),
                "buttons": decision_buttons(user, task, gate),
            }
        )
    return rows


def decision_buttons(user, task: TaskInstance, gate: SubtaskInstance) -> list[presenters.Button]:
    return [b for b in presenters.subtask_buttons(user, gate, task) if b.op in DECISIONS]


def awaiting_count(user) -> int:
    """How many waiting gates `user` may decide now (the top bar's "N awaiting your
    approval"); no query for a user who may approve nowhere."""
    if not access.can_operate(user, "approve"):
        return 0
    approve = VERBS["approve"]
    return sum(
        1
        for gate in selectors.waiting_gates_to_count(visible=access.visible_tasks(user))
        if access.can_operate(user, "approve", gate.task)
        and approve.refused(gate.task, gate, actor=user) is None
    )


def approval_box(user, task: TaskInstance, gate: SubtaskInstance) -> dict | None:
    """What the task page says of a gate: who may decide it, until when it waits, how it
    was decided; None for any other subtask."""
    if gate.node_type != NodeType.APPROVAL_TASK:
        return None
    rules = approval_settings(gate.action)
    waiting = gate.status == SubtaskStatus.RUNNING
    who = "holders of the approve permission"
    if rules["role"]:
        who += f" with the role {rules['role']}"
    if rules["permission"] != "tasks.approve_subtaskinstance":
        who += f" and the permission {rules['permission']}"
    who += (
        ", the person who started the task included"
        if rules["starterMayApprove"]
        else ", not the person who started the task"
    )
    expires = (
        gate.start_time + timedelta(seconds=gate.timeout) if waiting and gate.start_time else None
    )
    decided = gate.result.get("approval") if isinstance(gate.result, dict) else None
    refused = VERBS["approve"].refused(task, gate, actor=user) if waiting else None
    return {
        "waiting": waiting,
        "who": who,
        "on_timeout": "fails" if rules["onTimeout"] == "fail" else "approves itself",
        "expires": expires,
        "waited": presenters.format_duration(timezone.now() - gate.start_time)
        if waiting and gate.start_time
        else "",
        "decided": None if waiting else decided,
        "you_may": waiting and refused is None and access.can_operate(user, "approve", task),
        "why_not": refused.why if refused else "",
    }
