"""Settings, all from environment variables (the reference: docs/configuration.md)."""

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from taskcenter.core.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("TASKCENTER_VAR_DIR") or BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)
# Prometheus counters of every process of this machine (web, workers, scheduler) go to one
# folder, so /metrics shows them all (taskcenter.core.metrics). Set before any module
# imports prometheus_client, which reads it once; an empty value turns it off.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "metrics"))
if os.environ["PROMETHEUS_MULTIPROC_DIR"]:
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
else:
    del os.environ["PROMETHEUS_MULTIPROC_DIR"]

DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    """SECRET_KEY from the environment; on a laptop, one generated once under var/."""
    configured = env_str("SECRET_KEY")
    if configured:
        return configured
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # Django's admin, for superusers only (taskcenter.accounts.admin_site).
    "taskcenter.accounts.apps.SuperuserAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_filters",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "taskcenter.accounts",
    "taskcenter.tasks",
    "taskcenter.engine",
    "taskcenter.api",
    "taskcenter.dashboard",
    "taskcenter.schedules",
    "taskcenter.runtime",
]

# The demo (its definitions and callables, and seed_demo) is an app installed only when
# asked for: TASKCENTER_DEMO=true, which `serve --demo` and the tests set, or, when the
# variable is not set, the marker file that seed_demo leaves in the var dir. The marker is
# what keeps a seeded demo usable from every process of this installation (`run_task` in a
# second terminal, the worker `serve` starts, a restarted web server) without anyone
# exporting a variable: the var dir is already what those processes share (the SQLite
# file, the broker folder, the secret key), so the demo goes wherever its data goes. A
# machine that shares only the database sets TASKCENTER_DEMO=true; TASKCENTER_DEMO=false
# turns the demo off whatever the marker says.
TASKCENTER_DEMO_MARKER = VAR_DIR / "demo-seeded"
TASKCENTER_DEMO = env_bool("TASKCENTER_DEMO", TASKCENTER_DEMO_MARKER.exists())
if TASKCENTER_DEMO:
    INSTALLED_APPS.append("taskcenter.demo")

MIDDLEWARE = [
    # First, so every later line logged for a request carries its trace id.
    "taskcenter.core.metrics.RequestMetricsMiddleware",
    "taskcenter.core.middleware.TraceIdMiddleware",
    "taskcenter.api.exceptions.ApiErrorMiddleware",
    "taskcenter.core.middleware.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before the session is loaded: a remembered session's log polls end here.
    "taskcenter.dashboard.log_poll.LogPollShortcutMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Pages (not the API) in the reader's time zone: after the user is known.
    "taskcenter.accounts.middleware.ReaderTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "taskcenter.urls"
WSGI_APPLICATION = "taskcenter.wsgi.application"
ASGI_APPLICATION = "taskcenter.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "taskcenter.dashboard.context_processors.top_bar",
                "taskcenter.accounts.context_processors.preferences",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'taskcenter.sqlite3'}"
try:
    _db = dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0, 0), conn_health_checks=True
    )
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None

if _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers work while a worker writes; IMMEDIATE takes the write lock at BEGIN
    # so two processes never both read a row and then race to update it (SQLite has no
    # SELECT ... FOR UPDATE); the busy timeout makes writers queue instead of failing.
    _db["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
        "PRAGMA busy_timeout=30000;",
    }
    _db["TEST"] = {"NAME": str(VAR_DIR / "test-taskcenter.sqlite3")}
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth --------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Sign-ins go through the throttle (taskcenter.accounts.throttle): at most this many
# failures per user name and address, and the higher second limit per address, in each
# window.
AUTHENTICATION_BACKENDS = ["taskcenter.accounts.throttle.ThrottledModelBackend"]
TASKCENTER_SIGNIN_FAILURE_LIMIT = env_int("TASKCENTER_SIGNIN_FAILURE_LIMIT", 5, 1)
TASKCENTER_SIGNIN_ADDRESS_FAILURE_LIMIT = env_int("TASKCENTER_SIGNIN_ADDRESS_FAILURE_LIMIT", 50, 1)
TASKCENTER_SIGNIN_WINDOW_SECONDS = env_float("TASKCENTER_SIGNIN_WINDOW_SECONDS", 60.0, 1.0)
LOGIN_URL = "dashboard:login"
LOGIN_REDIRECT_URL = "dashboard:task_list"
LOGOUT_REDIRECT_URL = "dashboard:login"
# CSRF refusals as a clear page, or a flash message for htmx requests.
CSRF_FAILURE_VIEW = "taskcenter.dashboard.views.csrf_failure"

