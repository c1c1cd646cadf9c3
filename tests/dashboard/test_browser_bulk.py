"""In a real Chromium: select every failed task of one cluster, see the dry run, confirm,
watch the progress finish and find the bulk id in the audit trail; and run a task again
with one parameter changed.

Set TASKCENTER_SCREENSHOTS to a folder (docs/screenshots) to save the pages' pictures.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from taskcenter.tasks import verbs
from taskcenter.tasks.models import AuditEntry, BulkOperation, TaskInstance
from tests.conftest import sign_in
from tests.factories import failed_task_on, make_cluster_and_tenant, running_task_on

pytestmark = [
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]


def shoot(page, name: str, tmp_path: Path) -> None:
    """A light and a dark picture of the page (in TASKCENTER_SCREENSHOTS, else tmp_path)."""
    folder = Path(os.environ.get("TASKCENTER_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    for scheme, suffix in (("light", ""), ("dark", "-dark")):
        page.emulate_media(color_scheme=scheme)
        page.wait_for_timeout(150)
        page.screenshot(path=str(folder / f"{name}{suffix}.png"), full_page=True)
    page.emulate_media(color_scheme="light")


def test_bulk_retry_of_a_clusters_failed_tasks_from_dry_run_to_audit(
    celery_worker, live_server, page, operator, clusters, tmp_path
):
    alpha, bravo = clusters
    failed = [failed_task_on(alpha, f"Resize alpha {n}") for n in range(6)]
    other = failed_task_on(bravo, "Resize bravo")
    running = running_task_on(alpha, "Still running")
    # One more failed task that refuses a retry: it failed while rolling back.
    refusing = failed_task_on(alpha, "Rolled back badly")
    TaskInstance.objects.filter(pk=refusing.pk).update(operation="ROLLBACK")
    if celery_worker.proc is None:
        celery_worker.start()

    sign_in(page, live_server, "operator", next_url=f"/tasks/?status=FAILED&clusterId={alpha.pk}")
    bar = page.locator("#bulk-form")
    expect(bar.locator("[data-bulk-count]")).to_have_text("0")
    expect(bar.get_by_role("button", name="Retry…")).to_be_disabled()
    bar.get_by_label(re.compile("Select all 7 tasks matching this filter")).check()
    expect(bar.locator("[data-bulk-count]")).to_have_text("7")
    shoot(page, "bulk-select", tmp_path)
    bar.get_by_role("button", name="Retry…").click()

    page.wait_for_url(re.compile(r"/tasks/bulk/retry/\?"))
    expect(page.locator("h1")).to_contain_text("Retry 7 tasks?")
    expect(page.locator('[data-count="accepted"]')).to_have_text("6")
    expect(page.locator('[data-count="refused"]')).to_have_text("1")
    expect(page.locator(".bulk-reasons")).to_contain_text("failed while rolling back")
    assert not BulkOperation.objects.exists()
    shoot(page, "bulk-dry-run", tmp_path)
    page.get_by_label(re.compile("Reason")).fill("Storage on alpha was full; fixed")
    celery_worker.stop()  # the operation waits for a worker: its progress is seen at 0 first
    page.get_by_role("button", name="Retry 6 tasks").click()

    page.wait_for_url(re.compile(r"/tasks/bulk/[0-9a-f-]{36}/$"))
    bulk_id = page.locator("[data-bulk-id]").inner_text()
    expect(page.locator("#bulk-progress h2")).to_have_text("Working…")
    expect(page.locator('[data-count="pending"]')).to_have_text("6")
    shoot(page, "bulk-progress-waiting", tmp_path)
    celery_worker.start()
    expect(page.locator("#bulk-progress h2")).to_have_text("Finished", timeout=60_000)
    expect(page.locator('[data-count="done"]')).to_have_text("6")
    shoot(page, "bulk-progress", tmp_path)

    assert {t.operation for t in TaskInstance.objects.filter(pk__in=[t.pk for t in failed])} == {
        "RETRY"
    }
    assert TaskInstance.objects.get(pk=other.pk).status == "FAILED"  # another cluster's
    assert TaskInstance.objects.get(pk=running.pk).operation == "EXECUTE"

    page.get_by_role("link", name="Its entries in the audit trail").click()
    page.wait_for_url(re.compile(r"/audit/\?bulk="))
    expect(page.get_by_label("Bulk id")).to_have_value(bulk_id)
    rows = page.locator("#audit-results tbody tr")
    expect(rows).to_have_count(7)  # one per task, and the bulk operation's own
    expect(page.locator("#audit-results")).to_contain_text("BULK_RETRY")
    expect(page.locator("#audit-results")).to_contain_text("Storage on alpha was full; fixed")
    assert AuditEntry.objects.filter(bulk_id=bulk_id, action="RETRY").count() == 6


def test_run_a_task_again_with_one_parameter_changed(live_server, page, operator, no_broker):
    cluster, tenant = make_cluster_and_tenant()
    old = verbs.task_start(
        definition_name="Migrate tenant",
        parameters={"fail_step": "copy", "fail_times": 2, "step_seconds": 0.5},
        creator=operator,
        cluster=cluster,
        tenant=tenant,
    )
    sign_in(page, live_server, "operator", next_url=f"/tasks/{old.pk}/")
    page.get_by_role("link", name="Run again…").click()
    page.wait_for_url(re.compile(rf"repeat={old.pk}"))
    expect(page.locator("#repeat-note")).to_contain_text(f"task #{old.pk}")
    expect(page.get_by_label(re.compile("Step to fail"))).to_have_value("copy")
    expect(page.locator("#f-placement")).to_have_value(f"t{tenant.pk}")
    times = page.locator("#param-fail_times")
    expect(times).to_have_value("2")
    times.fill("0")
    page.get_by_role("button", name="Run again").click()

    page.wait_for_url(re.compile(r"/tasks/\d+/$"))
    new = TaskInstance.objects.get(repeat_of=old)
    assert new.parameters == {"fail_step": "copy", "fail_times": 0, "step_seconds": 0.5}
    assert (new.cluster_id, new.tenant_id) == (cluster.pk, tenant.pk)
    expect(page.locator("#task-repeats")).to_contain_text(f"Run again of #{old.pk}")
    page.locator("#task-repeats").get_by_role("link", name=f"#{old.pk}").click()
    expect(page.locator("#task-repeats")).to_contain_text(f"Run again as #{new.pk}")
