"""taskcenter.client without a server: it imports nothing of Django, its signature matches
fixed vectors of the documented string to sign (computed independently with openssl),
and it retries 502/503/504 for idempotent calls only (against a tiny local HTTP server)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from taskcenter.client import ApiError, Client, Unreachable
from taskcenter.client.signing import signed_headers, string_to_sign
from taskcenter.client.terminal import render_ansi

pytestmark = pytest.mark.embedded

DATE = "Mon, 07 Dec 2026 08:00:00 GMT"


def test_importing_the_client_and_the_command_loads_no_django_and_no_celery():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = (
        "import sys, taskcenter.client, taskcenter.client.cli\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('django', 'celery')]\n"
        "assert not loaded, loaded\n"
        "assert 'DJANGO_SETTINGS_MODULE' not in __import__('os').environ\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


def test_signature_of_a_get_matches_the_fixed_vector():
    # printf 'GET\n\n\n<date>\n127.0.0.1\n\n<path>' | openssl dgst -sha1 -hmac s3cret -binary | base64
    headers = signed_headers(
        key_id="AK1",
        secret="s3cret",
        method="GET",
        host="127.0.0.1",
        path_and_query="/api/v2/tasks/instances?status=FAILED%2CRUNNING",
        date=DATE,
    )
    assert headers == {
        "Date": DATE,
        "Authorization": "OCP-ACCESS-KEY-HMACSHA1 AK1:SnhZmYtKuEkjY4hJ9l7QSVme6XE=",
    }


def test_signature_of_a_post_with_a_body_and_ocp_headers_matches_the_fixed_vector():
    body = b'{"reason": "disk replaced"}'
    assert string_to_sign(
        method="post",
        body=body,
        content_type="application/json",
        date=DATE,
        host="tc.example.com:8000",
        ocp_header_lines="x-ocp-trace:abc",
        path_and_query="/api/v2/tasks/instances/42/retry?x=1",
    ) == (
        "POST\n78398B96228DC3CE733C6D17E00DA8CC\napplication/json\n" + DATE + "\n"
        "tc.example.com:8000\nx-ocp-trace:abc\n/api/v2/tasks/instances/42/retry?x=1"
    )
    headers = signed_headers(
        key_id="AK1",
        secret="s3cret",
        method="POST",
        host="tc.example.com:8000",
        path_and_query="/api/v2/tasks/instances/42/retry?x=1",
        body=body,
        headers={"Content-Type": "application/json", "X-OCP-Trace": " abc "},
        date=DATE,
    )
    assert headers["Authorization"].endswith(":luCHuvwAZRBmoytYrVrpWDthkpc=")


def test_colours_are_re_emitted_and_other_sequences_dropped():
    text = "\x1b[1;31mred\x1b[0m \x1b]52;c;ZXZpbA==\x07\x1b[2Jclear\x07bell"
    shown, style = render_ansi(text)
    assert shown == "\x1b[0;1;31mred\x1b[0m clear\\x07bell"
    assert style.fg is None


class FlakyHandler(BaseHTTPRequestHandler):
    hits: list[str] = []

    def _answer(self) -> None:
        self.hits.append(self.command)
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"successful": false, "status": 503, "traceId": "t503"}')

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def flaky_server():
    FlakyHandler.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_503_is_retried_for_a_get_and_never_for_a_post(flaky_server):
    with Client(flaky_server, username="u", password="p", retries=2, backoff=0) as client:
        with pytest.raises(ApiError) as raised:
            client.tasks.get(1)
        assert (raised.value.status, raised.value.trace_id) == (503, "t503")
        assert FlakyHandler.hits == ["GET", "GET", "GET"]
        FlakyHandler.hits.clear()
        with pytest.raises(ApiError):
            client.tasks.retry(1)
        assert FlakyHandler.hits == ["POST"]


def test_an_unreachable_server_names_the_url():
    with ThreadingHTTPServer(("127.0.0.1", 0), FlakyHandler) as probe:
        port = probe.server_address[1]  # closed below: nothing listens there then
    url = f"http://127.0.0.1:{port}"
    with Client(url, retries=1, backoff=0) as client, pytest.raises(Unreachable) as raised:
        client.jobs.list()
    assert url in str(raised.value)


def test_the_async_client_retries_a_get_and_never_a_post(flaky_server):
    import asyncio

    from taskcenter.client import AsyncClient

    async def scenario() -> None:
        async with AsyncClient(flaky_server, retries=2, backoff=0) as client:
            with pytest.raises(ApiError):
                await client.jobs.list()
            assert FlakyHandler.hits == ["GET", "GET", "GET"]
            FlakyHandler.hits.clear()
            with pytest.raises(ApiError):
                await client.subtasks.skip(1, 2, reason="by hand")
            assert FlakyHandler.hits == ["POST"]

    asyncio.run(scenario())


def test_cron_next_is_evaluated_offline_without_django():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = (
        "import json, sys\n"
        "from click.testing import CliRunner\n"
        "from taskcenter.client.cli import main\n"
        "args = ['cron', 'next', '0 30 2 ? * MON-FRI', '--tz', 'Asia/Shanghai', '-o', 'json']\n"
        "result = CliRunner().invoke(main, args + ['--count', '3'])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'django']\n"
        "bad = CliRunner().invoke(main, ['cron', 'next', '0 61 * * * ?'])\n"
        "print(json.dumps([json.loads(result.output), bad.exit_code, bad.output]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    answer, bad_exit, bad_output = __import__("json").loads(done.stdout)
    assert answer["description"] == "every weekday at 02:30 (Asia/Shanghai)"
    assert len(answer["next"]) == 3
    assert all(t.endswith("T02:30:00+08:00") for t in answer["next"])
    assert bad_exit == 3 and "between 0 and 59" in bad_output


def _commands(group, path=()):
    """Every command of the tree, groups included, as its path of names."""
    import click

    yield path
    if isinstance(group, click.Group):
        for name, command in group.commands.items():
            yield from _commands(command, (*path, name))


def test_every_commands_help_shows_an_example():
    from click.testing import CliRunner

    from taskcenter.client.cli import main

    runner = CliRunner()
    paths = list(_commands(main))
    assert ("approvals", "list") in paths and ("schedules", "run") in paths
    assert ("completion",) in paths
    for path in paths:
        result = runner.invoke(main, [*path, "--help"], prog_name="taskcenter")
        assert result.exit_code == 0, (path, result.output)
        example = result.output.partition("Example:")[2]
        assert example.strip().startswith("taskcenter"), (path, result.output)


@pytest.mark.parametrize(
    "shell, marker",
    [
        ("bash", "complete -o nosort -F"),
        ("zsh", "#compdef taskcenter"),
        ("fish", "complete --no-files --command taskcenter"),
    ],
)
def test_completion_scripts_for_bash_zsh_and_fish(shell, marker):
    from click.testing import CliRunner

    from taskcenter.client.cli import main

    result = CliRunner().invoke(main, ["completion", shell], prog_name="taskcenter")
    assert result.exit_code == 0, result.output
    assert marker in result.output and "_TASKCENTER_COMPLETE" in result.output


def test_completion_answers_commands_and_choices():
    """What the shell's function asks: the words so far, the completions back."""
    from click.testing import CliRunner

    from taskcenter.client.cli import main

    def complete(words: str) -> list[str]:
        env = {
            "_TASKCENTER_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        }
        result = CliRunner().invoke(main, [], prog_name="taskcenter", env=env)
        return [line.split(",", 1)[1] for line in result.output.splitlines()]

    assert "approvals" in complete("taskcenter ap")
    assert {"create", "edit", "run"} <= set(complete("taskcenter schedules "))
    assert complete("taskcenter tasks list -o ") == ["table", "json", "yaml"]


def test_yaml_output_is_the_same_data_as_json():
    import json

    import yaml
    from click.testing import CliRunner

    from taskcenter.client.cli import main

    args = ["cron", "next", "0 0 12 * * ?", "--count", "2"]
    as_json = CliRunner().invoke(main, [*args, "-o", "json"])
    as_yaml = CliRunner().invoke(main, [*args, "-o", "yaml"])
    assert as_yaml.exit_code == 0, as_yaml.output
    assert yaml.safe_load(as_yaml.output) == json.loads(as_json.output)
    assert as_yaml.output.startswith("description: ")


@pytest.mark.parametrize(
    "args, option, why",
    [
        (
            ["jobs", "run", "Back up cluster", "-p", "seconds"],
            "'-p' / '--param'",
            "expected key=value",
        ),
        (["jobs", "run", "Back up cluster", "-p", "=5"], "'-p' / '--param'", "expected key=value"),
        (["jobs", "run", "Back up cluster", "--cluster", "alpha"], "'--cluster'", "integer"),
        (["jobs", "run", "Back up cluster", "--cluster", "0"], "'--cluster'", ">=1"),
        (["tasks", "bulk", "retry", "--filter", "FAILED"], "'--filter'", "key=value"),
        (["tasks", "list", "--limit", "-5"], "'--limit'", ">=1"),
        (["tasks", "wait", "42", "--timeout", "0"], "'--timeout'", ">0"),
        (["notifications", "deliveries", "--size", "5000"], "'--size'", "1<=x<=2000"),
        (["cron", "next", "0 0 * * * ?", "--count", "0"], "'--count'", "1<=x<=1000"),
        (["--url", "tc.example.com", "tasks", "list"], "'--url'", "not a server URL"),
        (["login", "--url", "ftp://tc", "--access-key-id", "A"], "'--url'", "not a server URL"),
    ],
)
def test_an_option_the_command_reads_itself_is_named_when_it_is_wrong(args, option, why):
    """Checked before any request (nothing listens at the URL): the option and the reason,
    as a usage error (exit 2), never a traceback."""
    from click.testing import CliRunner

    from taskcenter.client.cli import main

    env = {"TASKCENTER_URL": "http://127.0.0.1:9", "TASKCENTER_CONFIG": "/nonexistent/c.json"}
    result = CliRunner().invoke(main, args, env=env, prog_name="taskcenter")
    assert result.exit_code == 2, result.output
    error = result.output.strip().splitlines()[-1]
    assert error.startswith("Error: Invalid value for " + option), result.output
    assert why in error and "Traceback" not in result.output


def test_a_bad_time_zone_or_expression_names_what_is_wrong_offline():
    from click.testing import CliRunner

    from taskcenter.client.cli import main

    zone = CliRunner().invoke(main, ["cron", "next", "0 0 * * * ?", "--tz", "Mars/Olympus"])
    assert zone.exit_code == 3
    assert zone.output.startswith("Error: option --tz: Unknown time zone 'Mars/Olympus'")
    cron = CliRunner().invoke(main, ["cron", "next", "0 61 * * * ?"])
    assert cron.output.startswith("Error: argument EXPRESSION '0 61 * * * ?': Minute")
    assert len(cron.output.strip().splitlines()) == 1


def test_an_unreachable_server_is_one_line_naming_the_url_from_the_command():
    from click.testing import CliRunner

    from taskcenter.client.cli import main

    with ThreadingHTTPServer(("127.0.0.1", 0), FlakyHandler) as probe:
        port = probe.server_address[1]  # closed below: nothing listens there then
    env = {"TASKCENTER_CONFIG": "/nonexistent/c.json", "TASKCENTER_ACCESS_KEY_ID": "AK1",
           "TASKCENTER_ACCESS_KEY_SECRET": "s3cret"}  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    result = CliRunner().invoke(main, ["--url", url, "tasks", "show", "1"], env=env)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: Cannot reach {url}: ")
    assert "Is the server running at that URL?" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_a_server_url_from_the_environment_that_is_not_one_is_named():
    from click.testing import CliRunner

    from taskcenter.client.cli import main

    env = {"TASKCENTER_URL": "tc.example.com:8000", "TASKCENTER_CONFIG": "/nonexistent/c.json"}
    result = CliRunner().invoke(main, ["tasks", "list"], env=env)
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "Error: TASKCENTER_URL: 'tc.example.com:8000' is not a server URL "
        "(http://host:port or https://host)."
    )
