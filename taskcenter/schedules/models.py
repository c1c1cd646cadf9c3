"""Execution plans (HENGSHI's schedules), their trigger items, and the record of every fire.

A plan names a job (entityGroup + entityKey, unique together), what to run for it
(execDetail: a registered job class, its parameters, its retries) and where (a cluster
and tenant, which its runs carry and which scope who sees it). Its items say when:
a Quartz cron expression in a zone, after other jobs succeed, or once, now.

A context is a task instance that a plan started: the task row is the run, and its Fire
row (OneToOne, nullable on both sides of the history) says which plan and item started it
and when. Skipped and missed fires are Fire rows too, without a task, so a plan's history
shows what did not run and why. Fire rows keep a snapshot of the plan's job, so deleting a
plan (or replacing its items) keeps its past contexts readable.

Plans only change in taskcenter.schedules.verbs, and fires in taskcenter.schedules.firing.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from taskcenter.tasks.models import Cluster, TaskInstance, Tenant


class TriggerType(models.TextChoices):
    CRON_JOB = "CRON_JOB"
    DEPENDENCY = "DEPENDENCY"
    ONCE = "ONCE"


class CronType(models.TextChoices):
    MINUTELY = "MINUTELY"
    HOURLY = "HOURLY"
    DAILY = "DAILY"
    WEEKLY = "WEEKLY"
    MONTHLY = "MONTHLY"
    CRON = "CRON"


class MisfirePolicy(models.TextChoices):
    RUN_ONCE = "RUN_ONCE", "Run once now"  # the default: a missed time is made up once
    SKIP = "SKIP", "Skip"


class OverlapPolicy(models.TextChoices):
    SKIP = "SKIP", "Skip while the previous run is running"  # the default
    START = "START", "Start anyway"


class Authored(models.Model):
    """Who created and last changed a row, and when (HENGSHI's createdBy ... updatedAt)."""

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Plan(Authored):
    entity_group = models.CharField(max_length=64)
    entity_key = models.CharField(max_length=200)
    title = models.CharField(max_length=200, blank=True)
    job_class = models.CharField(max_length=255)
    job_params = models.JSONField(default=dict, blank=True)
    retry_times = models.PositiveIntegerField(default=0)
    enabled = models.BooleanField(default=True)
    misfire_policy = models.CharField(
        max_length=16, choices=MisfirePolicy.choices, default=MisfirePolicy.RUN_ONCE
    )
    overlap_policy = models.CharField(
        max_length=16, choices=OverlapPolicy.choices, default=OverlapPolicy.SKIP
    )
    # Where its runs work, and whose scope it is in: a user scoped to some clusters sees
    # and manages the plans of those clusters only (taskcenter.accounts.access.visible_plans).
    # A plan without a cluster is for unscoped users only.
    cluster = models.ForeignKey(
        Cluster, on_delete=models.SET_NULL, null=True, blank=True, related_name="plans"
    )
    tenant = models.ForeignKey(
        Tenant, on_delete=models.SET_NULL, null=True, blank=True, related_name="plans"
    )

    class Meta(Authored.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["entity_group", "entity_key"], name="plan_entity_unique"
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.entity_group}/{self.entity_key}"

    @property
    def exec_detail(self) -> dict:
        """execDetail as HENGSHI shows it, and as a fire records it: secrets masked."""
        from taskcenter.schedules.jobs import shown_params  # jobs reads definitions' models

        return {
            "jobClass": self.job_class,
            "jobParams": shown_params(self.job_class, self.job_params),
            "retryTimes": self.retry_times,
        }


class PlanItem(Authored):
    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="items")
    trigger_type = models.CharField(max_length=16, choices=TriggerType.choices)
    cron_desc = models.CharField(max_length=255, blank=True)
    cron_type = models.CharField(max_length=16, choices=CronType.choices, blank=True)
    time_zone = models.CharField(max_length=64, blank=True)
    trigger_by_jobs = models.JSONField(default=list, blank=True)
    # The next time this item fires; NULL while its plan is disabled, for DEPENDENCY and
    # ONCE items, and when the expression never fires again. The scheduler's only query
    # for due work reads this index, so its cost follows what is due, not the plan count.
    next_fire_at = models.DateTimeField(null=True, blank=True, db_index=True)

    def __str__(self) -> str:
        return f"#{self.pk} {self.trigger_type} of plan {self.plan_id}"

    def snapshot(self) -> dict:
        """The item as a context shows it, kept on each fire (items may be replaced)."""
        data: dict = {"id": self.pk, "planId": self.plan_id, "triggerType": self.trigger_type}
        if self.trigger_type == TriggerType.CRON_JOB:
            data.update(cronDesc=self.cron_desc, cronType=self.cron_type, timeZone=self.time_zone)
        elif self.trigger_type == TriggerType.DEPENDENCY:
            data["triggerByJobs"] = self.trigger_by_jobs
        return data


