"""Plans and contexts inside a role's clusters: the scope matrix.

For the built-in roles (viewer, operator = TASK_MANAGER, admin) and TASK_MANAGER limited
to the cluster alpha ("scoped"): every plan and context endpoint of the HENGSHI API, every
schedule page and action, and the Run form, on a plan of alpha, one of bravo and one of no
cluster, each with one run. The same rules as for tasks: what is outside a user's scope
does not exist for them (404), what their role does not allow is refused (403), and bad
input (an unknown cluster, one outside the scope, a wrong type) is a 400 naming the field
that changes nothing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from taskcenter.accounts import roles
from taskcenter.schedules import firing, scheduler, verbs
from taskcenter.schedules.models import Fire, Plan, PlanItem
from taskcenter.tasks.models import AuditEntry, TaskInstance
from tests.accounts.conftest import scoped_operator
from tests.conftest import basic_client, client_for
from tests.factories import (
    NOTEBOOK_JOB,
    cron_item,
    grant_scoped,
    make_cluster,
    make_plan,
    make_role,
    make_tenant,
    make_user,
)

pytestmark = pytest.mark.django_db

PERSONAS = ["viewer", "operator", "admin", "scoped"]
TARGETS = ["alpha", "bravo", "none"]  # the plan of each cluster, and the plan of none
SUNDAYS = "0 15 0 ? * 1"


class World:
    """Two clusters (alpha has a tenant), a plan on each and one on none, each with a run."""

    def __init__(self):
        self.alpha = make_cluster("alpha", 1)
        self.bravo = make_cluster("bravo", 2)
        self.tenant = make_tenant(self.alpha, "sales", 7)
        self.plans: dict[str, Plan] = {}
        self.contexts: dict[str, int] = {}
        for key, target in enumerate(TARGETS, start=1):
            cluster = {"alpha": self.alpha, "bravo": self.bravo}.get(target)
            placed = {"clusterId": cluster.pk} if cluster else {}
            plan = make_plan(str(key), [cron_item(SUNDAYS, "GMT+08:00")], **placed)
            run = make_plan(str(key), [{"triggerType": "ONCE"}])
            self.plans[target] = plan
            self.contexts[target] = run.fires.get().task_id

    def can_see(self, persona: str, target: str) -> bool:
        return persona != "scoped" or target == "alpha"


@pytest.fixture
def world(no_broker) -> World:
    return World()


def persona(name: str, world: World):
    role = {"viewer": roles.VIEWER, "operator": roles.MANAGER, "admin": roles.ADMIN}
    if name == "scoped":
        return scoped_operator(world.alpha)
    return make_user(name, role[name])


def api(name: str, world: World):
    persona(name, world)
    return basic_client(name)


def read_status(name: str, target: str, world: World) -> int:
    return 200 if world.can_see(name, target) else 404


def manage_status(name: str, target: str, world: World) -> int:
    if not world.can_see(name, target):
        return 404
    return 403 if name == "viewer" else 200


# --- The HENGSHI API ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PERSONAS)
def test_api_lists_agree_plans_with_contexts(world, name):
    client = api(name, world)
    plans = client.get("/api/schedules?limit=100").json()
    contexts = client.get("/api/contexts?limit=100").json()
    seen = {t for t in TARGETS if world.can_see(name, t)}
    assert {p["id"] for p in plans["data"]} == {world.plans[t].pk for t in seen}
    assert {c["id"] for c in contexts["data"]} == {world.contexts[t] for t in seen}
    assert plans["totalHits"] == contexts["totalHits"] == len(seen)
    # Each plan and each context says where it runs.
    for row in plans["data"] + contexts["data"]:
        target = next(t for t in TARGETS if row["entityKey"] == str(TARGETS.index(t) + 1))
        cluster = {"alpha": world.alpha.pk, "bravo": world.bravo.pk}.get(target)
        assert row["clusterId"] == cluster and row["tenantId"] is None
    users = client.get("/api/schedules/users").json()
    assert users["code"] == 0


READS = [
    ("detail", "/api/schedules/{plan}"),
    ("context", "/api/contexts/{context}"),
    ("logs", "/api/contexts/{context}/logs?block=false"),
    ("results", "/api/contexts/{context}/results?block=false"),
]
CHANGES = [
    ("update", "put", "/api/schedules/{plan}", {"enabled": False}),
    ("enable", "post", "/api/schedules/{plan}/enable", {}),
    ("disable", "post", "/api/schedules/{plan}/disable", {}),
    ("cancel", "put", "/api/schedules/{plan}/cancel", {}),
    ("cancel by entity", "post", "/api/schedules/cancel", "entity"),
    ("run now", "post", "/api/schedules", "once"),
    ("edit", "post", "/api/schedules", "edit"),
    ("delete", "delete", "/api/schedules/{plan}", None),
]


@pytest.mark.parametrize("name", PERSONAS)
def test_api_reads_of_each_plan_and_context(world, name):
    client = api(name, world)
    for target in TARGETS:
        for what, url in READS:
            plan, context = world.plans[target], world.contexts[target]
            response = client.get(url.format(plan=plan.pk, context=context))
            expected = read_status(name, target, world)
            assert response.status_code == expected, (name, target, what)
            answer = response.json()
            assert set(answer) >= {"code", "msg", "data", "version"}
            if expected == 404:  # as if it did not exist: nothing about it is told
                assert answer["data"] is None and "alpha" not in answer["msg"]


def _body(body, plan: Plan):
    entity = {"entityGroup": plan.entity_group, "entityKey": plan.entity_key}
    if body == "entity":
        return entity
    if body == "once":
        return {**entity, "planItems": [{"triggerType": "ONCE"}]}
    if body == "edit":
        return {**entity, "execDetail": {"jobClass": NOTEBOOK_JOB, "jobParams": {"notebook": 2}}}
    return body


@pytest.mark.parametrize("name", PERSONAS)
@pytest.mark.parametrize(("what", "method", "url", "body"), CHANGES, ids=[c[0] for c in CHANGES])
@pytest.mark.parametrize("target", TARGETS)
def test_api_changes_of_each_plan(world, name, what, method, url, body, target):
    client = api(name, world)
    plan = world.plans[target]
    before = (list(Plan.objects.order_by("pk").values()), TaskInstance.objects.count())
    payload = _body(body, plan)
    kwargs = {"content_type": "application/json"} if payload is not None else {}
    response = getattr(client, method)(
        url.format(plan=plan.pk), *([payload] if payload is not None else []), **kwargs
    )
    expected = manage_status(name, target, world)
    if name == "scoped" and expected == 404 and url == "/api/schedules" and what != "run now":
        expected = 403  # a POST names the job: its plan is there, and not theirs
    if name == "scoped" and what == "run now" and target != "alpha":
        expected = 403
    assert response.status_code == expected, (name, what, target, response.content[:300])
    answer = response.json()
    assert set(answer) >= {"code", "msg", "data", "version"}
    if expected >= 400:
        after = (list(Plan.objects.order_by("pk").values()), TaskInstance.objects.count())
        assert after == before  # nothing changed
    elif what == "run now":
        run = TaskInstance.objects.get(pk=answer["data"]["contextId"])
        assert run.cluster_id == plan.cluster_id  # the run is where its plan is
        assert client.get(f"/api/contexts/{run.pk}").status_code == 200


CREATE = {
    "entityGroup": "NOTEBOOK",
    "entityKey": "70",
    "planItems": [cron_item("0 0 * * * ?")],
    "execDetail": {"jobClass": NOTEBOOK_JOB, "jobParams": {"notebook": 70}},
}


@pytest.mark.parametrize("name", PERSONAS)
@pytest.mark.parametrize("where", ["none", "alpha", "bravo", "tenant", "unknown", "text", "null"])
def test_api_create_where(world, name, where):
    client = api(name, world)
    placed = {
        "none": {},
        "alpha": {"clusterId": world.alpha.pk},
        "bravo": {"clusterId": world.bravo.pk},
        "tenant": {"tenantId": world.tenant.pk},
        "unknown": {"clusterId": 999},
        "text": {"clusterId": "alpha"},
        "null": {"clusterId": None},
    }[where]
    before = Plan.objects.count()
    response = client.post("/api/schedules", {**CREATE, **placed}, "application/json")
    answer = response.json()
    if where in ("unknown", "text"):
        expected, field = 400, "clusterId"  # read before anything else: for every role
        if where == "unknown" and name == "viewer":
            expected, field = 403, None
    elif name == "viewer":
        expected, field = 403, None
    elif name == "scoped" and where in ("none", "null", "bravo"):
        expected, field = 400, "clusterId"
    else:
        expected, field = 200, None
    assert response.status_code == expected, (name, where, answer)
    if expected == 400:
        assert answer["field"] == field and answer["data"] is None
        scope_refusal = name == "scoped" and where in ("none", "null", "bravo")
        assert ("one of your clusters" in answer["msg"]) is scope_refusal
        if where == "unknown":
            assert "there is no cluster 999" in answer["msg"]
    if expected != 200:
        assert Plan.objects.count() == before
        return
    plan = Plan.objects.get(pk=answer["data"]["id"])
    cluster = {"alpha": world.alpha, "bravo": world.bravo, "tenant": world.alpha}.get(where)
    assert plan.cluster == cluster and answer["data"]["clusterId"] == (cluster and cluster.pk)
    assert answer["data"]["tenantId"] == (world.tenant.pk if where == "tenant" else None)
    assert client.get(f"/api/schedules/{plan.pk}").status_code == 200  # theirs to see


def test_api_refuses_a_tenant_of_another_cluster_and_a_wrong_type(world):
    client = api("admin", world)
    for placed, field, words in (
        ({"clusterId": world.bravo.pk, "tenantId": world.tenant.pk}, "tenantId", "not of"),
        ({"tenantId": 999}, "tenantId", "no tenant 999"),
        ({"tenantId": True}, "tenantId", "integer"),
        ({"clusterId": 1.5}, "clusterId", "integer"),
        ({"clusterId": 0}, "clusterId", "not an id"),
    ):
        response = client.post("/api/schedules", {**CREATE, **placed}, "application/json")
        answer = response.json()
        assert response.status_code == 400 and answer["field"] == field, answer
        assert words in answer["msg"] and answer["code"] != 0
    assert not Plan.objects.filter(entity_key="70").exists()


def test_api_moving_a_plan_out_of_the_scope_is_refused(world):
    client = api("scoped", world)
    plan = world.plans["alpha"]
    body = {"entityGroup": "NOTEBOOK", "entityKey": "1", "clusterId": world.bravo.pk}
    response = client.post("/api/schedules", body, "application/json")
    assert response.status_code == 400 and response.json()["field"] == "clusterId"
    assert Plan.objects.get(pk=plan.pk).cluster == world.alpha


# --- The pages ------------------------------------------------------------------------------------


def page_of(response) -> str:
    return response.content.decode()


@pytest.mark.parametrize("name", PERSONAS)
def test_pages_of_each_plan(world, name):
    client = client_for(persona(name, world))
    listing = page_of(client.get("/schedules/"))
    for target in TARGETS:
        plan = world.plans[target]
        shown = world.can_see(name, target)
        assert (f'href="/schedules/{plan.pk}/"' in listing) is shown, target
        assert (f'href="/tasks/{world.contexts[target]}/"' in listing) is shown, target
        detail = client.get(f"/schedules/{plan.pk}/")
        assert detail.status_code == read_status(name, target, world)
        change = manage_status(name, target, world)
        assert client.get(f"/schedules/{plan.pk}/edit/").status_code == change, target
        for action in ("enable", "disable", "run", "cancel", "delete"):
            confirm = client.get(f"/schedules/{plan.pk}/confirm/?action=" + action)
            assert confirm.status_code == change, (target, action)
        if shown:
            page = page_of(detail)
            manages = name != "viewer"
            for label in ("Disable", "Run now", "Delete", ">Edit<"):
                assert (label in page) is manages, (target, label)
    # The list's count and menus are of their plans only.
    seen = sum(world.can_see(name, t) for t in TARGETS)
    assert f"<b>{seen}</b>" in listing or f"{seen} plan" in listing
    if name == "scoped":
        assert "bravo" not in listing and "no cluster" not in listing


@pytest.mark.parametrize("name", PERSONAS)
@pytest.mark.parametrize("target", TARGETS)
def test_page_actions_of_each_plan(world, name, target):
    client = client_for(persona(name, world))
    plan = world.plans[target]
    tasks = TaskInstance.objects.count()
    disabled = client.post(f"/schedules/{plan.pk}/disable/")
    expected = manage_status(name, target, world)
    assert disabled.status_code == (302 if expected == 200 else expected)
    assert Plan.objects.get(pk=plan.pk).enabled is (expected != 200)
    ran = client.post(f"/schedules/{plan.pk}/run/")
    assert ran.status_code == (302 if expected == 200 else expected)
    assert TaskInstance.objects.count() == tasks + (expected == 200)
    if expected == 200:
        run = TaskInstance.objects.latest("pk")
        assert run.cluster_id == plan.cluster_id
    deleted = client.post(f"/schedules/{plan.pk}/delete/")
    assert deleted.status_code == (302 if expected == 200 else expected)
    assert Plan.objects.filter(pk=plan.pk).exists() is (expected != 200)


def plan_form(**changes) -> dict:
    data = {
        "entity_group": "NOTEBOOK",
        "entity_key": "71",
        "job_class": NOTEBOOK_JOB,
        "job_params": '{"notebook": 71}',
        "retry_times": "0",
        "cron_type": "WEEKLY",
        "minute": "15",
        "hour": "0",
        "weekdays": ["1"],
        "time_zone": "UTC",
        "misfire_policy": "RUN_ONCE",
        "overlap_policy": "SKIP",
        "enabled": "1",
    }
    data.update(changes)
    return data


@pytest.mark.parametrize("name", PERSONAS)
def test_plan_form_offers_and_requires_the_users_clusters(world, name):
    client = client_for(persona(name, world))
    form = client.get("/schedules/new/")
    if name == "viewer":
        assert form.status_code == 403
        return
    options = re.findall(r'<option value="([ct]\d*|)"', page_of(form))
    expected = {f"c{world.alpha.pk}", f"t{world.tenant.pk}"}
    if name != "scoped":
        expected |= {"", f"c{world.bravo.pk}"}
    assert set(options) == expected
    for placement, ok in (
        (f"c{world.bravo.pk}", name != "scoped"),
        ("", name != "scoped"),
        ("c999", False),
        ("x1", False),
        (f"t{world.tenant.pk}", True),
    ):
        before = Plan.objects.count()
        saved = client.post("/schedules/new/", plan_form(placement=placement))
        assert (saved.status_code == 302) is ok, (placement, saved.status_code)
        if not ok:
            assert saved.status_code == 400
            assert 'id="f-placement-error"' in page_of(saved)
            assert Plan.objects.count() == before
        else:
            plan = Plan.objects.get(entity_key="71")
            assert client.get(saved["Location"]).status_code == 200
            plan.delete()


def test_buttons_the_scope_refuses_are_disabled_with_the_reason(world):
    """A user who sees every cluster but manages schedules on alpha only."""
    user = make_user("mixed", roles.VIEWER, roles.MANAGER)
    grant_scoped(user, roles.MANAGER, world.alpha)
    client = client_for(user)
    bravo = page_of(client.get(f"/schedules/{world.plans['bravo'].pk}/"))
    run_button = re.search(r"<button[^>]*>\s*Run now\s*</button>", bravo)
    assert run_button and "disabled" in run_button.group(0)
    assert "outside the clusters your role covers" in bravo
    assert ">Edit<" not in bravo
    assert client.post(f"/schedules/{world.plans['bravo'].pk}/run/").status_code == 403
    alpha = page_of(client.get(f"/schedules/{world.plans['alpha'].pk}/"))
    run_button = re.search(r"<button[^>]*>\s*Run now\s*</button>", alpha)
    assert run_button and "disabled" not in run_button.group(0)


def test_run_now_needs_the_run_permission_as_a_disabled_button(world):
    make_role("schedulers", "view_taskinstance", "manage_schedules")
    user = make_user("scheduler", "schedulers")
    page = page_of(client_for(user).get(f"/schedules/{world.plans['alpha'].pk}/"))
    run_button = re.search(r"<button[^>]*>\s*Run now\s*</button>", page)
    assert run_button and "disabled" in run_button.group(0)
    assert "You do not have permission to run jobs." in page


# --- The Run form (point 2: a scoped user's own run is theirs to see) ------------------------------

JOB = "/jobs/Reinstall OCP agent/"


@pytest.mark.parametrize("name", PERSONAS)
def test_run_form_offers_and_requires_the_users_clusters(world, name):
    client = client_for(persona(name, world))
    job = page_of(client.get(JOB))
    if name == "viewer":
        assert 'id="run-form"' not in job
        assert client.post(JOB, {"param-host": "10.0.0.1"}).status_code == 403
        return
    placement = re.search(r'<select id="f-placement".*?</select>', job, re.S).group(0)
    options = set(re.findall(r'<option value="([ct]\d*|)"', placement))
    expected = {f"c{world.alpha.pk}", f"t{world.tenant.pk}"}
    if name != "scoped":
        expected |= {"", f"c{world.bravo.pk}"}
    assert options == expected
    for placement, ok in (
        ("", name != "scoped"),
        (f"c{world.bravo.pk}", name != "scoped"),
        ("c999", False),
        ("t999", False),
        ("nonsense", False),
        (f"t{world.tenant.pk}", True),
        (f"c{world.alpha.pk}", True),
    ):
        before = TaskInstance.objects.count()
        ran = client.post(JOB, {"param-host": "10.0.0.1", "placement": placement})
        if not ok:
            assert ran.status_code == 400, placement
            assert 'id="f-placement-error"' in page_of(ran)
            assert TaskInstance.objects.count() == before
            continue
        assert ran.status_code == 302, placement
        task = TaskInstance.objects.latest("pk")
        assert ran["Location"] == f"/tasks/{task.pk}/"
        assert client.get(ran["Location"]).status_code == 200  # their own run is theirs
        if placement.startswith("t"):
            assert (task.cluster, task.tenant) == (world.alpha, world.tenant)


def test_point2_a_scoped_operators_run_lands_on_their_cluster_and_page(world):
    user = scoped_operator(world.alpha)
    client = client_for(user)
    ran = client.post(JOB, {"param-host": "10.0.0.2"})  # the form's first choice is theirs
    assert ran.status_code == 400  # no cluster chosen: refused, not a run they cannot see
    assert "choose one of your clusters" in page_of(ran)
    ran = client.post(JOB, {"param-host": "10.0.0.2", "placement": f"c{world.alpha.pk}"})
    task = TaskInstance.objects.get(parameters__host="10.0.0.2")
    assert ran["Location"] == f"/tasks/{task.pk}/"
    assert client.get(ran["Location"]).status_code == 200
    assert task.cluster == world.alpha


# --- Point 1 as it was seen ------------------------------------------------------------------------


def test_point1_a_scoped_operator_gets_only_their_clusters_plans(world):
    client = api("scoped", world)
    assert client.get("/api/schedules").json()["totalHits"] == 1
    assert client.get("/api/contexts").json()["totalHits"] == 1
    bravo = world.plans["bravo"]
    before = TaskInstance.objects.count()
    run_now = {"entityGroup": "NOTEBOOK", "entityKey": "2", "planItems": [{"triggerType": "ONCE"}]}
    assert client.post("/api/schedules", run_now, "application/json").status_code == 403
    assert client.post(f"/api/schedules/{bravo.pk}/enable").status_code == 404
    assert TaskInstance.objects.count() == before


# --- The audit trail (point 8) ----------------------------------------------------------------------


def test_point8_everyone_sees_the_audit_rows_of_the_plans_they_see(world):
    operator = make_user("operator", roles.MANAGER)
    scoped = scoped_operator(world.alpha)
    for target in TARGETS:
        plan = world.plans[target]
        verbs.plan_disable(plan_id=plan.pk, actor=operator)
        verbs.plan_enable(plan_id=plan.pk, actor=operator)
        verbs.plan_cancel(plan_id=plan.pk, actor=operator)
    actions = {"PLAN_CREATE", "PLAN_ENABLE", "PLAN_DISABLE", "PLAN_CANCEL"}
    for user, seen in ((operator, TARGETS), (scoped, ["alpha"])):
        page = page_of(client_for(user).get("/audit/?size=200"))
        for action in actions:
            assert f">{action}<" in page, (user, action)
        for target in TARGETS:
            plan = world.plans[target]
            assert (f"plan {plan.pk} NOTEBOOK/{plan.entity_key}" in page) is (target in seen)
    viewer = make_user("viewer", roles.VIEWER)
    page = page_of(client_for(viewer).get("/audit/?size=200"))
    assert ">PLAN_DISABLE<" in page
    # Account changes stay the account admins'.
    from taskcenter.tasks.audit import audit_record

    audit_record(actor=None, action="USER_CREATE", target="user someone-new")
    assert "someone-new" not in page_of(client_for(operator).get("/audit/?size=200"))
    admin = make_user("admin", roles.ADMIN)
    assert "someone-new" in page_of(client_for(admin).get("/audit/?size=200"))


def test_point8_a_missed_fire_reads_in_words_and_the_readers_zone(world):
    plan = world.plans["alpha"]
    item = PlanItem.objects.get(plan=plan, trigger_type="CRON_JOB")
    missed_at = datetime(2026, 12, 6, 16, 15, tzinfo=UTC)  # 00:15 in Shanghai
    firing.fire_record_missed(
        plan=plan, item=item, fire_time=missed_at, reason="no scheduler ran at this time"
    )
    running = world.contexts["alpha"]
    firing.fire_start(plan=plan, item=item, fire_time=datetime(2026, 12, 13, 16, 15, tzinfo=UTC))
    client = client_for(scoped_operator(world.alpha))
    client.cookies["tz"] = "Asia%2FShanghai"
    page = page_of(client.get("/audit/?size=200"))
    shown = re.sub(r"<[^>]+>", "", page.split("<tbody>")[1])  # the text a reader reads
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", shown)  # no raw ISO time
    assert "2026-12-07 00:15:00" in page or "2026-12-06 16:15:00 UTC" in page
    assert f"task #{running}" in page and f"context {running}" not in page
    assert Fire.objects.filter(outcome="SKIPPED").exists()


def test_the_scheduler_words_a_missed_fire_without_a_raw_time(world, clock):
    plan = world.plans["alpha"]
    PlanItem.objects.filter(plan=plan, trigger_type="CRON_JOB").update(
        next_fire_at=datetime(2023, 1, 1, tzinfo=UTC)
    )
    Plan.objects.filter(pk=plan.pk).update(misfire_policy="SKIP")
    scheduler.tick(now=datetime(2023, 3, 1, tzinfo=UTC))
    missed = Fire.objects.filter(plan=plan, outcome="MISSED")
    assert missed.exists()
    for fire in missed:
        assert not re.search(r"\d{4}-\d\d-\d\dT", fire.reason), fire.reason
    row = AuditEntry.objects.filter(action="PLAN_FIRE", to_status="MISSED").first()
    assert row is not None and row.cluster_id == world.alpha.pk
