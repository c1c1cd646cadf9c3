"""run_task: start a task from a definition, and optionally follow it to its end.

Exit status with --wait: 0 when the task ends SUCCESSFUL, 1 when it ends FAILED (the
failed subtasks and the end of their logs are printed), 2 when --timeout passes first.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from taskcenter.core.errors import TaskCenterError

# Colours and other escape sequences in a log must not reach the operator's terminal.
from taskcenter.core.terminal import plain as terminal_safe
from taskcenter.core.trace import new_trace_id, reset_trace_id, set_trace_id
from taskcenter.tasks import definitions, enqueue, selectors, verbs
from taskcenter.tasks.models import (
    Cluster,
    SubtaskStatus,
    TaskDefinition,
    TaskInstance,
    TaskStatus,
    Tenant,
)
from taskcenter.tasks.parameters import ParamType, text_value

EXIT_FAILED = 1
EXIT_TIMEOUT = 2
LOG_TAIL_LINES = 15


class Command(BaseCommand):
    help = (
        "Start a task from a definition and print its id. With --wait, follow it: exit 0 when "
        "it ends SUCCESSFUL, 1 when it ends FAILED, 2 on timeout."
    )

    def add_arguments(self, parser):
        parser.add_argument("definition", help="Definition name, e.g. 'Reinstall OCP agent'.")
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="A parameter; VALUE is read as JSON when it is valid JSON (units=3 is the "
            "number 3), else as a string. Repeat for several.",
        )
        parser.add_argument("--wait", action="store_true", help="Follow the task to its end.")
        parser.add_argument("--cluster", help="Cluster name the task is about.")
        parser.add_argument(
            "--tenant", help="Tenant name the task is about (with --cluster when ambiguous)."
        )
        parser.add_argument("--creator", help="Username recorded as the task's creator.")
        parser.add_argument(
            "--timeout",
            type=float,
            default=600.0,
            help="With --wait: give up waiting after this many seconds (default 600).",
        )
        parser.add_argument(
            "--interval", type=float, default=0.5, help="With --wait: seconds between polls."
        )

    def handle(self, *args, definition: str, param: list[str], wait: bool, **options):
        self._check_definition(definition)
        parameters = _typed_params(definition, _parse_params(param))
        cluster, tenant = self._target(options["cluster"], options["tenant"])
        creator = self._creator(options["creator"])
        token = set_trace_id(new_trace_id())
        try:
            with enqueue.collect_queued() as queued:
                task = verbs.task_start(
                    definition_name=definition,
                    parameters=parameters,
                    creator=creator,
                    cluster=cluster,
                    tenant=tenant,
                )
        except TaskCenterError as exc:
            raise CommandError(exc.message) from None
        finally:
            reset_trace_id(token)
        self.stdout.write(str(task.pk))
        if queued:
            self.stderr.write(
                f"task {task.pk} is created, but the broker does not answer: its first "
                f"{len(queued)} subtask(s) are queued and will be sent to the workers as soon "
                "as the broker is back (the scheduler sends them; `serve` runs it)."
            )
        if not wait:
            return
        code = self._follow(
            task.pk,
            # The stream behind self.stdout: what call_command was given, else the terminal.
            terminal=options.get("stdout") or sys.stdout,
            timeout=options["timeout"],
            interval=options["interval"],
        )
        if code:
            raise SystemExit(code)

    # --- Input ---------------------------------------------------------------------------------

    def _check_definition(self, name: str) -> None:
        if definitions.get_registered_definition(name) is not None:
            return
        if TaskDefinition.objects.filter(name=name, source=TaskDefinition.Source.DATA).exists():
            return
        available = sorted(
            {spec.name for spec in definitions.registered_definitions()}
            | set(
                TaskDefinition.objects.filter(source=TaskDefinition.Source.DATA).values_list(
                    "name", flat=True
                )
            )
        )
        raise CommandError(
            f"There is no task definition named '{name}'. Available: "
            + (", ".join(f"'{n}'" for n in available) or "none")
            + "."
        )

    def _target(
        self, cluster_name: str | None, tenant_name: str | None
    ) -> tuple[Cluster | None, Tenant | None]:
        cluster = None
        if cluster_name:
            cluster = Cluster.objects.filter(name=cluster_name).first()
            if cluster is None:
                names = ", ".join(Cluster.objects.order_by("name").values_list("name", flat=True))
                raise CommandError(
                    f"There is no cluster named '{cluster_name}'. Known: {names or 'none'}."
                )
        if not tenant_name:
            return cluster, None
        tenants = Tenant.objects.select_related("cluster").filter(name=tenant_name)
        if cluster is not None:
            tenants = tenants.filter(cluster=cluster)
        found = list(tenants[:10])
        if not found:
            where = f" in cluster '{cluster.name}'" if cluster else ""
            raise CommandError(f"There is no tenant named '{tenant_name}'{where}.")
        if len(found) > 1:
            clusters = ", ".join(sorted(t.cluster.name for t in found))
            raise CommandError(
                f"Tenant '{tenant_name}' exists in several clusters ({clusters}); "
                "name one with --cluster."
            )
        return found[0].cluster, found[0]

    def _creator(self, username: str | None):
        if not username:
            return None
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"There is no user named '{username}'.")
        return user

    # --- Following -----------------------------------------------------------------------------

    def _follow(self, task_id: int, *, terminal: TextIO, timeout: float, interval: float) -> int:
        started = time.monotonic()
        deadline = started + timeout
        if self.stdout.isatty():
            from rich.console import Console
            from rich.text import Text  # plain text: brackets in a name are not markup

            console = Console(file=terminal)
            with console.status("") as status:
                task, subtasks = self._poll_until_done(
                    task_id,
                    deadline,
                    interval,
                    lambda line: status.update(Text(terminal_safe(line))),
                )
        else:
            last = [""]

            def show(line: str) -> None:
                if line != last[0]:
                    last[0] = line
                    self.stdout.write(f"[{time.monotonic() - started:6.1f}s] {terminal_safe(line)}")

            task, subtasks = self._poll_until_done(task_id, deadline, interval, show)
        elapsed = time.monotonic() - started
        done = sum(s.status == SubtaskStatus.SUCCESSFUL for s in subtasks)
        summary = f"task {task_id} '{task.name}'"
        if task.status == TaskStatus.RUNNING:
            self.stderr.write(
                f"{summary}: still RUNNING after {timeout:g} s ({done}/{len(subtasks)} subtasks "
                "successful); stopped waiting, the task goes on."
            )
            return EXIT_TIMEOUT
        if task.status == TaskStatus.SUCCESSFUL and not task.is_rolled_back:
            self.stdout.write(
                self.style.SUCCESS(
                    f"{summary} SUCCESSFUL in {elapsed:.1f} s ({done}/{len(subtasks)} subtasks)"
                )
            )
            return 0
        label = "rolled back" if task.is_rolled_back else task.status
        self.stderr.write(f"{summary} {label} ({done}/{len(subtasks)} subtasks successful)")
        for subtask in subtasks:
            if subtask.status != SubtaskStatus.FAILED:
                continue
            self.stderr.write(
                terminal_safe(f"failed subtask {subtask.pk} '{subtask.name}'; end of its log:")
            )
            tail = selectors.log_tail(subtask=subtask, max_bytes=8 * 1024).text
            for line in tail.splitlines()[-LOG_TAIL_LINES:]:
                self.stderr.write(f"    {terminal_safe(line)}")
        return EXIT_FAILED

    def _poll_until_done(self, task_id: int, deadline: float, interval: float, show):
        while True:
            task = selectors.task_get(task_id=task_id)
            subtasks = selectors.task_subtasks(task=task)
            show(_progress_line(task, subtasks))
            if task.status != TaskStatus.RUNNING or time.monotonic() >= deadline:
                return task, subtasks
            time.sleep(max(0.05, min(interval, deadline - time.monotonic())))


def _progress_line(task: TaskInstance, subtasks: list) -> str:
    done = sum(s.status == SubtaskStatus.SUCCESSFUL for s in subtasks)
    line = f"{task.status} {done}/{len(subtasks)} subtasks successful"
    running = [
        s.name for s in subtasks if s.status in (SubtaskStatus.RUNNING, SubtaskStatus.CANCELING)
    ]
    queued = [s.name for s in subtasks if s.status == SubtaskStatus.READY]
    if running:
        line += f"; running: {_names(running)}"
    if queued:
        line += f"; waiting for a worker: {_names(queued)}"
    return line


def _names(names: list[str], shown: int = 3) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def _parse_params(raw: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in raw:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CommandError(f"--param expects KEY=VALUE, got '{item}'.")
        params[key] = value
    return params


def _typed_params(definition: str, texts: dict[str, str]) -> dict[str, Any]:
    """Each KEY=VALUE read as its declared type (seconds=600 an integer, host=10 the text
    "10"); an undeclared or untyped one as JSON when it is JSON, else as text. The one
    validator then checks them all in task_start."""
    try:
        declared = {p.name: p for p in selectors.definition_get(name=definition)[0].parameters}
    except TaskCenterError:
        declared = {}
    params: dict[str, Any] = {}
    for key, text in texts.items():
        param = declared.get(key)
        if param is not None and param.type != ParamType.ANY:
            params[key] = text_value(param, text)
            continue
        try:
            params[key] = json.loads(text)
        except ValueError:
            params[key] = text
    return params
