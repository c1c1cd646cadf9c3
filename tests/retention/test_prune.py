"""Retention: each kind pruned past its retention and nothing else, the rules that keep a
task whatever its age, the dry run counting what the real run removes, and the export.

Ages are set by hand (an UPDATE of the time columns) after building rows through the
services: the services stamp rows with the present, and what matters here is their age.
"""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.utils import timezone

from taskcenter.accounts.models import SignInFailureCount
from taskcenter.engine.models import FinishedMinute, PendingDispatch, WorkerPresence
from taskcenter.retention import prune as retention
from taskcenter.schedules import scheduler
from taskcenter.schedules import verbs as plan_verbs
from taskcenter.schedules.models import Fire, FireOutcome
from taskcenter.tasks import verbs
from taskcenter.tasks.models import (
    AuditEntry,
    BulkItem,
    BulkOperation,
    LogChunk,
    SubtaskInstance,
    SubtaskStatus,
    TaskInstance,
)
from taskcenter.tasks.services import log_append
from tests import factories
from tests.factories import cron_item, end_run, make_plan

pytestmark = pytest.mark.django_db

NOW = timezone.now()
OLD = NOW - timedelta(days=100)  # past the default 90 days of tasks and fires
RECENT = NOW - timedelta(days=10)


def aged(task: TaskInstance, when) -> TaskInstance:
    """Test set-up: the task was made and ended at `when`."""
    TaskInstance.objects.filter(pk=task.pk).update(create_time=when, finish_time=when)
    task.refresh_from_db()
    return task


def finished(when, *, log: bytes = b"") -> TaskInstance:
    task = factories.make_task(["SUCCESSFUL", "FAILED", "PENDING"])
    if log:
        first = task.subtasks.order_by("pk").first()
        log_append(subtask_id=first.pk, attempt=first.attempt, data=log)
    return aged(task, when)


