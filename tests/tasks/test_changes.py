"""The change cursor of the live pages: every change to a task's own state stamps the
task, and selectors.task_changes finds what changed since a cursor, late commits
included; a running task's progress is read without a stamp (running_progress). Runs over
both finish paths on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from taskcenter.tasks import selectors, services, verbs
from taskcenter.tasks.models import TaskInstance
from tests.factories import drive, start, subtask_named

pytestmark = pytest.mark.usefixtures("finish_path")


def stamp(task) -> object:
    return TaskInstance.objects.values_list("updated_at", flat=True).get(pk=task.pk)


def cursor() -> str:
    return selectors.task_changes(visible=TaskInstance.objects.all()).cursor


def changed_since(mark: str) -> selectors.Changes:
    return selectors.task_changes(visible=TaskInstance.objects.all(), cursor=mark)


def test_nothing_changed_is_unchanged(db):
    start("Reinstall OCP agent")
    mark = cursor()
    assert changed_since(mark) == selectors.Changes(mark, False, [])


def test_every_change_stamps_the_task(db, operator):
    task = start("Migrate tenant")
    before = stamp(task)
    drive(task, fail={"Copy tenant data"})  # claims and finishes, the task ends FAILED
    after_finish = stamp(task)
    assert after_finish > before
    verbs.task_retry(task_id=task.pk, actor=operator)
    after_retry = stamp(task)
    assert after_retry > after_finish
    drive(task, fail={"Copy tenant data"})
    copy = subtask_named(task, "Copy tenant data")
    ended = stamp(task)
    verbs.subtask_skip(task_id=task.pk, subtask_id=copy.pk, actor=operator, reason="done")
    assert stamp(task) > ended


def test_a_success_in_the_middle_of_a_task_shows_in_its_progress_not_its_stamp(db):
    """A subtask's success changes the list's progress bar. The finish does not write the
    task row (in a wide fan-out every finish would write the same row: see
    sql.lock_task_statement); the live list reads the progress of the running tasks it
    shows instead."""
    task = start("Back up cluster")
    drive(task, stop_at={"Back up data files"})
    visible = TaskInstance.objects.all()
    before = stamp(task), selectors.running_progress(visible=visible, ids=[task.pk])
    backup = subtask_named(task, "Back up data files")
    services.attempt_finish(
        subtask_id=backup.pk, attempt=backup.attempt, task_id=task.pk, succeeded=True
    )
    assert stamp(task) == before[0]
    after = selectors.running_progress(visible=visible, ids=[task.pk])
    assert after == {task.pk: before[1][task.pk] + 1}


def test_a_change_committed_after_a_later_one_was_seen_is_not_missed(db):
    """A transaction stamps its task before it commits; another, stamped later, may commit
    and be polled first. The earlier stamp must still be seen by the next poll."""
    early, late = start("Reinstall OCP agent"), start("Reinstall OCP agent")
    mark = cursor()
    TaskInstance.objects.filter(pk=late.pk).update(updated_at=timezone.now())
    seen = changed_since(mark)
    assert seen.changed and late.pk in seen.ids
    # The early transaction commits now, with a stamp older than what was just seen.
    TaskInstance.objects.filter(pk=early.pk).update(
        updated_at=timezone.now() - timedelta(seconds=1)
    )
    again = changed_since(seen.cursor)
    assert again.changed and early.pk in again.ids
    assert not changed_since(again.cursor).changed


def test_too_many_changes_ask_for_a_reload(db, monkeypatch):
    monkeypatch.setattr(selectors, "CHANGES_MAX", 2)
    for _ in range(3):
        start("Reinstall OCP agent")
    changes = changed_since(cursor())
    assert changes.changed and changes.ids is None


def test_a_bad_cursor_asks_for_a_reload(db):
    start("Reinstall OCP agent")
    changes = changed_since("not-a-cursor")
    assert changes.changed and changes.ids is None
