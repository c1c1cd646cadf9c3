"""Role grants limited to clusters: what a scoped user sees and may operate."""

import pytest

from taskcenter.accounts import access, roles
from taskcenter.core.errors import NotPermitted, TaskNotFound
from taskcenter.tasks.models import TaskInstance
from tests.factories import failed_task_on, grant_scoped, make_user


@pytest.fixture
def tasks(clusters):
    a, b = clusters
    return failed_task_on(a, "on A"), failed_task_on(b, "on B")


def scope(user, role, *clusters):
    grant_scoped(user, role, *clusters)


def fresh(user):
    return type(user).objects.get(pk=user.pk)  # permission caches live on the user object


def test_scoped_operator_sees_and_operates_only_their_cluster(clusters, tasks):
    a, _ = clusters
    on_a, on_b = tasks
    user = make_user("scoped", roles.MANAGER)
    scope(user, roles.MANAGER, a)
    user = fresh(user)
    assert list(access.visible_tasks(user)) == [on_a]
    assert access.get_operable_task_for_user(user, on_a.pk, "retry") == on_a
    with pytest.raises(TaskNotFound):
        access.get_task_for_user(user, on_b.pk)
    with pytest.raises(TaskNotFound):
        access.get_operable_task_for_user(user, on_b.pk, "retry")
    assert access.can_operate(user, "retry", on_a) and not access.can_operate(user, "retry", on_b)


def test_unscoped_view_with_scoped_operations_sees_all_but_operates_one_cluster(clusters, tasks):
    a, _ = clusters
    on_a, on_b = tasks
    user = make_user("mixed", roles.VIEWER, roles.MANAGER)
    scope(user, roles.MANAGER, a)
    user = fresh(user)
    assert set(access.visible_tasks(user)) == {on_a, on_b}
    access.get_operable_task_for_user(user, on_a.pk, "rollback")
    with pytest.raises(NotPermitted):
        access.get_operable_task_for_user(user, on_b.pk, "rollback")


def test_unscoped_grants_and_superusers_see_everything(tasks):
    viewer = make_user("plain", roles.VIEWER)
    assert access.visible_tasks(viewer).count() == 2
    boss = type(viewer).objects.create_superuser("boss", password="x")
    assert access.visible_tasks(boss).count() == 2 and access.can_operate(boss, "cancel", tasks[1])


def test_inactive_and_anonymous_users_see_nothing(tasks):
    from django.contrib.auth.models import AnonymousUser

    user = make_user("gone", roles.MANAGER)
    user.is_active = False
    assert access.visible_tasks(user).count() == 0
    assert access.visible_tasks(AnonymousUser()).count() == 0
    with pytest.raises(NotPermitted):
        access.get_task_for_user(AnonymousUser(), tasks[0].pk)


def test_scoped_user_sees_no_other_cluster_task_through_the_api(clusters, tasks, client):
    a, _ = clusters
    user = make_user("apiscoped", roles.MANAGER)
    scope(user, roles.MANAGER, a)
    client.force_login(user)
    listed = client.get("/api/v2/tasks/instances", {"size": 100}).json()["data"]
    assert [t["name"] for t in listed["contents"]] == ["on A"]
    assert listed["page"]["totalElements"] == 1
    assert (
        client.get("/api/v2/tasks/instances", {"keyword": "on B"}).json()["data"]["page"][
            "totalElements"
        ]
        == 0
    )
    detail = client.get(f"/api/v2/tasks/instances/{tasks[1].pk}")
    assert detail.status_code == 404 and detail.json()["error"]["code"] == 20000
    refused = client.post(f"/api/v2/tasks/instances/{tasks[1].pk}/retry")
    assert refused.status_code == 404
    assert TaskInstance.objects.get(pk=tasks[1].pk).status == "FAILED"


def test_scoped_user_tails_logs_only_in_their_cluster(clusters, tasks, client):
    """The log poll reads the subtask and its task in one statement; the cluster scope and
    the task the subtask belongs to still decide, with the same 404s as the task pages."""
    from taskcenter.tasks.models import SubtaskInstance

    a, _ = clusters
    on_a, on_b = tasks
    user = make_user("tailer", roles.MANAGER)
    scope(user, roles.MANAGER, a)
    client.force_login(user)
    sub_a = SubtaskInstance.objects.filter(task=on_a).first()
    sub_b = SubtaskInstance.objects.filter(task=on_b).first()
    hx = {"HTTP_HX_REQUEST": "true"}

    assert client.get(f"/tasks/{on_a.pk}/subtasks/{sub_a.pk}/log/", **hx).status_code in (
        200,
        286,
    )
    hidden = client.get(f"/tasks/{on_b.pk}/subtasks/{sub_b.pk}/log/", **hx)
    assert hidden.status_code == 404
    assert f"The {on_b.pk} task does not exist." in hidden.content.decode()
    # A visible task with another task's subtask: no such subtask in it.
    mixed = client.get(f"/tasks/{on_a.pk}/subtasks/{sub_b.pk}/log/", **hx)
    assert mixed.status_code == 404
    assert f"The {sub_b.pk} subtask does not exist in the {on_a.pk} task." in (
        mixed.content.decode()
    )
    with pytest.raises(TaskNotFound):
        access.get_subtask_for_user(fresh(user), on_b.pk, sub_b.pk)
