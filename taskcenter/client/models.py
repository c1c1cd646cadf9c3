"""The API's answers as typed models (pydantic). Field names are Python's; the API's
camelCase names are their aliases. Unknown fields are kept (extra="allow"), so a newer
server's additions are not lost, and `raw` is the API's data exactly as sent, which the
command prints for `-o json`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from pydantic.alias_generators import to_camel


class Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")
    _raw: dict = PrivateAttr(default_factory=dict)

    @classmethod
    def of(cls, data: dict):
        model = cls.model_validate(data)
        model._raw = data
        return model

    @property
    def raw(self) -> dict:
        """The API's data as it was sent."""
        return self._raw


class Named(Model):
    id: int | None = None
    name: str = ""


class Subtask(Model):
    id: int
    name: str = ""
    status: str = ""
    operation: str = ""
    series_id: int | None = None
    executor: str | None = None
    run_time: int | None = None
    retry_count: int | None = None
    upstreams: list[int] = Field(default_factory=list)
    create_time: str | None = None
    start_time: str | None = None
    finish_time: str | None = None


class Task(Model):
    id: int
    name: str = ""
    status: str = ""
    type: str = ""
    operation: str = ""
    cluster: Named | None = None
    tenant: Named | None = None
    creator: Named | None = None
    create_time: str | None = None
    start_time: str | None = None
    finish_time: str | None = None
    subtasks: list[Subtask] = Field(default_factory=list)

    @property
    def finished(self) -> bool:
        """SUCCESSFUL or FAILED: nothing runs any more (until an operator acts)."""
        return self.status in ("SUCCESSFUL", "FAILED")


class LogChunk(Model):
    log: str = ""
    offset: int = 0
    next_offset: int = 0
    size: int = 0
    finished: bool = False
    truncated: bool = False


class JobParameter(Model):
    name: str
    label: str = ""
    type: str = "any"
    required: bool = False
    default: Any = None
    help: str | None = None
    choices: list[Any] | None = None


class Job(Model):
    name: str
    description: str = ""
    source: str = ""
    version: int | None = None
    parameters: list[JobParameter] = Field(default_factory=list)


class BulkRefusal(Model):
    id: int | str
    code: int
    message: str


class BulkResult(Model):
    bulk_id: str | None = None
    dry_run: bool = False
    operation: str = ""
    matched: int = 0
    accepted: list[int] = Field(default_factory=list)
    refused: list[BulkRefusal] = Field(default_factory=list)


class BulkProgress(Model):
    bulk_id: str
    operation: str = ""
    state: str = ""
    total: int = 0
    done: int = 0
    refused: int = 0
    failed: int = 0
    stopped: int = 0
    finished: bool = False


class Schedule(Model):
    id: int | str
    entity_key: str | None = None
    entity_group: str | None = None
    enabled: bool | None = None


class Context(Model):
    id: int | str
    job_status: str | None = None


class Approval(Model):
    """An approval gate waiting for a decision (GET /api/v2/approvals)."""

    task_instance_id: int
    subtask_instance_id: int
    name: str = ""
    cluster: Named | None = None
    tenant: Named | None = None
    creator: Named | None = None
    waiting_since: str | None = None
    expires_at: str | None = None
    may_decide: bool = False
    why_not: str | None = None


class Channel(Model):
    """A notification channel (GET /api/v2/notifications/channels). `url` is the scheme
    and host only: the rest of a URL is a secret."""

    id: int
    name: str = ""
    kind: str = ""
    url: str | None = None
    addresses: list[str] = Field(default_factory=list)
    open_to_all: bool = False
    created_at: str | None = None


class ChannelTest(Model):
    """A test message queued through a channel: the delivery to look for."""

    delivery_id: str
    status: str = ""


class Rule(Model):
    """A notification rule: its channel, the events it sends (none: every kind) and what
    it watches (a job, a plan, a cluster or a task; none: all its owner may see)."""

    id: int
    channel_id: int | None = None
    events: list[str] = Field(default_factory=list)
    job: str | None = None
    plan_id: int | None = None
    cluster_id: int | None = None
    task_id: int | None = None
    personal: bool = False
    owner: str = ""
    enabled: bool = False
    created_at: str | None = None


class DeliveryTry(Model):
    """One send of a delivery and what the receiver answered."""

    at: str | None = None
    ok: bool = False
    status_code: int | None = None
    latency_ms: int | None = None
    error: str | None = None


class Delivery(Model):
    """A message to one channel (its `id` is the webhook id, the same on every try)."""

    id: str
    channel_id: int | None = None
    rule_id: int | None = None
    event_id: str | None = None
    type: str = ""
    kind: str = ""
    digest_count: int | None = None
    status: str = ""
    attempts: int = 0
    last_code: int | None = None
    last_error: str | None = None
    next_attempt_at: str | None = None
    delivered_at: str | None = None
    created_at: str | None = None
    tries: list[DeliveryTry] = Field(default_factory=list)
