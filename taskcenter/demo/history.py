"""A month of demo task history, made by driving the real services.

Each historical task is started with `task_start`; this module then plays the worker's
part through the attempt protocol (`attempt_claim`, `attempt_finish`), and the
operator's through `task_retry` and `task_rollback`. So every status, counter, edge, log
offset and audit row is the one the services write, and a rule changed in the services
changes the demo with it. What is decided here is only the story: which definition, on
which target, which step fails, what the operator does about it, how long each step
takes and what it prints.

Past times come from a clock: time-machine moves every clock the process reads
(`datetime.now`, `time.time`, and so `timezone.now` and `auto_now_add`) to the moment of
each step, so the services need no clock parameter, and a service that reads the time
some other way still gets the demo's moment. The clock stands still between moves.
"""

from __future__ import annotations

import heapq
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import time_machine
from django.db import transaction
from django.utils import timezone

from taskcenter.core.errors import RollbackProhibited
from taskcenter.tasks import definitions, services, verbs
from taskcenter.tasks.definitions import DefinitionSpec, SubtaskSpec
from taskcenter.tasks.models import (
    Cluster,
    Host,
    NodeType,
    SubtaskInstance,
    SubtaskStatus,
    TaskType,
    Tenant,
)

SUCCESSFUL, RETRIED = "successful", "successful after a retry"
FAILED, ROLLED_BACK = "failed", "rolled back"
OUTCOME_WEIGHTS: dict[str, int] = {SUCCESSFUL: 60, RETRIED: 10, FAILED: 18, ROLLED_BACK: 12}
TYPE_WEIGHTS: dict[str, int] = {
    TaskType.MANUAL: 50,
    TaskType.SCHEDULED: 20,
    TaskType.SYS_SCHEDULED: 15,
    TaskType.SYS_ONECE: 15,
}
# The others weigh 3. An approval waits for a person, which a played history has not.
DEFINITION_WEIGHTS = {"Rolling upgrade of observers": 1, "Deploy with approval": 0}
HISTORY_DAYS = 30


@dataclass(frozen=True)
class _Plan:
    """One historical task's story, decided before it is played."""

    spec: DefinitionSpec
    params: dict[str, Any]
    outcome: str
    type: str
    creator: Any
    cluster: Cluster | None
    tenant: Tenant | None
    hosts: list[Host]
    executor: str
    failing: str | None  # the name of the subtask whose first run fails


@contextmanager
def attempts_not_sent() -> Iterator[None]:
    """Run the block in one transaction whose engine messages are dropped, not sent.

    The services queue a message for every attempt they make READY, to be sent on commit.
    Here those attempts are played before the commit, so a worker would only receive
    thousands of messages for attempts that have already ended (harmless, since a claim
    is keyed by the attempt number, but a flood). One transaction also makes the history
    all or nothing.
    """
    with transaction.atomic():
        connection = transaction.get_connection()
        queued_before = len(connection.run_on_commit)
        yield
        del connection.run_on_commit[queued_before:]


@dataclass(frozen=True)
class Ending:
    """How a played attempt ends."""

    succeeded: bool
    log: bytes = b""
    result: Any = None


def play_attempts(
    task_id: int,
    *,
    executor: str,
    now: datetime,
    began: Callable[[datetime], datetime],
    runs_for: Callable[[services.ClaimedAttempt], float | None],
    ending: Callable[[services.ClaimedAttempt, datetime, datetime], Ending],
) -> datetime:
    """Play the worker's part of the attempt protocol for `task_id` until no attempt is
    READY; return when the last one ended.

    Every READY attempt is claimed (`attempt_claim`) at `began(now)` and runs for
    `runs_for(claimed)` seconds, or is left RUNNING when that is None; attempts end
    (`attempt_finish`, as `ending` says) in the order of their end times, so parallel
    branches overlap as they would on workers, and the attempts each end makes READY are
    claimed in turn. The demo's history and the tests' factories both play tasks so.
    """
    running: list[tuple[datetime, int, services.ClaimedAttempt, datetime]] = []
    while True:
        ready = SubtaskInstance.objects.filter(
            task_id=task_id, status=SubtaskStatus.READY
        ).values_list("pk", "attempt")
        for subtask_id, attempt in ready.order_by("pk"):
            started = began(now)
            claimed = services.attempt_claim(
                subtask_id=subtask_id, attempt=attempt, executor=executor
            )
            if claimed is None:
                continue
            seconds = runs_for(claimed)
            if seconds is not None:
                ends = started + timedelta(seconds=seconds)
                heapq.heappush(running, (ends, subtask_id, claimed, started))
        if not running:
            return now
        now, _, claimed, started = heapq.heappop(running)
        end = ending(claimed, started, now)
        services.attempt_finish(
            subtask_id=claimed.subtask_id,
            attempt=claimed.attempt,
            task_id=task_id,
            succeeded=end.succeeded,
            log=end.log,
            result=end.result,
        )


