from django.db import models
from django.utils import timezone


class PendingDispatch(models.Model):
    """A READY attempt whose message could not be sent: the broker did not answer.

    The outbox of the dispatch sender (taskcenter.engine.outbox): the operation that made
    the attempt READY has committed, so the attempt is remembered here and the reaper
    sends it as soon as the broker answers again, instead of after the 300 s re-dispatch.
    A table of its own rather than a column on the subtask: the engine alone writes and
    reads it, it is empty in normal times (the reaper's look costs nothing), and a row
    per failed send needs no change to the subtask table.
    """

    subtask = models.ForeignKey(
        "tasks.SubtaskInstance", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    attempt = models.PositiveIntegerField()
    failed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subtask", "attempt"], name="pending_dispatch_once_per_attempt"
            )
        ]

    def __str__(self) -> str:
        return f"subtask {self.subtask_id} attempt {self.attempt} (failed {self.failed_at})"


class WorkerPresence(models.Model):
    """A worker process seen through its own heartbeat (taskcenter.engine.presence).

    Written by each worker's main process every TASKCENTER_WORKER_BEAT_INTERVAL seconds,
    through the database rather than broker broadcasts, so that the fleet page and the
    no-worker banner work on every broker, the filesystem one included. A clean shutdown
    sets `stopped_at`; a killed worker simply stops beating, and its row keeps what it was
    running at its last beat. Each worker process has its own row. Rows of workers gone for
    longer than TASKCENTER_WORKER_PRESENCE_KEEP are pruned by the workers themselves.
    """

    # Not unique: a worker started again under the same name (a restart after a crash)
    # beats its own row, so the one that died stays listed as died, with what it ran.
    name = models.CharField(max_length=255, help_text="Celery's node name.")
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    concurrency = models.PositiveIntegerField(default=0)
    queues = models.JSONField(default=list, blank=True)
    started_at = models.DateTimeField()
    # Indexed: the banner on every page asks for the latest beat.
    last_seen = models.DateTimeField(db_index=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    running = models.PositiveIntegerField(default=0, help_text="Attempts at work now.")
    finished = models.PositiveBigIntegerField(default=0, help_text="Attempts ended since start.")
    attempts = models.JSONField(
        default=list, blank=True, help_text="[subtask id, attempt] at work at the last beat."
    )
    recent = models.JSONField(
        default=list, blank=True, help_text="Subtask ids it ran lately, the latest first."
    )

    def __str__(self) -> str:
        return f"{self.name} (pid {self.pid})"


class FinishedMinute(models.Model):
    """How many attempts a worker ended in one minute: the fleet page's throughput.

    The worker's beat adds what its processes ended since the previous beat to the row of
    the current minute, so throughput is a sum over a few rows per worker instead of a
    count over the subtask table (which has no index on finish_time, and should not pay
    one on every finish). Pruned after TASKCENTER_WORKER_PRESENCE_KEEP.
    """

    minute = models.DateTimeField()
    worker = models.CharField(max_length=255)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["minute", "worker"], name="finished_minute_per_worker")
        ]

    def __str__(self) -> str:
        return f"{self.worker} {self.minute:%H:%M}: {self.count}"
