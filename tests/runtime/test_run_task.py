"""run_task, and the processes a seeded demo reaches without a variable (serve:
test_serve.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from taskcenter.tasks.models import TaskInstance
from tests.conftest import _database_url

ROOT = Path(__file__).resolve().parent.parent.parent


def run(*args, **options) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


# --- run_task ------------------------------------------------------------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_run_task_wait_on_reinstall_agent_exits_0_when_successful(worker):
    out, _ = run("run_task", "Reinstall OCP agent", "--wait", "--timeout", "90")

    task = TaskInstance.objects.get(pk=int(out.splitlines()[0]))
    assert task.status == "SUCCESSFUL"
    assert "SUCCESSFUL" in out.splitlines()[-1]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_run_task_wait_on_failing_migration_exits_1_with_the_failed_log(worker):
    with pytest.raises(SystemExit) as exited:
        run("run_task", "Migrate tenant", "--wait", "--timeout", "90", "--interval", "0.2")

    assert exited.value.code == 1
    task = TaskInstance.objects.get()
    assert task.status == "FAILED"
    assert task.subtasks.get(status="FAILED").name == "Copy tenant data"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_run_task_failure_prints_failed_subtask_and_log_tail(worker):
    out, err = StringIO(), StringIO()
    with pytest.raises(SystemExit):
        call_command(
            "run_task",
            "Migrate tenant",
            "--wait",
            "--param",
            "fail_step=snapshot",
            stdout=out,
            stderr=err,
        )

    assert "FAILED" in err.getvalue()
    assert "'Take a snapshot'" in err.getvalue()
    assert "snapshot failed on purpose" in err.getvalue()


@pytest.mark.django_db
def test_run_task_timeout_exits_2():
    # In a non-transactional test nothing is committed, so nothing is ever enqueued.
    with pytest.raises(SystemExit) as exited:
        run("run_task", "Reinstall OCP agent", "--wait", "--timeout", "0.3", "--interval", "0.1")
    assert exited.value.code == 2


@pytest.mark.django_db
def test_run_task_parses_params_as_json_or_strings_and_sets_target():
    run("seed_demo", tasks=0)
    out, _ = run(
        "run_task",
        "Scale out tenant units",
        "--param",
        "units=3",
        "--param",
        "fail_step=unit1",
        "--tenant",
        "billing",
        "--cluster",
        "prod-east",
        "--creator",
        "operator",
    )

    task = TaskInstance.objects.get(pk=int(out.strip()))
    assert task.parameters == {"units": 3, "fail_step": "unit1", "fail_times": 1}
    assert task.subtask_total == 5
    assert (task.cluster.name, task.tenant.name, task.creator.username) == (
        "prod-east",
        "billing",
        "operator",
    )
    assert task.audit_entries.get(action="START").trace_id not in ("", "-")


@pytest.mark.django_db
def test_run_task_unknown_definition_lists_the_available_ones_and_creates_nothing():
    with pytest.raises(CommandError) as error:
        run("run_task", "Reinstal OCP agent")

    message = str(error.value)
    assert "There is no task definition named 'Reinstal OCP agent'" in message
    assert "'Reinstall OCP agent'" in message and "'Migrate tenant'" in message
    assert not TaskInstance.objects.exists()


@pytest.mark.django_db
def test_run_task_unknown_param_lists_the_known_ones_and_creates_nothing():
    with pytest.raises(CommandError) as error:
        run("run_task", "Scale out tenant units", "--param", "unit=3")

    message = str(error.value)
    assert "'unit' is not a parameter of this job" in message
    assert "(known: fail_step, fail_times, units)" in message
    assert not TaskInstance.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, expected",
    [
        (["--param", "units"], "--param expects KEY=VALUE"),
        (["--cluster", "nowhere"], "There is no cluster named 'nowhere'"),
        (["--tenant", "trade"], "exists in several clusters"),
        (["--creator", "nobody"], "There is no user named 'nobody'"),
    ],
)
def test_run_task_bad_input_is_refused_before_anything_is_created(args, expected):
    run("seed_demo", tasks=0)
    with pytest.raises(CommandError, match=expected):
        run("run_task", "Scale out tenant units", *args)
    assert not TaskInstance.objects.exists()


@pytest.mark.django_db
def test_run_task_unknown_definition_exits_non_zero_from_the_shell():
    proc = subprocess.run(
        [sys.executable, "manage.py", "run_task", "No such thing"],
        cwd=ROOT,
        env=dict(os.environ, DATABASE_URL=_database_url()),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "There is no task definition named 'No such thing'" in proc.stderr
    assert proc.stdout == ""


# --- Isolated processes (here and in test_serve.py) ------------------------------------------------


def _isolated_env(var_dir: Path) -> dict[str, str]:
    """A fresh SQLite database and filesystem broker under var_dir."""
    env = dict(os.environ, TASKCENTER_VAR_DIR=str(var_dir), PYTHONUNBUFFERED="1")
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "STATIC_ROOT", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    return env


# --- The demo app --------------------------------------------------------------------------------


@pytest.mark.embedded
def test_a_seeded_demo_is_usable_from_processes_started_without_the_variable(tmp_path):
    """docs/running-tasks.md: after `serve --demo` (or seed_demo), `run_task ... --wait` in a
    second terminal works with no variable set, and so does a worker; before any seeding the
    demo is off."""
    env = _isolated_env(tmp_path / "var")
    for name in ("TASKCENTER_DEMO", "DJANGO_SETTINGS_MODULE"):  # as in a fresh terminal
        env.pop(name, None)

    def manage(*args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=dict(env, **extra),
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert manage("migrate").returncode == 0
    before = manage("run_task", "Reinstall OCP agent")
    assert before.returncode != 0
    assert "There is no task definition named 'Reinstall OCP agent'" in before.stderr
    seeded = manage("seed_demo", "--tasks", "0", TASKCENTER_DEMO="true")
    assert seeded.returncode == 0, seeded.stderr

    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "taskcenter", "worker", "-l", "info", "-c", "1"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while b" ready." not in log_path.read_bytes():
            assert worker.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        waited = manage("run_task", "Reinstall OCP agent", "--wait", "--timeout", "90")
        assert waited.returncode == 0, waited.stdout + waited.stderr + log_path.read_text()
        assert "SUCCESSFUL" in waited.stdout.splitlines()[-1]
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)


def test_the_served_address_is_the_configured_one_else_the_one_serve_recorded(
    settings, tmp_path, monkeypatch
):
    from taskcenter.runtime import address

    settings.VAR_DIR = tmp_path
    monkeypatch.delenv("TASKCENTER_BASE_URL", raising=False)
    assert address.served_base_url() == "http://127.0.0.1:8000"
    address.record("http://127.0.0.1:8123")
    assert address.on_this_server("/healthz") == "http://127.0.0.1:8123/healthz"
    assert address.on_this_server("https://example.org/up") == "https://example.org/up"
    monkeypatch.setenv("TASKCENTER_BASE_URL", "http://tc.internal:9000/")
    assert address.served_base_url() == "http://tc.internal:9000"
    monkeypatch.delenv("TASKCENTER_BASE_URL")
    address.forget("http://127.0.0.1:9999")  # another serve's: kept
    assert address.served_base_url() == "http://127.0.0.1:8123"
    address.forget("http://127.0.0.1:8123")
    assert address.served_base_url() == "http://127.0.0.1:8000"
