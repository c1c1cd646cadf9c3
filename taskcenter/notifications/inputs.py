"""Channel and rule bodies parsed (the API's JSON and the pages' forms alike), each bad
field refused with InvalidParameter naming it."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from taskcenter.core.errors import InvalidParameter
from taskcenter.notifications.models import Channel, ChannelKind
from taskcenter.notifications.secrets_store import ENV_PREFIX
from taskcenter.tasks.events import KINDS
from taskcenter.tasks.models import Cluster

NAME_MAX = 120
URL_MAX = 2000


@dataclass(frozen=True)
class ChannelInput:
    name: str
    kind: str
    url: str
    addresses: list[str]
    open_to_all: bool


def _text(data: dict, field: str, *, required: bool = False, limit: int = NAME_MAX) -> str:
    value = data.get(field)
    if value is None or value == "":
        if required:
            raise InvalidParameter.because(field, "is required.")
        return ""
    if not isinstance(value, str):
        raise InvalidParameter.because(field, "expected a string.")
    value = value.strip()
    if len(value) > limit:
        raise InvalidParameter.because(field, f"at most {limit} characters.")
    if "\x00" in value:
        raise InvalidParameter.because(field, "contains a NUL character.")
    return value


def _flag(data: dict, field: str, default: bool = False) -> bool:
    value = data.get(field, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "on", "1", "false", "", "0", "off"):
        return value.lower() in ("true", "on", "1")
    raise InvalidParameter.because(field, "expected true or false.")


def _addresses(value) -> list[str]:
    if value in (None, "", []):
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(a, str) for a in items):
        raise InvalidParameter.because("addresses", "expected a list of e-mail addresses.")
    addresses = [a.strip() for a in items if a.strip()]
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            raise InvalidParameter.because(
                "addresses", f"{address!r} is not an e-mail address."
            ) from None
    return addresses


def parse_channel(data, *, existing: Channel | None = None) -> ChannelInput:
    if not isinstance(data, dict):
        raise InvalidParameter.because("body", "expected a JSON object.")
    name = _text(data, "name", required=True)
    kind = existing.kind if existing else _text(data, "kind", required=True)
    if kind not in ChannelKind.values:
        raise InvalidParameter.because("kind", f"one of {', '.join(ChannelKind.values)}.")
    url = _text(data, "url", limit=URL_MAX)
    if kind in (ChannelKind.WEBHOOK, ChannelKind.APPRISE) and not url and existing is None:
        raise InvalidParameter.because("url", "is required for a webhook or Apprise channel.")
    if url and not url.startswith(ENV_PREFIX):
        scheme = urlsplit(url).scheme
        if kind == ChannelKind.WEBHOOK and (
            scheme not in ("http", "https") or not urlsplit(url).netloc
        ):
            raise InvalidParameter.because("url", "an http:// or https:// URL (or env:NAME).")
        if kind == ChannelKind.APPRISE and not scheme:
            raise InvalidParameter.because(
                "url", "an Apprise URL such as slack://... (or env:NAME)."
            )
    addresses = _addresses(data.get("addresses"))
    return ChannelInput(
        name=name,
        kind=kind,
        url=url if kind != ChannelKind.EMAIL else "",
        addresses=addresses,
        open_to_all=_flag(data, "openToAll"),
    )


def parse_replace_secret(data) -> bool:
    """A channel change's "replaceSecret": a new signing secret for a webhook channel."""
    return _flag(data, "replaceSecret") if isinstance(data, dict) else False


@dataclass(frozen=True)
class RuleInput:
    channel: Channel | None
    events: list[str]
    job: str
    plan_id: int | None
    cluster: Cluster | None
    task_id: int | None
    enabled: bool

    def fields(self) -> dict:
        return {
            "channel": self.channel,
            "events": self.events,
            "job": self.job,
            "plan_id": self.plan_id,
            "cluster": self.cluster,
            "task_id": self.task_id,
            "enabled": self.enabled,
        }

    def __str__(self) -> str:
        what = (
            f"job {self.job}"
            if self.job
            else f"plan {self.plan_id}"
            if self.plan_id
            else f"cluster {self.cluster.name}"
            if self.cluster
            else f"task {self.task_id}"
            if self.task_id
            else "everything visible"
        )
        where = f"channel {self.channel.name}" if self.channel else "the bell"
        kinds = ", ".join(self.events) or "every event"
        return f"{kinds} of {what} to {where}"


def _id(data: dict, field: str) -> int | None:
    value = data.get(field)
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise InvalidParameter.because(field, "expected an id.")
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        raise InvalidParameter.because(field, "expected an id.") from None
    if not 1 <= number <= 2**63 - 1:
        raise InvalidParameter.because(field, "expected an id.")
    return number


def parse_rule(data, channels) -> RuleInput:
    """A rule body; `channels` the channels the rule's owner may use (a queryset)."""
    if not isinstance(data, dict):
        raise InvalidParameter.because("body", "expected a JSON object.")
    channel_id = _id(data, "channelId")
    channel = None
    if channel_id is not None:
        channel = channels.filter(pk=channel_id).first()
        if channel is None:
            raise InvalidParameter.because("channelId", f"no channel {channel_id} you may use.")
    kinds = data.get("events") or []
    if isinstance(kinds, str):
        kinds = [k for k in kinds.split(",") if k]
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        raise InvalidParameter.because("events", "expected a list of event kinds.")
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise InvalidParameter.because(
            "events", f"unknown kind {unknown[0]!r}; the kinds are {', '.join(KINDS)}."
        )
    job = _text(data, "job", limit=200)
    plan_id = _id(data, "planId")
    cluster_id = _id(data, "clusterId")
    task_id = _id(data, "taskId")
    chosen = [
        name
        for name, value in (
            ("job", job),
            ("planId", plan_id),
            ("clusterId", cluster_id),
            ("taskId", task_id),
        )
        if value
    ]
    if len(chosen) > 1:
        raise InvalidParameter.because(
            chosen[1], f"give one of job, planId, clusterId, taskId (also {chosen[0]})."
        )
    cluster = None
    if cluster_id is not None:
        cluster = Cluster.objects.filter(pk=cluster_id).first()
        if cluster is None:
            raise InvalidParameter.because("clusterId", f"no cluster {cluster_id}.")
    return RuleInput(
        channel=channel,
        events=sorted(set(kinds), key=KINDS.index),
        job=job,
        plan_id=plan_id,
        cluster=cluster,
        task_id=task_id,
        enabled=_flag(data, "enabled", default=True),
    )