class HistoryPlayer:
    def __init__(self, rng: random.Random, users: dict[str, Any], specs: list[DefinitionSpec]):
        self.rng = rng
        self.operators = [users["operator"], users["operator"], users["operator"], users["admin"]]
        self.specs = specs
        self.weights = [DEFINITION_WEIGHTS.get(spec.name, 3) for spec in specs]
        self.clusters = list(Cluster.objects.order_by("pk"))
        self.hosts = list(Host.objects.select_related("cluster").order_by("pk"))
        self.tenants = list(Tenant.objects.select_related("cluster").order_by("pk"))
        self.user_tenants = [t for t in self.tenants if t.name != "sys"] or self.tenants
        meta = [h.address for h in self.hosts if h.cluster and h.cluster.name == "meta"]
        self.executors = meta or ["127.0.0.1"]
        self._shapes: dict[tuple[str, str], list[SubtaskSpec]] = {}

    def play(self, count: int) -> Counter:
        """Start and play `count` tasks over the last HISTORY_DAYS days; count the outcomes."""
        rng = self.rng
        now = timezone.now()
        # Every outcome and type at least once, then at random in the usual proportions.
        outcomes = list(OUTCOME_WEIGHTS)[:count]
        outcomes += [self._pick(OUTCOME_WEIGHTS) for _ in range(count - len(outcomes))]
        types = list(TYPE_WEIGHTS)[:count]
        types += [self._pick(TYPE_WEIGHTS) for _ in range(count - len(types))]
        rng.shuffle(outcomes)
        rng.shuffle(types)
        # Starts at least a few hours ago so that even a retried or rolled-back run, and a
        # long backup, ended in the past.
        starts = sorted(
            now - timedelta(seconds=rng.uniform(6 * 3600, HISTORY_DAYS * 86400))
            for _ in range(count)
        )
        plans = [
            self._plan(outcome, task_type)
            for outcome, task_type in zip(outcomes, types, strict=True)
        ]
        played: Counter = Counter()
        with (
            attempts_not_sent(),
            time_machine.travel(starts[0] if starts else now, tick=False) as clock,
        ):
            for plan, start in zip(plans, starts, strict=True):
                played[self._play_one(plan, start, clock)] += 1
        return played

    # --- The story ---------------------------------------------------------------------------

    def _pick(self, weights: dict[str, int]) -> str:
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]

    def _plan(self, outcome: str, task_type: str) -> _Plan:
        rng = self.rng
        spec = rng.choices(self.specs, weights=self.weights)[0]
        given, cluster, tenant, hosts = self._target(spec, {})
        known = {p.name for p in spec.parameters}
        params = spec.resolve_parameters({k: v for k, v in given.items() if k in known})
        failing = None if outcome == SUCCESSFUL else rng.choice(self._shape(spec, params))
        if "fail_step" in params:  # the definition's own knob names the step that fails
            params["fail_step"] = failing.key if failing else ""
            params["fail_times"] = 1
        system = task_type in (TaskType.SYS_ONECE, TaskType.SYS_SCHEDULED)
        return _Plan(
            spec=spec,
            params=params,
            outcome=outcome,
            type=task_type,
            creator=None if system else rng.choice(self.operators),
            cluster=cluster,
            tenant=tenant,
            hosts=hosts,
            executor=rng.choice(self.executors),
            failing=failing.name if failing else None,
        )

    def _shape(self, spec: DefinitionSpec, params: dict[str, Any]) -> list[SubtaskSpec]:
        key = (spec.name, repr(sorted(params.items())))
        if key not in self._shapes:
            self._shapes[key] = definitions.validate_subtasks(spec.name, spec.build(params))
        return self._shapes[key]

    def _target(self, spec: DefinitionSpec, given: dict[str, Any]):
        """Parameters, cluster, tenant and hosts that suit the definition."""
        rng = self.rng
        known = {p.name for p in spec.parameters}
        cluster = rng.choice(self.clusters) if self.clusters else None
        tenant = None
        if spec.name == "Reinstall OCP agent" and self.hosts:
            host = rng.choice(self.hosts)
            given["host"] = host.address
            return given, host.cluster, None, [host]
        if spec.name in ("Migrate tenant", "Scale out tenant units") and self.user_tenants:
            tenant = rng.choice(self.user_tenants)
            cluster = tenant.cluster
        if "units" in known:
            given["units"] = rng.randint(2, 6)
        if "servers_per_zone" in known:
            given["servers_per_zone"] = rng.choice([3, 5, 10, 20])
        if "seconds" in known:
            given["seconds"] = rng.choice([300, 600, 1200, 1800])
        if spec.name == "Check service health":
            return given, None, None, []
        hosts = [h for h in self.hosts if cluster is not None and h.cluster_id == cluster.pk]
        return given, cluster, tenant, hosts

    # --- Playing it through the services -------------------------------------------------------

    def _play_one(self, plan: _Plan, start: datetime, clock) -> str:
        clock.move_to(start)
        task = verbs.task_start(
            definition_name=plan.spec.name,
            parameters=plan.params,
            creator=plan.creator,
            cluster=plan.cluster,
            tenant=plan.tenant,
            hosts=plan.hosts,
            type=plan.type,
        )
        end = self._run_attempts(task.pk, plan, start, clock)
        if plan.outcome in (SUCCESSFUL, FAILED):
            return plan.outcome
        clock.move_to(end + timedelta(seconds=self.rng.uniform(60, 3 * 3600)))
        actor = self.rng.choice(self.operators)
        if plan.outcome == RETRIED:
            verbs.task_retry(task_id=task.pk, actor=actor)
        else:
            reason = "give up: " + self.rng.choice(["not needed any more", "wrong target", ""])
            try:
                verbs.task_rollback(task_id=task.pk, actor=actor, reason=reason)
            except RollbackProhibited:  # the failed run passed a step that forbids it
                return FAILED
        self._run_attempts(task.pk, plan, timezone.now(), clock)
        return plan.outcome

    def _run_attempts(self, task_id: int, plan: _Plan, now: datetime, clock) -> datetime:
        """Claim and finish attempts, as a worker would, until none is READY; return when
        the last one ended. Each attempt is claimed a moment after it became READY and
        runs for a duration of its kind."""

        def began(ready_at: datetime) -> datetime:
            moment = ready_at + timedelta(seconds=self.rng.uniform(0.02, 0.3))
            clock.move_to(moment)
            return moment

        def runs_for(claimed: services.ClaimedAttempt) -> float:
            return self._duration(claimed, plan)

        def ending(claimed: services.ClaimedAttempt, began: datetime, ended: datetime) -> Ending:
            failed = (
                claimed.name == plan.failing and not claimed.is_rollback and claimed.run_time == 1
            )
            lines = self._lines(claimed, plan, failed, (ended - began).total_seconds())
            log = self._stamped(lines, began, ended, clock)
            clock.move_to(ended)
            return Ending(not failed, log, None if failed else _step_result(claimed))

        return play_attempts(
            task_id,
            executor=plan.executor,
            now=now,
            began=began,
            runs_for=runs_for,
            ending=ending,
        )

    def _duration(self, claimed: services.ClaimedAttempt, plan: _Plan) -> float:
        rng = self.rng
        if claimed.is_rollback:
            return rng.uniform(0.2, 0.6)
        action = claimed.action
        failing = claimed.name == plan.failing and claimed.run_time == 1
        scale = rng.uniform(0.3, 0.9) if failing else 1.0
        if claimed.node_type == NodeType.PYTHON_TASK:
            seconds = float(action.get("kwargs", {}).get("seconds", 0.05))
            return scale * (seconds * rng.uniform(1.0, 1.4) + 0.05)
        if claimed.node_type == NodeType.HTTP_TASK:
            return scale * rng.uniform(0.05, 0.4)
        if "TC_PARAM_SECONDS" in str(action.get("command", "")):
            return scale * float(plan.params.get("seconds", 60)) * rng.uniform(1.0, 1.05)
        return scale * rng.uniform(0.3, 3.0)

    # --- What the attempt printed ---------------------------------------------------------------

    def _lines(
        self, claimed: services.ClaimedAttempt, plan: _Plan, failed: bool, seconds: float
    ) -> list[str]:
        """The lines the runner and the demo's actions print for this attempt."""
        what = "rollback" if claimed.is_rollback else f"run {claimed.run_time}"
        lines = [f"start {what} of '{claimed.name}' ({claimed.node_type}) on {plan.executor}"]
        action = (claimed.rollback_action if claimed.is_rollback else claimed.action) or {}
        if claimed.is_rollback and not action:
            lines.append("nothing to roll back for this subtask")
        elif claimed.node_type == NodeType.PYTHON_TASK:
            lines += _python_lines(action, claimed, failed)
        elif claimed.node_type == NodeType.SHELL_TASK:
            command = str(action.get("command", "")).replace("\n", " ")
            output = _shell_output(command, plan.params)
            lines += [f"$ {command}", *(output[:1] if failed else output)]
            lines.append(
                "failed: command exited with status 1" if failed else "command exited with status 0"
            )
        elif claimed.node_type == NodeType.HTTP_TASK:
            url = str(action.get("url", ""))
            try:
                url = url.format(**plan.params)
            except (KeyError, IndexError, ValueError):
                pass
            lines.append(f"HTTP {action.get('method', 'GET')} {url}")
            lines.append(
                "failed: HTTP request failed: ConnectError: [Errno 111] Connection refused"
                if failed
                else f"HTTP 200 in {seconds * 1000:.0f} ms, 16 bytes"
            )
        lines.append(f"{'failed' if failed else 'succeeded'} in {seconds:.2f} s")
        return lines

    @staticmethod
    def _stamped(lines: list[str], began: datetime, ended: datetime, clock) -> bytes:
        """The lines in the log's own format, stamped evenly across the attempt."""
        step = (ended - began) / max(len(lines) - 1, 1)
        out = []
        for index, line in enumerate(lines):
            clock.move_to(began + step * index)
            out.append(services.format_log_line(line))
        return b"".join(out)


