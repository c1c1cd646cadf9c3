"""The `taskcenter` command: operate a taskcenter server from a terminal, over its APIs.

Click with Rich: Click already comes with Celery and uvicorn (no new dependency), gives
nested command groups, `--help` and bash/zsh/fish completion; Rich draws the tables, the subtask tree
and the live progress. Manual: docs/cli.md.

Exit codes: 0 done; 1 an error (unreachable server, a server error); 3 refused by the
server (bad credentials, not permitted, not found, invalid). `jobs run --wait` and
`tasks wait`: 0 SUCCESSFUL, 1 FAILED, 2 still running at the timeout.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import time
from collections.abc import Callable
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import urlsplit

import click
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from taskcenter.client import config, terminal
from taskcenter.client.api import Client
from taskcenter.client.errors import ApiError, TaskcenterError, Unreachable
from taskcenter.client.models import Channel, Model, Rule, Task

EXIT_FAILED = 1
EXIT_TIMEOUT = 2
EXIT_REFUSED = 3
STATUS_STYLE = {
    "SUCCESSFUL": "green",
    "FAILED": "red",
    "RUNNING": "cyan",
    "CANCELING": "yellow",
    "PENDING": "dim",
    "READY": "blue",
}
# Counts and durations the command checks itself, so that a bad one names its option.
COUNT = click.IntRange(min=1)
ID = click.IntRange(min=1)  # every id of the APIs is a positive integer
POSITIVE_SECONDS = click.FloatRange(min=0, min_open=True)
# How often waits and --follow ask the server (TASKCENTER_POLL_SECONDS; tests make it short).
POLL = float(os.environ.get("TASKCENTER_POLL_SECONDS") or 1.0)

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _version() -> str:
    try:
        return version("taskcenter")
    except PackageNotFoundError:
        return "unknown"


# --- Shared plumbing -----------------------------------------------------------------------


class State:
    def __init__(self, profile: str, url: str | None, timeout: float):
        self.profile = profile
        self.url = url
        self.timeout = timeout
        self._client: Client | None = None

    def client(self) -> Client:
        if self._client is None:
            profile = config.load(self.profile)
            url = self.url or profile.url
            if not url:
                raise click.UsageError(
                    "No server: run `taskcenter login`, or set TASKCENTER_URL, or pass --url."
                )
            problem = None if self.url else url_problem(url)  # --url is checked by Click
            if problem:
                if os.environ.get("TASKCENTER_URL"):
                    raise click.UsageError(f"TASKCENTER_URL: {problem}")
                raise click.UsageError(f"the url of profile {self.profile!r}: {problem}")
            self._client = Client(
                url,
                access_key_id=profile.access_key_id or None,
                access_key_secret=profile.access_key_secret or None,
                username=profile.username or None,
                password=profile.password or None,
                timeout=self.timeout,
            )
        return self._client


pass_state = click.make_pass_decorator(State)


def url_problem(url: str) -> str | None:
    """Why `url` is not a server's URL (http(s)://host[:port][/path]), or None: said before
    any request is tried."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return None
    return f"{url!r} is not a server URL (http://host:port or https://host)."


def _url_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    problem = url_problem(value) if value is not None else None
    if problem:
        raise click.BadParameter(problem, ctx, param)
    return value


def output_option(function: Callable) -> Callable:
    """-o table|json|yaml: JSON and YAML are the API's data as it was sent, stable for
    scripts."""
    return click.option(
        "-o",
        "--output",
        type=click.Choice(["table", "json", "yaml"]),
        default="table",
        show_default=True,
        help="table for people; json or yaml (the API's data) for scripts.",
    )(function)


def _raw(value: Any) -> Any:
    if isinstance(value, Model):
        return value.raw
    if isinstance(value, list):
        return [_raw(v) for v in value]
    return value


def print_json(value: Any) -> None:
    click.echo(json.dumps(_raw(value), indent=2, ensure_ascii=False))


def print_data(value: Any, output: str) -> None:
    """The API's data as JSON or YAML (YAML's safe dumper, keys in the API's order)."""
    if output == "yaml":
        import yaml  # only when asked: the command starts faster without it

        text = yaml.safe_dump(
            _raw(value), sort_keys=False, allow_unicode=True, default_flow_style=False
        )
        click.echo(text, nl=False)
    else:
        print_json(value)


