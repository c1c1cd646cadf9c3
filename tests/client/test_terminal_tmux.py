"""The command in a real terminal (tmux: send-keys, capture-pane) against the test's live
server: `tasks logs --follow` follows a live log to its end with its colours and without
the program's other escape sequences, `tasks wait` shows the subtasks' progress live until
the task ends, and `jobs run --wait` does so for a job run by a real worker."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from taskcenter.accounts import services as account_services
from taskcenter.tasks import selectors
from taskcenter.tasks.models import TaskDefinition
from taskcenter.tasks.services import attempt_finish, definition_create_from_data, log_append
from tests.conftest import wait_for
from tests.factories import chain_task

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which("tmux"), reason="tmux is not installed"),
]
COMMAND = str(Path(sys.executable).parent / "taskcenter")


def ended(screen: str) -> bool:
    """The command has ended: its exit status is on the screen (the typed line, which
    reads "echo EXIT=$?", may still be there before `clear` runs)."""
    return re.search(r"EXIT=\d", screen) is not None


@pytest.fixture
def terminal(live_server, operator, tmp_path):
    key, secret = account_services.access_key_create(owner=operator, actor=operator)
    socket = f"tc-cli-test-{os.getpid()}"
    env = dict(
        os.environ,
        TASKCENTER_URL=live_server.url,
        TASKCENTER_ACCESS_KEY_ID=key.key_id,
        TASKCENTER_ACCESS_KEY_SECRET=secret,
        TASKCENTER_CONFIG=str(tmp_path / "config.json"),
        TASKCENTER_POLL_SECONDS="0.05",
        TERM="xterm-256color",
        PS1="$ ",
    )
    env.pop("DJANGO_SETTINGS_MODULE", None)

    def tmux(*args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", socket, *args], env=env, capture_output=True, text=True, check=True
        ).stdout

    tmux("new-session", "-d", "-s", "t", "-x", "150", "-y", "40", "sh")

    def run(command: str) -> None:
        tmux("send-keys", "-t", "t", "clear; " + command + "; echo EXIT=$?", "Enter")

    run.capture = lambda: tmux("capture-pane", "-p", "-t", "t")  # type: ignore[attr-defined]
    run.capture_escapes = lambda: tmux("capture-pane", "-p", "-e", "-t", "t")  # type: ignore[attr-defined]
    run.title = lambda: tmux("display-message", "-p", "-t", "t", "#{pane_title}")  # type: ignore[attr-defined]
    yield run
    subprocess.run(["tmux", "-L", socket, "kill-server"], env=env, check=False)


def test_logs_follow_a_live_log_to_its_end_in_a_terminal(terminal, no_broker):
    task = chain_task(["SUCCESSFUL", "RUNNING"], step_names=["prepare", "copy"])
    copy = task.subtasks.get(name="copy")
    log_append(
        subtask_id=copy.pk,
        attempt=copy.attempt,
        data=b"\x1b[32mcopying\x1b[0m\x1b]0;evil title\x07\x1b[2J rows\n",
    )
    terminal(f"{COMMAND} tasks logs {task.pk} {copy.pk} --follow")
    wait_for(lambda: "copying rows" in terminal.capture())
    assert not ended(terminal.capture())  # still following
    log_append(subtask_id=copy.pk, attempt=copy.attempt, data=b"half way\n")
    wait_for(lambda: "half way" in terminal.capture())
    attempt_finish(subtask_id=copy.pk, attempt=copy.attempt, succeeded=True, log=b"all copied\n")
    wait_for(lambda: "EXIT=0" in terminal.capture())
    screen = terminal.capture()
    assert screen.index("copying rows") < screen.index("half way") < screen.index("all copied")
    assert "\x1b[32mcopying" in terminal.capture_escapes()  # the colour kept on a TTY
    assert "evil" not in terminal.title() and "evil" not in screen


def test_wait_shows_the_subtasks_live_until_the_task_ends(terminal, no_broker):
    task = chain_task(["SUCCESSFUL", "RUNNING"], step_names=["prepare", "copy"])
    copy = task.subtasks.get(name="copy")
    terminal(f"{COMMAND} tasks wait {task.pk}")
    wait_for(lambda: "copy  RUNNING" in terminal.capture())
    assert "prepare  SUCCESSFUL" in terminal.capture() and not ended(terminal.capture())
    attempt_finish(subtask_id=copy.pk, attempt=copy.attempt, succeeded=True)
    wait_for(lambda: "EXIT=0" in terminal.capture())
    assert "copy  SUCCESSFUL" in terminal.capture()


SLOW_JOB = "Copy slowly"


def slow_job() -> str:
    """A stored job whose middle step takes `seconds` and ends with `exit_code`: long
    enough for the terminal to be read while it runs, on the session's worker."""
    if not TaskDefinition.objects.filter(name=SLOW_JOB).exists():
        shell = "SHELL_TASK"
        definition_create_from_data(
            name=SLOW_JOB,
            spec={
                "parameters": [
                    {"name": "seconds", "type": "number", "default": 3, "min": 0, "max": 60},
                    {"name": "exit_code", "type": "integer", "default": 0, "min": 0, "max": 9},
                ],
                "subtasks": [
                    {"key": "prepare", "kind": shell, "action": {"command": "sleep 0.5"}},
                    {
                        "key": "copy",
                        "kind": shell,
                        "upstreams": ["prepare"],
                        "action": {
                            "command": 'sleep "$TC_PARAM_SECONDS"; exit "$TC_PARAM_EXIT_CODE"'
                        },
                    },
                    {
                        "key": "verify",
                        "kind": shell,
                        "upstreams": ["copy"],
                        "action": {"command": "true"},
                    },
                ],
            },
        )
    return SLOW_JOB


@pytest.mark.worker
def test_jobs_run_wait_shows_the_progress_live_and_exits_0_when_successful(terminal, worker):
    terminal(f'{COMMAND} jobs run "{slow_job()}" -p seconds=4 --wait')
    wait_for(lambda: "copy  RUNNING" in terminal.capture(), timeout=60)
    running = terminal.capture()
    assert "prepare  SUCCESSFUL" in running and "verify  PENDING" in running, running
    assert "RUNNING" in running.splitlines()[1] and "1/3 done" in running, running
    assert not ended(running)  # still waiting, on the same screen
    wait_for(lambda: ended(terminal.capture()), timeout=60)
    screen = terminal.capture()
    assert "EXIT=0" in screen, screen
    task_id = int(screen.split("Started task ", 1)[1].split(";", 1)[0])
    assert f"#{task_id} {SLOW_JOB} SUCCESSFUL" in screen and "3/3 done" in screen
    assert "copy  SUCCESSFUL" in screen and "verify  SUCCESSFUL" in screen
    assert screen.count("prepare") == 1  # one tree, redrawn in place
    assert selectors.task_get(task_id=task_id).status == "SUCCESSFUL"


@pytest.mark.worker
def test_jobs_run_wait_exits_1_when_the_job_fails(terminal, worker):
    terminal(f'{COMMAND} jobs run "{slow_job()}" -p seconds=1 -p exit_code=3 --wait')
    wait_for(lambda: ended(terminal.capture()), timeout=60)
    screen = terminal.capture()
    assert "EXIT=1" in screen, screen
    assert "copy  FAILED" in screen and "verify  PENDING" in screen and "1/3 done" in screen
