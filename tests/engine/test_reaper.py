"""The reaper's third duty: a task left RUNNING with no subtask at work gets its end."""

from taskcenter.engine import reaper
from taskcenter.tasks import selectors, verbs
from taskcenter.tasks.models import AuditEntry, SubtaskInstance


def start_chain():
    return verbs.task_start(definition_name="Benchmark chain", parameters={"length": 2})


def test_a_task_left_running_after_its_last_subtask_ended_is_settled(db):
    task = start_chain()
    # What a worker leaves when it stops between ending the last attempt and recording
    # the task's end.
    SubtaskInstance.objects.filter(task=task).update(status="SUCCESSFUL")

    assert reaper.reap().settled == 1

    task = selectors.task_get(task_id=task.pk)
    assert task.status == "SUCCESSFUL" and task.finish_time is not None
    assert AuditEntry.objects.filter(task=task, action="FINISH", to_status="SUCCESSFUL").exists()
    assert reaper.reap().settled == 0


def test_a_failure_left_unrecorded_ends_the_task_failed(db):
    task = start_chain()
    first, _second = selectors.task_subtasks(task=task)
    SubtaskInstance.objects.filter(pk=first.pk).update(status="FAILED")

    assert reaper.reap().settled == 1
    assert selectors.task_get(task_id=task.pk).status == "FAILED"


def test_running_tasks_with_work_left_are_not_touched(db):
    task = start_chain()  # its first subtask is READY

    assert reaper.reap().settled == 0
    assert selectors.task_get(task_id=task.pk).status == "RUNNING"
