"""The history grid on a job's page: runs as columns, steps as rows matched by key across
versions, cells linking to the step's log, filters in the URL, cluster scoping, and a
fixed number of queries whatever the grid's size."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from taskcenter.accounts import access
from taskcenter.dashboard import jobs
from taskcenter.demo.history import attempts_not_sent
from taskcenter.tasks import selectors, services, verbs
from taskcenter.tasks.models import Cluster
from tests.accounts.conftest import scoped_operator
from tests.conftest import client_for
from tests.factories import drive

JOB = "Grid job"


def _step(key: str, name: str, upstream: str | None = None) -> dict:
    return {
        "key": key,
        "name": name,
        "kind": "SHELL_TASK",
        "action": {"command": "true"},
        "upstreams": [upstream] if upstream else [],
    }


def _version(*steps: dict) -> None:
    services.definition_create_from_data(name=JOB, spec={"subtasks": list(steps)})


def _run(*, fail: set[str] = frozenset(), cluster: Cluster | None = None):
    with attempts_not_sent():
        task = verbs.task_start(definition_name=JOB, cluster=cluster)
    return drive(task, fail=set(fail), quiet=True)


def _grid(client, query: str = "") -> str:
    response = client.get(f"/jobs/{JOB}/{query}")
    assert response.status_code == 200, response.content[:500]
    html = response.content.decode()
    return html[html.index('id="history"') :]


def _rows(html: str) -> list[str]:
    return re.findall(r'<th scope="row" class="hg-step" title="[^"]*">([^<]*)</th>', html)


def _columns(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<span class="hg-run-id">#(\d+)</span>', html)]


@pytest.fixture
def two_versions(db):
    """Version 1: a, b. Version 2: a renamed, c after it. One run of each, and a failed
    run of version 2."""
    _version(_step("a", "prepare"), _step("b", "old step", "a"))
    first = _run()
    _version(_step("a", "prepare (renamed)"), _step("c", "new step", "a"))
    second = _run()
    third = _run(fail={"new step"})
    return first, second, third


def test_runs_are_columns_and_steps_rows_matched_by_key(operator, two_versions):
    first, second, third = two_versions
    html = _grid(client_for(operator))
    assert _columns(html) == [third.pk, second.pk, first.pk]  # newest first
    # The newest run names and orders the steps; a step only older runs had comes after.
    assert _rows(html) == ["prepare (renamed)", "new step", "old step"]
    # "a" is one row across both versions: three cells; "b" and "c" leave gaps.
    row = html[html.index(">prepare (renamed)<") : html.index(">new step<")]
    assert row.count("<td><a class=") == 3
    assert (
        html.count('<td class=n title="Not in this run">') == 3
    )  # c in the first run, b in the two others


def test_a_cell_is_coloured_timed_and_opens_the_subtasks_log(operator, two_versions):
    _, _, third = two_versions
    failed = third.subtasks.get(key="c")
    html = _grid(client_for(operator))
    # Its title is what hovering shows and, under the step's and the run's headers, what a
    # screen reader says.
    cell = re.search(
        rf'<td><a class=f href="/tasks/{third.pk}/\?view=log&amp;subtask='
        rf'{failed.pk}" title="Failed, (<0.1s|[0-9.]+s)"></a>',
        html,
    )
    assert cell, "the failed step's cell links to its log and says its outcome and duration"
    assert (
        client_for(operator).get(f"/tasks/{third.pk}/?view=log&subtask={failed.pk}").status_code
        == 200
    )


def test_each_cell_is_a_bare_link_sharing_its_classes(operator, two_versions):
    """6,500 cells at 100 runs: each carries its link, its title and a one-letter class,
    nothing more (no data attribute, no inline style), and the table lays out fixed."""
    html = _grid(client_for(operator))
    table = html[html.index("<tbody>") : html.index("</tbody>")]
    cells = re.findall(r"<td[ >].*?(?=<td|</tr>)", table)
    assert len(cells) == 9  # 3 steps x 3 runs
    for cell in cells:
        assert "data-" not in cell and "style" not in cell, cell
        assert re.fullmatch(
            r'<td><a class=[sfrcpqkb] href="/tasks/\d+/\?view=log&amp;subtask=\d+"'
            r' title="[^"]+"></a>|<td class=n title="Not in this run">',
            cell,
        ), cell
    assert 'style="--runs:3"' in html


def test_filters_by_outcome_and_period_are_in_the_url(operator, two_versions):
    first, second, third = two_versions
    client = client_for(operator)
    assert _columns(_grid(client, "?outcome=failed")) == [third.pk]
    assert _columns(_grid(client, "?outcome=successful&period=24h")) == [second.pk, first.pk]
    html = _grid(client, "?outcome=rolledback")
    assert "No run matches these filters." in html
    assert '<option value="failed" selected>' in _grid(client, "?outcome=failed")


def test_filter_by_cluster_and_bad_filters(operator, clusters, db):
    alpha, bravo = clusters
    _version(_step("a", "only"))
    on_alpha = _run(cluster=alpha)
    _run(cluster=bravo)
    client = client_for(operator)
    assert _columns(_grid(client, f"?cluster={alpha.pk}")) == [on_alpha.pk]
    for bad in ("?outcome=sideways", "?cluster=x", "?period=1y", "?runs=7"):
        response = client.get(f"/jobs/{JOB}/{bad}")
        assert response.status_code == 400, bad
        assert b"Traceback" not in response.content


def test_a_scoped_user_sees_only_runs_of_their_clusters(clusters, db):
    alpha, bravo = clusters
    _version(_step("a", "only"))
    on_alpha = _run(cluster=alpha)
    on_bravo = _run(cluster=bravo)
    user = scoped_operator(alpha)
    html = _grid(client_for(user))
    assert _columns(html) == [on_alpha.pk]
    assert f"/tasks/{on_bravo.pk}/" not in html
    # Asking for the other cluster by its id shows nothing of it, not even its name.
    html = _grid(client_for(user), f"?cluster={bravo.pk}")
    assert _columns(html) == []
    assert ">bravo<" not in html


def _grid_queries(user) -> int:
    class Request:
        GET: dict = {"runs": "100"}

    access.require_view(user)  # the page guard loads the permissions first
    with CaptureQueriesContext(connection) as queries:
        jobs._history(user, JOB, Request.GET)
    return len(queries)


def test_the_grid_costs_the_same_queries_whatever_its_size(operator, clusters, db):
    """Two queries for the grid (runs, then every step of them) and one for the cluster
    menu, for one run of one step as for six runs of twelve steps."""
    _version(_step("a", "only"))
    _run(cluster=clusters[0])
    small = _grid_queries(operator)
    _version(*[_step(f"s{i}", f"step {i}", f"s{i - 1}" if i else None) for i in range(12)])
    for index in range(6):
        _run(fail={"step 11"} if index % 2 else set(), cluster=clusters[0])
    assert _grid_queries(operator) == small == 3
    scoped = scoped_operator(clusters[0])
    assert _grid_queries(scoped) == 3


def test_steps_without_a_key_are_matched_by_name(db):
    """Subtasks stored before keys were (blank key) still share a row by their name."""
    _version(_step("a", "only"))
    runs = [_run(), _run()]
    for run in runs:
        # By hand: such rows come from before the column; no service writes them now.
        run.subtasks.update(key="")
    found = selectors.job_history_runs(
        visible=selectors.TaskInstance.objects.all(), name=JOB, limit=5
    )
    cells = selectors.job_history_cells(task_ids=[r.pk for r in found])
    from taskcenter.dashboard.history_grid import steps

    rows = steps(found, cells)
    assert [(row.name, len(row.cells)) for row in rows] == [("only", 2)]
