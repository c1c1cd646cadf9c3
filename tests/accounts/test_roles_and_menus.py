"""Roles that cannot lock their users out, the top bar's role badge, filter menus built from
the viewer's scope, refusal messages in good English, and task types in plain words."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from taskcenter.accounts import access, roles, services
from taskcenter.core.errors import NotPermitted
from taskcenter.tasks.models import TaskType
from taskcenter.tasks.verbs import VERBS as TASK_VERBS
from tests.accounts.conftest import scoped_operator
from tests.conftest import client_for
from tests.factories import make_host, make_role, make_user

# --- Refusal messages --------------------------------------------------------------------------

# What may follow "You do not have permission to": a verb, then what it acts on.
VERBS = {"retry", "roll back", "skip", "cancel", "run", "manage", "view", "approve", "reject"}
OBJECTS = {"tasks", "subtasks", "jobs", "schedules"}


def _refusal_for(user, key: str, task) -> str:
    with pytest.raises(NotPermitted) as refused:
        if key in TASK_VERBS:
            access.get_operable_task_for_user(user, task.pk, key)
        else:
            access.require_manage_schedules(user, run=key == "run")
    return refused.value.message


@pytest.mark.parametrize("key", [*TASK_VERBS, "run", "manage_schedules"])
def test_every_permission_is_refused_in_a_sentence(key, clusters, tasks):
    """ "You do not have permission to <verb> <things>." for every operation, never the
    permission's key turned into words ("to subtask retry tasks")."""
    viewer = make_user("viewer", roles.VIEWER)
    if key == "run":  # may manage schedules, so that running is what is missing
        viewer.groups.add(make_role("Schedulers", "manage_schedules"))
        viewer = access.forget_permissions(viewer)
    message = _refusal_for(viewer, key, tasks[0])
    found = re.fullmatch(r"You do not have permission to (.+) (\w+)\.", message)
    assert found, message
    verb, things = found.groups()
    assert verb in VERBS and things in OBJECTS, message
    assert "_" not in message and key.replace("_", " ") not in message.replace(verb, "", 1)
    if key in TASK_VERBS:
        assert things == ("subtasks" if TASK_VERBS[key].on_subtask else "tasks"), message


# --- Operating implies viewing -----------------------------------------------------------------


def _role_without_view(name: str, *codenames: str) -> Group:
    """A role as older versions saved it: operations, and no permission to view."""
    return make_role(name, *codenames)


def test_a_role_that_operates_but_lacks_view_still_sees_and_operates(clusters, tasks):
    holder = make_user("holder")
    holder.groups.add(_role_without_view("Retry and cancel only", "retry_taskinstance"))
    holder = access.forget_permissions(holder)
    on_a, on_b = tasks
    assert access.can_view(holder)
    assert set(access.visible_tasks(holder)) == {on_a, on_b}
    assert access.get_operable_task_for_user(holder, on_a.pk, "retry") == on_a
    with pytest.raises(NotPermitted):
        access.get_operable_task_for_user(holder, on_a.pk, "rollback")
    client = client_for(holder)
    assert client.get("/tasks/").status_code == 200
    page = client.get(f"/tasks/{on_a.pk}/").content.decode()
    assert 'data-action="retry"' in page and 'data-action="rollback"' not in page
    assert client.get("/api/v2/tasks/instances").status_code == 200


def test_an_implied_view_follows_the_scope_of_the_operation(clusters, tasks):
    """Granted on cluster alpha only, retrying shows alpha's tasks and no others."""
    on_a, on_b = tasks
    holder = make_user("holder")
    role = _role_without_view("Alpha retriers", "retry_taskinstance")
    services.user_set_roles(user_id=holder.pk, grants={role.pk: [clusters[0].pk]})
    holder = access.forget_permissions(holder)
    assert list(access.visible_tasks(holder)) == [on_a]
    assert client_for(holder).get(f"/tasks/{on_b.pk}/").status_code == 404


