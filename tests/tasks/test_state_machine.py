"""The OCP state machine, driven through the services with attempts run in-process."""

import threading

import pytest
from django.db import connection

from taskcenter.core.errors import InvalidState, RollbackProhibited, TaskNotFound
from taskcenter.tasks import selectors, verbs
from taskcenter.tasks.definitions import (
    DefinitionSpec,
    ParameterSpec,
    SubtaskSpec,
    register_definition,
)
from taskcenter.tasks.models import AuditEntry, SubtaskInstance, TaskInstance
from tests.factories import make_user

pytestmark = pytest.mark.usefixtures("eager_engine", "finish_path")


def subtasks_by_name(task):
    return {s.name: s for s in selectors.task_subtasks(task=task)}


def statuses(task):
    return {name: (s.status, s.operation) for name, s in subtasks_by_name(task).items()}


def reload(task):
    return selectors.task_get(task_id=task.pk)


def start_failing_migration(fail_step="copy", fail_times=1):
    task = verbs.task_start(
        definition_name="Migrate tenant",
        parameters={"fail_step": fail_step, "fail_times": fail_times, "step_seconds": 0},
    )
    return reload(task)


def test_chain_runs_to_successful_in_dag_order():
    task = reload(verbs.task_start(definition_name="Reinstall OCP agent"))
    assert (task.status, task.operation) == ("SUCCESSFUL", "EXECUTE")
    subs = selectors.task_subtasks(task=task)
    assert [s.name for s in subs] == [
        "Prepare reinstalling OCP agent",
        "Uninstall ocp agent",
        "Install ocp agent",
        "Finish reinstalling OCP agent",
    ]
    for before, after in zip(subs, subs[1:], strict=False):
        assert after.upstream_ids == [before.pk]
        assert before.downstream_ids == [after.pk]
        assert after.start_time >= before.finish_time
    assert all(s.status == "SUCCESSFUL" and s.run_time == 1 for s in subs)
    assert task.finish_time is not None and task.executor


def test_failure_fails_the_task_and_leaves_downstream_pending():
    task = start_failing_migration()
    assert task.status == "FAILED"
    assert statuses(task) == {
        "Pre-check source and target": ("SUCCESSFUL", "EXECUTE"),
        "Take a snapshot": ("SUCCESSFUL", "EXECUTE"),
        "Copy tenant data": ("FAILED", "EXECUTE"),
        "Verify row counts": ("PENDING", "EXECUTE"),
        "Switch traffic to the target": ("PENDING", "EXECUTE"),
    }
    copy = subtasks_by_name(task)["Copy tenant data"]
    assert "copy failed on purpose" in selectors.log_read(subtask=copy).text


def test_retry_task_continues_downstream_and_counts_the_run():
    task = start_failing_migration()
    failed_at = task.finish_time
    verbs.task_retry(task_id=task.pk, reason="transient")
    task = reload(task)
    assert (task.status, task.operation) == ("SUCCESSFUL", "RETRY")
    assert task.finish_time > failed_at
    copy = subtasks_by_name(task)["Copy tenant data"]
    assert (copy.status, copy.operation, copy.run_time) == ("SUCCESSFUL", "RETRY", 2)
    assert subtasks_by_name(task)["Switch traffic to the target"].status == "SUCCESSFUL"
    log = selectors.log_read(subtask=copy).text
    assert "start run 1" in log and "start run 2" in log


def test_retry_subtask_continues_downstream():
    task = start_failing_migration()
    copy = subtasks_by_name(task)["Copy tenant data"]
    returned = verbs.subtask_retry(task_id=task.pk, subtask_id=copy.pk)
    assert returned.pk == copy.pk
    assert reload(task).status == "SUCCESSFUL"
    assert subtasks_by_name(task)["Copy tenant data"].run_time == 2


