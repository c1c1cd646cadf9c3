"""A send that cannot reach the broker never fails the committed operation: the attempts
wait in the outbox, the reaper sends them once the broker answers."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from kombu.exceptions import OperationalError

from taskcenter.engine import dispatch, outbox, reaper
from taskcenter.engine.models import PendingDispatch
from taskcenter.tasks import verbs
from taskcenter.tasks.models import SubtaskStatus
from tests.conftest import basic_client, client_for
from tests.factories import failed_task, first_subtask_with, make_user

pytestmark = pytest.mark.django_db(transaction=True)


class Broker:
    """Stands in for the broker: down (sends raise, as kombu does) or up (sends recorded)."""

    def __init__(self):
        self.up = False
        self.sent: list[tuple[int, int]] = []

    def send(self, attempts):
        if not self.up:
            raise OperationalError("Error 111 connecting to redis://:s3cret@127.0.0.1:1/0.")
        self.sent.extend(attempts)


@pytest.fixture
def broker(monkeypatch):
    fake = Broker()
    monkeypatch.setattr(dispatch, "_send_all", fake.send)
    monkeypatch.setattr(dispatch, "broker_answers", lambda: fake.up)
    monkeypatch.setattr(reaper, "_broker_down", False)
    monkeypatch.setattr(reaper, "_catch_up", False)
    return fake


def queued() -> set[tuple[int, int]]:
    return set(PendingDispatch.objects.values_list("subtask_id", "attempt"))


def test_an_api_retry_while_the_broker_is_down_answers_200_and_is_queued(broker, caplog):
    make_user("operator", "TASK_MANAGER")
    task = failed_task()
    response = basic_client("operator").post(f"/api/v2/tasks/instances/{task.pk}/retry")
    assert response.status_code == 200, response.content
    assert response.json()["successful"] is True
    # The answer says the work waits for the broker, not only that the retry is done.
    assert response.json()["notice"] == (
        "The broker does not answer: 1 subtask(s) are queued and will be sent to the "
        "workers as soon as it is back."
    )
    retried = first_subtask_with(task, SubtaskStatus.READY)
    assert queued() == {(retried.pk, retried.attempt)}
    assert "s3cret" not in caplog.text and "***@" in caplog.text  # no secret in the log


def test_an_api_retry_with_the_broker_up_has_no_notice(broker):
    broker.up = True
    make_user("operator", "TASK_MANAGER")
    task = failed_task()
    response = basic_client("operator").post(f"/api/v2/tasks/instances/{task.pk}/retry")
    assert response.status_code == 200 and "notice" not in response.json()
    assert queued() == set() and len(broker.sent) == 1


def test_a_subtask_retry_through_the_api_while_the_broker_is_down_says_queued(broker):
    make_user("operator", "TASK_MANAGER")
    task = failed_task()
    failed = first_subtask_with(task, SubtaskStatus.FAILED)
    response = basic_client("operator").post(
        f"/api/v2/tasks/instances/{task.pk}/subtasks/{failed.pk}/retry"
    )
    assert response.status_code == 200, response.content
    assert "1 subtask(s) are queued" in response.json()["notice"]


def test_a_retry_from_the_page_while_the_broker_is_down_says_queued(broker):
    """The page's flash: the retry is done (not an error), and the work waits for the broker."""
    operator = make_user("operator", "TASK_MANAGER")
    task = failed_task()
    client = client_for(operator)
    answer = client.post(
        f"/tasks/{task.pk}/retry/", {"reason": "", "seen": "0"}, HTTP_HX_REQUEST="true"
    )
    assert answer.status_code == 200, answer.content
    body = answer.content.decode()
    assert "flash flash-warning" in body
    assert "1 subtask(s) are queued and will be sent to the workers" in body
    assert len(queued()) == 1

    # Without htmx, the message waits on the next page.
    again = failed_task()
    followed = client.post(f"/tasks/{again.pk}/retry/", {"reason": ""}, follow=True)
    page = followed.content.decode()
    assert "flash flash-warning" in page and "subtask(s) are queued" in page


def test_the_reaper_sends_the_outbox_as_soon_as_the_broker_answers(broker):
    task = failed_task()
    verbs.task_retry(task_id=task.pk, actor=None)
    retried = first_subtask_with(task, SubtaskStatus.READY)
    reaper.reap()  # still down: nothing sent, nothing lost
    assert broker.sent == [] and queued() == {(retried.pk, retried.attempt)}
    broker.up = True
    report = reaper.reap()
    assert report.outbox_sent == 1
    assert (retried.pk, retried.attempt) in broker.sent
    assert queued() == set()


def test_the_outbox_forgets_attempts_that_moved_on(broker):
    task = failed_task()
    verbs.task_retry(task_id=task.pk, actor=None)
    retried = first_subtask_with(task, SubtaskStatus.READY)
    retried.status = SubtaskStatus.SUCCESSFUL  # by hand: claimed and run through another path
    retried.save(update_fields=["status"])
    assert outbox.drain(broker.send) == 0
    assert queued() == set()


def test_run_task_says_the_work_is_queued_when_the_broker_is_down(broker):
    out, err = StringIO(), StringIO()
    call_command("run_task", "Reinstall OCP agent", stdout=out, stderr=err)
    task_id = int(out.getvalue().split()[0])
    assert "broker does not answer" in err.getvalue()
    assert f"task {task_id} is created" in err.getvalue()
    assert len(queued()) == 1