def test_the_role_form_adds_view_to_a_role_that_operates_and_says_so(clusters):
    admin = make_user("root", roles.ADMIN)
    client = client_for(admin)
    checklist = client.get("/manage/roles/").content.decode()
    assert "Each of these includes seeing tasks" in checklist
    response = client.post(
        "/manage/roles/",
        {"name": "Retry and cancel", "permissions": ["tasks.retry_taskinstance"]},
        follow=True,
    )
    role = Group.objects.get(name="Retry and cancel")
    assert set(role.permissions.values_list("codename", flat=True)) == {
        "retry_taskinstance",
        "view_taskinstance",
    }
    assert "“Can view task instance” was added" in response.content.decode()
    # A role that only administers is saved as chosen.
    readers = services.role_create(name="Key keepers", permissions=["accounts.view_accesskey"])
    assert list(readers.permissions.values_list("codename", flat=True)) == ["view_accesskey"]


def test_a_user_who_may_see_nothing_gets_a_way_out_of_the_refusal(db):
    client = client_for(make_user("nobody"))
    assert client.get("/").headers["Location"] == "/account/"
    signing_in = Client().post("/login/", {"username": "nobody", "password": "Pa55word!long"})
    assert signing_in.headers["Location"] == "/account/"
    keeper = make_user("keeper")
    keeper.groups.add(make_role("Key keepers", "manage_all_accesskeys"))
    assert client_for(keeper).get("/").headers["Location"] == "/manage/"
    assert client_for(keeper).get("/manage/", follow=True).status_code == 200
    assert client_for(make_user("v", roles.VIEWER)).get("/").headers["Location"] == "/tasks/"
    response = client.get("/tasks/")
    assert response.status_code == 403
    page = response.content.decode()
    assert 'href="/tasks/"' not in page  # no link back to the same refusal
    assert 'href="/account/"' in page


# --- The role badge ----------------------------------------------------------------------------


def _badge(user) -> tuple[str, str]:
    page = client_for(user).get("/account/").content.decode()
    found = re.search(r'<span class="role-badge" title="([^"]*)"[^>]*>([^<]*)</span>', page)
    assert found, "no role badge"
    return found.group(2), found.group(1)


@pytest.mark.parametrize("role", [roles.VIEWER, roles.MANAGER, roles.ADMIN])
def test_badge_names_the_builtin_role_as_the_admin_pages_do(role, db):
    text, title = _badge(make_user("someone", role))
    assert text == role and role in title


def test_badge_names_a_custom_role_and_several_compactly(clusters):
    holder = make_user("holder", roles.VIEWER)
    holder.groups.add(_role_without_view("Night shift", "retry_taskinstance"))
    text, title = _badge(holder)
    assert text == f"{roles.VIEWER} +1"
    assert "Night shift" in title and roles.VIEWER in title
    scoped = scoped_operator(clusters[0])
    text, title = _badge(scoped)
    assert text == roles.MANAGER and "on alpha" in title


# --- Filter menus from the viewer's scope ------------------------------------------------------


@pytest.fixture
def hosts(clusters, tasks):
    alpha, bravo = clusters
    a = make_host("10.0.1.1", alpha)
    b = make_host("10.0.2.1", bravo)
    loose = make_host("10.0.9.9")  # of no cluster, used by bravo's task
    tasks[1].hosts.add(b, loose)
    loose_a = make_host("10.0.8.8")  # of no cluster, used by alpha's task
    tasks[0].hosts.add(loose_a)
    return a, b, loose


def _options(page: str, name: str) -> list[str]:
    select = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', page, re.S)
    assert select, name
    return re.findall(r"<option[^>]*>([^<]*)</option>", select.group(1))


def test_scoped_users_list_menus_hold_only_their_clusters(clusters, tasks, hosts):
    scoped = scoped_operator(clusters[0])
    page = client_for(scoped).get("/tasks/").content.decode()
    assert _options(page, "clusterId") == ["Any cluster", "alpha"]
    assert _options(page, "hostId") == ["Any host", "10.0.1.1", "10.0.8.8"]
    assert _options(page, "creator") == ["Anyone", "owner-alpha"]
    assert "bravo" not in page and "10.0.2.1" not in page and "10.0.9.9" not in page
    everyone = client_for(make_user("all", roles.VIEWER)).get("/tasks/").content.decode()
    assert _options(everyone, "clusterId") == ["Any cluster", "alpha", "bravo"]
    assert _options(everyone, "hostId") == [
        "Any host",
        "10.0.1.1",
        "10.0.2.1",
        "10.0.8.8",
        "10.0.9.9",
    ]


