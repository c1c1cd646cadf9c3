"""Tasks in OCP's shape: a task instance is a DAG of subtask instances.

Statuses only change in taskcenter.tasks.services; these classes hold data and names.
"""

import uuid
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import ExpressionWrapper, F, Q
from django.db.models.functions import Now
from django.utils import timezone

if TYPE_CHECKING:
    from taskcenter.tasks.selectors import SubtaskBrief


class Cluster(models.Model):
    class Type(models.TextChoices):
        PRIMARY = "PRIMARY"
        STANDBY = "STANDBY"

    name = models.CharField(max_length=128, unique=True)
    ob_cluster_id = models.BigIntegerField()
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.PRIMARY)

    def __str__(self) -> str:
        return self.name


class Tenant(models.Model):
    class Mode(models.TextChoices):
        ORACLE = "ORACLE"
        MYSQL = "MYSQL"

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="tenants")
    name = models.CharField(max_length=128)
    ob_tenant_id = models.BigIntegerField()
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.MYSQL)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cluster", "name"], name="tenant_unique_per_cluster")
        ]

    def __str__(self) -> str:
        return f"{self.cluster.name}/{self.name}"


class Host(models.Model):
    address = models.CharField(max_length=255, unique=True)
    cluster = models.ForeignKey(
        Cluster, on_delete=models.SET_NULL, null=True, blank=True, related_name="hosts"
    )

    def __str__(self) -> str:
        return self.address