def read_export(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


# --- Tasks --------------------------------------------------------------------------------------


def test_finished_tasks_past_retention_go_with_subtasks_logs_and_outbox_rows():
    old = finished(OLD, log=b"old output\n")
    young = finished(RECENT, log=b"young output\n")
    old_subtasks = list(old.subtasks.values_list("pk", flat=True))
    factories.make_outbox_row(old.subtasks.order_by("pk").first())
    audit_ids = list(AuditEntry.objects.filter(task=old).values_list("pk", flat=True))
    assert audit_ids  # the start and the finishes are audited

    report = retention.prune(kinds=["tasks"], now=NOW, pause=0)

    assert report.kinds["tasks"].rows == 1
    assert not TaskInstance.objects.filter(pk=old.pk).exists()
    assert not SubtaskInstance.objects.filter(pk__in=old_subtasks).exists()
    assert not LogChunk.objects.filter(subtask_id__in=old_subtasks).exists()
    assert not PendingDispatch.objects.exists()
    assert report.kinds["tasks"].related["subtasks"] == 3
    # The young task is whole; the audit keeps the old task's entries, unlinked.
    assert young.subtasks.count() == 3 and LogChunk.objects.filter(subtask__task=young).exists()
    kept = AuditEntry.objects.filter(pk__in=audit_ids)
    assert kept.count() == len(audit_ids)
    assert set(kept.values_list("task_id", flat=True)) == {None}
    assert all(f"task {old.pk}" in target for target in kept.values_list("target", flat=True))


def test_tasks_not_ended_are_never_pruned_whatever_their_age():
    running = aged(factories.running_task(), OLD)
    TaskInstance.objects.filter(pk=running.pk).update(finish_time=None)
    # A task whose row says it ended but one of whose subtasks is still at work (a retry
    # just made it READY) is not ended either.
    settling = finished(OLD)
    SubtaskInstance.objects.filter(task=settling, status=SubtaskStatus.PENDING).update(
        status=SubtaskStatus.READY
    )
    report = retention.prune(kinds=["tasks"], now=NOW, pause=0)
    assert report.kinds["tasks"].rows == 0
    assert TaskInstance.objects.filter(pk__in=[running.pk, settling.pk]).count() == 2


def test_the_last_run_of_a_plan_is_kept_until_the_plan_is_gone(clock):
    plan = make_plan(items=[cron_item("0 * * * * ?")], now=clock.now)
    first = scheduler.tick(now=clock.advance(minutes=1)).started[0]
    end_run(first)
    second = scheduler.tick(now=clock.advance(minutes=1)).started[0]
    end_run(second)
    for task_id in (first, second):
        TaskInstance.objects.filter(pk=task_id).update(create_time=OLD, finish_time=OLD)
    Fire.objects.update(created_at=RECENT)  # fires are young: only tasks are in question

    report = retention.prune(kinds=["tasks"], now=NOW, pause=0)
    assert report.kinds["tasks"].rows == 1
    assert list(TaskInstance.objects.values_list("pk", flat=True)) == [second]
    # The pruned run's fire stays in the plan's history, without its run.
    assert Fire.objects.get(task__isnull=True, outcome=FireOutcome.STARTED).plan_id == plan.pk

    plan_verbs.plan_delete(plan_id=plan.pk, actor=None)
    assert retention.prune(kinds=["tasks"], now=NOW, pause=0).kinds["tasks"].rows == 1
    assert not TaskInstance.objects.exists()


def test_retention_zero_keeps_a_kind_for_ever(settings):
    settings.TASKCENTER_RETENTION_DAYS = {**settings.TASKCENTER_RETENTION_DAYS, "tasks": 0}
    task = finished(NOW - timedelta(days=3000))
    assert retention.prune(kinds=["tasks"], now=NOW, pause=0).kinds["tasks"].rows == 0
    assert TaskInstance.objects.filter(pk=task.pk).exists()


def test_the_retention_comes_from_the_settings(settings):
    settings.TASKCENTER_RETENTION_DAYS = {**settings.TASKCENTER_RETENTION_DAYS, "tasks": 5}
    finished(RECENT)  # 10 days old: past 5 days
    assert retention.prune(kinds=["tasks"], now=NOW, pause=0).kinds["tasks"].rows == 1


# --- Fires --------------------------------------------------------------------------------------


def test_old_fires_without_a_run_go_and_an_upstream_waits_for_the_fire_naming_it(clock):
    plan = make_plan(items=[cron_item("0 * * * * ?")], now=clock.now)
    scheduler.tick(now=clock.advance(minutes=1))
    started = Fire.objects.get(plan=plan)
    # Skipped fires, one named as the upstream of a young fire.
    skipped = [
        factories.make_fire(plan, FireOutcome.SKIPPED, fire_time=clock.advance(minutes=1))
        for _ in range(3)
    ]
    factories.make_fire(plan, FireOutcome.SKIPPED, fire_time=clock.now, upstream=skipped[0])
    Fire.objects.exclude(pk=Fire.objects.order_by("-pk").first().pk).update(created_at=OLD)

    report = retention.prune(kinds=["fires"], now=NOW, pause=0)
    # The started fire keeps its run; skipped[0] is named by the young fire.
    assert report.kinds["fires"].rows == 2
    left = set(Fire.objects.values_list("pk", flat=True))
    assert started.pk in left and skipped[0].pk in left
    assert skipped[1].pk not in left and skipped[2].pk not in left


def test_a_pass_prunes_old_runs_then_their_fires(clock):
    make_plan(items=[cron_item("0 * * * * ?")], now=clock.now)
    runs = []
    for _ in range(3):
        runs.append(scheduler.tick(now=clock.advance(minutes=1)).started[0])
        end_run(runs[-1])
    TaskInstance.objects.update(create_time=OLD, finish_time=OLD)
    Fire.objects.update(created_at=OLD)
    report = retention.prune(kinds=["fires", "tasks"], now=NOW, pause=0)
    # The last run and its fire stay.
    assert (report.kinds["tasks"].rows, report.kinds["fires"].rows) == (2, 2)
    assert list(Fire.objects.values_list("task_id", flat=True)) == [runs[-1]]


# --- Audit, sessions, sign-in counters, workers, minutes, outbox --------------------------------


def test_audit_entries_past_their_retention_go():
    task = finished(RECENT)
    entries = list(AuditEntry.objects.filter(task=task).order_by("pk"))
    AuditEntry.objects.filter(pk=entries[0].pk).update(created_at=NOW - timedelta(days=401))
    report = retention.prune(kinds=["audit"], now=NOW, pause=0)
    assert report.kinds["audit"].rows == 1
    assert AuditEntry.objects.filter(task=task).count() == len(entries) - 1


def test_expired_sessions_go_and_live_ones_stay():
    live = factories.make_session()
    factories.make_session(expire_date=NOW - timedelta(days=2))
    assert retention.prune(kinds=["sessions"], now=NOW, pause=0).kinds["sessions"].rows == 1
    assert list(Session.objects.values_list("session_key", flat=True)) == [live]


def test_sign_in_counters_of_windows_long_over_go(settings):
    window = settings.TASKCENTER_SIGNIN_WINDOW_SECONDS
    now_bucket = int(NOW.timestamp() // window)
    day = int(86400 // window)
    for index, bucket in enumerate([now_bucket, now_bucket - day + 2, now_bucket - 2 * day]):
        factories.make_signin_count(f"k{index}", bucket, count=3)
    report = retention.prune(kinds=["signin"], now=NOW, pause=0)
    assert report.kinds["signin"].rows == 1
    assert sorted(SignInFailureCount.objects.values_list("key", flat=True)) == ["k0", "k1"]


def test_known_sign_ins_go_once_the_throttle_no_longer_counts_them(settings):
    from taskcenter.accounts.models import KnownSignIn

    settings.TASKCENTER_SIGNIN_KNOWN_DAYS = 30
    factories.make_known_signin("10.0.0.1 alice", NOW - timedelta(days=1))
    factories.make_known_signin("10.0.0.1 bob", NOW - timedelta(days=31))
    dry = retention.prune(kinds=["known_signins"], now=NOW, pause=0, dry_run=True)
    assert dry.kinds["known_signins"].rows == 1 and KnownSignIn.objects.count() == 2
    report = retention.prune(kinds=["known_signins"], now=NOW, pause=0)
    assert report.kinds["known_signins"].rows == 1
    assert list(KnownSignIn.objects.values_list("key", flat=True)) == ["10.0.0.1 alice"]


def test_gone_workers_old_minutes_and_stale_outbox_rows_go():
    factories.make_presence("w-new@h")
    factories.make_presence("w-gone@h", seen_ago=timedelta(days=2))
    factories.make_finished_minute("w-gone@h", 1, at=NOW - timedelta(days=2))
    factories.make_finished_minute("w-new@h", 1, at=NOW - timedelta(minutes=5))
    task = finished(RECENT)
    first, second = task.subtasks.order_by("pk")[:2]
    factories.make_outbox_row(first, failed_at=NOW - timedelta(days=8))
    factories.make_outbox_row(second)
    subtasks = [first.pk, second.pk]

    report = retention.prune(kinds=["workers", "minutes", "outbox"], now=NOW, pause=0)
    assert {k: r.rows for k, r in report.kinds.items()} == {"workers": 1, "minutes": 1, "outbox": 1}
    assert list(WorkerPresence.objects.values_list("name", flat=True)) == ["w-new@h"]
    assert list(FinishedMinute.objects.values_list("worker", flat=True)) == ["w-new@h"]
    assert list(PendingDispatch.objects.values_list("subtask_id", flat=True)) == [subtasks[1]]


# --- Dry run, export, batches, command -----------------------------------------------------------


def _a_bit_of_everything(clock) -> None:
    make_plan(items=[cron_item("0 * * * * ?")], now=clock.now)
    for _ in range(3):
        end_run(scheduler.tick(now=clock.advance(minutes=1)).started[0])
    TaskInstance.objects.update(create_time=OLD, finish_time=OLD)
    Fire.objects.update(created_at=OLD)
    for _ in range(4):
        finished(OLD, log=b"line\n" * 3)
    finished(RECENT)
    AuditEntry.objects.filter(pk__in=AuditEntry.objects.order_by("pk").values("pk")[:5]).update(
        created_at=NOW - timedelta(days=500)
    )
    factories.make_signin_count("a", 1, kind="address")


def test_the_dry_run_counts_exactly_what_the_real_run_removes(clock):
    _a_bit_of_everything(clock)
    before = {
        model: model.objects.count()
        for model in (TaskInstance, SubtaskInstance, LogChunk, Fire, AuditEntry)
    }
    dry = retention.prune(dry_run=True, now=NOW, batch=2, pause=0)
    assert {model: model.objects.count() for model in before} == before  # nothing went

    real = retention.prune(now=NOW, batch=2, pause=0)
    assert {k: r.rows for k, r in dry.kinds.items()} == {k: r.rows for k, r in real.kinds.items()}
    assert dry.kinds["tasks"].related == real.kinds["tasks"].related
    assert real.kinds["tasks"].rows == 6 and real.kinds["fires"].rows == 2
    assert real.kinds["signin"].rows == 1 and real.kinds["audit"].rows == 5
    assert TaskInstance.objects.count() == before[TaskInstance] - 6
    assert "would prune" in str(dry) and "pruned" in str(real)
    # Nothing is left for a second pass.
    again = retention.prune(dry_run=True, now=NOW, pause=0)
    assert all(r.rows == 0 for r in again.kinds.values())


def test_the_export_holds_every_pruned_row_with_subtasks_and_logs(tmp_path):
    tasks = [finished(OLD, log=f"output of {n}\n".encode()) for n in range(3)]
    AuditEntry.objects.filter(pk=AuditEntry.objects.order_by("pk").first().pk).update(
        created_at=NOW - timedelta(days=500)
    )
    report = retention.prune(
        kinds=["tasks", "audit"], export_dir=tmp_path, now=NOW, batch=2, pause=0
    )

    exported = read_export(report.kinds["tasks"].export)
    assert [row["id"] for row in exported] == [task.pk for task in tasks]
    first = exported[0]
    assert first["status"] == "FAILED" and first["name"] == "Migrate tenant"
    assert [s["status"] for s in first["subtasks"]] == ["SUCCESSFUL", "FAILED", "PENDING"]
    assert first["subtasks"][0]["log"].endswith("output of 0\n")
    assert first["finish_time"].startswith(OLD.date().isoformat())
    audit = read_export(report.kinds["audit"].export)
    assert len(audit) == 1 and audit[0]["action"] and "trace_id" in audit[0]
    assert audit[0]["created_at"].startswith((NOW - timedelta(days=500)).date().isoformat())
    assert "cluster_id" in first and "create_time" in first and "updated_at" in first
    assert report.kinds["tasks"].export.name.startswith("tasks-")
    assert report.kinds["tasks"].export.name.endswith(".jsonl.gz")


def test_a_dry_run_exports_nothing(tmp_path):
    finished(OLD)
    report = retention.prune(kinds=["tasks"], dry_run=True, export_dir=tmp_path, now=NOW)
    assert report.kinds["tasks"].rows == 1 and report.kinds["tasks"].export is None
    assert list(tmp_path.iterdir()) == []


def test_the_command_says_what_would_go_and_then_removes_it(capsys, tmp_path):
    finished(OLD, log=b"x\n")
    call_command("prune", "--dry-run", "--kind", "tasks")
    out = capsys.readouterr().out
    assert "Finished tasks (kept 90 days): would prune 1, 3 subtasks, 1 log chunks" in out
    assert TaskInstance.objects.count() == 1
    call_command("prune", "--kind", "tasks", "--export-dir", str(tmp_path))
    out = capsys.readouterr().out
    assert "Finished tasks (kept 90 days): pruned 1" in out and str(tmp_path) in out
    assert TaskInstance.objects.count() == 0


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown kind"):
        retention.prune(kinds=["tasks", "everything"])


def test_the_export_masks_secret_parameters(tmp_path):
    task = factories.start("Reinstall OCP agent", agent_token="s3cret-token")
    # Set-up by hand: the run is over (no engine here), long ago.
    SubtaskInstance.objects.filter(task=task).update(status=SubtaskStatus.FAILED)
    TaskInstance.objects.filter(pk=task.pk).update(
        status="FAILED", create_time=OLD, finish_time=OLD
    )
    report = retention.prune(kinds=["tasks"], export_dir=tmp_path, now=NOW, pause=0)
    text = gzip.open(report.kinds["tasks"].export, "rt").read()
    assert "s3cret-token" not in text
    assert read_export(report.kinds["tasks"].export)[0]["parameters"]["agent_token"] == "••••••"


@pytest.mark.django_db(transaction=True)
def test_a_task_someone_holds_is_left_for_the_next_pass_without_waiting():
    from django.db import connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("SKIP LOCKED is PostgreSQL's")
    import threading

    held, other = finished(OLD), finished(OLD)
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:  # an operator's verb holding the task's row
        with transaction.atomic():
            TaskInstance.objects.select_for_update().get(pk=held.pk)
            locked.set()
            release.wait(30)
        connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        report = retention.prune(kinds=["tasks"], now=NOW, pause=0)
    finally:
        release.set()
        holder.join()
    assert report.kinds["tasks"].rows == 1
    assert list(TaskInstance.objects.values_list("pk", flat=True)) == [held.pk]
    assert retention.prune(kinds=["tasks"], now=NOW, pause=0).kinds["tasks"].rows == 1
    assert not TaskInstance.objects.filter(pk=other.pk).exists()


def test_a_run_again_of_a_pruned_task_stays_and_forgets_its_origin():
    old = finished(OLD)
    with factories.attempts_not_sent():
        again = verbs.task_start(definition_name=old.definition.name, repeat_of=old)
    assert retention.prune(kinds=["tasks"], now=NOW, pause=0).kinds["tasks"].rows == 1
    again.refresh_from_db()
    assert again.repeat_of_id is None


# --- Bulk operations ----------------------------------------------------------------------------


def a_bulk(state: str, when, tasks, outcome: str = "DONE") -> BulkOperation:
    """Test set-up by hand: an operation in `state`, ended (or started) at `when`."""
    bulk = BulkOperation.objects.create(
        verb="retry", actor_name="op", total=len(tasks), state=state, finished_at=None
    )
    BulkItem.objects.bulk_create(BulkItem(bulk=bulk, task=task, outcome=outcome) for task in tasks)
    ended = None if state == BulkOperation.State.RUNNING else when
    BulkOperation.objects.filter(pk=bulk.pk).update(created_at=when, finished_at=ended)
    return bulk


def test_ended_bulk_operations_past_their_retention_go_with_their_items(tmp_path, capsys):
    tasks = [finished(RECENT) for _ in range(2)]
    long_ago = NOW - timedelta(days=401)
    finished_op = a_bulk(BulkOperation.State.FINISHED, long_ago, tasks)
    stopped_op = a_bulk(BulkOperation.State.STOPPED, long_ago, tasks[:1], outcome="STOPPED")
    running = a_bulk(BulkOperation.State.RUNNING, long_ago, tasks, outcome="PENDING")
    young = a_bulk(BulkOperation.State.FINISHED, RECENT, tasks)

    call_command("prune", "--dry-run", "--kind", "bulk")
    assert "Bulk operations (kept 400 days): would prune 2, 3 items" in capsys.readouterr().out
    dry = retention.prune(kinds=["bulk"], dry_run=True, now=NOW, batch=1, pause=0)
    report = retention.prune(kinds=["bulk"], export_dir=tmp_path, now=NOW, batch=1, pause=0)

    assert dry.kinds["bulk"].rows == report.kinds["bulk"].rows == 2
    assert dry.kinds["bulk"].related == report.kinds["bulk"].related == {"items": 3}
    assert set(BulkOperation.objects.values_list("pk", flat=True)) == {running.pk, young.pk}
    assert not BulkItem.objects.filter(bulk__in=[finished_op.pk, stopped_op.pk]).exists()
    assert TaskInstance.objects.filter(pk__in=[t.pk for t in tasks]).count() == 2
    exported = {row["id"]: row for row in read_export(report.kinds["bulk"].export)}
    assert set(exported) == {str(finished_op.pk), str(stopped_op.pk)}
    row = exported[str(finished_op.pk)]
    assert row["verb"] == "retry" and row["state"] == "FINISHED" and row["actor_name"] == "op"
    assert sorted(item["task_id"] for item in row["items"]) == sorted(t.pk for t in tasks)
    assert report.kinds["bulk"].export.name.startswith("bulk-")


def test_a_pruned_task_takes_its_bulk_items_and_leaves_the_operation():
    old, young = finished(OLD), finished(RECENT)
    bulk = a_bulk(BulkOperation.State.FINISHED, RECENT, [old, young])
    assert retention.prune(kinds=["tasks"], now=NOW, pause=0).kinds["tasks"].rows == 1
    assert list(bulk.items.values_list("task_id", flat=True)) == [young.pk]


def test_a_task_a_running_bulk_operation_has_still_to_do_is_never_pruned():
    awaited, done, stopped_op, finished_op = (finished(OLD) for _ in range(4))
    a_bulk(BulkOperation.State.RUNNING, RECENT, [awaited], outcome="PENDING")
    a_bulk(BulkOperation.State.RUNNING, RECENT, [done], outcome="DONE")
    a_bulk(BulkOperation.State.STOPPED, RECENT, [stopped_op], outcome="PENDING")
    a_bulk(BulkOperation.State.FINISHED, RECENT, [finished_op], outcome="PENDING")

    dry = retention.prune(kinds=["tasks"], dry_run=True, now=NOW, pause=0)
    report = retention.prune(kinds=["tasks"], now=NOW, pause=0)
    assert dry.kinds["tasks"].rows == report.kinds["tasks"].rows == 3
    assert list(TaskInstance.objects.values_list("pk", flat=True)) == [awaited.pk]