def test_scoped_users_filter_options_in_the_api_hold_only_their_clusters(clusters, tasks, hosts):
    scoped = scoped_operator(clusters[0])
    data = client_for(scoped).get("/api/v2/tasks/instances/filters").json()["data"]
    assert [c["name"] for c in data["clusters"]] == ["alpha"]
    assert [h["name"] for h in data["hosts"]] == ["10.0.1.1", "10.0.8.8"]
    assert [c["name"] for c in data["creators"]] == ["owner-alpha"]
    creators = client_for(scoped).get("/api/v2/tasks/instances/creators").json()["data"]
    assert [c["name"] for c in creators["contents"]] == ["owner-alpha"]
    everyone = client_for(make_user("all", roles.VIEWER))
    data = everyone.get("/api/v2/tasks/instances/filters").json()["data"]
    assert [c["name"] for c in data["clusters"]] == ["alpha", "bravo"]
    assert client_for(make_user("nobody")).get("/api/v2/tasks/instances/filters").status_code == 403


def test_scoped_users_audit_menu_and_counts_come_from_their_scope(clusters, tasks):
    from taskcenter.tasks import verbs

    on_a, on_b = tasks
    admin = make_user("root", roles.ADMIN)
    verbs.task_rollback(task_id=on_b.pk, actor=admin, reason="bravo only")
    scoped = scoped_operator(clusters[0])
    page = client_for(scoped).get("/audit/").content.decode()
    assert "ROLLBACK" not in _options(page, "action")
    assert "<b>0</b> running" in page and "<b>1</b> failed" in page
    page = client_for(admin).get("/audit/").content.decode()
    assert "ROLLBACK" in _options(page, "action")
    assert "<b>1</b> running" in page and "<b>1</b> failed" in page


# --- Plain words -------------------------------------------------------------------------------


def test_task_types_are_named_in_plain_words_on_pages_and_ocps_spelling_in_the_api(clusters):
    from tests.factories import failed_task_on

    task = failed_task_on(clusters[0], "System job")
    type(task).objects.filter(pk=task.pk).update(type=TaskType.SYS_ONECE)
    client = client_for(make_user("someone", roles.VIEWER))
    for page in (client.get("/tasks/"), client.get(f"/tasks/{task.pk}/")):
        text = page.content.decode()
        assert "Sys Onece" not in text and "System, one-off" in text
    answer = client.get(f"/api/v2/tasks/instances/{task.pk}").json()["data"]
    assert answer["type"] == "SYS_ONECE"


def test_scoped_users_schedule_pages_do_not_tell_how_other_clusters_runs_went(clusters):
    from datetime import UTC, datetime

    from taskcenter.schedules import firing
    from taskcenter.schedules.models import PlanItem
    from tests.factories import cron_item, make_plan

    # A plan of the scoped user's cluster whose run went to another cluster (it moved).
    plan = make_plan("1", [cron_item("0 15 0 ? * 1", "GMT+08:00")], clusterId=clusters[0].pk)
    item = PlanItem.objects.get(plan=plan)
    fire = firing.fire_start(plan=plan, item=item, fire_time=datetime(2024, 1, 7, tzinfo=UTC))
    type(fire.task).objects.filter(pk=fire.task_id).update(cluster=clusters[1])
    scoped = client_for(scoped_operator(clusters[0]))
    for url in ("/schedules/", f"/schedules/{plan.pk}/"):
        page = scoped.get(url).content.decode()
        assert f"/tasks/{fire.task_id}/" not in page, url
        assert "No run yet" in page, url
    everyone = client_for(make_user("all", roles.VIEWER)).get("/schedules/").content.decode()
    assert f"/tasks/{fire.task_id}/" in everyone and "No run yet" not in everyone
