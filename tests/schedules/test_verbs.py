"""The plan verbs: each one's refusal is what the API answers and what the page's button
shows, and which states offer it is the verb's to say (taskcenter.schedules.verbs)."""

from __future__ import annotations

import pytest

from taskcenter.core.errors import InvalidParameter
from taskcenter.dashboard import plan_actions
from taskcenter.schedules import verbs
from taskcenter.schedules.models import Fire, Plan, PlanItem, TriggerType
from tests.conftest import client_for
from tests.factories import T0, cron_item, make_plan

pytestmark = pytest.mark.django_db

GONE_JOB = "com.hengshi.nangaparbat.schedulejob.RetiredJob"


@pytest.fixture
def plan(operator) -> Plan:
    return make_plan("1", [cron_item("0 0 * * * ?")], actor=operator)


def _unregistered(plan: Plan) -> Plan:
    """The plan's job class, no longer registered (an upgrade removed it)."""
    Plan.objects.filter(pk=plan.pk).update(job_class=GONE_JOB)
    return Plan.objects.get(pk=plan.pk)


def _button_keys(user, plan: Plan) -> list[str]:
    return [button.op for button in plan_actions.plan_buttons(user, plan)]


def test_every_page_action_is_a_one_click_verb():
    assert set(plan_actions.PLAN_ACTIONS) <= set(verbs.PLAN_VERBS)
    for key in plan_actions.PLAN_ACTIONS:
        assert verbs.PLAN_VERBS[key].act is not None, key
    assert verbs.PLAN_VERBS["edit"].act is None  # a form, not a click


def test_offered_follows_the_plan_state(plan, operator):
    assert _button_keys(operator, plan) == ["disable", "run", "delete"]
    verbs.plan_disable(plan_id=plan.pk, actor=operator)
    plan.refresh_from_db()
    assert _button_keys(operator, plan) == ["enable", "run", "delete"]
    fire = verbs.plan_run_now(plan_id=plan.pk, actor=operator)
    assert fire.task_id is not None
    assert _button_keys(operator, plan) == ["enable", "run", "cancel", "delete"]
    assert plan_actions.edit_offered(operator, plan)


def test_offered_is_only_shown_to_the_roles_that_allow_it(plan, viewer):
    assert _button_keys(viewer, plan) == []
    assert not plan_actions.edit_offered(viewer, plan)


def test_run_now_is_refused_while_the_job_class_is_not_registered(plan, operator):
    plan = _unregistered(plan)
    refusal = verbs.plan_run_now_refusal(plan)
    assert refusal is not None
    assert isinstance(refusal.error, InvalidParameter)
    assert GONE_JOB in refusal.error.message and GONE_JOB in refusal.why

    # The verb raises the same error, and nothing is kept of the refused run.
    with pytest.raises(InvalidParameter) as raised:
        verbs.plan_run_now(plan_id=plan.pk, actor=operator, now=T0)
    assert raised.value.message == refusal.error.message
    assert not PlanItem.objects.filter(plan=plan, trigger_type=TriggerType.ONCE).exists()
    assert not Fire.objects.exists()

    # The page shows the button disabled, with the verb's reason.
    [run] = [b for b in plan_actions.plan_buttons(operator, plan) if b.op == "run"]
    assert not run.enabled and run.why == refusal.why
    page = client_for(operator).get(f"/schedules/{plan.pk}/").content.decode()
    assert 'id="op-run" class="btn" data-action="run" aria-disabled="true"' in page


def test_the_api_answers_a_refused_run_now_with_the_verbs_error(plan, as_operator):
    plan = _unregistered(plan)
    refusal = verbs.plan_run_now_refusal(plan)
    assert refusal is not None
    body = {"entityGroup": "NOTEBOOK", "entityKey": "1", "planItems": [{"triggerType": "ONCE"}]}
    response = as_operator.post("/api/schedules", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["msg"] == refusal.error.message
    assert response.json()["field"] == "execDetail.jobClass"
    assert not Fire.objects.exists()
