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
