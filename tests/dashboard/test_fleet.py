"""The Fleet page and the no-worker banner, read from presence rows.

The presence rows are written by hand here: these tests are about what the pages make of
them; a real worker writing them is tested in tests/engine/test_presence.py.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from tests.conftest import client_for
from tests.factories import (
    make_cluster,
    make_finished_minute,
    make_presence,
    make_user,
    two_root_task,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_broker_no_worker_and_no_cached_banner(no_broker, no_worker_process):
    cache.clear()
    yield
    cache.clear()


def seen(name: str, ago: float, *, stopped: bool = False, queues=("celery",), running=0):
    return make_presence(
        name,
        seen_ago=timedelta(seconds=ago),
        stopped=stopped,
        concurrency=4,
        queues=list(queues),
        running=running,
    )


def banner(response) -> str:
    match = re.search(r'id="no-worker-banner">(.*?)</div>', response.content.decode(), re.S)
    return re.sub(r"<[^>]+>", "", match.group(1)).strip() if match else ""


def test_never_seen_a_worker_empty_state_and_banner(viewer):
    response = client_for(viewer).get("/fleet/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "No worker has ever been seen" in page
    assert "No worker has been seen: queued subtasks will wait until one starts" in banner(response)
    assert 'href="/fleet/"' in page  # the top bar's link, and the banner's


def test_the_banner_is_on_every_page_and_goes_away_with_a_worker(viewer):
    client = client_for(viewer)
    for url in ("/tasks/", "/audit/", "/jobs/", "/schedules/", "/account/"):
        assert "queued subtasks will wait" in banner(client.get(url)), url
    seen("w1@host-a", ago=1)
    cache.clear()
    assert banner(client.get("/tasks/")) == ""


def test_the_banner_says_how_long_and_follows_the_setting(viewer, settings):
    seen("w1@host-a", ago=45)
    client = client_for(viewer)
    text = banner(client.get("/tasks/"))
    assert re.search(r"No worker has been seen for 4[5-9] s: queued subtasks will wait", text)
    settings.TASKCENTER_NO_WORKER_AFTER = 120
    cache.clear()
    assert banner(client.get("/tasks/")) == ""


def test_a_cleanly_stopped_worker_is_not_online(viewer):
    seen("w1@host-a", ago=1, stopped=True)
    response = client_for(viewer).get("/fleet/")
    assert "queued subtasks will wait" in banner(response)
    assert re.search(r'data-online="false".*?Stopped', response.content.decode(), re.S)


def test_the_banner_costs_one_query_then_none_while_cached(viewer, django_assert_num_queries):
    from taskcenter.dashboard.fleet import no_worker_banner

    seen("w1@host-a", ago=1)
    with django_assert_num_queries(1):
        assert no_worker_banner() is None
    with django_assert_num_queries(0):
        assert no_worker_banner() is None


def test_fleet_lists_workers_queues_and_throughput(viewer, settings):
    settings.TASKCENTER_QUEUE_ROUTES = [({"node": "PYTHON_TASK"}, "python")]
    seen("w1@host-a", ago=2, queues=("celery",), running=3)
    seen("w2@host-b", ago=600)  # offline: silent for longer than the threshold
    two_root_task()  # two shell steps queued on the default queue
    now = timezone.now()
    make_finished_minute("w1@host-a", 7, at=now)
    make_finished_minute("w1@host-a", 5, at=now - timedelta(minutes=30))
    make_finished_minute("w2@host-b", 9, at=now - timedelta(minutes=90))

    page = client_for(viewer).get("/fleet/").content.decode()

    rows = re.findall(r'<tr data-worker="([^"]+)" data-online="(\w+)"', page)
    assert rows == [("w1@host-a", "true"), ("w2@host-b", "false")]
    assert "pid 4242" in page and "host-a" in page
    assert re.search(r'id="stat-online">1<', page)
    assert re.search(r'id="stat-queued">2<', page)
    assert re.search(r'id="stat-finished-5">7<', page)
    assert re.search(r'id="stat-finished-60">12<', page)
    from taskcenter.engine.selectors import default_queue

    queues = dict(re.findall(r'<tr data-queue="([^"]+)">.*?<td class="num">(\d+)</td>', page, re.S))
    # The test run's default queue holds the two steps; "python" is routed to and
    # "celery" consumed by w1, both empty.
    assert queues == {default_queue(): "2", "python": "0", "celery": "0"}
    assert "none" in page.split('data-queue="python"')[1].split("</tr>")[0]  # nobody consumes it


def test_fleet_needs_view_permission(db):
    assert client_for(None).get("/fleet/").status_code == 302
    nobody = make_user("nobody")
    assert client_for(nobody).get("/fleet/").status_code == 403


def test_the_banner_alone_for_the_pages_poll(db):
    assert client_for(None).get("/fleet/banner/").status_code == 302
    client = client_for(make_user("nobody"))  # any signed-in user
    response = client.get("/fleet/banner/", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "queued subtasks will wait" in response.content.decode()
    assert 'hx-trigger="every 10s"' in response.content.decode()
    seen("w1@host-a", ago=1)
    cache.clear()
    response = client.get("/fleet/banner/", headers={"HX-Request": "true"})
    assert 'id="worker-banner"' in response.content.decode()
    assert "no-worker-banner" not in response.content.decode()


def test_a_scoped_viewer_sees_no_other_clusters_attempts(db):
    """The fleet page of a user scoped to alpha: the queued attempts of alpha only, and no
    fleet-wide count of attempts (they are of every cluster); never a task's name."""
    from taskcenter.tasks.models import SubtaskInstance
    from tests.accounts.conftest import scoped_operator
    from tests.factories import running_task_on

    alpha = make_cluster("alpha", 1)
    bravo = make_cluster("bravo", 2)
    seen("w1@host-a", ago=2, queues=("celery",), running=3)
    make_finished_minute("w1@host-a", 7)
    running_task_on(alpha, "Alpha resize")
    running_task_on(bravo, "Bravo migrate")
    # One queued (READY) attempt on each cluster.
    for task_name in ("Alpha resize", "Bravo migrate"):
        step = SubtaskInstance.objects.get(task__name=task_name, status="RUNNING")
        SubtaskInstance.objects.filter(pk=step.pk).update(status="READY", ready_at=timezone.now())

    everyone = client_for(make_user("all-seeing", "TASK_VIEWER")).get("/fleet/").content.decode()
    assert re.search(r'id="stat-queued">2<', everyone)
    assert re.search(r'id="stat-finished-5">7<', everyone)

    page = client_for(scoped_operator(alpha)).get("/fleet/").content.decode()
    assert re.search(r'id="stat-queued">1<', page)
    assert not re.search(r'id="stat-finished-5">7<', page) and "at work" not in page
    assert "not shown to your role" in page
    for name in ("Alpha resize", "Bravo migrate", "bravo"):
        assert name not in page
