"""Run again: the Jobs API's repeatOf and the Run form filled from a task; the new task
links to the one it repeats and that one lists its repeats."""

from __future__ import annotations

import re

from taskcenter.accounts import roles
from taskcenter.tasks import verbs
from taskcenter.tasks.models import TaskInstance
from tests.conftest import basic_client, client_for, make_user
from tests.factories import failed_task_on, make_cluster_and_tenant

MIGRATE = "/api/v2/jobs/Migrate%20tenant/runs"


def started(operator, **parameters) -> TaskInstance:
    cluster, tenant = make_cluster_and_tenant()
    return verbs.task_start(
        definition_name="Migrate tenant",
        parameters=parameters,
        creator=operator,
        cluster=cluster,
        tenant=tenant,
    )


def test_repeat_of_copies_parameters_and_placement_and_changes_what_is_given(operator):
    old = started(operator, fail_step="copy", fail_times=2, step_seconds=0.5)
    answer = basic_client("operator").post(
        MIGRATE,
        {"repeatOf": old.pk, "parameters": {"fail_step": ""}},
        content_type="application/json",
    )
    assert answer.status_code == 201, answer.json()
    new = TaskInstance.objects.get(pk=answer.json()["data"]["taskInstanceId"])
    assert new.repeat_of_id == old.pk
    assert new.parameters == {"fail_step": "", "fail_times": 2, "step_seconds": 0.5}
    assert (new.cluster_id, new.tenant_id) == (old.cluster_id, old.tenant_id)


def test_repeat_of_a_task_of_another_job_or_cluster_is_refused(operator, clusters):
    old = started(operator)
    client = basic_client("operator")
    answer = client.post(
        "/api/v2/jobs/Back%20up%20cluster/runs",
        {"repeatOf": old.pk},
        content_type="application/json",
    )
    assert answer.status_code == 400 and answer.json()["error"]["target"] == "repeatOf"
    hidden = failed_task_on(clusters[1], "Bravo")
    scoped = make_user("scoped", roles.MANAGER)
    from django.contrib.auth.models import Group

    from taskcenter.accounts.models import RoleScope

    scope = RoleScope.objects.create(user=scoped, group=Group.objects.get(name=roles.MANAGER))
    scope.clusters.set([clusters[0]])
    answer = basic_client("scoped").post(
        MIGRATE, {"repeatOf": hidden.pk}, content_type="application/json"
    )
    assert answer.status_code == 404
    answer = client.post(MIGRATE, {"repeatOf": "x"}, content_type="application/json")
    assert answer.status_code == 400 and answer.json()["error"]["target"] == "repeatOf"


def test_the_run_form_is_filled_from_the_task_and_links_both_ways(operator):
    old = started(operator, fail_step="verify", fail_times=3, step_seconds=0.25)
    client = client_for(operator)
    detail = client.get(f"/tasks/{old.pk}/").content.decode()
    match = re.search(r'href="([^"]+\?repeat=\d+#run)"', detail)
    assert match, "the task page offers Run again…"
    form = client.get(match.group(1).replace("&amp;", "&")).content.decode()
    assert f'name="repeat_of" value="{old.pk}"' in form
    assert re.search(r'<option value="verify" selected', form)
    assert 'value="3"' in form and f'value="t{old.tenant_id}" selected' in form

    answer = client.post(
        "/jobs/Migrate%20tenant/",
        {
            "repeat_of": old.pk,
            "placement": f"t{old.tenant_id}",
            "param-fail_step": "verify",
            "param-fail_times": "1",
            "param-step_seconds": "0.25",
        },
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    new = TaskInstance.objects.get(repeat_of=old)
    assert new.parameters["fail_times"] == 1 and new.parameters["fail_step"] == "verify"
    assert (
        f'Run again of <a href="/tasks/{old.pk}/">#{old.pk}</a>'
        in client.get(f"/tasks/{new.pk}/").content.decode()
    )
    assert (
        f'<a href="/tasks/{new.pk}/">#{new.pk}</a>'
        in client.get(f"/tasks/{old.pk}/").content.decode()
    )


def test_a_viewer_gets_no_run_again(viewer, operator):
    old = started(operator)
    assert "?repeat=" not in client_for(viewer).get(f"/tasks/{old.pk}/").content.decode()
