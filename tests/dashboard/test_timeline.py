"""The task page's timeline: every attempt a bar (retries and rollbacks their own), the
wait for an operator shaded, the critical path marked, fan-outs grouped into one row, live
while the task runs, and a fixed number of queries whatever the task's size."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from taskcenter.dashboard import views
from taskcenter.demo.history import attempts_not_sent as not_sent
from taskcenter.tasks import services, verbs
from taskcenter.tasks.models import SubtaskAttempt, SubtaskStatus, TaskDefinition
from tests.accounts.conftest import scoped_operator
from tests.conftest import client_for
from tests.factories import (
    drive,
    failed_task,
    failed_task_on,
    first_subtask_with,
    rolled_back_task,
    running_task,
    skipped_task,
    start,
)


def _timeline(client, task, query: str = "") -> str:
    response = client.get(f"/tasks/{task.pk}/?view=timeline{query}")
    assert response.status_code == 200, response.content[:500]
    html = response.content.decode()
    return html[html.index('id="timeline-view"') :]


def _bars(html: str, sid: int) -> list[str]:
    return re.findall(rf'<a class="(tl-bar[^"]*)" id="tlb-{sid}-\d+"', html)


def _fan_out(width: int, fail: set[str] = frozenset()):
    """A run of: prepare, then `width` shards side by side, then finish."""
    name = f"Timeline fan-out of {width}"
    step = {"kind": "SHELL_TASK", "action": {"command": "true"}}
    if not TaskDefinition.objects.filter(name=name).exists():
        services.definition_create_from_data(
            name=name,
            spec={
                "subtasks": [
                    {"key": "root", "name": "prepare", **step},
                    *[
                        {"key": f"p{i}", "name": f"shard {i}", "upstreams": ["root"], **step}
                        for i in range(width)
                    ],
                    {
                        "key": "join",
                        "name": "finish",
                        "upstreams": [f"p{i}" for i in range(width)],
                        **step,
                    },
                ]
            },
        )
    return drive(start(name), fail=set(fail), quiet=True)


def test_a_retried_subtask_has_a_bar_per_attempt_and_the_wait_for_the_operator(operator):
    task = failed_task()
    failed = first_subtask_with(task, SubtaskStatus.FAILED)
    with not_sent():
        verbs.subtask_retry(task_id=task.pk, subtask_id=failed.pk, actor=operator, reason="again")
    drive(task, fail={failed.name}, quiet=True)
    kept = SubtaskAttempt.objects.get(subtask=failed)
    assert (kept.attempt, kept.status, kept.start_time is not None) == (1, "FAILED", True)
    html = _timeline(client_for(operator), task)
    assert len(_bars(html, failed.pk)) == 2
    assert f'id="tlb-{failed.pk}-1"' in html and f'id="tlb-{failed.pk}-2"' in html
    assert "attempt 2 (retry): Failed" in html
    assert "for an operator" in html and 'class="tl-wait-operator"' in html


def test_a_rollback_is_its_own_bar(operator):
    task = rolled_back_task(actor=operator)
    html = _timeline(client_for(operator), task)
    ran = task.subtasks.filter(series_id=0).get()
    bars = _bars(html, ran.pk)
    assert len(bars) == 2
    assert "is-rollback" not in bars[0] and "is-rollback" in bars[1]
    assert "(rollback)" in html


def test_the_critical_path_is_marked(operator):
    task = _fan_out(3)
    html = _timeline(client_for(operator), task)
    critical = re.search(r'id="timeline-critical">(.*?)</p>', html).group(1)
    assert critical.startswith("<b>Critical path</b>")
    assert re.search(r"prepare → shard \d → finish$", critical)
    assert html.count('class="tl-row is-critical"') == 3


def test_a_fan_out_is_one_row_until_expanded(operator):
    task = _fan_out(12)
    client = client_for(operator)
    html = _timeline(client, task)
    assert "14 subtasks in 3 rows" in html
    shard = task.subtasks.get(key="p0")
    assert re.search(rf'href="/tasks/{task.pk}/\?view=timeline[^"]*&amp;expand={shard.pk}"', html)
    expanded = _timeline(client, task, f"&expand={shard.pk}")
    assert "14 subtasks in 14 rows" in expanded
    assert client.get(f"/tasks/{task.pk}/?view=timeline&expand=zero").status_code == 400


def test_the_timeline_is_redrawn_by_the_live_poll_while_the_task_runs(operator):
    task = running_task()
    client = client_for(operator)
    html = client.get(f"/tasks/{task.pk}/?view=timeline").content.decode()
    poll = re.search(r'hx-get="([^"]+)"', html[html.index('id="live-poller"') :]).group(1)
    answer = client.get(poll.replace("&amp;", "&"))
    assert answer.status_code == 200
    assert (
        'id="timeline-view" aria-label="Timeline view" hx-swap-oob="true"'
        in answer.content.decode()
    )
    # A task that does not run is not redrawn while nothing changes.
    done = failed_task()
    html = client.get(f"/tasks/{done.pk}/?view=timeline").content.decode()
    poll = re.search(r'hx-get="([^"]+)"', html[html.index('id="live-poller"') :]).group(1)
    assert client.get(poll.replace("&amp;", "&")).status_code == 204


def _page_queries(client, task) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(f"/tasks/{task.pk}/?view=timeline").status_code == 200
    return len(queries)


def test_the_timeline_costs_the_same_queries_whatever_its_size(operator):
    client = client_for(operator)
    client.get("/")  # the session's first request
    small = _page_queries(client, _fan_out(2))
    big = _fan_out(60, fail={"shard 0", "shard 1"})
    with not_sent():
        verbs.task_retry(task_id=big.pk, actor=operator, reason="again")
    drive(big, quiet=True)
    assert SubtaskAttempt.objects.filter(task=big).count() == 2
    assert _page_queries(client, big) <= small
    # The chart itself (the live poll's way): the subtasks, their attempts' numbers and
    # READY times, their replaced attempts; never one per row.
    for task in (big, _fan_out(2)):
        request = RequestFactory().get("/", {"view": "timeline"})
        with CaptureQueriesContext(connection) as queries:
            views._timeline_context(request, task, None)
        assert len(queries) == 3


def test_a_scoped_user_cannot_open_another_clusters_timeline(clusters, db):
    alpha, bravo = clusters
    task = failed_task_on(bravo, "Elsewhere")
    response = client_for(scoped_operator(alpha)).get(f"/tasks/{task.pk}/?view=timeline")
    assert response.status_code == 404


@pytest.mark.parametrize("width", [40])
def test_the_bars_carry_what_the_keyboard_and_the_live_colours_need(operator, width):
    task = _fan_out(width)
    html = _timeline(client_for(operator), task)
    assert 'data-roving="grid"' in html and "data-subtask-picker" in html
    bar = re.search(r'<a class="tl-bar[^>]*>', html).group(0)
    for attribute in ("data-sid=", "data-status=", "data-op=", "data-run=", "aria-label=", "href="):
        assert attribute in bar


def test_an_approval_step_shows_its_wait_for_the_approver():
    """A subtask of the approval kind waits for a person while it runs: its bar is the
    approver's wait, not work (drawn from rows alone: no database)."""
    from datetime import UTC, datetime, timedelta

    from taskcenter.dashboard import timeline
    from taskcenter.tasks.selectors import SubtaskNode

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    gate = SubtaskNode(
        7, "Approve", "RUNNING", "EXECUTE", timeline.APPROVAL_KIND, 1, 0, -1, 0, [], [], t0, None
    )
    now = t0 + timedelta(minutes=5)
    chart = timeline.build([gate], {7: (1, t0)}, [], now=now)
    svg = timeline.render_svg(chart, now=now, selected_id=None, link="/s?", expand_link="/e?")
    assert 'class="tl-wait-approval"' in svg
    assert "waited for approval 5m 00s" in svg


def test_a_skipped_subtask_keeps_its_failed_attempt_and_shows_the_skip(operator):
    task = skipped_task(actor=operator)
    skipped = task.subtasks.get(operation="SKIP")
    kept = SubtaskAttempt.objects.get(subtask=skipped)
    assert (kept.attempt, kept.status, kept.operation) == (1, "FAILED", "EXECUTE")
    html = _timeline(client_for(operator), task)
    assert len(_bars(html, skipped.pk)) == 2
    assert "attempt 1 (run): Failed" in html and "attempt 1 (skipped): Skipped" in html
