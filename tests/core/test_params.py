"""The one parameter parser is strict, and every face (API, pages, the terminal) stays
safe on hostile input: ASCII ids in range, dates in range, bounded texts, same-origin
redirects, control characters shown harmlessly. Each case answered 500 or was accepted
leniently before."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.http import QueryDict

from taskcenter.core import params
from taskcenter.core.errors import InvalidParameter
from taskcenter.runtime.management.commands.run_task import terminal_safe
from tests.conftest import client_for
from tests.factories import failed_task, running_task


@pytest.mark.parametrize("raw", [" 302", "302 ", "\t5", "+5", "1e3", "１", "٣", "1_000", "²"])
def test_ids_and_integers_are_ascii_digits_and_nothing_else(raw):
    with pytest.raises(InvalidParameter) as refused:
        params.identifier(raw, "taskInstanceId")
    assert refused.value.parameter == "taskInstanceId"
    with pytest.raises(InvalidParameter):
        params.integer_value(raw, "offset")


def test_ids_in_range():
    assert params.identifier("302", "id") == 302
    for raw in ["0", "9223372036854775808", "99999999999999999999999"]:
        with pytest.raises(InvalidParameter):
            params.identifier(raw, "id")


@pytest.mark.parametrize("raw", ["99999999999999999999999", "9223372036854775808", "1,-2", "１"])
def test_id_lists_are_ids_in_range(raw):
    with pytest.raises(InvalidParameter) as refused:
        params.integer_list(QueryDict(f"ids={raw}"), "ids", limit=10)
    assert refused.value.parameter == "ids"


def test_id_lists_still_read_commas_and_spaces():
    assert params.integer_list(QueryDict("ids=1, 2,,3"), "ids", limit=2) == [1, 2]


@pytest.mark.parametrize(
    "raw", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2024-13-01", "soon"]
)
def test_date_times_out_of_range_are_refused(raw):
    with pytest.raises(InvalidParameter) as refused:
        params.date_time(raw, "createdFrom")
    assert refused.value.parameter == "createdFrom"


def test_long_texts_are_refused():
    assert params.text("x" * params.TEXT_MAX, "name")
    with pytest.raises(InvalidParameter, match="60000 characters"):
        params.text("x" * 60_000, "name")


# --- The pages ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, parameter",
    [
        ("/audit/?task=1e30", "task"),
        ("/tasks/live/?shown=99999999999999999999999", "shown"),
        ("/tasks/?createdFrom=0001-01-01T00:00:00%2B14:00", "createdFrom"),
        ("/tasks/?name=" + "x" * 60_000, "name"),
    ],
)
def test_pages_answer_400_naming_the_parameter(db, operator, url, parameter):
    failed_task()
    response = client_for(operator).get(url)
    assert response.status_code == 400
    assert parameter in response.content.decode()


def test_the_confirm_dialog_redirects_only_within_the_site(db, operator):
    task = running_task()  # retry is not possible: the refusal goes back where the user was
    client = client_for(operator)
    url = f"/tasks/{task.pk}/confirm/?op=retry"
    away = client.get(url, HTTP_REFERER="https://evil.example/phish")
    assert away.status_code == 302 and away["Location"] == "/tasks/"
    home = client.get(url, HTTP_REFERER=f"http://testserver/tasks/{task.pk}/")
    assert home.status_code == 302 and home["Location"] == f"http://testserver/tasks/{task.pk}/"
    relative = client.get(url, HTTP_REFERER="//evil.example/")
    assert relative["Location"] == "/tasks/"


def test_escape_sequences_in_logs_are_shown_harmlessly_on_the_page(db, operator):
    from taskcenter.tasks import services
    from tests.factories import first_subtask_with

    task = running_task()
    subtask = first_subtask_with(task, "RUNNING")
    services.log_append(
        subtask_id=subtask.pk,
        attempt=subtask.attempt,
        data=b"\x1b]0;owned\x07\x1b[31mred <b>x</b><script>alert(1)</script>\n",
    )
    response = client_for(operator).get(
        f"/tasks/{task.pk}/subtasks/{subtask.pk}/log/?offset=0", HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert response.status_code == 200 and "red &lt;b&gt;x&lt;/b&gt;&lt;script&gt;" in html


# --- The terminal ------------------------------------------------------------------------


def test_run_task_strips_escape_sequences_and_shows_control_characters_as_escapes():
    line = "\x1b]52;c;ZXZpbA==\x07\x1b[2J\x1b[31mred\x1b[0m\tdone\x07\r"
    shown = terminal_safe(line)
    assert not any(ord(c) < 32 and c != "\t" or 0x7F <= ord(c) <= 0x9F for c in shown)
    assert shown == "red\tdone\\x07\\x0d"


# --- Deployment ----------------------------------------------------------------------------


def _check_deploy(tmp_path, **extra: str) -> subprocess.CompletedProcess:
    # Production's environment, not the test run's: the browser tests set
    # DJANGO_ALLOW_ASYNC_UNSAFE in this process, which no deployment does.
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DJANGO_SETTINGS_MODULE": "taskcenter.settings",
        "DEBUG": "false",
        "SECRET_KEY": "k" * 20 + "-production-secret-0123456789abcdefghijklmnop",
        "TASKCENTER_VAR_DIR": str(tmp_path),
        **extra,
    }
    if "SECURE_HTTPS" not in extra:
        env.pop("SECURE_HTTPS", None)
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_under_production_settings(tmp_path):
    done = _check_deploy(tmp_path, SECURE_HTTPS="true")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_check_deploy_over_plain_http_warns_only_of_https(tmp_path):
    """Without TLS (serve on a trusted network) the only warnings left are the four that
    need HTTPS; they stay, because turning them on over plain HTTP would break sign-in
    (browsers keep Secure cookies off http://) and redirect to a port without TLS."""
    done = _check_deploy(tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert set(re.findall(r"\(([a-z_.]+\.[WE]\d+)\)", output)) == {
        "security.W004",  # HSTS
        "security.W008",  # SSL redirect
        "security.W012",  # Secure session cookie
        "security.W016",  # Secure CSRF cookie
    }, output


def test_a_date_time_with_an_offset_postgresql_refuses_is_read_in_utc(db):
    """ISO 8601 (and Python) allow an offset like -20:04; PostgreSQL refuses any beyond
    15:59. The filter compares the same moment in UTC instead of failing with a 500."""
    from taskcenter.accounts import roles
    from tests.conftest import client_for
    from tests.factories import make_user

    answer = client_for(make_user("boss", roles.ADMIN)).get(
        "/api/v2/tasks/instances?createdFrom=0136-12-16T12%3A04%3A34.253148-20%3A04"
    )
    assert answer.status_code == 200, answer.content
