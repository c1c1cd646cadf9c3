"""Fixtures of the dashboard tests: tasks in every state, driven through the services.

`drive()` plays the worker's part in-process with the engine-facing services
(attempt_claim, log_append, attempt_finish), so view tests get FAILED, RUNNING and
rolled-back tasks in a plain `db` test, without a broker, a worker or threads. The
browser tests use the real `worker` fixture instead.
"""

from __future__ import annotations

import pytest
from django.test import Client

from taskcenter.tasks import selectors, services
from taskcenter.tasks.models import SubtaskInstance, SubtaskStatus, TaskInstance
from tests.conftest import make_user

PASSWORD = "Pa55word!long"


def drive(task: TaskInstance, *, fail: set[str] = frozenset(), stop_at: set[str] = frozenset()):
    """Run every READY attempt of `task` until none is left.

    Subtasks named in `fail` fail; those in `stop_at` are claimed (RUNNING) and left
    running. Returns the task as it is then.
    """
    while True:
        ready = list(
            SubtaskInstance.objects.filter(task=task, status=SubtaskStatus.READY).order_by("pk")
        )
        if not ready:
            break
        progressed = False
        for sub in ready:
            claimed = services.attempt_claim(
                subtask_id=sub.pk, attempt=sub.attempt, executor="test-host"
            )
            if claimed is None:
                continue
            services.log_append(
                subtask_id=sub.pk,
                attempt=sub.attempt,
                data=f"start run {claimed.run_time} of '{sub.name}'\nworking on {sub.name}\n".encode(),
            )
            if sub.name in stop_at:
                continue
            progressed = True
            ok = sub.name not in fail
            services.attempt_finish(
                subtask_id=sub.pk,
                attempt=sub.attempt,
                succeeded=ok,
                log=(b"done\n" if ok else f"{sub.name} failed on purpose\n".encode()),
            )
        if not progressed:
            break
    return selectors.task_get(task_id=task.pk)


def subtask_named(task: TaskInstance, name: str) -> SubtaskInstance:
    return task.subtasks.get(name=name)


def start(definition: str = "Migrate tenant", creator=None, **parameters) -> TaskInstance:
    return services.task_start(definition_name=definition, parameters=parameters, creator=creator)


@pytest.fixture
def nobody(db):
    """Signed in, but without any role."""
    return make_user("nobody")


@pytest.fixture
def staff_admin(db):
    from taskcenter.accounts import roles

    user = make_user("boss", roles.ADMIN)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def failed_task(db, operator):
    """Migrate tenant, failed at "Copy tenant data"."""
    return drive(start(creator=operator), fail={"Copy tenant data"})


@pytest.fixture
def running_task(db, operator):
    """Back up cluster with "Back up data files" running."""
    return drive(start("Back up cluster", creator=operator), stop_at={"Back up data files"})


@pytest.fixture
def done_task(db, operator):
    return drive(start("Reinstall OCP agent", creator=operator))
