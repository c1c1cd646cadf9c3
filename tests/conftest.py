"""Shared fixtures: personas, and a real Celery worker process on the test database.

The worker is a separate `celery worker` process talking to the same broker and the same
test database as the tests (SQLite file or PostgreSQL), so the tests that use it exercise
the broker, the database and the worker for real. Tests that use it must commit their
data: mark them `django_db(transaction=True)`.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings

from taskcenter.accounts import roles
from tests.factories import PASSWORD, make_cluster, make_user

ROOT = Path(__file__).resolve().parent.parent

# Engine timings used by the worker process and, through the `fast_engine` fixture, by the
# test process, so that lost workers and cancels are seen in seconds.
FAST_ENGINE = {
    "TASKCENTER_HEARTBEAT_INTERVAL": "0.5",
    "TASKCENTER_WORKER_LOST_AFTER": "3",
    "TASKCENTER_CANCEL_POLL_INTERVAL": "0.2",
    "TASKCENTER_WORKER_BEAT_INTERVAL": "0.5",
}


# Each pytest session gets its own test database and Celery queue, so that several runs on
# one machine (or one broker) never consume each other's messages or rows; so does each
# pytest-xdist process of a session (gw0, gw1, ...), with its own worker for `worker` tests.
RUN_ID = "-".join(
    part
    for part in (
        os.environ.get("TASKCENTER_TEST_RUN_ID") or str(os.getpid()),
        os.environ.get("PYTEST_XDIST_WORKER"),
    )
    if part
)
TEST_QUEUE = f"taskcenter-test-{RUN_ID}"


# The longest modules, longest first. Under pytest-xdist they start first, so that the
# processes end together instead of one running the drills long after the other is done.
SLOWEST_MODULES = [
    "tests/engine/test_drills.py",
    "tests/runtime/test_serve.py",
    "tests/dashboard/test_browser.py",
    "tests/runtime/test_run_task.py",
    "tests/engine/test_fleet.py",
    "tests/engine/test_worker.py",
    "tests/schedules/test_browser.py",
    "tests/api/test_schema.py",
    "tests/dashboard/test_live_browser.py",
    "tests/dashboard/test_browser_fleet.py",
    "tests/engine/test_presence.py",
]


# Modules that touch neither the stage's database nor its broker: pure code, or processes
# started on their own SQLite database and filesystem broker (`serve`, a fresh clone's
# settings). They are marked `embedded`, and tests/run.sh runs them once, in the SQLite
# stage: on PostgreSQL they would run the very same code again. A single test of another
# module can carry the mark itself.
EMBEDDED_MODULES = {
    "tests/core/test_graph.py",
    "tests/core/test_settings.py",
    "tests/core/test_terminal.py",
    "tests/dashboard/test_dag.py",
    "tests/runtime/test_serve.py",
    "tests/schedules/test_cron.py",
    "tests/schedules/test_cron_next.py",
    "tests/schedules/test_describe.py",
    "tests/tasks/test_parameters.py",
}
# Fixtures through which a test reaches the stage's database.
DATABASE_FIXTURES = {"db", "transactional_db", "django_db_setup", "live_server"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.partition("::")[0] in EMBEDDED_MODULES:
            item.add_marker(pytest.mark.embedded)
        if item.get_closest_marker("embedded") and (
            item.get_closest_marker("django_db")
            or DATABASE_FIXTURES & set(getattr(item, "fixturenames", ()))
        ):
            raise pytest.UsageError(f"{item.nodeid} is marked embedded but uses the database")
    if not getattr(config.option, "numprocesses", None):
        return
    rank = {module: index for index, module in enumerate(SLOWEST_MODULES)}
    items.sort(key=lambda item: rank.get(item.nodeid.partition("::")[0], len(rank)))


@pytest.fixture(scope="session")
def django_db_modify_db_settings():
    for db in settings.DATABASES.values():
        test = db.setdefault("TEST", {})
        name = test.get("NAME") or f"test_{db['NAME']}"
        if name.endswith(".sqlite3"):
            test["NAME"] = name.replace(".sqlite3", f"-{RUN_ID}.sqlite3")
        else:
            test["NAME"] = f"{name}_{RUN_ID}"


@pytest.fixture(scope="session", autouse=True)
def flush_by_delete_on_postgresql():
    """Empty the tables after a transactional test with DELETE rather than TRUNCATE.

    Django's flush truncates every table; on PostgreSQL that makes new files for each of
    them, about 1.5 s a test, when the few rows a test writes go in milliseconds. The
    end is the same: every table empty, sequences left as they are (TRUNCATE without
    RESTART IDENTITY), foreign keys checked at commit (Django makes them deferrable).
    One trigger fires on DELETE: the tasks' delete writes TaskCount's changes, so that
    table is emptied again last. Unlike TRUNCATE, a DELETE does not hold off other
    writers: every table is emptied twice (below). A flush that resets sequences keeps
    TRUNCATE."""
    from django.db import OperationalError
    from django.db.backends.postgresql.operations import DatabaseOperations
    from psycopg.errors import DeadlockDetected

    truncate = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences or allow_cascade or not tables:
            return truncate(
                self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
            )
        delete = style.SQL_KEYWORD("DELETE FROM")
        last = [table for table in tables if table == "tasks_taskcount"]
        # Twice: a process the test started may still write a row (a log chunk of an
        # attempt that was ending) between the first pass and the commit, where the
        # deferred foreign keys are checked; the second pass takes it away too.
        return ["SET CONSTRAINTS ALL DEFERRED"] + [
            f"{delete} {style.SQL_FIELD(self.quote_name(table))};"
            for table in [*tables, *tables, *last]
        ]

    execute = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        # That process's transaction (a worker's heartbeat, then its subtask's row) and the
        # flush's (every table in turn) can lock the same rows in opposite orders, and
        # PostgreSQL then aborts one of them. The flush is one transaction: run it again.
        for attempt in range(5):
            try:
                return execute(self, sql_list)
            except OperationalError as exc:
                if attempt == 4 or not isinstance(exc.__cause__, DeadlockDetected):
                    raise

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatabaseOperations, "sql_flush", sql_flush)
        patch.setattr(DatabaseOperations, "execute_sql_flush", execute_sql_flush)
        yield


@pytest.fixture(scope="session", autouse=True)
def isolated_celery_queue():
    from taskcenter.celery import app

    app.conf.task_default_queue = TEST_QUEUE
    yield TEST_QUEUE


@pytest.fixture(autouse=True)
def registered_definitions_restored():
    """A definition a test registers (a broken one, a routing one) is forgotten after it:
    under pytest-xdist the next test in the same process may list every registered
    definition (seed_demo, the plan form's jobs) and must not meet it."""
    from taskcenter.tasks import definitions

    before = dict(definitions._DEFINITIONS)
    yield
    definitions._DEFINITIONS.clear()
    definitions._DEFINITIONS.update(before)


@pytest.fixture(autouse=True)
def fresh_cache():
    """Each test starts with an empty cache: ids repeat between tests (a flushed database),
    so an answer cached about one test's user 5 must not reach the next test's user 5.
    The log poll's remembered sessions are forgotten for the same reason."""
    from django.core.cache import cache

    from taskcenter.dashboard import log_poll

    cache.clear()
    log_poll.forget_all()


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.1):
    """Poll until predicate() is truthy; return its value or fail with the last one."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value:
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s (last value: {value!r})")
        time.sleep(interval)
        value = predicate()
    return value


def _database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}{port}/{db['NAME']}"


def end_process_group(proc: subprocess.Popen, first: int, grace: float = 5.0) -> None:
    """Send `first` to the process group, then SIGKILL if it is still there after `grace`."""
    try:
        os.killpg(proc.pid, first)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


class WorkerProcess:
    """A `celery worker` subprocess in its own process group."""

    def __init__(self, log_path: Path, concurrency: int = 4, db_blocker=None):
        self.log_path = log_path
        self.concurrency = concurrency
        self.db_blocker = db_blocker  # for a stop outside a test (the session's end)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = dict(os.environ)
        env.update(FAST_ENGINE)
        env["DATABASE_URL"] = _database_url()
        env["TASKCENTER_QUEUE"] = TEST_QUEUE
        env["PYTHONUNBUFFERED"] = "1"
        self.log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        start_mark = self.log_path.stat().st_size
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "taskcenter",
                "worker",
                "-l",
                "info",
                "-c",
                str(self.concurrency),
                "-P",
                "prefork",
                "-n",
                f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(
            lambda: b" ready." in self.log_path.read_bytes()[start_mark:] or self._died(),
            timeout=60,
        )
        if self._died():
            pytest.fail(f"celery worker exited at start; see {self.log_path}")

    def _died(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), as a crash would."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self, sig: int = signal.SIGQUIT) -> None:
        """A shutdown (cold by default, warm with SIGTERM) that ends with the worker's stop
        mark written.

        The signal goes to the main process only, as `kill <pid>` would: sent to the whole
        group, it also ends the pool's processes under the main one, whose pool then
        stalls its shutdown for tens of seconds. The mark is the worker's last write
        (taskcenter.engine.presence) and comes after the consumer loop and the pool have
        stopped: seconds after the signal, more on a loaded machine. A fixed grace before
        SIGKILL could come first and leave the worker "online" for the next test, so the
        wait is on the mark (or on the process's end, for a worker that could not write
        it); SIGKILL is only for what outlives both.
        """
        if self.proc is None:
            return
        from taskcenter.engine import presence

        proc, pid = self.proc, self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        wait_for(
            lambda: proc.poll() is not None or self._marked_stopped(pid),
            timeout=presence.STOP_MARK_WAIT + 30,
            interval=0.05,
        )
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)  # the mark is written on the way out
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)  # whatever outlived the main process
        proc.wait(timeout=10)
        self.proc = None
        self.log_file.close()

    def _marked_stopped(self, pid: int) -> bool:
        from django.db import DatabaseError, connection

        from taskcenter.engine.models import WorkerPresence

        access = self.db_blocker.unblock() if self.db_blocker else contextlib.nullcontext()
        with access:
            try:
                return WorkerPresence.objects.filter(pid=pid, stopped_at__isnull=False).exists()
            except DatabaseError:
                # A connection an outage test ended ("terminating connection due to
                # administrator command"): drop it, and ask again on a new one.
                connection.close_if_unusable_or_obsolete()
                return False

    def restart(self) -> None:
        self.stop()
        self.start()


_session_workers: list[WorkerProcess] = []  # the session's worker, once started


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """One real worker for the session (restartable by tests that kill it)."""
    from taskcenter.celery import app

    with app.connection_for_write() as conn:  # drop messages left by an earlier run
        for queue in (TEST_QUEUE,):
            try:
                conn.default_channel.queue_purge(queue)
            except Exception:  # noqa: BLE001 - the queue may not exist yet
                pass
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    worker = WorkerProcess(log_path, db_blocker=django_db_blocker)
    worker.start()
    _session_workers.append(worker)
    yield worker
    worker.stop()


@pytest.fixture
def no_worker_process():
    """No worker of this session runs, and no presence row is left: for tests that write
    presence rows by hand. Tests run in any order (pytest-xdist), so the session's
    worker may have been started by an earlier test in this process; it would beat a
    row of its own beside theirs. (The `worker` fixture starts it again.)"""
    from taskcenter.engine.models import FinishedMinute, WorkerPresence

    for worker in _session_workers:
        worker.stop()
    WorkerPresence.objects.all().delete()
    FinishedMinute.objects.all().delete()


@pytest.fixture
def worker(celery_worker, transactional_db):
    if celery_worker.proc is None:
        celery_worker.start()
    return celery_worker


@pytest.fixture
def fast_engine(settings):
    for name, value in FAST_ENGINE.items():
        setattr(settings, name, float(value))
    return settings


# --- Personas --------------------------------------------------------------------------------


def client_for(user):
    """A test client signed in as `user` (anonymous for None)."""
    from django.test import Client

    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def basic_client(username: str | None, password: str = PASSWORD, **defaults):
    """A test client that sends HTTP Basic credentials with every request."""
    import base64

    from django.test import Client

    client = Client(**defaults)
    if username:
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        client.defaults["HTTP_AUTHORIZATION"] = f"Basic {token}"
    return client


@pytest.fixture
def viewer(db):
    return make_user("viewer", roles.VIEWER)


@pytest.fixture
def operator(db):
    return make_user("operator", roles.MANAGER)


@pytest.fixture
def admin(db):
    return make_user("admin", roles.ADMIN)


@pytest.fixture
def clusters(db):
    """Two clusters: the scoped personas are granted alpha."""

    return (
        make_cluster("alpha", 1),
        make_cluster("bravo", 2),
    )


@pytest.fixture
def no_broker(monkeypatch):
    """Record the attempts that operations enqueue instead of sending them (run them
    in-process when the eager_engine fixture asks for it)."""
    from taskcenter.celery import app
    from taskcenter.engine import dispatch

    sent: list[tuple[int, int]] = []
    real_send = dispatch._send

    def send(subtask_id: int, attempt: int, producer=None) -> None:
        if app.conf.task_always_eager:
            real_send(subtask_id, attempt)
        else:
            sent.append((subtask_id, attempt))

    monkeypatch.setattr(dispatch, "_send", send)
    return sent


@pytest.fixture
def eager_engine(transactional_db):
    """Run each enqueued attempt in-process, right after the enqueuing commit.

    For tests of the state machine; the broker and worker are covered by `worker` tests.
    """
    from taskcenter.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


# --- Browser (headless Chromium through Playwright) ------------------------------------------

# Debian's chromium (tests/run.sh installs it); Playwright's own browser download is not used.
CHROMIUM = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the tests' own ORM calls
    # are still synchronous, so Django's async guard is lifted for the browser tests only.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        driver = sync_playwright().start()
        chromium = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
        driver.stop()


def sign_in(
    page, live_server, username: str = "operator", password: str = PASSWORD, next_url="/tasks/"
) -> None:
    """Sign in through the login form and wait for the page it leads to."""
    from urllib.parse import urlencode

    page.goto(f"{live_server.url}/login/?{urlencode({'next': next_url})}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    path, query = next_url.split("?")[0], "?" in next_url
    page.wait_for_url(re.compile(re.escape(path) + (r"(\?.*)?$" if query else "$")))


def _is_htmx_error(message) -> bool:
    # oobErrorNoTarget: a live poll answered while an operation's response was replacing
    # the regions it updates; the next poll (1.5 s later) updates the new ones. Benign.
    return (
        message.type == "error"
        and "htmx" in message.text
        and "oobErrorNoTarget" not in message.text
    )


@pytest.fixture
def page(browser):
    """A fresh browser tab; the test fails if the page raised a script or htmx error."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("console", lambda msg: errors.append(msg.text) if _is_htmx_error(msg) else None)
    yield tab
    context.close()
    assert not errors, f"errors in the page: {errors}"