def _python_lines(action: dict, claimed: services.ClaimedAttempt, failed: bool) -> list[str]:
    kwargs = action.get("kwargs", {})
    if action.get("callable") == "demo.undo":
        step = kwargs.get("step", claimed.name)
        return [f"{step}: undoing the changes of this step", f"{step}: rolled back"]
    if action.get("callable") != "demo.step":
        return ["failed with RuntimeError: the step reported an error"] if failed else []
    step, count = kwargs.get("step", claimed.name), int(kwargs.get("lines", 3))
    lines = [f"{step}: working ({i + 1}/{count})" for i in range(count)]
    if failed:
        reason = f"{step} failed on purpose (fail_step={step}, run {claimed.run_time})"
        return [*lines, f"failed with RuntimeError: {reason}"]
    return [*lines, f"{step}: done"]


def _step_result(claimed: services.ClaimedAttempt) -> Any:
    """What demo.step returns (a table), for the forward runs of its subtasks."""
    if claimed.is_rollback or claimed.action.get("callable") != "demo.step":
        return None
    step = claimed.action.get("kwargs", {}).get("step", claimed.name)
    return {
        "schema": [{"name": "step", "type": "string"}, {"name": "run", "type": "number"}],
        "data": [[step, claimed.run_time]],
    }


_ECHO = re.compile(r"""echo\s+(["'])(.*?)\1""")
_PARAM = re.compile(r"\$\{?TC_PARAM_([A-Z0-9_]+)\}?")


def _shell_output(command: str, params: dict[str, Any]) -> list[str]:
    """What the demo command would have printed: its echo lines, with $i for 1..3."""
    lines = []
    for _, text in _ECHO.findall(command):
        text = _PARAM.sub(lambda m: str(params.get(m.group(1).lower(), "")), text)
        lines += [text.replace("$i", str(i)) for i in (1, 2, 3)] if "$i" in text else [text]
    return lines or ["done"]