def test_automatic_retries_up_to_the_retry_count():
    register_definition(
        DefinitionSpec(
            name="Flaky step",
            parameters=[ParameterSpec("fail_step", "flaky"), ParameterSpec("fail_times", 2)],
            build=lambda p: [
                SubtaskSpec(
                    "flaky",
                    "Flaky",
                    "PYTHON_TASK",
                    {
                        "callable": "demo.step",
                        "kwargs": {"step": "flaky", "seconds": 0, "lines": 1},
                    },
                    retry_count=2,
                )
            ],
        )
    )
    task = reload(verbs.task_start(definition_name="Flaky step"))
    flaky = selectors.task_subtasks(task=task)[0]
    assert task.status == "SUCCESSFUL"
    assert (flaky.run_time, flaky.operation) == (3, "RETRY")
    assert AuditEntry.objects.filter(task=task, action="AUTO_RETRY").count() == 2
    # Three failures with two retries allowed: the task fails after run 3.
    failing = reload(verbs.task_start(definition_name="Flaky step", parameters={"fail_times": 3}))
    assert failing.status == "FAILED"
    assert selectors.task_subtasks(task=failing)[0].run_time == 3


def test_skip_marks_successful_and_continues():
    task = start_failing_migration(fail_times=5)
    copy = subtasks_by_name(task)["Copy tenant data"]
    verbs.subtask_skip(task_id=task.pk, subtask_id=copy.pk, reason="copied by hand")
    task = reload(task)
    assert task.status == "SUCCESSFUL"
    copy = subtasks_by_name(task)["Copy tenant data"]
    assert (copy.status, copy.operation, copy.run_time) == ("SUCCESSFUL", "SKIP", 1)
    audit = AuditEntry.objects.get(task=task, action="SKIP")
    assert (audit.from_status, audit.to_status, audit.reason) == (
        "FAILED",
        "SUCCESSFUL",
        "copied by hand",
    )


def test_rollback_walks_the_dag_backwards_and_ends_rolled_back():
    task = start_failing_migration(fail_times=5)
    verbs.task_rollback(task_id=task.pk, reason="give up")
    task = reload(task)
    assert (task.status, task.operation, task.is_rolled_back) == ("SUCCESSFUL", "ROLLBACK", True)
    subs = subtasks_by_name(task)
    assert all(s.status == "PENDING" for s in subs.values())
    started = [
        subs[n] for n in ("Pre-check source and target", "Take a snapshot", "Copy tenant data")
    ]
    assert all(s.operation == "ROLLBACK" for s in started)
    # Reverse order: copy is undone first, pre-check last.
    finish = [s.finish_time for s in started]
    assert finish[2] <= finish[1] <= finish[0]
    assert "rolled back" in selectors.log_read(subtask=started[0]).text
    never_ran = subs["Verify row counts"]
    assert never_ran.operation == "EXECUTE" and never_ran.run_time == 0
    # The audit words the end as the pages do: rolled back, not successful.
    ends = [
        (entry.from_status, entry.to_status, entry.reason)
        for entry in task.audit_entries.filter(action__in=("ROLLBACK", "FINISH")).order_by("pk")
    ]
    assert ends[-2:] == [
        ("FAILED", "RUNNING", "give up"),
        ("RUNNING", "ROLLED_BACK", "task ended rolled back"),
    ], ends


def test_rollback_is_refused_when_a_started_subtask_prohibits_it():
    task = start_failing_migration(fail_step="switch", fail_times=5)
    assert task.status == "FAILED"
    with pytest.raises(RollbackProhibited):
        verbs.task_rollback(task_id=task.pk)
    task = reload(task)
    assert (task.status, task.operation) == ("FAILED", "EXECUTE")
    assert not AuditEntry.objects.filter(task=task, action="ROLLBACK").exists()


def test_refused_transitions_change_nothing():
    done = reload(verbs.task_start(definition_name="Reinstall OCP agent"))
    first = selectors.task_subtasks(task=done)[0]
    before = list(SubtaskInstance.objects.order_by("pk").values())
    audit_rows = AuditEntry.objects.count()
    refused = [
        lambda: verbs.task_retry(task_id=done.pk),
        lambda: verbs.task_rollback(task_id=done.pk),
        lambda: verbs.subtask_retry(task_id=done.pk, subtask_id=first.pk),
        lambda: verbs.subtask_skip(task_id=done.pk, subtask_id=first.pk),
        lambda: verbs.subtask_cancel(task_id=done.pk, subtask_id=first.pk),
    ]
    for call in refused:
        with pytest.raises(InvalidState, match=rf"{done.pk}|{first.pk}"):
            call()
    with pytest.raises(TaskNotFound, match="999999 task does not exist"):
        verbs.task_retry(task_id=999999)
    with pytest.raises(TaskNotFound, match="subtask does not exist"):
        verbs.subtask_skip(task_id=done.pk, subtask_id=999999)
    assert list(SubtaskInstance.objects.order_by("pk").values()) == before
    assert AuditEntry.objects.count() == audit_rows