class TaskDefinition(models.Model):
    """A named, versioned DAG template.

    CODE definitions are registered in Python (taskcenter.tasks.definitions) and mirrored
    here so that instances can point at an id; DATA definitions hold their whole spec as
    JSON (shell and HTTP subtasks only, so no code is named by data).
    """

    class Source(models.TextChoices):
        CODE = "CODE"
        DATA = "DATA"

    name = models.CharField(max_length=200)
    version = models.PositiveIntegerField(default=1)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.DATA)
    spec = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="definition_name_version")
        ]
        # Schedules start definitions; until they have a model, their permission lives here.
        permissions = [("manage_schedules", "Can create, change and delete schedules")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class TaskStatus(models.TextChoices):
    RUNNING = "RUNNING"
    FAILED = "FAILED"
    SUCCESSFUL = "SUCCESSFUL"


class TaskType(models.TextChoices):
    MANUAL = "MANUAL"
    SYS_ONECE = "SYS_ONECE"
    SCHEDULED = "SCHEDULED"
    SYS_SCHEDULED = "SYS_SCHEDULED"


class TaskRunMode(models.TextChoices):
    """How a task runs now: its first run, a retry or a rollback. Stored in the task's
    `operation` field, the name OCP's API gives it."""

    EXECUTE = "EXECUTE"
    RETRY = "RETRY"
    ROLLBACK = "ROLLBACK"


class SubtaskStatus(models.TextChoices):
    PENDING = "PENDING"
    READY = "READY"
    RUNNING = "RUNNING"
    CANCELING = "CANCELING"
    FAILED = "FAILED"
    SUCCESSFUL = "SUCCESSFUL"


ACTIVE_SUBTASK_STATUSES = (SubtaskStatus.READY, SubtaskStatus.RUNNING, SubtaskStatus.CANCELING)


class SubtaskRunMode(models.TextChoices):
    """How a subtask's latest attempt runs or ended (skipped, canceled). Stored in its
    `operation` field, the name OCP's API gives it."""

    EXECUTE = "EXECUTE"
    RETRY = "RETRY"
    ROLLBACK = "ROLLBACK"
    SKIP = "SKIP"
    ROLLBACK_SKIP = "ROLLBACK_SKIP"
    CANCEL = "CANCEL"


class NodeType(models.TextChoices):
    PYTHON_TASK = "PYTHON_TASK"
    SHELL_TASK = "SHELL_TASK"
    HTTP_TASK = "HTTP_TASK"
    # A gate that waits for a person's decision; no worker runs it (tasks.approvals).
    APPROVAL_TASK = "APPROVAL_TASK"


class TaskName(models.Model):
    """Every distinct task instance name: what the list's name filter searches first.

    Names are few (definition names, now and then a custom one) while tasks are millions,
    so "name contains X" finds the matching names here and then the tasks by the
    (name, id) index, instead of testing every task's name. Database triggers (migration
    0005) add the name of every inserted or renamed task, whatever inserts it (services,
    bulk_create, raw SQL), so the filter never misses a task. A name whose tasks are all
    gone stays: it only matches no task.
    """

    name = models.CharField(max_length=200, unique=True)

    def __str__(self) -> str:
        return self.name


# A started and finished task: its duration is a constant (sort=duration's stored part).
FINISHED = Q(finish_time__isnull=False, start_time__isnull=False)
# A started task not finished: its duration is now minus its start.
RUNNING_STARTED = Q(finish_time__isnull=True, start_time__isnull=False)
FINISHED_DURATION = ExpressionWrapper(
    F("finish_time") - F("start_time"), output_field=models.DurationField()
)


class TaskInstance(models.Model):
    name = models.CharField(max_length=200)
    definition = models.ForeignKey(
        TaskDefinition, on_delete=models.PROTECT, null=True, blank=True, related_name="instances"
    )
    cluster = models.ForeignKey(
        Cluster, on_delete=models.SET_NULL, null=True, blank=True, related_name="tasks"
    )
    tenant = models.ForeignKey(
        Tenant, on_delete=models.SET_NULL, null=True, blank=True, related_name="tasks"
    )
    hosts = models.ManyToManyField(Host, blank=True, related_name="tasks")
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="created_tasks",
    )
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.RUNNING)
    type = models.CharField(max_length=16, choices=TaskType.choices, default=TaskType.MANUAL)
    operation = models.CharField(
        max_length=16, choices=TaskRunMode.choices, default=TaskRunMode.EXECUTE
    )
    executor = models.CharField(max_length=255, blank=True)
    prohibit_rollback = models.BooleanField(default=False)
    parameters = models.JSONField(default=dict, blank=True)
    create_time = models.DateTimeField(auto_now_add=True, db_index=True)
    start_time = models.DateTimeField(null=True, blank=True)
    finish_time = models.DateTimeField(null=True, blank=True)
    subtask_total = models.PositiveIntegerField(default=0)
    # When anything a page shows of the task last changed: its status, or a subtask's. Every
    # service that changes either sets it (locking a task for a change does), so that the
    # live pages ask "what changed since my cursor" through the index instead of re-reading
    # every row (selectors.task_changes).
    # (db_default: rows inserted by hand-written SQL, bulk loads included, are stamped too.)
    updated_at = models.DateTimeField(default=timezone.now, db_default=Now())
    # The task this one runs again ("Run again" on a task's page, or the Jobs API's
    # repeatOf): same job, parameters copied and perhaps changed.
    repeat_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="repeats"
    )

    # Not a column: set on the tasks of a list page by selectors.task_page.
    subtasks_brief: "list[SubtaskBrief]"

    class Meta:
        indexes = [
            models.Index(fields=["status", "-id"], name="task_status_id"),
            models.Index(fields=["type", "-id"], name="task_type_id"),
            # The name filter's count and pages: an index-only scan over the matching names.
            models.Index(fields=["name", "-id"], name="task_name_id"),
            models.Index(fields=["updated_at", "id"], name="task_updated_id"),
            # sort=startTime: an index walk instead of reading every task for a top-N sort
            # (startTime,asc walks it backwards, with an incremental sort of equal times).
            models.Index(fields=["-start_time", "-id"], name="task_start_id"),
            # sort=duration (filters.DURATION): a finished task's duration never changes, so
            # these two hold it, one per direction because the tie-break is id DESC in both;
            # the running tasks, whose duration grows with the clock, come from the small
            # index after them and are merged in (selectors._page_ids). The two times are
            # included so that a walk reads the index only (an index-only scan, the
            # visibility map permitting): a deep page walks past its offset, and reading
            # each skipped task's row was most of page 10,000's time.
            models.Index(
                FINISHED_DURATION.desc(),
                F("id").desc(),
                name="task_finished_duration_desc",
                condition=FINISHED,
                include=["start_time", "finish_time"],
            ),
            models.Index(
                FINISHED_DURATION.asc(),
                F("id").desc(),
                name="task_finished_duration_asc",
                condition=FINISHED,
                include=["start_time", "finish_time"],
            ),
            # With a status filter, the same walks within the status: without these a
            # status matched by few finished (or running) tasks walked every one of them.
            models.Index(
                F("status"),
                FINISHED_DURATION.desc(),
                F("id").desc(),
                name="task_status_duration_desc",
                condition=FINISHED,
                include=["start_time", "finish_time"],
            ),
            models.Index(
                F("status"),
                FINISHED_DURATION.asc(),
                F("id").desc(),
                name="task_status_duration_asc",
                condition=FINISHED,
                include=["start_time", "finish_time"],
            ),
            # Type, cluster and name are in it so that a walk that finds few matches reads only
            # the index (an index-only scan), not every running task's row.
            models.Index(
                fields=["start_time", "-id"],
                name="task_running_start_id",
                condition=RUNNING_STARTED,
                include=["type", "cluster_id", "name"],
            ),
            models.Index(
                fields=["status", "start_time", "-id"],
                name="task_running_status_start_id",
                condition=RUNNING_STARTED,
            ),
        ]
        permissions = [
            ("retry_taskinstance", "Can retry tasks and subtasks"),
            ("rollback_taskinstance", "Can roll back tasks"),
            ("skip_subtaskinstance", "Can skip subtasks"),
            ("cancel_subtaskinstance", "Can cancel subtasks"),
            ("cancel_taskinstance", "Can cancel tasks (every running and queued subtask)"),
            ("run_taskinstance", "Can start tasks from definitions"),
            ("approve_subtaskinstance", "Can approve or reject approval gates"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.name}"

    @property
    def is_rolled_back(self) -> bool:
        return self.status == TaskStatus.SUCCESSFUL and self.operation == TaskRunMode.ROLLBACK


class TaskCount(models.Model):
    """How many tasks there are per (cluster, status, type), as signed changes to add up.

    The task list's exact total (totalElements) without counting a million rows: when a
    list's filters are only status, type and cluster (and the caller's cluster scope), its
    total is the sum of the matching rows here. PostgreSQL's triggers on
    tasks_taskinstance (migration 0017) write the rows, whatever changes a task: +n for
    inserted tasks, -n for deleted ones, -1 and +1 when a task's status, type or cluster
    changes, and nothing is left after a TRUNCATE. Writers only insert (no row is updated,
    so two transactions never wait for each other here); `services.counts.fold_task_counts`
    adds them up into one row per key in the background. On SQLite (a single writer, small
    lists) there are no triggers and the list counts its rows.
    """

    cluster_id = models.BigIntegerField(null=True)
    status = models.CharField(max_length=16)
    type = models.CharField(max_length=16)
    n = models.BigIntegerField()

    def __str__(self) -> str:
        return f"cluster {self.cluster_id} {self.status} {self.type}: {self.n:+d}"


class TaskNameCount(models.Model):
    """How many tasks there are per (name, cluster, status, type), as signed changes to add
    up: TaskCount with the name, for the total of a list filtered by name.

    A name filter matches names first (filters.name_contains), then their tasks: on a
    million tasks, counting the 101,000 tasks of 1,001 matching names read as many index
    entries (13 to 20 ms); adding up their rows here reads about as many rows as names.
    Kept apart from TaskCount so that the lists without a name filter still add up a
    row per (cluster, status, type), however many distinct names there are.

    The same triggers write both (migration 0020). A task given a name of its own has a
    row of its own, so folding adds up only the keys with new rows (`folded` is false on
    every row a trigger writes), not the whole table.
    """

    name = models.CharField(max_length=200)
    cluster_id = models.BigIntegerField(null=True)
    status = models.CharField(max_length=16)
    type = models.CharField(max_length=16)
    n = models.BigIntegerField()
    folded = models.BooleanField(default=False, db_default=False)

    class Meta:
        indexes = [
            models.Index(fields=["name"], name="taskname_count_name"),
            # The fold's work: the keys of the rows written since the last fold.
            models.Index(
                fields=["name"], name="taskname_count_unfolded", condition=Q(folded=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} cluster {self.cluster_id} {self.status} {self.type}: {self.n:+d}"


class SubtaskInstance(models.Model):
    # No index of its own: (task, status) below serves every lookup by task, and each index
    # is one more write on every status change of every subtask.
    task = models.ForeignKey(
        TaskInstance, on_delete=models.CASCADE, related_name="subtasks", db_index=False
    )
    name = models.CharField(max_length=200)
    # The definition's key of the step it runs: what matches a step across the runs and
    # versions of a job (the history grid). Blank on subtasks given without a definition.
    key = models.CharField(max_length=200, blank=True, default="")
    series_id = models.PositiveIntegerField(default=0)
    description = models.TextField(blank=True)
    timeout = models.PositiveIntegerField(default=3600, help_text="seconds")
    status = models.CharField(
        max_length=16, choices=SubtaskStatus.choices, default=SubtaskStatus.PENDING
    )
    operation = models.CharField(
        max_length=16, choices=SubtaskRunMode.choices, default=SubtaskRunMode.EXECUTE
    )
    executor = models.CharField(max_length=255, blank=True)
    run_time = models.PositiveIntegerField(default=0)
    retry_count = models.PositiveIntegerField(default=0)
    node_type = models.CharField(max_length=16, choices=NodeType.choices)
    parallel_idx = models.IntegerField(default=-1)
    prohibit_rollback = models.BooleanField(default=False)
    # The DAG never changes after creation, so edges are stored on both ends as id lists:
    # one row read gives a node's neighbours, with no join table to walk.
    upstream_ids = models.JSONField(default=list, blank=True)
    downstream_ids = models.JSONField(default=list, blank=True)
    # How many upstreams have not succeeded yet: a finishing subtask decrements its
    # downstreams' counters, so a fan-in of 1,000 costs one row update per finish instead
    # of re-reading 1,000 statuses. Recounted from the statuses before every retry.
    upstreams_left = models.IntegerField(default=0)
    action = models.JSONField(default=dict, blank=True)
    rollback_action = models.JSONField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    create_time = models.DateTimeField(auto_now_add=True)
    start_time = models.DateTimeField(null=True, blank=True)
    finish_time = models.DateTimeField(null=True, blank=True)
    # Engine bookkeeping, not part of OCP's shape.
    attempt = models.PositiveIntegerField(
        default=0, help_text="Bumped each time the subtask is made READY; keys the claim."
    )
    ready_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    rollback_pending = models.BooleanField(default=False)
    log_size = models.BigIntegerField(default=0)
    log_truncated = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(fields=["task", "status"], name="subtask_task_status"),
            models.Index(fields=["status", "heartbeat_at"], name="subtask_status_heartbeat"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.name}"

    @property
    def is_rollback(self) -> bool:
        return self.operation in (SubtaskRunMode.ROLLBACK, SubtaskRunMode.ROLLBACK_SKIP)


class SubtaskAttempt(models.Model):
    """An attempt of a subtask that another attempt has replaced: a retry or a rollback
    copies the row's attempt fields here before it makes the subtask READY again
    (services.progress.make_ready), so the timeline can draw every attempt. The current
    attempt stays on the subtask itself."""

    task = models.ForeignKey(
        TaskInstance, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    subtask = models.ForeignKey(
        SubtaskInstance, on_delete=models.CASCADE, related_name="past_attempts", db_index=False
    )
    attempt = models.PositiveIntegerField()
    operation = models.CharField(max_length=16, choices=SubtaskRunMode.choices)
    status = models.CharField(max_length=16, choices=SubtaskStatus.choices)
    executor = models.CharField(max_length=255, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    start_time = models.DateTimeField(null=True, blank=True)
    finish_time = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["task", "subtask"], name="attempt_task_subtask")]
        constraints = [
            models.UniqueConstraint(fields=["subtask", "attempt"], name="attempt_subtask_number")
        ]

    def __str__(self) -> str:
        return f"subtask {self.subtask_id} attempt {self.attempt}"


class LogChunk(models.Model):
    """An append-only piece of a subtask's log.

    `offset` is the byte position of the chunk within the subtask's whole log (all
    attempts), so a reader asks for "bytes from N" and gets only the chunks it needs.
    """

    # Looked up by (subtask, offset), the unique constraint's index; no index of its own.
    subtask = models.ForeignKey(
        SubtaskInstance, on_delete=models.CASCADE, related_name="chunks", db_index=False
    )
    attempt = models.PositiveIntegerField()
    offset = models.BigIntegerField()
    length = models.PositiveIntegerField()
    data = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subtask", "offset"], name="logchunk_subtask_offset")
        ]

    def __str__(self) -> str:
        return f"subtask {self.subtask_id} bytes {self.offset}+{self.length}"


class AuditEntry(models.Model):
    """One entry of the audit trail: who did what to which task, subtask or account, from
    which status to which, and why; written in the transaction of the change."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="audit_entries",
    )
    actor_name = models.CharField(max_length=150, help_text="Kept if the user is deleted.")
    action = models.CharField(max_length=32, db_index=True)
    task = models.ForeignKey(
        TaskInstance, on_delete=models.CASCADE, null=True, blank=True, related_name="audit_entries"
    )
    subtask = models.ForeignKey(
        SubtaskInstance,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="audit_entries",
    )
    target = models.CharField(max_length=255, blank=True)
    # A row about a plan (its action starts with PLAN_) names the plan's cluster at the
    # time: a user scoped to clusters sees the rows of their clusters' plans, as they see
    # the rows of their clusters' tasks (taskcenter.accounts.access.visible_audit).
    cluster = models.ForeignKey(
        Cluster, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    from_status = models.CharField(max_length=32, blank=True)
    to_status = models.CharField(max_length=32, blank=True)
    reason = models.TextField(blank=True)
    trace_id = models.CharField(max_length=64, blank=True)
    # The bulk operation this change was part of: its own entry and one per task share it.
    bulk_id = models.UUIDField(null=True, blank=True, db_index=True)
    # The trace id the caller sent (X-Trace-Id), checked for its form, beside the server's own.
    caller_trace_id = models.CharField(max_length=64, blank=True)
    # The access key the change was made with (a signed API call); empty otherwise. The
    # actor is the key's owner.
    access_key_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} {self.target}"


class BulkOperation(models.Model):
    """One task verb asked of many tasks at once (taskcenter.tasks.verbs.bulk): who asked,
    which verb, why, and where it stands. Its tasks are its items, each done by the
    single verb in the background."""

    class State(models.TextChoices):
        RUNNING = "RUNNING"
        FINISHED = "FINISHED"
        STOPPED = "STOPPED"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    verb = models.CharField(max_length=32)  # a key of taskcenter.tasks.verbs.VERBS
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_name = models.CharField(max_length=150)
    reason = models.TextField(blank=True)
    selection = models.JSONField(default=dict, blank=True)  # {"ids": [...]} or {"filter": {...}}
    matched = models.PositiveIntegerField(default=0)
    refused_at_start = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)  # the tasks accepted: its items
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING)
    created_at = models.DateTimeField(auto_now_add=True)
    # Stamped by each batch its background run commits: a RUNNING operation not stamped
    # for a while has lost its run, and the reaper starts one again.
    updated_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "updated_at"], name="bulk_state_updated")]

    def __str__(self) -> str:
        return f"bulk {self.verb} {self.pk}"


class BulkItem(models.Model):
    """One task of a bulk operation and what became of it."""

    class Outcome(models.TextChoices):
        PENDING = "PENDING"
        DONE = "DONE"
        REFUSED = "REFUSED"  # the verb refused it when its turn came (its state had changed)
        FAILED = "FAILED"  # the verb raised an unexpected error
        STOPPED = "STOPPED"  # the bulk was stopped before its turn

    bulk = models.ForeignKey(BulkOperation, on_delete=models.CASCADE, related_name="items")
    task = models.ForeignKey(
        TaskInstance, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.PENDING)
    code = models.IntegerField(null=True, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["bulk", "outcome"], name="bulkitem_bulk_outcome"),
            # The task's items: pruning a task clears them, and the prune's rule that keeps
            # a task a running bulk operation has still to do asks for them.
            models.Index(fields=["task"], name="bulkitem_task"),
        ]

    def __str__(self) -> str:
        return f"{self.bulk_id} task {self.task_id} {self.outcome}"
