"""The verbs of a plan: create and edit, enable, disable, run now, cancel, delete.

Each verb owns its doing (one transaction that locks the plan, writes the audit entry and
leaves the enqueueing of a started run to the commit), its refusal predicate (why it is
not possible now: the error the API answers and the same reason in the pages' words), and
`offered`: whether a plan in its state shows the verb at all. The API
(taskcenter.api.schedules) and the pages (taskcenter.dashboard.schedules_views) call the
verbs; the pages ask `offered` and `refusal` which buttons to show and enable, so a button
and its verb cannot disagree. Labels, confirmations and flash words are the pages' own
(taskcenter.dashboard.plan_actions).

The scheduler's fires are not verbs: they are the scheduler's (taskcenter.schedules.firing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from taskcenter.schedules.models import Plan
from taskcenter.schedules.verbs.cancel import PLAN_CANCEL, plan_cancel, plan_cancel_offered
from taskcenter.schedules.verbs.common import Refusal
from taskcenter.schedules.verbs.delete import PLAN_DELETE, plan_delete
from taskcenter.schedules.verbs.edit import (
    PLAN_CREATE,
    PLAN_UPDATE,
    Submitted,
    plan_edit_offered,
    plan_submit,
    plan_update,
)
from taskcenter.schedules.verbs.enable import (
    PLAN_DISABLE,
    PLAN_ENABLE,
    plan_disable,
    plan_disable_offered,
    plan_enable,
    plan_enable_offered,
    plan_set_enabled,
)
from taskcenter.schedules.verbs.run_now import plan_run_now, plan_run_now_refusal


def _always(plan: Plan) -> bool:
    return True


def _never_refused(plan: Plan) -> Refusal | None:
    return None


@dataclass(frozen=True)
class PlanVerb:
    key: str  # the name the pages use (the last segment of the action's page URL)
    audit_action: str  # the audit entry it writes ("" for run now: its fire's PLAN_FIRE)
    needs_run: bool  # beyond managing schedules, it starts a run: the run permission too
    offered: Callable[[Plan], bool]
    refusal: Callable[[Plan], Refusal | None]
    # The one-click verbs the pages confirm in a dialog: (plan_id=, actor=) -> its result.
    # Edit is a form, not a click (plan_submit).
    act: Callable[..., Any] | None


PLAN_VERBS: dict[str, PlanVerb] = {
    verb.key: verb
    for verb in (
        PlanVerb("enable", PLAN_ENABLE, False, plan_enable_offered, _never_refused, plan_enable),
        PlanVerb(
            "disable", PLAN_DISABLE, False, plan_disable_offered, _never_refused, plan_disable
        ),
        PlanVerb("run", "", True, _always, plan_run_now_refusal, plan_run_now),
        PlanVerb("cancel", PLAN_CANCEL, False, plan_cancel_offered, _never_refused, plan_cancel),
        PlanVerb("delete", PLAN_DELETE, False, _always, _never_refused, plan_delete),
        PlanVerb("edit", PLAN_UPDATE, False, plan_edit_offered, _never_refused, None),
    )
}

__all__ = [
    "PLAN_CREATE",
    "PLAN_VERBS",
    "PlanVerb",
    "Refusal",
    "Submitted",
    "plan_cancel",
    "plan_delete",
    "plan_disable",
    "plan_enable",
    "plan_run_now",
    "plan_run_now_refusal",
    "plan_set_enabled",
    "plan_submit",
    "plan_update",
]
