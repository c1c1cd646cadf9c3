"""The approval gates waiting for a decision, in OCP's envelope.

GET /api/v2/approvals?page=&size=   the gates of the tasks the caller may see (cluster
                                    scope), the longest waiting first, each saying whether
                                    the caller may decide it now and why not

Deciding is the subtask operations `.../subtasks/{id}/approve` and `/reject` (a reason
required), as on the /approvals/ page.
"""

from __future__ import annotations

from datetime import timedelta

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view

from taskcenter.accounts import access
from taskcenter.api.envelope import iso, ok, paged
from taskcenter.api.views import _errors, clean_params
from taskcenter.core import params as parse
from taskcenter.tasks import selectors
from taskcenter.tasks.definitions import approval_settings
from taskcenter.tasks.models import SubtaskInstance
from taskcenter.tasks.verbs import VERBS


def _named(obj, name: str) -> dict | None:
    return None if obj is None else {"id": obj.pk, "name": name}


def approval_json(user, gate: SubtaskInstance) -> dict:
    """A waiting gate, its task, its rules and whether `user` may decide it now."""
    task = gate.task
    rules = approval_settings(gate.action)
    expires = gate.start_time + timedelta(seconds=gate.timeout) if gate.start_time else None
    refused = VERBS["approve"].refused(task, gate, actor=user)
    permitted = access.can_operate(user, "approve", task)
    why_not = refused.why if refused else ("" if permitted else "not permitted to approve here")
    return {
        "taskInstanceId": task.pk,
        "subtaskInstanceId": gate.pk,
        "name": gate.name,
        "taskName": task.name,
        "cluster": _named(task.cluster, task.cluster.name if task.cluster else ""),
        "tenant": _named(task.tenant, task.tenant.name if task.tenant else ""),
        "creator": _named(task.creator, task.creator.get_username() if task.creator else ""),
        "parameters": selectors.shown_parameters(task),
        "waitingSince": iso(gate.start_time),
        "expiresAt": iso(expires) if gate.timeout else None,
        "onTimeout": rules["onTimeout"],
        "role": rules["role"] or None,
        "starterMayApprove": bool(rules["starterMayApprove"]),
        "mayDecide": refused is None and permitted,
        "whyNot": why_not or None,
    }


@extend_schema(
    operation_id="listApprovals",
    summary="The approval gates waiting for a decision, the longest waiting first",
    parameters=[
        OpenApiParameter("page", {"type": "integer", "minimum": 1, "maximum": parse.PAGE_MAX}),
        OpenApiParameter("size", {"type": "integer", "minimum": 1, "maximum": parse.MAX_PAGE_SIZE}),
    ],
    responses={200: OpenApiTypes.OBJECT, **_errors(400)},
    tags=["tasks"],
)
@api_view(["GET"])
def approval_list(request):
    access.require_view(request.user)
    params = clean_params(request)
    page, size = parse.page(params)
    gates = selectors.waiting_gate_list(visible=access.visible_tasks(request.user))
    total = gates.count()
    chunk = list(gates[(page - 1) * size : page * size])
    contents = [approval_json(request.user, gate) for gate in chunk]
    return ok(request, paged(contents, total=total, page=page, size=size))
