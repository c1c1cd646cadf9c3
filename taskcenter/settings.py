"""Settings, all from environment variables (the reference: docs/configuration.md).

Reading them writes nothing: the folders under the var dir and a laptop's secret key are
made when a process starts (taskcenter.runtime.apps).
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from taskcenter.core.env import load_environment

_env = load_environment()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(_env.TASKCENTER_VAR_DIR or BASE_DIR / "var")
# Prometheus counters of every process of this machine (web, workers, scheduler) go to one
# folder, so /metrics shows them all (taskcenter.core.metrics). Set before any module
# imports prometheus_client, which reads it once; an empty value turns it off.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "metrics"))
if not os.environ["PROMETHEUS_MULTIPROC_DIR"]:
    del os.environ["PROMETHEUS_MULTIPROC_DIR"]

DEBUG = _env.DEBUG

# Without SECRET_KEY in the environment (a laptop), the key is generated into this file by
# the first process that starts here and read from it by every later one.
TASKCENTER_SECRET_KEY_FILE = None if _env.SECRET_KEY else VAR_DIR / "secret_key"
SECRET_KEY = _env.SECRET_KEY
ALLOWED_HOSTS = _env.ALLOWED_HOSTS
CSRF_TRUSTED_ORIGINS = _env.CSRF_TRUSTED_ORIGINS

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
    # First of ours: its ready() makes the var dir and the secret key the others use.
    "taskcenter.runtime",
    "taskcenter.accounts",
    "taskcenter.tasks",
    "taskcenter.engine",
    "taskcenter.api",
    "taskcenter.dashboard",
    "taskcenter.schedules",
    "taskcenter.retention",
    "taskcenter.notifications",
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
TASKCENTER_DEMO = (
    TASKCENTER_DEMO_MARKER.exists() if _env.TASKCENTER_DEMO is None else _env.TASKCENTER_DEMO
)
if TASKCENTER_DEMO:
    INSTALLED_APPS.append("taskcenter.demo")

MIDDLEWARE = [
    # First, so every later line logged for a request carries its trace id.
    "taskcenter.core.metrics.RequestMetricsMiddleware",
    "taskcenter.core.middleware.TraceIdMiddleware",
    # An API response's data freed once it is sent, not at the next full garbage collection.
    "taskcenter.core.middleware.ReleaseApiResponseMiddleware",
    "taskcenter.api.exceptions.ApiErrorMiddleware",
    # NUL, lone surrogates and malformed caller trace ids refused before anything reads
    # the request (the session, the user, a view): a 400 naming the field.
    "taskcenter.core.text_input.TextInputMiddleware",
    "taskcenter.core.middleware.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "taskcenter.core.middleware.ContentSecurityPolicyMiddleware",
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
DATABASE_URL = _env.DATABASE_URL or f"sqlite:///{VAR_DIR / 'taskcenter.sqlite3'}"
try:
    _db = dj_database_url.parse(
        DATABASE_URL, conn_max_age=_env.DB_CONN_MAX_AGE, conn_health_checks=True
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
# failures per user name and address, and the higher second limit per address (for user
# names not known at that address), in each window.
AUTHENTICATION_BACKENDS = ["taskcenter.accounts.throttle.ThrottledModelBackend"]
TASKCENTER_SIGNIN_FAILURE_LIMIT = _env.TASKCENTER_SIGNIN_FAILURE_LIMIT
TASKCENTER_SIGNIN_ADDRESS_FAILURE_LIMIT = _env.TASKCENTER_SIGNIN_ADDRESS_FAILURE_LIMIT
TASKCENTER_SIGNIN_WINDOW_SECONDS = _env.TASKCENTER_SIGNIN_WINDOW_SECONDS
# A user name that signed in from an address within this many days is not held back by that
# address's limit (others' failures there); 0 turns this off.
TASKCENTER_SIGNIN_KNOWN_DAYS = _env.TASKCENTER_SIGNIN_KNOWN_DAYS
LOGIN_URL = "dashboard:login"
LOGIN_REDIRECT_URL = "dashboard:task_list"
LOGOUT_REDIRECT_URL = "dashboard:login"
# CSRF refusals as a clear page, or a flash message for htmx requests.
CSRF_FAILURE_VIEW = "taskcenter.dashboard.views.csrf_failure"

# --- Internationalisation ----------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = _env.TIME_ZONE
USE_I18N = True
USE_TZ = True

# --- Static files ------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(_env.STATIC_ROOT or VAR_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# --- Security (production turns these on through the environment) -------------------------
SECURE_HTTPS = _env.SECURE_HTTPS
SESSION_COOKIE_SECURE = SECURE_HTTPS
CSRF_COOKIE_SECURE = SECURE_HTTPS
SECURE_SSL_REDIRECT = SECURE_HTTPS
SECURE_HSTS_SECONDS = (
    (31536000 if SECURE_HTTPS else 0)
    if _env.SECURE_HSTS_SECONDS is None
    else _env.SECURE_HSTS_SECONDS
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HTTPS
SECURE_HSTS_PRELOAD = SECURE_HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if SECURE_HTTPS else None
SESSION_COOKIE_AGE = _env.SESSION_COOKIE_AGE
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Scripts, style sheets, fonts and requests to this site only; no inline script at all (the
# pages' scripts are files under static/); style attributes only (the progress bars' width),
# no <style> elements; no plugins, no framing, forms post here only.
TASKCENTER_CONTENT_SECURITY_POLICY = _env.TASKCENTER_CONTENT_SECURITY_POLICY or "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "style-src-attr 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# Request bodies are small JSON objects; a larger one is a 413 before it is parsed (the API's
# JSON parser also bounds nesting depth: taskcenter.api.parsers).
DATA_UPLOAD_MAX_MEMORY_SIZE = _env.DATA_UPLOAD_MAX_MEMORY_SIZE

# --- The web server `serve` runs (taskcenter.webserver, taskcenter.edge) ----------------------
# HENGSHI's waits (sync: true, block=true) end after this many seconds at most; each web
# process holds at most TASKCENTER_CONTEXT_WAITS_PER_USER of one user's waits at a time (more
# are answered at once with done: false).
TASKCENTER_CONTEXT_WAIT_SECONDS = _env.TASKCENTER_CONTEXT_WAIT_SECONDS
TASKCENTER_CONTEXT_WAITS_PER_USER = _env.TASKCENTER_CONTEXT_WAITS_PER_USER
# Open connections per web process, of which one client address may hold this many; request
# line and headers at most this many bytes (431 beyond), received within this many seconds.
TASKCENTER_WEB_CONNECTIONS = _env.TASKCENTER_WEB_CONNECTIONS
TASKCENTER_WEB_CONNECTIONS_PER_ADDRESS = _env.TASKCENTER_WEB_CONNECTIONS_PER_ADDRESS
TASKCENTER_WEB_HEADER_BYTES = _env.TASKCENTER_WEB_HEADER_BYTES
TASKCENTER_WEB_HEADER_SECONDS = _env.TASKCENTER_WEB_HEADER_SECONDS

# --- REST API (OCP v2 facade) ---------------------------------------------------------------
REST_FRAMEWORK = {
    # Basic first: its WWW-Authenticate makes an unauthenticated call a 401, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "taskcenter.api.authentication.CachedBasicAuthentication",
        "taskcenter.api.authentication.AccessKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",  # enforces CSRF
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's JSON bytes, written faster (why: taskcenter/api/renderers.py).
    "DEFAULT_RENDERER_CLASSES": ["taskcenter.api.renderers.FastJSONRenderer"],
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
        "TaskOperationEnum": "taskcenter.tasks.models.TaskRunMode",
        "SubtaskStatusEnum": "taskcenter.tasks.models.SubtaskStatus",
        "SubtaskOperationEnum": "taskcenter.tasks.models.SubtaskRunMode",
        "NodeTypeEnum": "taskcenter.tasks.models.NodeType",
        "ClusterTypeEnum": "taskcenter.tasks.models.Cluster.Type",
        "TenantModeEnum": "taskcenter.tasks.models.Tenant.Mode",
    },
}

# --- Celery ------------------------------------------------------------------------------
CELERY_BROKER_URL = _env.CELERY_BROKER_URL or f"filesystem://{VAR_DIR / 'broker'}"
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # Celery's filesystem transport takes its folder from transport options, not the URL;
    # "filesystem:///abs/dir" is our spelling so one variable says everything.
    _broker_dir = Path(CELERY_BROKER_URL.removeprefix("filesystem://") or VAR_DIR / "broker")
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
CELERY_TASK_DEFAULT_QUEUE = _env.TASKCENTER_QUEUE


# Which queue a subtask's attempts go to, by node type and cluster, first match wins
# (TASKCENTER_QUEUE_ROUTES, its syntax: taskcenter.core.env); the rest go to the default.
TASKCENTER_QUEUE_ROUTES = _env.TASKCENTER_QUEUE_ROUTES
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = _env.CELERY_WORKER_PREFETCH_MULTIPLIER
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
CELERY_DB_REUSE_MAX = _env.CELERY_DB_REUSE_MAX

# --- Metrics -----------------------------------------------------------------------------
# Collectors read at scrape time from the database (counts by status, queue lag, fires).
TASKCENTER_METRICS_COLLECTORS = [
    "taskcenter.engine.metrics.EngineCollector",
    "taskcenter.schedules.metrics.FiresCollector",
    "taskcenter.notifications.metrics.DeliveriesCollector",
]
# Scrapers send it as "Authorization: Bearer <token>". Unset, /metrics answers only
# connections from this machine (127.0.0.1, ::1).
TASKCENTER_METRICS_TOKEN = _env.TASKCENTER_METRICS_TOKEN

# --- Engine ------------------------------------------------------------------------------
# Seconds between heartbeats of a running attempt, and after how long without one the
# reaper decides the worker is gone. The cancel watcher polls more often than it beats.
TASKCENTER_HEARTBEAT_INTERVAL = _env.TASKCENTER_HEARTBEAT_INTERVAL
TASKCENTER_WORKER_LOST_AFTER = _env.TASKCENTER_WORKER_LOST_AFTER
TASKCENTER_CANCEL_POLL_INTERVAL = _env.TASKCENTER_CANCEL_POLL_INTERVAL
# A READY attempt not claimed for this long is enqueued again (a lost message); claiming is
# idempotent, so a duplicate is harmless.
TASKCENTER_REDISPATCH_AFTER = _env.TASKCENTER_REDISPATCH_AFTER
# A finish that makes many subtasks of one node type READY sends at most this many
# messages for them; the turns those start drain the rest (taskcenter.tasks.services.attempts).
TASKCENTER_FANOUT_MESSAGES = _env.TASKCENTER_FANOUT_MESSAGES
TASKCENTER_REAPER_INTERVAL = _env.TASKCENTER_REAPER_INTERVAL
# A worker whose finish the database does not take (an outage, a restart) keeps the
# outcome and tries again, with pauses growing to 5 s, for this many seconds; meanwhile
# it heartbeats the attempt so that the reaper leaves it alone. After that the attempt is
# left to the reaper ("worker lost").
TASKCENTER_FINISH_RETRY_FOR = _env.TASKCENTER_FINISH_RETRY_FOR
# On PostgreSQL a worker's own writes (claims, finishes, heartbeats, logs) do not wait for
# the WAL to reach the disk: a flush per subtask, under the task's row lock, was most of a
# fan-out's time. A database crash can then lose the last moments of engine bookkeeping,
# which the reaper repairs (a lost finish reads as a lost worker, a lost READY is sent
# again). Operators' actions from the pages and the API always wait for the disk.
TASKCENTER_WORKER_SYNCHRONOUS_COMMIT = _env.TASKCENTER_WORKER_SYNCHRONOUS_COMMIT
# Worker presence (taskcenter.engine.presence): each worker writes its row this often; a
# worker not seen for TASKCENTER_NO_WORKER_AFTER seconds is offline, and when none is
# online every page says so. Rows of workers gone longer than the last setting are pruned.
TASKCENTER_WORKER_BEAT_INTERVAL = _env.TASKCENTER_WORKER_BEAT_INTERVAL
TASKCENTER_NO_WORKER_AFTER = _env.TASKCENTER_NO_WORKER_AFTER
TASKCENTER_WORKER_PRESENCE_KEEP = _env.TASKCENTER_WORKER_PRESENCE_KEEP

# Retention (taskcenter.retention): days each kind of data is kept, 0 for ever; the
# scheduler prunes once a day at TASKCENTER_RETENTION_HOUR (UTC), in batches.
TASKCENTER_RETENTION_DAYS = {
    "tasks": _env.TASKCENTER_RETENTION_TASKS_DAYS,
    "fires": _env.TASKCENTER_RETENTION_FIRES_DAYS,
    "audit": _env.TASKCENTER_RETENTION_AUDIT_DAYS,
    "bulk": _env.TASKCENTER_RETENTION_BULK_DAYS,
    "sessions": _env.TASKCENTER_RETENTION_SESSIONS_DAYS,
    "signin": _env.TASKCENTER_RETENTION_SIGNIN_DAYS,
    "outbox": _env.TASKCENTER_RETENTION_OUTBOX_DAYS,
}
TASKCENTER_RETENTION_HOUR = _env.TASKCENTER_RETENTION_HOUR
TASKCENTER_RETENTION_BATCH = _env.TASKCENTER_RETENTION_BATCH
TASKCENTER_RETENTION_PAUSE = _env.TASKCENTER_RETENTION_PAUSE
TASKCENTER_RETENTION_IDLE_RATIO = _env.TASKCENTER_RETENTION_IDLE_RATIO
TASKCENTER_RETENTION_EXPORT_DIR = _env.TASKCENTER_RETENTION_EXPORT_DIR
TASKCENTER_LOG_CAP_BYTES = _env.TASKCENTER_LOG_CAP_BYTES

# --- Notifications (docs/notifications.md) ---------------------------------------------------
# The address the pages are reached at: the links in webhooks, mails and chat messages.
TASKCENTER_BASE_URL = _env.TASKCENTER_BASE_URL.rstrip("/")
# Seconds between passes of the outbox loop (run beside the scheduler's tick).
TASKCENTER_NOTIFY_INTERVAL = _env.TASKCENTER_NOTIFY_INTERVAL
# One send's timeout; how long a failing delivery is retried before it is dead.
TASKCENTER_NOTIFY_TIMEOUT = _env.TASKCENTER_NOTIFY_TIMEOUT
TASKCENTER_NOTIFY_RETRY_FOR = _env.TASKCENTER_NOTIFY_RETRY_FOR
# Seconds before each retry (the last one repeats until RETRY_FOR has passed): the first
# ones soon, so a receiver that blinked gets the message within a minute.
TASKCENTER_NOTIFY_RETRY_DELAYS = tuple(_env.TASKCENTER_NOTIFY_RETRY_DELAYS)
# A claimed delivery is left to its sender for 3 timeouts and this many seconds more; a
# scheduler killed mid-send leaves it to be sent again once that lease is over.
TASKCENTER_NOTIFY_LEASE_GRACE = _env.TASKCENTER_NOTIFY_LEASE_GRACE
# More than LIMIT events of one rule within WINDOW seconds are folded into one digest.
TASKCENTER_NOTIFY_FLOOD_LIMIT = _env.TASKCENTER_NOTIFY_FLOOD_LIMIT
TASKCENTER_NOTIFY_FLOOD_WINDOW = _env.TASKCENTER_NOTIFY_FLOOD_WINDOW
# task.waiting: a failed task left for this long; queue.lagging: a READY attempt this old.
TASKCENTER_NOTIFY_WAITING_AFTER = _env.TASKCENTER_NOTIFY_WAITING_AFTER
TASKCENTER_NOTIFY_QUEUE_LAG = _env.TASKCENTER_NOTIFY_QUEUE_LAG
# Events and deliveries older than this many days are pruned (with the bell's items).
TASKCENTER_NOTIFY_KEEP_DAYS = _env.TASKCENTER_NOTIFY_KEEP_DAYS
# Mail goes through Django's SMTP backend with these.
EMAIL_HOST = _env.EMAIL_HOST
EMAIL_PORT = _env.EMAIL_PORT
EMAIL_HOST_USER = _env.EMAIL_HOST_USER
EMAIL_HOST_PASSWORD = _env.EMAIL_HOST_PASSWORD
EMAIL_USE_TLS = _env.EMAIL_USE_TLS
DEFAULT_FROM_EMAIL = _env.DEFAULT_FROM_EMAIL
TASKCENTER_DEMO_PASSWORD = _env.TASKCENTER_DEMO_PASSWORD
# A task list count slower than 50 ms (a substring filter on a million tasks) is reused for
# this many seconds by later pages of the same list; 0 always counts.
TASKCENTER_SLOW_COUNT_CACHE_SECONDS = _env.TASKCENTER_SLOW_COUNT_CACHE_SECONDS

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
    "root": {"handlers": ["console"], "level": _env.LOG_LEVEL.upper()},
}