def handled(function: Callable) -> Callable:
    """Errors as one clear message on stderr and an exit code, never a traceback."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except ApiError as error:
            _fail(_describe(error, click.get_current_context(silent=True)))
            sys.exit(EXIT_REFUSED if 400 <= error.status < 500 else EXIT_FAILED)
        except Unreachable as error:
            _fail(f"{str(error).rstrip('.')}. Is the server running at that URL?")
            sys.exit(EXIT_FAILED)
        except TaskcenterError as error:
            _fail(str(error))
            sys.exit(EXIT_FAILED)
        except config.ConfigError as error:
            _fail(str(error))
            sys.exit(EXIT_FAILED)
        except KeyboardInterrupt:
            sys.exit(130)

    return wrapper


def _fail(message: str) -> None:
    # The server's words are text, never Rich markup; soft wrap keeps the message on one
    # line (the terminal folds it), so that scripts can read it with one `head -1`.
    err.print(f"[red]Error:[/red] {escape(message)}", soft_wrap=True)


# Where the API names a job's parameters: `parameters.NAME` (Jobs API) and
# `execDetail.jobParams.NAME` (HENGSHI); the command takes each as `-p NAME=...`.
PARAMETER_FIELDS = ("parameters.", "execDetail.jobParams.")
# API fields whose option is not named after them (camelCase to snake_case finds the rest:
# clusterId is --cluster's cluster_id, entityGroup --group's entity_group).
FIELD_PARAMETERS = {"planItems": "crons", "cronDesc": "crons", "timeZone": "tz"}


def _option_for(field: str, ctx: click.Context | None) -> str:
    """How the command line names the API's field at fault: the option or argument that
    fills it in the running command, else the field as the API names it."""
    if ctx is None:
        return f"field {field!r}"
    params = {param.name: param for param in ctx.command.params}
    for prefix in PARAMETER_FIELDS:
        if field.startswith(prefix) and "params" in params:
            return f"-p {field.removeprefix(prefix)}"
    # A bulk operation's --filter key=value: the server names `filter.KEY`, or the list
    # filter's own name.
    filters = ctx.params.get("filters") or {}
    key = field.removeprefix("filter.")
    if key in filters or field.startswith("filter."):
        return f"--filter {key}"
    last = re.sub(r"\[\d+\]", "", field).rpartition(".")[2]
    name = FIELD_PARAMETERS.get(last) or re.sub(r"(?<!^)(?=[A-Z])", "_", last).lower()
    param = params.get(name)
    given = ctx.params.get(name)
    unset = given is None or given is False or given in ((), {})
    if param is None or (unset and ctx.params.get("body_file")):
        return f"field {field!r}"  # the command has no such option, or --file gave it
    if isinstance(param, click.Option):
        return f"option {max(param.opts, key=len)}"
    return f"argument {param.human_readable_name}"


def _describe(error: ApiError, ctx: click.Context | None = None) -> str:
    """The server's refusal in one line: the option (or field) at fault and why, then the
    HTTP status, the code and the traceId to quote."""
    faults = [
        (sub["target"], str(sub.get("message", "")))
        for sub in error.sub_errors
        if isinstance(sub, dict) and sub.get("target")
    ]
    if not faults and error.target:
        opening = f"Invalid parameter '{error.target}': "
        faults = [(error.target, error.message.removeprefix(opening))]
    if faults:
        said = "; ".join(f"{_option_for(field, ctx)}: {why}" for field, why in faults)
        text = f"{said} {str(error).removeprefix(error.message).strip()}"
    else:
        text = str(error)
    if error.status == 401:
        if error.clock_skew is not None and abs(error.clock_skew) > 15 * 60:
            text += (
                f" This machine's clock is {abs(error.clock_skew):.0f} s "
                f"{'ahead of' if error.clock_skew > 0 else 'behind'} the server's: a signed "
                "request must be within 15 minutes of it. Set the clock right."
            )
        else:
            text += " Check the credentials (`taskcenter login`)."
    return text


def _table(*headers: str, **options: Any) -> Table:
    """A Rich table whose cells fold where they do not fit rather than end in an ellipsis:
    ids and names stay whole (to be typed again) in 80 columns."""
    table = Table(**options)
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def _when(moment: str | None) -> str:
    """An API time as a person reads it in a table: this machine's time, to the minute
    (-o json and -o yaml keep the API's own)."""
    if not moment:
        return ""
    try:
        return datetime.fromisoformat(moment).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return moment


def _style(status: str) -> str:
    colour = STATUS_STYLE.get(status, "")
    return f"[{colour}]{status}[/{colour}]" if colour else escape(status)


def _duration(start: str | None, finish: str | None) -> str:
    if not start:
        return ""
    try:
        began = datetime.fromisoformat(start)
        ended = datetime.fromisoformat(finish) if finish else datetime.now(began.tzinfo)
    except ValueError:
        return ""
    seconds = int((ended - began).total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def key_values(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict:
    """A repeatable key=value option as a dict; a value without its key or its = is refused
    naming the option (Click's usage error)."""
    pairs = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected key=value, got {value!r}.", ctx, param)
        pairs[key] = rest
    return pairs


# --- The command -------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", prog_name="taskcenter")
@click.option(
    "--profile",
    default=lambda: os.environ.get("TASKCENTER_PROFILE", config.DEFAULT_PROFILE),
    show_default="default",
    help="The stored profile to use (taskcenter login --profile NAME).",
)
@click.option(
    "--url",
    callback=_url_option,
    help="The server's URL, over the profile's (or TASKCENTER_URL).",
)
@click.option(
    "--timeout", type=POSITIVE_SECONDS, default=30.0, show_default=True, help="Seconds per request."
)
@click.pass_context
def main(ctx: click.Context, profile: str, url: str | None, timeout: float) -> None:
    """Operate a taskcenter server from a terminal, over its APIs.

    \b
    Example:
      taskcenter login --url https://tc.example.com
      taskcenter tasks list --status FAILED
      taskcenter jobs run "Back up cluster" -p seconds=5 --cluster 1 --wait
    """
    ctx.obj = State(profile, url, timeout)


@main.command()
@click.option(
    "--url",
    "server",
    prompt="Server URL",
    callback=_url_option,
    help="e.g. https://tc.example.com",
)
@click.option("--access-key-id", prompt="Access key id", help="From create_access_key.")
@click.option(
    "--access-key-secret", prompt="Access key secret", hide_input=True, help="Its secret."
)
@click.option("--no-check", is_flag=True, help="Store without asking the server first.")
@pass_state
@handled
def login(
    state: State, server: str, access_key_id: str, access_key_secret: str, no_check: bool
) -> None:
    """Store a server URL and an access key as a profile (0600, in the config dir).

    \b
    Example:
      taskcenter --profile prod login --url https://tc.example.com --access-key-id AK...
    """
    profile = config.Profile(
        url=server.rstrip("/"), access_key_id=access_key_id, access_key_secret=access_key_secret
    )
    if not no_check:
        with Client(
            profile.url,
            access_key_id=access_key_id,
            access_key_secret=access_key_secret,
            timeout=state.timeout,
            retries=0,
        ) as client:
            client.tasks.page(page=1, size=1)
    path = config.save(state.profile, profile)
    out.print(escape(f"Logged in to {profile.url} as profile {state.profile!r} ({path})."))


# --- tasks ---------------------------------------------------------------------------------


@main.group()
def tasks() -> None:
    """List, show, follow and operate tasks.

    \b
    Example:
      taskcenter tasks list --status FAILED
      taskcenter tasks show 42
    """


@tasks.command("list")
@click.option("--status", multiple=True, help="RUNNING, FAILED or SUCCESSFUL (repeatable).")
@click.option("--name", help="Name contains (case-insensitive).")
@click.option("--cluster-id", type=ID)
@click.option("--tenant-id", type=ID)
@click.option("--creator", multiple=True, help="User name (repeatable).")
@click.option("--keyword", help="Name, cluster, tenant, creator or id.")
@click.option("--sort", multiple=True, help="field,asc|desc (repeatable).")
@click.option("--limit", type=COUNT, default=50, show_default=True, help="At most this many.")
@output_option
@pass_state
@handled
def tasks_list(state: State, output: str, limit: int, **filters: Any) -> None:
    """List tasks, newest first, with the API's filters.

    \b
    Example:
      taskcenter tasks list --status FAILED --cluster-id 3 -o json
    """
    filters = {k: (list(v) if isinstance(v, tuple) else v) for k, v in filters.items()}
    filters = {k: v for k, v in filters.items() if v not in (None, [])}
    found = list(state.client().tasks.list(size=min(limit, 200), limit=limit, **filters))
    if output != "table":
        print_data(found, output)
        return
    if not found:
        out.print("No tasks.")
        return
    table = _table("ID", "Name", "Status", "Cluster", "Creator", "Started", "Duration")
    for task in found:
        table.add_row(
            str(task.id),
            escape(task.name),
            _style(task.status),
            escape(task.cluster.name) if task.cluster else "",
            escape(task.creator.name) if task.creator else "",
            _when(task.start_time),
            _duration(task.start_time, task.finish_time),
        )
    out.print(table)


def _tree(task: Task) -> Tree:
    done = sum(sub.status == "SUCCESSFUL" for sub in task.subtasks)
    tree = Tree(
        f"[bold]#{task.id} {escape(task.name)}[/bold] {_style(task.status)} {task.operation}"
        + (f"  {done}/{len(task.subtasks)} done" if task.subtasks else "")
    )
    for sub in task.subtasks:
        duration = _duration(sub.start_time, sub.finish_time)
        tree.add(
            f"{sub.id} {escape(sub.name)}  {_style(sub.status)}"
            + (f"  {duration}" if duration else "")
            + (f"  (after {', '.join(map(str, sub.upstreams))})" if sub.upstreams else "")
        )
    return tree


@tasks.command("show")
@click.argument("task_id", type=ID)
@output_option
@pass_state
@handled
def tasks_show(state: State, task_id: int, output: str) -> None:
    """Show a task and its subtasks with their statuses and durations.

    \b
    Example:
      taskcenter tasks show 42
    """
    task = state.client().tasks.get(task_id)
    if output != "table":
        print_data(task, output)
    else:
        out.print(_tree(task))


def _pick_subtask(task: Task) -> int:
    """The subtask whose log a person most likely wants: a failed one, else the one
    running, else the last that started."""
    for wanted in ("FAILED", "RUNNING"):
        for sub in task.subtasks:
            if sub.status == wanted:
                return sub.id
    started = [s for s in task.subtasks if s.start_time]
    if started:
        return started[-1].id
    if task.subtasks:
        return task.subtasks[0].id
    raise click.UsageError(f"Task {task.id} has no subtasks.")


class LogWriter:
    """Writes log pieces safely: colours kept on a colour terminal (re-emitted from the
    parsed style), stripped otherwise; every other escape sequence made harmless; a
    sequence cut between two pieces is held until its end arrives."""

    def __init__(self, colour: bool):
        self.colour = colour
        self.style = terminal.PLAIN
        self.held = ""

    def write(self, text: str, final: bool = False) -> None:
        text = self.held + text
        cut = 0 if final else terminal.incomplete_tail(text)
        self.held = text[len(text) - cut :] if cut else ""
        text = text[: len(text) - cut]
        if self.colour:
            shown, self.style = terminal.render_ansi(text, self.style)
        else:
            shown = terminal.plain(text)
        sys.stdout.write(shown)
        sys.stdout.flush()

    def close(self) -> None:
        self.write("", final=True)
        if self.colour and self.style != terminal.PLAIN:
            sys.stdout.write("\x1b[0m")


@tasks.command("logs")
@click.argument("task_id", type=ID)
@click.argument("subtask_id", type=ID, required=False)
@click.option("-f", "--follow", is_flag=True, help="Follow until the subtask ends.")
@click.option("--attempt", type=COUNT, help="An earlier attempt's log (default: the latest).")
@click.option("--color/--no-color", default=None, help="Default: colours on a terminal only.")
@output_option
@pass_state
@handled
def tasks_logs(
    state: State,
    task_id: int,
    subtask_id: int | None,
    follow: bool,
    attempt: int | None,
    color: bool | None,
    output: str,
) -> None:
    """Print a subtask's log (a failed or running one when SUBTASK is not given).

    \b
    Example:
      taskcenter tasks logs 42 812 --follow
    """
    client = state.client()
    if subtask_id is None:
        subtask_id = _pick_subtask(client.tasks.get(task_id))
    if output != "table":
        print_data(client.tasks.logs(task_id, subtask_id, attempt=attempt), output)
        return
    writer = LogWriter(sys.stdout.isatty() if color is None else color)
    try:
        if follow:
            for chunk in client.tasks.follow_logs(task_id, subtask_id, attempt=attempt, poll=POLL):
                writer.write(chunk.log)
        else:
            writer.write(client.tasks.logs(task_id, subtask_id, attempt=attempt).log)
    finally:
        writer.close()


def _operation(name: str, verb: str) -> Callable:
    @click.argument("task_id", type=ID)
    @click.option("--reason", help="Why (recorded in the audit; rollback and cancel want one).")
    @output_option
    @pass_state
    @handled
    def command(state: State, task_id: int, reason: str | None, output: str) -> None:
        task = getattr(state.client().tasks, name)(task_id, reason=reason)
        if output != "table":
            print_data(task, output)
        else:
            out.print(f"Task {task.id} {verb}: now {_style(task.status)}.")

    command.__doc__ = f"{name.title()} a task.\n\n    \b\n    Example:\n      taskcenter tasks {name} 42 --reason 'disk replaced'\n    "
    return command


tasks.command("retry")(_operation("retry", "retried"))
tasks.command("rollback")(_operation("rollback", "rolling back"))
tasks.command("cancel")(_operation("cancel", "canceled"))


def _wait(client: Client, task_id: int, timeout: float, output: str) -> int:
    """Poll the task until it ends, its subtasks shown live on a terminal; the exit code."""
    deadline = time.monotonic() + timeout
    task = client.tasks.get(task_id)
    if out.is_terminal and output == "table":
        with Live(_tree(task), console=out, auto_refresh=False) as live:
            while not task.finished and time.monotonic() < deadline:
                time.sleep(POLL)
                task = client.tasks.get(task_id)
                live.update(_tree(task), refresh=True)
    else:
        while not task.finished and time.monotonic() < deadline:
            time.sleep(POLL)
            task = client.tasks.get(task_id)
        if output != "table":
            print_data(task, output)
        else:
            out.print(_tree(task))
    if not task.finished:
        err.print(f"Task {task_id} is still {task.status} after {timeout:.0f} s.")
        return EXIT_TIMEOUT
    return 0 if task.status == "SUCCESSFUL" else EXIT_FAILED


@tasks.command("wait")
@click.argument("task_id", type=ID)
@click.option("--timeout", type=POSITIVE_SECONDS, default=3600, show_default=True, help="Seconds.")
@output_option
@pass_state
@handled
def tasks_wait(state: State, task_id: int, timeout: float, output: str) -> None:
    """Wait until a task ends: exit 0 SUCCESSFUL, 1 FAILED, 2 timeout.

    \b
    Example:
      taskcenter tasks wait 42 --timeout 600
    """
    sys.exit(_wait(state.client(), task_id, timeout, output))


@tasks.command("bulk")
@click.argument("operation", type=click.Choice(["retry", "rollback", "cancel"]))
@click.argument("ids", type=ID, nargs=-1)
@click.option(
    "--filter",
    "filters",
    multiple=True,
    callback=key_values,
    help="key=value of the list's filters (repeatable).",
)
@click.option("--reason", help="Required by rollback and cancel (not for a dry run).")
@click.option("--dry-run", is_flag=True, help="Judge each task, change nothing.")
@output_option
@pass_state
@handled
def tasks_bulk(
    state: State,
    operation: str,
    ids: tuple[int, ...],
    filters: dict[str, str],
    reason: str | None,
    dry_run: bool,
    output: str,
) -> None:
    """Retry, roll back or cancel many tasks, by ids or by the list's filters.

    \b
    Example:
      taskcenter tasks bulk retry --filter status=FAILED --filter clusterId=3 --dry-run
      taskcenter tasks bulk cancel 41 42 43 --reason 'wrong tenant'
    """
    if bool(ids) == bool(filters):
        raise click.UsageError("Give either task ids or --filter key=value (not both).")
    result = state.client().bulk.start(
        operation,
        ids=list(ids) if ids else None,
        filter=filters or None,
        reason=reason,
        dry_run=dry_run,
    )
    if output != "table":
        print_data(result, output)
        return
    head = "Dry run: " if result.dry_run else f"Bulk {result.bulk_id}: "
    out.print(
        f"{head}{operation} of {result.matched} task(s): {len(result.accepted)} accepted, "
        f"{len(result.refused)} refused."
    )
    for refusal in result.refused:
        out.print(f"  {refusal.id}: {escape(refusal.message)} (code {refusal.code})")


# --- subtasks ------------------------------------------------------------------------------


@main.group()
def subtasks() -> None:
    """Retry, skip or cancel one subtask; approve or reject an approval gate.

    \b
    Example:
      taskcenter subtasks skip 42 812 --reason 'done by hand'
    """


def _subtask_operation(name: str) -> Callable:
    @click.argument("task_id", type=ID)
    @click.argument("subtask_id", type=ID)
    @click.option("--reason", help="Why (recorded in the audit).")
    @output_option
    @pass_state
    @handled
    def command(
        state: State, task_id: int, subtask_id: int, reason: str | None, output: str
    ) -> None:
        sub = getattr(state.client().subtasks, name)(task_id, subtask_id, reason=reason)
        if output != "table":
            print_data(sub, output)
        else:
            out.print(f"Subtask {sub.id} ({escape(sub.name)}): now {_style(sub.status)}.")

    command.__doc__ = f"{name.title()} a subtask.\n\n    \b\n    Example:\n      taskcenter subtasks {name} 42 812\n    "
    return command


for _name in ("retry", "skip", "cancel", "approve", "reject"):
    subtasks.command(_name)(_subtask_operation(_name))


# --- approvals -----------------------------------------------------------------------------


@main.group()
def approvals() -> None:
    """Approval gates waiting for a decision: list them, approve or reject one.

    \b
    Example:
      taskcenter approvals list
      taskcenter approvals approve 42 813 --reason 'change ticket CHG-1 approved'
    """


@approvals.command("list")
@click.option("--limit", type=COUNT, default=100, show_default=True, help="At most this many.")
@output_option
@pass_state
@handled
def approvals_list(state: State, limit: int, output: str) -> None:
    """The gates waiting for a decision that you may see, the longest waiting first, and
    whether you may decide each now (else why not).

    \b
    Example:
      taskcenter approvals list -o yaml
    """
    found = list(state.client().approvals.list(size=min(limit, 200), limit=limit))
    if output != "table":
        print_data(found, output)
        return
    if not found:
        out.print("No approvals waiting.")
        return
    # Few columns, so the ids stay whole in 80 columns; the rest is in -o yaml.
    table = _table("Task", "Subtask", "Gate", "Cluster", "Waiting", "You")
    for gate in found:
        table.add_row(
            str(gate.task_instance_id),
            str(gate.subtask_instance_id),
            escape(gate.name),
            escape(gate.cluster.name) if gate.cluster else "",
            _duration(gate.waiting_since, None),
            "may decide" if gate.may_decide else escape(gate.why_not or ""),
        )
    out.print(table)


def _decision(name: str, verb: str) -> Callable:
    @click.argument("task_id", type=ID)
    @click.argument("subtask_id", type=ID)
    @click.option("--reason", required=True, help="Why (recorded in the audit; required).")
    @output_option
    @pass_state
    @handled
    def command(state: State, task_id: int, subtask_id: int, reason: str, output: str) -> None:
        sub = getattr(state.client().approvals, name)(task_id, subtask_id, reason=reason)
        if output != "table":
            print_data(sub, output)
        else:
            out.print(f"Gate {sub.id} ({escape(sub.name)}) {verb}: now {_style(sub.status)}.")

    command.__doc__ = f"{name.title()} a waiting approval gate of a task.\n\n    \b\n    Example:\n      taskcenter approvals {name} 42 813 --reason 'checked the plan'\n    "
    return command


approvals.command("approve")(_decision("approve", "approved"))
approvals.command("reject")(_decision("reject", "rejected"))


# --- jobs ----------------------------------------------------------------------------------


@main.group()
def jobs() -> None:
    """List jobs (task definitions), show their parameters, run them.

    \b
    Example:
      taskcenter jobs list
      taskcenter jobs run "Back up cluster" -p seconds=5 --wait
    """


@jobs.command("list")
@output_option
@pass_state
@handled
def jobs_list(state: State, output: str) -> None:
    """List the jobs and their parameters.

    \b
    Example:
      taskcenter jobs list -o json
    """
    found = state.client().jobs.list()
    if output != "table":
        print_data(found, output)
        return
    table = _table("Name", "Version", "Parameters", "Description")
    for job in found:
        params = ", ".join(p.name + ("*" if p.required else "") for p in job.parameters)
        table.add_row(
            escape(job.name), str(job.version or ""), escape(params), escape(job.description or "")
        )
    out.print(table)


@jobs.command("show")
@click.argument("name")
@output_option
@pass_state
@handled
def jobs_show(state: State, name: str, output: str) -> None:
    """Show a job's declared parameters.

    \b
    Example:
      taskcenter jobs show "Back up cluster"
    """
    job = state.client().jobs.get(name)
    if output != "table":
        print_data(job, output)
        return
    out.print(
        f"[bold]{escape(job.name)}[/bold] (version {job.version}) {escape(job.description or '')}"
    )
    table = _table("Parameter", "Type", "Required", "Default", "Help")
    for p in job.parameters:
        table.add_row(
            escape(p.name),
            p.type,
            "yes" if p.required else "",
            escape(json.dumps(p.default)),
            escape(p.help or ""),
        )
    out.print(table)


TEXT_TYPES = frozenset({"string", "secret", "choice", "datetime"})


def _typed(job_parameters: dict[str, str], given: dict[str, str]) -> dict[str, Any]:
    """Values from the command line as JSON values of each parameter's declared type:
    text types as they are, the others read as JSON (5, 1.5, true, [1, 2])."""
    values: dict[str, Any] = {}
    for key, text in given.items():
        if job_parameters.get(key) in TEXT_TYPES:
            values[key] = text
            continue
        try:
            values[key] = json.loads(text)
        except ValueError:
            values[key] = text  # the server names what is wrong with it
    return values


@jobs.command("run")
@click.argument("name")
@click.option(
    "-p", "--param", "params", multiple=True, callback=key_values, help="key=value (repeatable)."
)
@click.option("--cluster", "cluster_id", type=ID, help="Cluster id.")
@click.option("--tenant", "tenant_id", type=ID, help="Tenant id.")
@click.option("--repeat-of", type=ID, help="Run this task again, with -p over its values.")
@click.option("--wait", is_flag=True, help="Wait for the end, showing the subtasks' progress.")
@click.option(
    "--timeout", type=POSITIVE_SECONDS, default=3600, show_default=True, help="For --wait."
)
@output_option
@pass_state
@handled
def jobs_run(
    state: State,
    name: str,
    params: dict[str, str],
    cluster_id: int | None,
    tenant_id: int | None,
    repeat_of: int | None,
    wait: bool,
    timeout: float,
    output: str,
) -> None:
    """Start a run of a job. With --wait: exit 0 SUCCESSFUL, 1 FAILED, 2 timeout;
    3 when the run is refused.

    \b
    Example:
      taskcenter jobs run "Back up cluster" -p seconds=5 --cluster 1 --wait
    """
    client = state.client()
    declared = {p.name: p.type for p in client.jobs.get(name).parameters} if params else {}
    task_id = client.jobs.run(
        name,
        _typed(declared, params),
        cluster_id=cluster_id,
        tenant_id=tenant_id,
        repeat_of=repeat_of,
    )
    if not wait:
        if output != "table":
            print_data({"taskInstanceId": task_id}, output)
        else:
            out.print(f"Started task {task_id}.")
        return
    if output == "table":
        err.print(f"Started task {task_id}; waiting for it to end.")
    sys.exit(_wait(client, task_id, timeout, output))


# --- schedules and contexts (HENGSHI) --------------------------------------------------------


@main.group()
def schedules() -> None:
    """HENGSHI's execution plans: list, show, create, edit, run, enable, disable, cancel,
    delete.

    \b
    Example:
      taskcenter schedules list
      taskcenter schedules run 7
    """


@schedules.command("list")
@click.option("--q", help="Search text.")
@click.option("--limit", type=COUNT, default=100, show_default=True)
@output_option
@pass_state
@handled
def schedules_list(state: State, q: str | None, limit: int, output: str) -> None:
    """List execution plans.

    \b
    Example:
      taskcenter schedules list -o json
    """
    found = list(state.client().schedules.iterate(page_size=min(limit, 200), limit=limit, q=q))
    if output != "table":
        print_data(found, output)
        return
    table = _table("ID", "Group", "Key", "Enabled")
    for plan in found:
        table.add_row(
            str(plan.id),
            escape(plan.entity_group or ""),
            escape(plan.entity_key or ""),
            str(plan.enabled),
        )
    out.print(table)


@schedules.command("show")
@click.argument("schedule_id")
@output_option
@pass_state
@handled
def schedules_show(state: State, schedule_id: str, output: str) -> None:
    """Show one plan: its job, its schedule and its last run.

    \b
    Example:
      taskcenter schedules show 7
      taskcenter schedules show 7 -o yaml
    """
    plan = state.client().schedules.get(schedule_id)
    if output != "table":
        print_data(plan, output)
        return
    data = plan.raw
    detail = data.get("execDetail") or {}
    job = escape(f"{data.get('entityGroup')}/{data.get('entityKey')}")
    out.print(
        f"[bold]Plan {data.get('id')}[/bold] {job}"
        f"  {'enabled' if data.get('enabled') else 'disabled'}"
    )
    params = json.dumps(detail.get("jobParams") or {}, ensure_ascii=False)
    out.print(escape(f"Job: {detail.get('jobClass', '')}  {params}"))
    out.print(
        f"Last run: {data.get('jobStatus') or 'NONE'}"
        f"  next: {_when(data.get('nextStartAt')) or '-'}  cluster: {data.get('clusterId') or '-'}"
    )
    table = _table("Item", "Trigger", "When", "Time zone", "Next")
    for item in data.get("planItems") or []:
        when = item.get("cronDesc") or ", ".join(
            f"{j.get('entityGroup')}/{j.get('entityKey')}" for j in item.get("triggerByJobs") or []
        )
        table.add_row(
            str(item.get("id", "")),
            item.get("triggerType", ""),
            escape(when),
            item.get("timeZone") or "",
            _when(item.get("nextStartAt")),
        )
    out.print(table)


def _plan_operation(name: str) -> Callable:
    @click.argument("schedule_id")
    @output_option
    @pass_state
    @handled
    def command(state: State, schedule_id: str, output: str) -> None:
        result = getattr(state.client().schedules, name)(schedule_id)
        if output != "table":
            print_data(result, output)
        else:
            out.print(f"Plan {escape(schedule_id)}: {name} done.")

    command.__doc__ = (
        f"{name.title()} a plan.\n\n    \b\n    Example:\n      taskcenter schedules {name} 7\n    "
    )
    return command


for _name in ("enable", "disable", "cancel", "delete"):
    schedules.command(_name)(_plan_operation(_name))


def _body_file(stream: Any) -> dict:
    """A JSON object from --file (a path, or - for stdin)."""
    try:
        body = json.load(stream)
    except ValueError as error:
        raise click.BadParameter(f"not JSON: {error}", param_hint="--file") from None
    if not isinstance(body, dict):
        raise click.BadParameter("expected a JSON object", param_hint="--file")
    return body


def _cron_items(crons: tuple[str, ...], tz: str | None) -> list[dict]:
    items = []
    for expression in crons:
        item = {"triggerType": "CRON_JOB", "cronDesc": expression}
        if tz:
            item["timeZone"] = tz
        items.append(item)
    return items


def _print_plan(plan: Any, output: str, said: str) -> None:
    if output != "table":
        print_data(plan, output)
        return
    data = plan if isinstance(plan, dict) else {}
    context = f" Run started: context {data['contextId']}." if data.get("contextId") else ""
    out.print(f"Plan {data.get('id', '')} {said}.{context}")


@schedules.command("create")
@click.option(
    "--file", "body_file", type=click.File("r"), help="HENGSHI's body as JSON (- for stdin)."
)
@click.option("--group", "entity_group", help="The job's entityGroup.")
@click.option("--key", "entity_key", help="The job's entityKey.")
@click.option("--job", "job_class", help="execDetail.jobClass: a job's name or a job class.")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    callback=key_values,
    help="A job parameter key=value (repeatable).",
)
@click.option("--cron", "crons", multiple=True, help="A Quartz expression (repeatable).")
@click.option("--tz", help="The expressions' time zone (IANA name or GMT+08:00).")
@click.option("--cluster", "cluster_id", type=ID, help="The cluster its runs go to.")
@click.option("--tenant", "tenant_id", type=ID, help="The tenant its runs go to.")
@click.option("--disabled", is_flag=True, help="Create it disabled.")
@output_option
@pass_state
@handled
def schedules_create(
    state: State,
    body_file: Any,
    entity_group: str | None,
    entity_key: str | None,
    job_class: str | None,
    params: dict[str, str],
    crons: tuple[str, ...],
    tz: str | None,
    cluster_id: int | None,
    tenant_id: int | None,
    disabled: bool,
    output: str,
) -> None:
    """Create a job's plan (or update the plan the job has), from --file or from options;
    options given with --file are laid over the file's body.

    \b
    Example:
      taskcenter schedules create --group nightly --key backup --job "Back up cluster" \\
          -p seconds=5 --cron "0 30 2 * * ?" --tz Asia/Shanghai --cluster 1
      taskcenter schedules create --file plan.json
    """
    body: dict[str, Any] = _body_file(body_file) if body_file else {}
    for key, value in (
        ("entityGroup", entity_group),
        ("entityKey", entity_key),
        ("clusterId", cluster_id),
        ("tenantId", tenant_id),
    ):
        if value is not None:
            body[key] = value
    if job_class or params:
        detail = dict(body.get("execDetail") or {})
        if job_class:
            detail["jobClass"] = job_class
        if params:
            declared: dict[str, str] = {}
            if detail.get("jobClass"):
                try:
                    job = state.client().jobs.get(detail["jobClass"])
                    declared = {p.name: p.type for p in job.parameters}
                except ApiError:
                    declared = {}  # a registered job class: the server judges the values
            detail["jobParams"] = {
                **(detail.get("jobParams") or {}),
                **_typed(declared, params),
            }
        body["execDetail"] = detail
    if crons:
        body["planItems"] = _cron_items(crons, tz)
    if disabled:
        body["enabled"] = False
    if not body.get("entityGroup") or not body.get("entityKey"):
        raise click.UsageError("Give the job's --group and --key (or a --file that has them).")
    _print_plan(state.client().schedules.create(body), output, "saved")


@schedules.command("edit")
@click.argument("schedule_id")
@click.option(
    "--file", "body_file", type=click.File("r"), help="{planItems, enabled} as JSON (- for stdin)."
)
@click.option(
    "--cron", "crons", multiple=True, help="The new schedule: a Quartz expression (repeatable)."
)
@click.option("--tz", help="The expressions' time zone.")
@click.option("--no-schedule", is_flag=True, help="Remove every item of the schedule.")
@click.option("--enable/--disable", "enabled", default=None, help="Enable or disable it too.")
@output_option
@pass_state
@handled
def schedules_edit(
    state: State,
    schedule_id: str,
    body_file: Any,
    crons: tuple[str, ...],
    tz: str | None,
    no_schedule: bool,
    enabled: bool | None,
    output: str,
) -> None:
    """Replace a plan's schedule as a whole and/or enable or disable it
    (PUT /api/schedules/{id}); what is not given stays.

    \b
    Example:
      taskcenter schedules edit 7 --cron "0 0 3 * * ?" --tz UTC
      taskcenter schedules edit 7 --no-schedule --disable
    """
    body: dict[str, Any] = _body_file(body_file) if body_file else {}
    if crons and no_schedule:
        raise click.UsageError("Give --cron or --no-schedule, not both.")
    items = body.get("planItems")
    if crons:
        items = _cron_items(crons, tz)
    elif no_schedule:
        items = []
    if enabled is None and "enabled" in body:
        enabled = body["enabled"]
    if items is None and enabled is None and "planItems" not in body:
        raise click.UsageError(
            "Nothing to change: give --cron, --no-schedule, --enable/--disable or --file."
        )
    plan = state.client().schedules.update(schedule_id, plan_items=items, enabled=enabled)
    _print_plan(plan, output, "changed")


@schedules.command("run")
@click.argument("schedule_id")
@click.option(
    "--wait", "sync", is_flag=True, help="Wait for the run to end (bounded by the server)."
)
@output_option
@pass_state
@handled
def schedules_run(state: State, schedule_id: str, sync: bool, output: str) -> None:
    """Run a plan's job now (its schedule stays as it is); prints the run's context id.

    \b
    Example:
      taskcenter schedules run 7
      taskcenter contexts logs "$(taskcenter schedules run 7 -o json | jq .contextId)"
    """
    client = state.client()
    plan = client.schedules.get(schedule_id)
    answer = client.schedules.run_now(plan.entity_group or "", plan.entity_key or "", sync=sync)
    _print_plan(answer, output, "run now")


@main.group()
def contexts() -> None:
    """Runs started by plans: list them, show one, its logs and its results.

    \b
    Example:
      taskcenter contexts list --status FAILED
      taskcenter contexts results 42 --block
    """


@contexts.command("list")
@click.option("--q", help="Search text (title, entityGroup, entityKey).")
@click.option(
    "--status",
    "job_status_list",
    multiple=True,
    help="A jobStatus: PENDING, RUNNING, SUCCESSFUL, FAILED, CANCELLED (repeatable).",
)
@click.option("--limit", type=COUNT, default=100, show_default=True)
@output_option
@pass_state
@handled
def contexts_list(
    state: State, q: str | None, job_status_list: tuple[str, ...], limit: int, output: str
) -> None:
    """The runs plans started, newest first.

    \b
    Example:
      taskcenter contexts list --status FAILED -o json
    """
    found = list(
        state.client().contexts.iterate(
            page_size=min(limit, 200),
            limit=limit,
            q=q,
            job_status_list=list(job_status_list) or None,
        )
    )
    if output != "table":
        print_data(found, output)
        return
    if not found:
        out.print("No contexts.")
        return
    table = _table("ID", "Plan", "Job", "Status", "Started", "Took")
    for run in found:
        data = run.raw
        table.add_row(
            str(data.get("id", "")),
            str(data.get("planId") or ""),
            escape(f"{data.get('entityGroup')}/{data.get('entityKey')}"),
            _style(str(data.get("jobStatus") or "")),
            _when(data.get("startAt")),
            _duration(data.get("startAt"), data.get("stopAt")),
        )
    out.print(table)


@contexts.command("show")
@click.argument("context_id")
@output_option
@pass_state
@handled
def contexts_show(state: State, context_id: str, output: str) -> None:
    """Show one run a plan started: its plan, job, status and times.

    \b
    Example:
      taskcenter contexts show 42
    """
    data = state.client().contexts.get(context_id).raw
    if output != "table":
        print_data(data, output)
        return
    out.print(
        _fields(
            [
                ("ID", data.get("id")),
                ("Plan", f"{data.get('planId')} (item {data.get('planItemId')})"),
                ("Job", f"{data.get('entityGroup')}/{data.get('entityKey')}"),
                ("Title", data.get("title")),
                ("Status", data.get("jobStatus")),
                ("Scheduled", data.get("scheduledAt")),
                ("Started", data.get("startAt")),
                ("Stopped", data.get("stopAt")),
                ("Reason", data.get("reason")),
                ("Cluster", data.get("clusterId")),
                ("Started by", data.get("entityCreatedByName")),
            ]
        )
    )


@contexts.command("logs")
@click.argument("context_id")
@click.option("--block/--no-block", default=False, help="Wait for the run to end first.")
@output_option
@pass_state
@handled
def contexts_logs(state: State, context_id: str, block: bool, output: str) -> None:
    """A context's logs, subtask by subtask (the subKey is the subtask's id).

    \b
    Example:
      taskcenter contexts logs 42 --block
    """
    found = state.client().contexts.logs(context_id, block=block)
    if output != "table":
        print_data(found, output)
        return
    for piece in found or []:
        out.print(f"[bold]subtask {escape(str(piece.get('subKey')))}[/bold]")
        for line in piece.get("logs") or []:
            # Program output: its escape sequences made harmless (client.terminal).
            out.print(escape(terminal.plain(str(line))), soft_wrap=True)


@contexts.command("results")
@click.argument("context_id")
@click.option("--block/--no-block", default=False, help="Wait for the run to end first.")
@output_option
@pass_state
@handled
def contexts_results(state: State, context_id: str, block: bool, output: str) -> None:
    """A context's results, subtask by subtask: a table each, by the result's schema.

    \b
    Example:
      taskcenter contexts results 42 -o json
    """
    found = state.client().contexts.results(context_id, block=block)
    if output != "table":
        print_data(found, output)
        return
    for piece in found or []:
        result = piece.get("result") or {}
        columns = [str(column.get("name", "")) for column in result.get("schema") or []]
        rows = result.get("data") or []
        title = f"subtask {piece.get('subKey')}"
        if not columns:
            out.print(f"[bold]{escape(title)}[/bold]: no result")
            continue
        table = _table(*map(escape, columns), title=escape(title), title_justify="left")
        for row in rows:
            table.add_row(*(escape(json.dumps(v) if not isinstance(v, str) else v) for v in row))
        out.print(table)


# --- cron (offline) ------------------------------------------------------------------------


@main.group()
def cron() -> None:
    """Quartz cron expressions, evaluated here without a server.

    \b
    Example:
      taskcenter cron next "0 0 12 ? * MON-FRI" --count 3
    """


@cron.command("next")
@click.argument("expression")
@click.option("--tz", default="UTC", show_default=True, help="IANA name or GMT+08:00.")
@click.option("--count", type=click.IntRange(1, 1000), default=5, show_default=True)
@output_option
def cron_next(expression: str, tz: str, count: int, output: str) -> None:
    """The next fire times of a Quartz expression (the scheduler's own evaluator).

    \b
    Example:
      taskcenter cron next "0 30 2 ? * MON-FRI" --tz Asia/Shanghai --count 3
    """
    # The scheduler's evaluator and its words: pure Python, nothing of Django.
    from taskcenter.schedules import cron as quartz
    from taskcenter.schedules.describe import describe

    try:
        zone = quartz.parse_zone(tz)
        after = datetime.now(zone)
        times = [
            t.astimezone(zone) for t in quartz.parse(expression).next_fire_times(after, zone, count)
        ]
        words = describe(expression, tz)
    except quartz.InvalidCron as error:
        _fail(f"argument EXPRESSION {expression!r}: {error.advice}")
        sys.exit(EXIT_REFUSED)
    except quartz.InvalidZone as error:
        _fail(f"option --tz: {error.reason}")
        sys.exit(EXIT_REFUSED)
    if output != "table":
        print_data({"description": words, "next": [t.isoformat() for t in times]}, output)
        return
    out.print(words)
    for moment in times:
        out.print(f"  {moment.isoformat()}")
    if not times:
        out.print("  (never fires again)")


# --- notifications -------------------------------------------------------------------------


@main.group()
def notifications() -> None:
    """Notification channels, rules and deliveries; a test message through a channel.

    \b
    Example:
      taskcenter notifications deliveries --status DEAD
      taskcenter notifications rules -o yaml
    """


def _yes(value: Any) -> str:
    return "yes" if value else ""


def _listed(values: Any) -> str:
    return ", ".join(str(v) for v in values or [])


def _fields(rows: list[tuple[str, Any]]) -> Table:
    """One record as a two-column table: field and value."""
    table = _table("Field", "Value", show_header=False)
    for label, value in rows:
        table.add_row(label, escape("" if value is None else str(value)))
    return table


def _channel_target(channel: Channel) -> str:
    return channel.url or _listed(channel.addresses)


def _rule_scope(rule: Rule) -> str:
    """What a rule watches: one job, plan, cluster or task, or every event it names."""
    for value, label in (
        (rule.job, "job"),
        (rule.plan_id, "plan"),
        (rule.cluster_id, "cluster"),
        (rule.task_id, "task"),
    ):
        if value not in (None, ""):
            return f"{label} {value}"
    return "all"


@notifications.command("channels")
@output_option
@pass_state
@handled
def notifications_channels(state: State, output: str) -> None:
    """The channels the caller may see.

    \b
    Example:
      taskcenter notifications channels -o json
    """
    found = state.client().notifications.channels()
    if output != "table":
        print_data([channel.raw for channel in found], output)
        return
    if not found:
        out.print("No channels.")
        return
    table = _table("ID", "Name", "Kind", "Sends to", "Open to all")
    for channel in found:
        table.add_row(
            str(channel.id),
            escape(channel.name),
            channel.kind,
            escape(_channel_target(channel)),
            _yes(channel.open_to_all),
        )
    out.print(table)


@notifications.command("channel")
@click.argument("channel_id", type=ID)
@output_option
@pass_state
@handled
def notifications_channel(state: State, channel_id: int, output: str) -> None:
    """Show one channel (for those who manage notifications). A URL shows its scheme and
    host only: the rest is a secret.

    \b
    Example:
      taskcenter notifications channel 3
    """
    channel = state.client().notifications.channel(channel_id)
    if output != "table":
        print_data(channel.raw, output)
        return
    out.print(
        _fields(
            [
                ("ID", channel.id),
                ("Name", channel.name),
                ("Kind", channel.kind),
                ("Sends to", _channel_target(channel)),
                ("Open to all", "yes" if channel.open_to_all else "no"),
                ("Created", channel.created_at),
            ]
        )
    )


@notifications.command("rules")
@output_option
@pass_state
@handled
def notifications_rules(state: State, output: str) -> None:
    """The caller's rules and the team rules they may see.

    \b
    Example:
      taskcenter notifications rules
    """
    found = state.client().notifications.rules()
    if output != "table":
        print_data([rule.raw for rule in found], output)
        return
    if not found:
        out.print("No rules.")
        return
    table = _table("ID", "Channel", "Events", "Watches", "Owner", "On")
    for rule in found:
        table.add_row(
            str(rule.id),
            str(rule.channel_id),
            escape(_listed(rule.events)),
            escape(_rule_scope(rule)),
            escape(rule.owner) + (" (personal)" if rule.personal else ""),
            "on" if rule.enabled else "off",
        )
    out.print(table)


@notifications.command("rule")
@click.argument("rule_id", type=ID)
@output_option
@pass_state
@handled
def notifications_rule(state: State, rule_id: int, output: str) -> None:
    """Show one rule: its channel, the events it sends and what it watches.

    \b
    Example:
      taskcenter notifications rule 5 -o yaml
    """
    rule = state.client().notifications.rule(rule_id)
    if output != "table":
        print_data(rule.raw, output)
        return
    out.print(
        _fields(
            [
                ("ID", rule.id),
                ("Channel", rule.channel_id),
                ("Events", _listed(rule.events)),
                ("Watches", _rule_scope(rule)),
                ("Owner", rule.owner),
                ("Personal", "yes" if rule.personal else "no (a team rule)"),
                ("Enabled", "yes" if rule.enabled else "no"),
                ("Created", rule.created_at),
            ]
        )
    )


@notifications.command("deliveries")
@click.option("--status", help="PENDING, DELIVERED, DEAD or DROPPED.")
@click.option("--channel", type=ID, help="One channel's deliveries.")
@click.option("--size", type=click.IntRange(1, 2000), default=50, show_default=True)
@output_option
@pass_state
@handled
def notifications_deliveries(
    state: State, status: str | None, channel: int | None, size: int, output: str
) -> None:
    """The latest deliveries, newest first, with their tries (-o json|yaml: each try).

    \b
    Example:
      taskcenter notifications deliveries --status DEAD
      taskcenter notifications deliveries --channel 3 -o yaml
    """
    rows, page = state.client().notifications.deliveries(size=size, status=status, channel=channel)
    if output != "table":
        print_data({"contents": [delivery.raw for delivery in rows], "page": page}, output)
        return
    if not rows:
        out.print("No deliveries.")
        return
    # Three columns of two lines each, so that the id stays whole (a webhook's id, to find
    # in a receiver's logs) and the table within 80 columns; the error wraps under the id.
    table = Table()
    table.add_column("Delivery", min_width=36, max_width=36)  # msg_ and 32 hex digits
    table.add_column("Event, channel")
    table.add_column("Status, tries")
    for delivery in rows:
        tries = delivery.attempts
        error = delivery.last_error
        table.add_row(
            delivery.id + (f"\n[dim]{escape(error)}[/dim]" if error else ""),
            f"{escape(delivery.type)}\nchannel {delivery.channel_id}",
            f"{_delivery_status(delivery.status)}\n{tries} {'try' if tries == 1 else 'tries'}",
        )
    out.print(table)
    total = page.get("totalElements")
    if total is not None and total > len(rows):
        out.print(f"{len(rows)} of {total}: --size shows more.")


DELIVERY_STYLE = {"DELIVERED": "green", "DEAD": "red", "PENDING": "yellow", "DROPPED": "dim"}


def _delivery_status(status: str) -> str:
    colour = DELIVERY_STYLE.get(status)
    return f"[{colour}]{status}[/{colour}]" if colour else escape(status)


@notifications.command("test")
@click.argument("channel_id", type=ID)
@output_option
@pass_state
@handled
def notifications_test(state: State, channel_id: int, output: str) -> None:
    """Send a test message through a channel (queued: see its deliveries).

    \b
    Example:
      taskcenter notifications test 3
    """
    queued = state.client().notifications.test_channel(channel_id)
    if output != "table":
        print_data(queued.raw, output)
        return
    out.print(
        f"Test message queued as delivery {queued.delivery_id} ({queued.status}): "
        f"taskcenter notifications deliveries --channel {channel_id}"
    )


# --- shell completion ----------------------------------------------------------------------

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_TASKCENTER_COMPLETE"


@main.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script of a shell (bash 4.4+, zsh, fish): commands, options,
    choices. Click's own: the same as `_TASKCENTER_COMPLETE=bash_source taskcenter`.

    \b
    Example:
      taskcenter completion bash > ~/.local/share/bash-completion/completions/taskcenter
      taskcenter completion zsh > "${fpath[1]}/_taskcenter"
      taskcenter completion fish > ~/.config/fish/completions/taskcenter.fish
    """
    from click.shell_completion import get_completion_class

    complete = get_completion_class(shell)
    assert complete is not None  # the three shells are Click's own
    click.echo(complete(main, {}, "taskcenter", COMPLETE_VAR).source())