# --- Internationalisation ----------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static files ------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT") or VAR_DIR / "staticfiles")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# --- Security (production turns these on through the environment) -------------------------
SECURE_HTTPS = env_bool("SECURE_HTTPS", False)
SESSION_COOKIE_SECURE = SECURE_HTTPS
CSRF_COOKIE_SECURE = SECURE_HTTPS
SECURE_SSL_REDIRECT = SECURE_HTTPS
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if SECURE_HTTPS else 0, 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HTTPS
SECURE_HSTS_PRELOAD = SECURE_HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if SECURE_HTTPS else None
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600, 60)
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Request bodies are small JSON objects; a larger one is a 413 before it is parsed (the API's
# JSON parser also bounds nesting depth: taskcenter.api.parsers).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440, 1024)

# --- REST API (OCP v2 facade) ---------------------------------------------------------------
REST_FRAMEWORK = {
    # Basic first: its WWW-Authenticate makes an unauthenticated call a 401, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "taskcenter.api.authentication.CachedBasicAuthentication",
        "taskcenter.api.authentication.AccessKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",  # enforces CSRF
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's JSON parser with the body's size and nesting depth bounded (a 400, not a 500).
    "DEFAULT_PARSER_CLASSES": ["taskcenter.api.parsers.BoundedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_METADATA_CLASS": None,  # OPTIONS is a 405 in the envelope, not DRF's metadata
    "EXCEPTION_HANDLER": "taskcenter.api.exceptions.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "taskcenter API",
    "DESCRIPTION": "OceanBase Cloud Platform compatible task API (v2): task instances, "
    "subtasks, logs and operations, in OCP's response envelope.",
    "VERSION": "2",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "TaskStatusEnum": "taskcenter.tasks.models.TaskStatus",
        "TaskTypeEnum": "taskcenter.tasks.models.TaskType",
        "TaskOperationEnum": "taskcenter.tasks.models.TaskOperation",
        "SubtaskStatusEnum": "taskcenter.tasks.models.SubtaskStatus",
        "SubtaskOperationEnum": "taskcenter.tasks.models.SubtaskOperation",
        "NodeTypeEnum": "taskcenter.tasks.models.NodeType",
        "ClusterTypeEnum": "taskcenter.tasks.models.Cluster.Type",
        "TenantModeEnum": "taskcenter.tasks.models.Tenant.Mode",
    },
}

# --- Celery ------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or f"filesystem://{VAR_DIR / 'broker'}"
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # Celery's filesystem transport takes its folder from transport options, not the URL;
    # "filesystem:///abs/dir" is our spelling so one variable says everything.
    _broker_dir = Path(CELERY_BROKER_URL.removeprefix("filesystem://") or VAR_DIR / "broker")
    (_broker_dir / "queue").mkdir(parents=True, exist_ok=True)
    (_broker_dir / "processed").mkdir(parents=True, exist_ok=True)
    (_broker_dir / "control").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://localhost/"
    CELERY_BROKER_TRANSPORT = "taskcenter.engine.fs_transport:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        "polling_interval": 0.05,
    }
# The queue this deployment's subtasks go to; separate deployments (or test runs) sharing
# one broker use different names.
CELERY_TASK_DEFAULT_QUEUE = env_str("TASKCENTER_QUEUE", "celery")


def _queue_routes(rules: list[str]) -> list[tuple[dict[str, str], str]]:
    """TASKCENTER_QUEUE_ROUTES: which queue a subtask's attempts go to, first match wins.

    Comma-separated rules `<condition>[&<condition>]=<queue>`, a condition being
    `node:<NODE_TYPE>` (PYTHON_TASK, SHELL_TASK, HTTP_TASK) or `cluster:<cluster name>`,
    e.g. `cluster:east&node:SHELL_TASK=east-shell,node:SHELL_TASK=shell`. A subtask no rule
    matches goes to the default queue (TASKCENTER_QUEUE). Workers choose what they run
    with `celery worker -Q <queues>`.
    """
    routes = []
    for rule in rules:
        conditions, _, queue = rule.rpartition("=")
        matched: dict[str, str] = {}
        for condition in conditions.split("&") if conditions else []:
            key, _, value = condition.strip().partition(":")
            if key not in ("node", "cluster") or not value.strip() or key in matched:
                break
            matched[key] = value.strip().upper() if key == "node" else value.strip()
        else:
            if matched and queue.strip():
                routes.append((matched, queue.strip()))
                continue
        raise ImproperlyConfigured(
            f"TASKCENTER_QUEUE_ROUTES: {rule!r} is not node:<TYPE>=<queue>, "
            "cluster:<name>=<queue> or both joined with &"
        )
    return routes


