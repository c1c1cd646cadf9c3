"""How the plan page words its actions (enable, disable, run now, cancel, delete): each
button's label, its confirmation dialog and the flash after it ran.

Which actions a plan shows, and whether each is possible now, is the verbs' to say
(taskcenter.schedules.verbs: `offered` and `refusal`), and whether the user's role and
clusters allow it is taskcenter.accounts.access's (plan_refusal); this module only words
them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.urls import reverse

from taskcenter.accounts import access
from taskcenter.dashboard.presenters import Button
from taskcenter.schedules.verbs import PLAN_VERBS, PlanVerb


@dataclass(frozen=True)
class PlanActionWords:
    key: str  # the verb's key (taskcenter.schedules.verbs.PLAN_VERBS)
    label: str
    title: str
    body: str
    confirm_label: str
    # The flash after the verb ran, from the plan's id and what the verb answered.
    done: Callable[[int, Any], str]
    danger: bool = False

    @property
    def verb(self) -> PlanVerb:
        return PLAN_VERBS[self.key]


PLAN_ACTIONS = {
    words.key: words
    for words in (
        PlanActionWords(
            "enable",
            "Enable",
            "Enable this plan?",
            "It fires from its next fire time on; the times passed while it was disabled "
            "are neither run nor recorded as missed.",
            "Enable",
            lambda plan_id, _plan: f"Plan {plan_id} enabled.",
        ),
        PlanActionWords(
            "disable",
            "Disable",
            "Disable this plan?",
            "It will not fire until it is enabled again. Runs already started go on.",
            "Disable",
            lambda plan_id, _plan: f"Plan {plan_id} disabled.",
            danger=True,
        ),
        PlanActionWords(
            "run",
            "Run now",
            "Run this plan's job now?",
            "One run starts now, whatever the overlap policy; the schedule stays as it is.",
            "Run now",
            lambda _plan_id, fire: f"Run started: task #{fire.task_id}.",
        ),
        PlanActionWords(
            "cancel",
            "Cancel runs",
            "Cancel this plan's running runs?",
            "Running steps of its running contexts are asked to stop and queued ones end at "
            "once; the runs end cancelled.",
            "Cancel runs",
            lambda _plan_id, asked: f"Stopped {asked} running or queued step(s).",
            danger=True,
        ),
        PlanActionWords(
            "delete",
            "Delete",
            "Delete this plan?",
            "The plan and its schedule are removed; its past runs stay in the task list.",
            "Delete plan",
            lambda plan_id, _none: f"Plan {plan_id} deleted; its past runs stay.",
            danger=True,
        ),
    )
}


def refused_to(user, plan, verb: PlanVerb) -> str | None:
    """Why the user's role or clusters refuse the verb on this plan (None: they allow it):
    managing schedules there, and running jobs there for a verb that starts a run."""
    return access.plan_refusal(user, plan, run=verb.needs_run)


def plan_buttons(user, plan) -> list[Button]:
    """The plan page's buttons, for users who may manage schedules: each action its verb
    offers in the plan's state, enabled unless the user's role or clusters or the verb
    refuses it (the reason is the tooltip). Users who manage no schedule get none."""
    if not access.can_manage_schedules(user):
        return []
    url = reverse("dashboard:schedule_confirm", args=[plan.pk])
    buttons = []
    for key, words in PLAN_ACTIONS.items():
        verb = words.verb
        if not verb.offered(plan):
            continue
        why = refused_to(user, plan, verb)
        if why is None:
            refusal = verb.refusal(plan)
            why = refusal.why if refusal else None
        buttons.append(
            Button(
                key,
                words.label,
                why is None,
                why or words.body,
                f"{url}?action={key}",
                words.danger,
            )
        )
    return buttons


def edit_offered(user, plan) -> bool:
    """The Edit link: the edit verb's, to users whose role and clusters allow it."""
    verb = PLAN_VERBS["edit"]
    return refused_to(user, plan, verb) is None and verb.offered(plan)
