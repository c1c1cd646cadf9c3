"""The environment variables taskcenter reads, declared once with their types, defaults
and bounds, and checked together when the settings load.

A typo in a deployment variable ("ture", "1O") must stop the process at start, not
silently fall back to a default, so every bad value is an ImproperlyConfigured that names
the variable (all of them at once, not the first only). A variable set to an empty or
blank value counts as not set, as in a compose file's `DEBUG=`.

Why pydantic-settings: of the well-kept loaders it is the one that fits these rules as they
are. django-environ reads an unknown boolean ("ture") as false and has no bounds; environs
takes an empty value as a value (`DEBUG=` fails) and keeps blanks in list items, so both
would need a wrapper per type around them. Here a variable is one typed line, bounds
included (`Field(ge=...)`).
"""

from __future__ import annotations

from typing import Annotated, Any

from django.core.exceptions import ImproperlyConfigured
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Which queue a subtask's attempts go to: ({"node": NODE_TYPE, "cluster": name}, queue),
# either condition optional but not both.
QueueRoute = tuple[dict[str, str], str]
CommaList = Annotated[list[str], NoDecode]

_ROUTE_CONDITIONS = ("node", "cluster")


def _comma_list(raw: Any) -> Any:
    """ "a, b ,," -> ["a", "b"]; a value that is already a list (a default) is kept."""
    if isinstance(raw, str):
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def _route_condition(condition: str) -> tuple[str, str]:
    """`node:<NODE_TYPE>` (in capitals) or `cluster:<cluster name>`."""
    key, _, value = condition.strip().partition(":")
    if key not in _ROUTE_CONDITIONS or not value.strip():
        raise ValueError(condition)
    return key, value.strip().upper() if key == "node" else value.strip()


def _queue_route(rule: str) -> QueueRoute:
    """One rule `<condition>[&<condition>]=<queue>`, each kind of condition at most once."""
    conditions, _, queue = rule.rpartition("=")
    try:
        pairs = [_route_condition(condition) for condition in conditions.split("&")]
    except ValueError:
        pairs = []
    matched = dict(pairs)
    if not pairs or len(matched) != len(pairs) or not queue.strip():
        raise ValueError(
            f"TASKCENTER_QUEUE_ROUTES: {rule!r} is not node:<TYPE>=<queue>, "
            "cluster:<name>=<queue> or both joined with &"
        )
    return matched, queue.strip()