TASKCENTER_QUEUE_ROUTES = _queue_routes(env_list("TASKCENTER_QUEUE_ROUTES", []))
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_WORKER_PREFETCH_MULTIPLIER", 4, 1)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A broker outage is waited out, never a reason to exit: the worker reconnects every
# second for as long as it takes (its consumer, taskcenter.engine.worker.Consumer, also
# survives the Redis transport's teardown error). Running attempts go on during the
# outage: their claims are in the database, so the message's fate does not matter.
CELERY_WORKER_CONSUMER = "taskcenter.engine.worker:Consumer"
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_CONNECTION_TIMEOUT = 2.0
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# A send that cannot reach the broker gives up after about half a second: the attempts
# wait in the outbox (taskcenter.engine.outbox) for the reaper, and the request answers.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
# Celery's Django fix-up closes the database connection around every task unless told to
# reuse it; reconnecting costs more than a short subtask (7-9 ms on PostgreSQL).
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000, 0)

# --- Metrics -----------------------------------------------------------------------------
# Collectors read at scrape time from the database (counts by status, queue lag, fires).
TASKCENTER_METRICS_COLLECTORS = [
    "taskcenter.engine.metrics.EngineCollector",
    "taskcenter.schedules.metrics.FiresCollector",
]
# Scrapers send it as "Authorization: Bearer <token>". Unset, /metrics answers only
# connections from this machine (127.0.0.1, ::1).
TASKCENTER_METRICS_TOKEN = env_str("TASKCENTER_METRICS_TOKEN")

# --- Engine ------------------------------------------------------------------------------
# Seconds between heartbeats of a running attempt, and after how long without one the
# reaper decides the worker is gone. The cancel watcher polls more often than it beats.
TASKCENTER_HEARTBEAT_INTERVAL = env_float("TASKCENTER_HEARTBEAT_INTERVAL", 2.0, 0.1)
TASKCENTER_WORKER_LOST_AFTER = env_float("TASKCENTER_WORKER_LOST_AFTER", 30.0, 0.5)
TASKCENTER_CANCEL_POLL_INTERVAL = env_float("TASKCENTER_CANCEL_POLL_INTERVAL", 0.5, 0.05)
# A READY attempt not claimed for this long is enqueued again (a lost message); claiming is
# idempotent, so a duplicate is harmless.
TASKCENTER_REDISPATCH_AFTER = env_float("TASKCENTER_REDISPATCH_AFTER", 300.0, 1.0)
TASKCENTER_REAPER_INTERVAL = env_float("TASKCENTER_REAPER_INTERVAL", 5.0, 0.1)
# On PostgreSQL a worker's own writes (claims, finishes, heartbeats, logs) do not wait for
# the WAL to reach the disk: a flush per subtask, under the task's row lock, was most of a
# fan-out's time. A database crash can then lose the last moments of engine bookkeeping,
# which the reaper repairs (a lost finish reads as a lost worker, a lost READY is sent
# again). Operators' actions from the pages and the API always wait for the disk.
TASKCENTER_WORKER_SYNCHRONOUS_COMMIT = env_bool("TASKCENTER_WORKER_SYNCHRONOUS_COMMIT", False)
# Worker presence (taskcenter.engine.presence): each worker writes its row this often; a
# worker not seen for TASKCENTER_NO_WORKER_AFTER seconds is offline, and when none is
# online every page says so. Rows of workers gone longer than the last setting are pruned.
TASKCENTER_WORKER_BEAT_INTERVAL = env_float("TASKCENTER_WORKER_BEAT_INTERVAL", 5.0, 0.1)
TASKCENTER_NO_WORKER_AFTER = env_float("TASKCENTER_NO_WORKER_AFTER", 30.0, 1.0)
TASKCENTER_WORKER_PRESENCE_KEEP = env_float("TASKCENTER_WORKER_PRESENCE_KEEP", 86400.0, 60.0)
TASKCENTER_LOG_CAP_BYTES = env_int("TASKCENTER_LOG_CAP_BYTES", 100 * 1024 * 1024, 1024)
TASKCENTER_DEMO_PASSWORD = env_str("TASKCENTER_DEMO_PASSWORD")
# A task list count slower than 50 ms (a substring filter on a million tasks) is reused for
# this many seconds by later pages of the same list; 0 always counts.
TASKCENTER_SLOW_COUNT_CACHE_SECONDS = env_float("TASKCENTER_SLOW_COUNT_CACHE_SECONDS", 5.0, 0)

# --- Logging -----------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"trace_id": {"()": "taskcenter.core.trace.TraceIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s [%(trace_id)s] %(name)s: %(message)s"}
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["trace_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
}