def test_retry_is_refused_during_a_failed_rollback():
    task = start_failing_migration(fail_times=5)
    # Make the rollback of "copy" fail by pointing its rollback at a failing shell command.
    copy = subtasks_by_name(task)["Copy tenant data"]
    SubtaskInstance.objects.filter(pk=copy.pk).update(
        node_type="SHELL_TASK", rollback_action={"command": "echo cannot undo; exit 3"}
    )
    verbs.task_rollback(task_id=task.pk)
    task = reload(task)
    assert (task.status, task.operation) == ("FAILED", "ROLLBACK")
    copy = subtasks_by_name(task)["Copy tenant data"]
    assert (copy.status, copy.operation) == ("FAILED", "ROLLBACK")
    with pytest.raises(InvalidState):
        verbs.task_retry(task_id=task.pk)
    with pytest.raises(InvalidState):
        verbs.subtask_retry(task_id=task.pk, subtask_id=copy.pk)
    # Skipping the failed rollback step counts it as rolled back and the rollback goes on.
    verbs.subtask_skip(task_id=task.pk, subtask_id=copy.pk)
    task = reload(task)
    assert task.is_rolled_back
    assert subtasks_by_name(task)["Copy tenant data"].operation == "ROLLBACK_SKIP"


def test_twenty_concurrent_retries_make_exactly_one_retry():
    task = start_failing_migration(fail_times=1)
    copy = subtasks_by_name(task)["Copy tenant data"]
    outcomes: list[str] = []
    barrier = threading.Barrier(20)

    def attempt():
        barrier.wait()
        try:
            verbs.task_retry(task_id=task.pk, reason="race")
            outcomes.append("ok")
        except InvalidState:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok"] + ["refused"] * 19
    copy.refresh_from_db()
    assert copy.run_time == 2
    assert AuditEntry.objects.filter(task=task, action="RETRY").count() == 1
    assert reload(task).status == "SUCCESSFUL"


def test_every_operation_is_audited_with_actor_and_trace():
    from taskcenter.core.trace import reset_trace_id, set_trace_id

    alice = make_user("alice")
    token = set_trace_id("abc123")
    try:
        task = start_failing_migration()
        verbs.task_retry(task_id=task.pk, actor=alice, reason="try again")
    finally:
        reset_trace_id(token)
    row = AuditEntry.objects.get(task=task, action="RETRY")
    assert (
        row.actor,
        row.actor_name,
        row.from_status,
        row.to_status,
        row.reason,
        row.trace_id,
    ) == (alice, "alice", "FAILED", "RUNNING", "try again", "abc123")
    assert list(
        AuditEntry.objects.filter(task=task).values_list("action", flat=True).order_by("pk")
    ) == ["START", "FINISH", "RETRY", "FINISH"]


def test_task_status_filters_support_every_status():
    assert {c for c, _ in TaskInstance._meta.get_field("status").choices} == {
        "RUNNING",
        "FAILED",
        "SUCCESSFUL",
    }


def test_skip_in_a_fan_in_releases_the_join_only_when_every_branch_is_done():
    task = reload(
        verbs.task_start(
            definition_name="Scale out tenant units",
            parameters={"units": 3, "fail_step": "unit1", "fail_times": 9},
        )
    )
    assert task.status == "FAILED"
    balance = subtasks_by_name(task)["Balance units"]
    assert (balance.status, balance.upstreams_left) == ("PENDING", 1)
    failed = subtasks_by_name(task)["Create resource unit on node 2"]
    verbs.subtask_skip(task_id=task.pk, subtask_id=failed.pk)
    task = reload(task)
    assert task.status == "SUCCESSFUL"
    assert subtasks_by_name(task)["Balance units"].run_time == 1


def test_retry_recounts_upstreams_of_rows_written_without_counters():
    task = start_failing_migration()
    # Rows written by other means (imported history) carry no counters.
    SubtaskInstance.objects.filter(task=task).update(upstreams_left=0)
    verbs.task_retry(task_id=task.pk)
    task = reload(task)
    assert task.status == "SUCCESSFUL"
    subs = selectors.task_subtasks(task=task)
    for before, after in zip(subs, subs[1:], strict=False):
        assert after.start_time >= before.finish_time