class Environment(BaseSettings):
    """Every variable, by its own name (the configuration reference lists what each does)."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", allow_inf_nan=False)

    # --- Django ---
    DEBUG: bool = False
    SECRET_KEY: str = ""
    ALLOWED_HOSTS: CommaList = ["localhost", "127.0.0.1", "[::1]", "testserver"]
    CSRF_TRUSTED_ORIGINS: CommaList = []
    TIME_ZONE: str = "UTC"
    LOG_LEVEL: str = "INFO"
    STATIC_ROOT: str = ""
    DATABASE_URL: str = ""
    DB_CONN_MAX_AGE: Annotated[int, Field(ge=0)] = 0
    SECURE_HTTPS: bool = False
    SECURE_HSTS_SECONDS: Annotated[int | None, Field(ge=0)] = (
        None  # unset: a year with HTTPS, else 0
    )
    SESSION_COOKIE_AGE: Annotated[int, Field(ge=60)] = 8 * 3600
    DATA_UPLOAD_MAX_MEMORY_SIZE: Annotated[int, Field(ge=1024)] = 2_621_440

    # --- This installation ---
    TASKCENTER_VAR_DIR: str = ""
    TASKCENTER_DEMO: bool | None = None  # unset: the demo marker in the var dir decides
    TASKCENTER_DEMO_PASSWORD: str = ""
    TASKCENTER_SIGNIN_FAILURE_LIMIT: Annotated[int, Field(ge=1)] = 5
    TASKCENTER_SIGNIN_ADDRESS_FAILURE_LIMIT: Annotated[int, Field(ge=1)] = 50
    TASKCENTER_SIGNIN_WINDOW_SECONDS: Annotated[float, Field(ge=1.0)] = 60.0
    TASKCENTER_SIGNIN_KNOWN_DAYS: Annotated[float, Field(ge=0)] = 30.0
    TASKCENTER_METRICS_TOKEN: str = ""
    TASKCENTER_CONTENT_SECURITY_POLICY: str = ""  # empty: the built-in policy (settings)
    TASKCENTER_SLOW_COUNT_CACHE_SECONDS: Annotated[float, Field(ge=0)] = 5.0

    # --- The web server (taskcenter.webserver, taskcenter.edge) ---
    TASKCENTER_CONTEXT_WAIT_SECONDS: Annotated[float, Field(ge=0)] = 30.0
    TASKCENTER_CONTEXT_WAITS_PER_USER: Annotated[int, Field(ge=0)] = 100
    TASKCENTER_WEB_CONNECTIONS: Annotated[int, Field(ge=10)] = 1000
    TASKCENTER_WEB_CONNECTIONS_PER_ADDRESS: Annotated[int, Field(ge=1)] = 500
    TASKCENTER_WEB_HEADER_BYTES: Annotated[int, Field(ge=4096)] = 65536
    TASKCENTER_WEB_HEADER_SECONDS: Annotated[float, Field(ge=1.0)] = 30.0

    # --- Celery and the engine ---
    CELERY_BROKER_URL: str = ""
    CELERY_WORKER_PREFETCH_MULTIPLIER: Annotated[int, Field(ge=1)] = 4
    CELERY_DB_REUSE_MAX: Annotated[int, Field(ge=0)] = 1000
    TASKCENTER_QUEUE: str = "celery"
    TASKCENTER_QUEUE_ROUTES: Annotated[list[QueueRoute], NoDecode] = []
    TASKCENTER_HEARTBEAT_INTERVAL: Annotated[float, Field(ge=0.1)] = 2.0
    TASKCENTER_WORKER_LOST_AFTER: Annotated[float, Field(ge=0.5)] = 30.0
    TASKCENTER_CANCEL_POLL_INTERVAL: Annotated[float, Field(ge=0.05)] = 0.5
    TASKCENTER_REDISPATCH_AFTER: Annotated[float, Field(ge=1.0)] = 300.0
    TASKCENTER_FANOUT_MESSAGES: Annotated[int, Field(ge=1)] = 64
    TASKCENTER_REAPER_INTERVAL: Annotated[float, Field(ge=0.1)] = 5.0
    TASKCENTER_FINISH_RETRY_FOR: Annotated[float, Field(ge=0)] = 600.0
    TASKCENTER_WORKER_SYNCHRONOUS_COMMIT: bool = False
    TASKCENTER_WORKER_BEAT_INTERVAL: Annotated[float, Field(ge=0.1)] = 5.0
    TASKCENTER_NO_WORKER_AFTER: Annotated[float, Field(ge=1.0)] = 30.0
    TASKCENTER_WORKER_PRESENCE_KEEP: Annotated[float, Field(ge=60.0)] = 86400.0
    TASKCENTER_LOG_CAP_BYTES: Annotated[int, Field(ge=1024)] = 100 * 1024 * 1024

    # --- Retention: days each kind of data is kept (0: kept forever) ---
    TASKCENTER_RETENTION_TASKS_DAYS: Annotated[int, Field(ge=0)] = 90
    TASKCENTER_RETENTION_FIRES_DAYS: Annotated[int, Field(ge=0)] = 90
    TASKCENTER_RETENTION_AUDIT_DAYS: Annotated[int, Field(ge=0)] = 400
    TASKCENTER_RETENTION_BULK_DAYS: Annotated[int, Field(ge=0)] = 400
    TASKCENTER_RETENTION_SESSIONS_DAYS: Annotated[int, Field(ge=0)] = 1
    TASKCENTER_RETENTION_SIGNIN_DAYS: Annotated[int, Field(ge=0)] = 1
    TASKCENTER_RETENTION_OUTBOX_DAYS: Annotated[int, Field(ge=0)] = 7
    TASKCENTER_RETENTION_HOUR: Annotated[int, Field(ge=0, le=23)] = 3
    TASKCENTER_RETENTION_BATCH: Annotated[int, Field(ge=10, le=10000)] = 500
    TASKCENTER_RETENTION_PAUSE: Annotated[float, Field(ge=0, le=60)] = 0.05
    TASKCENTER_RETENTION_IDLE_RATIO: Annotated[float, Field(ge=0, le=100)] = 3.0
    TASKCENTER_RETENTION_EXPORT_DIR: str = ""

    # --- Notifications ---
    TASKCENTER_BASE_URL: str = "http://127.0.0.1:8000"
    TASKCENTER_NOTIFY_INTERVAL: Annotated[float, Field(ge=0.05)] = 0.2
    TASKCENTER_NOTIFY_TIMEOUT: Annotated[float, Field(ge=0.5)] = 10.0
    TASKCENTER_NOTIFY_RETRY_FOR: Annotated[float, Field(ge=60.0)] = 86400.0
    TASKCENTER_NOTIFY_RETRY_DELAYS: Annotated[
        list[Annotated[float, Field(gt=0)]], Field(min_length=1), NoDecode
    ] = [5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 43200]
    TASKCENTER_NOTIFY_LEASE_GRACE: Annotated[float, Field(ge=0)] = 30.0
    TASKCENTER_NOTIFY_FLOOD_LIMIT: Annotated[int, Field(ge=1)] = 10
    TASKCENTER_NOTIFY_FLOOD_WINDOW: Annotated[float, Field(ge=1.0)] = 60.0
    TASKCENTER_NOTIFY_WAITING_AFTER: Annotated[float, Field(ge=1.0)] = 3600.0
    TASKCENTER_NOTIFY_QUEUE_LAG: Annotated[float, Field(ge=1.0)] = 300.0
    TASKCENTER_NOTIFY_KEEP_DAYS: Annotated[float, Field(ge=1.0)] = 30.0
    EMAIL_HOST: str = "localhost"
    EMAIL_PORT: Annotated[int, Field(ge=1, le=65535)] = 25
    EMAIL_HOST_USER: str = ""
    EMAIL_HOST_PASSWORD: str = ""
    EMAIL_USE_TLS: bool = False
    DEFAULT_FROM_EMAIL: str = "taskcenter@localhost"

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, raw: Any) -> Any:
        """Values without their surrounding blanks; an empty one takes the default."""
        if not isinstance(raw, dict):
            return raw
        stripped = {k: v.strip() if isinstance(v, str) else v for k, v in raw.items()}
        return {k: v for k, v in stripped.items() if v != ""}

    _split_lists = field_validator(
        "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "TASKCENTER_NOTIFY_RETRY_DELAYS", mode="before"
    )(_comma_list)

    @field_validator("TASKCENTER_QUEUE_ROUTES", mode="before")
    @classmethod
    def _parse_routes(cls, raw: Any) -> Any:
        """Comma-separated rules, first match wins, e.g.
        `cluster:east&node:SHELL_TASK=east-shell,node:SHELL_TASK=shell`; a subtask no rule
        matches goes to TASKCENTER_QUEUE. Workers choose their queues with `-Q`."""
        return [_queue_route(rule) for rule in _comma_list(raw)]


_MESSAGES = {
    "bool_parsing": "must be one of true/false/1/0/yes/no/on/off",
    "bool_type": "must be one of true/false/1/0/yes/no/on/off",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
}


def _describe(error: ErrorDetails) -> str:
    name = str(error["loc"][0]) if error["loc"] else "the environment"
    if error["type"] == "value_error":  # a validator's own words, naming the variable
        return str(error["ctx"]["error"])
    if error["type"] == "greater_than_equal":
        return f"{name} must be at least {error['ctx']['ge']}, got {error['input']!r}"
    if error["type"] == "less_than_equal":
        return f"{name} must be at most {error['ctx']['le']}, got {error['input']!r}"
    return f"{name} {_MESSAGES.get(error['type'], error['msg'])}, got {error['input']!r}"


def load_environment() -> Environment:
    """The environment, read and checked now; ImproperlyConfigured lists every bad value."""
    try:
        return Environment()
    except ValidationError as exc:
        raise ImproperlyConfigured("; ".join(_describe(e) for e in exc.errors())) from None
