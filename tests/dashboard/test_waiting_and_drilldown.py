"""Why is this queued? (each reason a waiting subtask can have), and the fleet's
drill-down: a worker's attempts at work and lately run, a queue's waiting attempts, and a
died worker that stays listed as died beside its replacement."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from taskcenter.dashboard.waiting import waiting_for
from taskcenter.engine import presence
from taskcenter.engine.models import WorkerPresence
from taskcenter.engine.selectors import default_queue
from taskcenter.tasks.models import SubtaskStatus
from tests.conftest import client_for
from tests.factories import (
    grant_scoped,
    make_presence,
    make_task,
    make_user,
    subtask_named,
    two_root_task,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def quiet_fleet(no_broker, no_worker_process):
    cache.clear()
    yield
    cache.clear()


def seen(name, ago, *, queues=None, attempts=(), **fields):
    return make_presence(
        name,
        seen_ago=timedelta(seconds=ago),
        queues=list(queues or [default_queue()]),
        attempts=[list(a) for a in attempts],
        **fields,
    )


def test_a_queued_subtask_says_no_worker_then_busy_then_a_worker_soon(viewer):
    task = two_root_task()
    first = subtask_named(task, "first")
    assert first.status == SubtaskStatus.READY
    said = waiting_for(viewer, task, first)
    assert said.kind == "no_worker" and f"none consumes the queue {default_queue()}" in said.text
    busy = seen("w1@host-a", ago=1, running=2, concurrency=2)
    said = waiting_for(viewer, task, first)
    assert said.kind == "busy"
    assert "all 1 worker(s)" in said.text and "(2 of 2 slots); 2 attempt(s) wait" in said.text
    busy.running = 0
    busy.save()
    assert waiting_for(viewer, task, first).kind == "worker"


def test_a_pending_subtask_names_its_upstreams_or_the_operator(viewer):
    task = two_root_task()
    after = subtask_named(task, "after both")
    said = waiting_for(viewer, task, after)
    assert said.kind == "upstream" and "“first”, “second”" in said.text
    failed = make_task(["SUCCESSFUL", "FAILED", "PENDING"])
    said = waiting_for(viewer, failed, subtask_named(failed, "step 2"))
    assert said.kind == "operator" and "“step 1” failed; retry or skip it" in said.text
    assert waiting_for(viewer, failed, subtask_named(failed, "step 0")) is None  # it ran


def test_the_subtask_panel_shows_the_reason_with_a_link_to_the_queue(viewer):
    task = two_root_task()
    first = subtask_named(task, "first")
    panel = client_for(viewer).get(
        f"/tasks/{task.pk}/subtasks/{first.pk}/", headers={"HX-Request": "true"}
    )
    text = panel.content.decode()
    assert 'id="waiting-for"' in text and "Waiting for" in text
    assert f'href="/fleet/queues/{default_queue()}/"' in text


def test_a_queue_lists_its_waiting_attempts_in_scope(db, clusters):
    alpha, bravo = clusters
    scoped = make_user("scoped", "TASK_VIEWER")
    grant_scoped(scoped, "TASK_VIEWER", alpha)
    task = two_root_task()
    page = client_for(make_user("all", "TASK_VIEWER")).get(f"/fleet/queues/{default_queue()}/")
    ids = re.findall(r'<tr data-subtask="(\d+)"', page.content.decode())
    assert ids == [str(subtask_named(task, n).pk) for n in ("first", "second")]
    assert "no online worker" in page.content.decode()
    task.cluster = bravo
    task.save()
    hidden = client_for(scoped).get(f"/fleet/queues/{default_queue()}/").content.decode()
    assert 'id="queue-empty"' in hidden
    assert client_for(scoped).get("/fleet/queues/nobody-uses-this/").status_code == 200


def test_a_worker_page_lists_what_it_runs_and_ran(viewer):
    task = make_task(["SUCCESSFUL", "RUNNING", "PENDING"])
    done, running = subtask_named(task, "step 0"), subtask_named(task, "step 1")
    row = seen(
        "w1@host-a",
        ago=1,
        attempts=[(running.pk, running.attempt)],
        recent=[running.pk, done.pk],
        running=1,
    )
    page = client_for(viewer).get(f"/fleet/workers/{row.pk}/").content.decode()
    at_work = page.split('id="worker-at-work"')[1].split("</table>")[0]
    lately = page.split('id="worker-lately"')[1].split("</table>")[0]
    assert f'data-subtask="{running.pk}"' in at_work and f'data-subtask="{done.pk}"' not in at_work
    assert f'data-subtask="{done.pk}"' in lately and f'data-subtask="{running.pk}"' not in lately
    assert "At work now" in page
    assert client_for(viewer).get("/fleet/workers/999999/").status_code == 404


def test_a_died_worker_stays_listed_as_died_beside_its_replacement(viewer, settings):
    task = make_task(["RUNNING", "PENDING"])
    running = subtask_named(task, "step 0")
    # A worker's own beats: the first makes its row, the others update it.
    old = presence.Beat(name="w1@host-a", concurrency=2, queues=lambda: ["celery"], interval=1)
    old.beat()
    old.beat()
    assert WorkerPresence.objects.count() == 1
    died = WorkerPresence.objects.get()
    died.attempts = [[running.pk, running.attempt]]
    died.last_seen = timezone.now() - timedelta(minutes=10)
    died.save()
    replacement = presence.Beat(
        name="w1@host-a", concurrency=2, queues=lambda: ["celery"], interval=1
    )
    replacement.beat()
    assert WorkerPresence.objects.filter(name="w1@host-a").count() == 2
    page = client_for(viewer).get("/fleet/").content.decode()
    rows = re.findall(r'<tr data-worker="([^"]+)" data-online="(\w+)"', page)
    assert rows == [("w1@host-a", "true"), ("w1@host-a", "false")]
    assert "Died" in page and "was running" in page
    died_page = client_for(viewer).get(f"/fleet/workers/{died.pk}/").content.decode()
    assert "Running when it died" in died_page and f'data-subtask="{running.pk}"' in died_page


def test_a_scoped_viewer_sees_a_workers_attempts_of_their_clusters_only(clusters):
    task = make_task(["RUNNING", "PENDING"])  # on the meta cluster
    running = subtask_named(task, "step 0")
    row = seen("w1@host-a", ago=1, attempts=[(running.pk, running.attempt)], recent=[running.pk])
    scoped = make_user("scoped", "TASK_VIEWER")
    grant_scoped(scoped, "TASK_VIEWER", clusters[0])
    page = client_for(scoped).get(f"/fleet/workers/{row.pk}/").content.decode()
    assert f'data-subtask="{running.pk}"' not in page
    assert "Nothing of the tasks you may see" in page