class PlanDependency(models.Model):
    """One job a DEPENDENCY item waits for: the index from a finished job to the items that
    follow it, so a successful run finds its followers without reading every plan."""

    item = models.ForeignKey(PlanItem, on_delete=models.CASCADE, related_name="dependencies")
    entity_group = models.CharField(max_length=64)
    entity_key = models.CharField(max_length=200)

    class Meta:
        indexes = [models.Index(fields=["entity_group", "entity_key"], name="plandep_entity")]

    def __str__(self) -> str:
        return f"item {self.item_id} after {self.entity_group}/{self.entity_key}"


class FireOutcome(models.TextChoices):
    STARTED = "STARTED"  # a task was started: this fire is a context
    SKIPPED = "SKIPPED"  # not started, with the reason (overlap, start refused)
    MISSED = "MISSED"  # the scheduler was down at this time and the misfire policy skipped it


class Fire(models.Model):
    """One (plan item, fire time): claimed by inserting this row, so that several
    schedulers racing for the same fire start exactly one run (the unique constraints)."""

    plan = models.ForeignKey(
        Plan, on_delete=models.SET_NULL, null=True, blank=True, related_name="fires"
    )
    item = models.ForeignKey(
        PlanItem, on_delete=models.SET_NULL, null=True, blank=True, related_name="fires"
    )
    fire_time = models.DateTimeField()
    # For a DEPENDENCY fire: the upstream run whose success caused it (one fire per upstream).
    upstream = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    outcome = models.CharField(max_length=16, choices=FireOutcome.choices)
    reason = models.TextField(blank=True)
    task = models.OneToOneField(
        TaskInstance,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="plan_fire",
    )
    # What ran, kept with the run (see the module docstring).
    entity_group = models.CharField(max_length=64)
    entity_key = models.CharField(max_length=200)
    title = models.CharField(max_length=200, blank=True)
    exec_detail = models.JSONField(default=dict, blank=True)
    plan_item = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # A started run whose end the scheduler has not yet looked at (dependency follow-ups);
    # the partial index keeps that look proportional to the runs still open.
    followed_up = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["item", "fire_time"],
                condition=Q(upstream__isnull=True),
                name="fire_once_per_item_time",
            ),
            models.UniqueConstraint(
                fields=["item", "upstream"],
                condition=Q(upstream__isnull=False),
                name="fire_once_per_item_upstream",
            ),
        ]
        indexes = [
            models.Index(
                fields=["id"],
                condition=Q(outcome="STARTED", followed_up=False),
                name="fire_open_runs",
            ),
            models.Index(fields=["plan", "-id"], name="fire_plan_id"),
            models.Index(fields=["entity_group", "entity_key", "-id"], name="fire_entity_id"),
        ]

    def __str__(self) -> str:
        return f"{self.outcome} {self.entity_group}/{self.entity_key} at {self.fire_time}"
