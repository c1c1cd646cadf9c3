"""Demo definitions that do real (harmless) work on the local machine.

They show every shape the engine supports: a chain with shell steps, a fan-out/fan-in
with parallel subtasks, a DAG of 60+ subtasks, a step that fails on demand (to show
retry, skip and rollback), a long step to cancel, an HTTP check, and the no-op shapes
that the benchmarks time.
"""

from __future__ import annotations

from taskcenter.runtime import address
from taskcenter.tasks.definitions import (
    DefinitionSpec,
    ParameterSpec,
    SubtaskSpec,
    approval_gate,
    register_callable,
    register_definition,
)
from taskcenter.tasks.models import NodeType

PY, SH, HTTP = NodeType.PYTHON_TASK, NodeType.SHELL_TASK, NodeType.HTTP_TASK


# --- Callables -----------------------------------------------------------------------------------


@register_callable("demo.noop")
def noop(ctx) -> None:
    return None


@register_callable("demo.step")
def step(ctx, step: str, seconds: float = 1.0, lines: int = 3) -> dict:
    """Log `lines` lines over `seconds`; fail when the task's fail_step names this step.

    A step fails on its first `fail_times` runs, so a retry after that succeeds.
    """
    for index in range(lines):
        ctx.log(f"{step}: working ({index + 1}/{lines})")
        ctx.sleep(seconds / max(lines, 1))
    if ctx.params.get("fail_step") == step and ctx.run_time <= int(
        ctx.params.get("fail_times") or 0
    ):
        raise RuntimeError(f"{step} failed on purpose (fail_step={step}, run {ctx.run_time})")
    ctx.log(f"{step}: done")
    return {
        "schema": [{"name": "step", "type": "string"}, {"name": "run", "type": "number"}],
        "data": [[step, ctx.run_time]],
    }


@register_callable("demo.undo")
def undo(ctx, step: str) -> None:
    ctx.log(f"{step}: undoing the changes of this step")
    ctx.sleep(0.2)
    ctx.log(f"{step}: rolled back")


@register_callable("demo.sleep")
def sleep(ctx, seconds: float = 2.0) -> None:
    waited = 0.0
    while waited < seconds:
        ctx.sleep(min(0.5, seconds - waited))
        waited += 0.5
        ctx.log(f"slept {min(waited, seconds):.1f}/{seconds:g} s")


def _py(key, name, upstreams=(), **kwargs):
    options = {k: kwargs.pop(k) for k in list(kwargs) if k in _SPEC_OPTIONS}
    return SubtaskSpec(
        key=key,
        name=name,
        kind=PY,
        action={"callable": kwargs.pop("callable", "demo.step"), "kwargs": kwargs},
        upstreams=list(upstreams),
        **options,
    )


_SPEC_OPTIONS = {
    "timeout",
    "retry_count",
    "prohibit_rollback",
    "parallel_idx",
    "rollback",
    "description",
}


# --- Definitions ---------------------------------------------------------------------------------


def _reinstall_agent(params):
    return [
        SubtaskSpec(
            "prepare",
            "Prepare reinstalling OCP agent",
            SH,
            {
                "command": 'echo "checking $TC_PARAM_HOST"; sleep 0.5; echo "host reachable"; '
                # The token is a secret: the step says whether it was given, never what it is.
                'echo "agent token given: ${TC_PARAM_AGENT_TOKEN:+yes}"'
            },
            timeout=60,
        ),
        SubtaskSpec(
            "uninstall",
            "Uninstall ocp agent",
            SH,
            {
                "command": 'echo "stopping agent on $TC_PARAM_HOST"; sleep 0.5; '
                'echo "removing package"; sleep 0.5; echo "agent removed"'
            },
            upstreams=["prepare"],
            timeout=1800,
        ),
        SubtaskSpec(
            "install",
            "Install ocp agent",
            SH,
            {
                "command": 'for i in 1 2 3 4; do echo "installing agent: step $i/4"; '
                'sleep 0.4; done; echo "agent installed on $TC_PARAM_HOST"'
            },
            upstreams=["uninstall"],
            timeout=5400,
            rollback={"command": 'echo "removing half-installed agent"'},
        ),
        _py(
            "finish",
            "Finish reinstalling OCP agent",
            ["install"],
            step="finish",
            seconds=0.3,
            lines=2,
            timeout=60,
        ),
    ]


register_definition(
    DefinitionSpec(
        name="Reinstall OCP agent",
        description="Reinstall the OCP agent on a host: prepare, uninstall, install, finish.",
        parameters=[
            ParameterSpec(
                "host", "127.0.0.1", "Address of the host", max_length=253, pattern=r"[^\s]+"
            ),
            ParameterSpec(
                "agent_token",
                "",
                "Token the agent registers with (never shown or logged)",
                type="secret",
                max_length=200,
            ),
        ],
        build=_reinstall_agent,
    )
)


def _scale_out(params):
    width = int(params["units"])
    units = [
        _py(
            f"unit{i}",
            f"Create resource unit on node {i + 1}",
            ["prepare"],
            step=f"unit{i}",
            seconds=1.0,
            lines=3,
            parallel_idx=i,
            rollback={"callable": "demo.undo", "kwargs": {"step": f"unit{i}"}},
        )
        for i in range(width)
    ]
    return [
        _py("prepare", "Check tenant resources", step="prepare", seconds=0.3, lines=2),
        *units,
        _py("balance", "Balance units", [u.key for u in units], step="balance", seconds=0.3),
    ]


register_definition(
    DefinitionSpec(
        name="Scale out tenant units",
        description="Fan-out/fan-in: create resource units on several nodes in parallel.",
        parameters=[
            ParameterSpec(
                "units", 4, "How many units to create in parallel", minimum=1, maximum=64
            ),
            ParameterSpec(
                "fail_step",
                "",
                "Step key to fail on purpose (e.g. unit2), or empty for none",
                max_length=40,
            ),
            ParameterSpec(
                "fail_times", 1, "How many runs of that step fail", minimum=0, maximum=100
            ),
        ],
        build=_scale_out,
    )
)


def _rolling_upgrade(params):
    per_zone = int(params["servers_per_zone"])
    specs = [_py("precheck", "Pre-check upgrade", step="precheck", seconds=0.2, lines=1)]
    previous = "precheck"
    for zone in range(1, 4):
        servers = [
            _py(
                f"z{zone}s{n}",
                f"Upgrade observer zone{zone}-{n:02d}",
                [previous],
                step=f"z{zone}s{n}",
                seconds=0.1,
                lines=1,
                parallel_idx=n - 1,
            )
            for n in range(1, per_zone + 1)
        ]
        barrier = _py(
            f"zone{zone}",
            f"Verify zone{zone}",
            [s.key for s in servers],
            step=f"zone{zone}",
            seconds=0.1,
            lines=1,
        )
        specs += [*servers, barrier]
        previous = barrier.key
    specs.append(_py("finish", "Finish upgrade", [previous], step="finish", seconds=0.1, lines=1))
    return specs


register_definition(
    DefinitionSpec(
        name="Rolling upgrade of observers",
        description="A large DAG: three zones of observers upgraded zone by zone (65 subtasks).",
        parameters=[
            ParameterSpec("servers_per_zone", 20, "Observers per zone", minimum=1, maximum=500)
        ],
        build=_rolling_upgrade,
    )
)


MIGRATION_STEPS = {
    "precheck": "Pre-check source and target",
    "snapshot": "Take a snapshot",
    "copy": "Copy tenant data",
    "verify": "Verify row counts",
    "switch": "Switch traffic to the target",
}


def _migrate_tenant(params):
    steps = MIGRATION_STEPS.items()
    specs: list[SubtaskSpec] = []
    previous: list[str] = []
    for key, name in steps:
        specs.append(
            _py(
                key,
                name,
                previous,
                step=key,
                seconds=float(params["step_seconds"]),
                lines=4,
                rollback={"callable": "demo.undo", "kwargs": {"step": key}},
                prohibit_rollback=(key == "switch"),
            )
        )
        previous = [key]
    return specs


register_definition(
    DefinitionSpec(
        name="Migrate tenant",
        description="A chain whose step fails on demand, to show retry, skip and rollback. "
        "'switch' prohibits rollback once it has run.",
        parameters=[
            ParameterSpec(
                "fail_step",
                "copy",
                "Step that fails on purpose, or none",
                type="choice",
                label="Step to fail",
                choices=("", *MIGRATION_STEPS),
            ),
            ParameterSpec(
                "fail_times", 1, "How many runs of that step fail", minimum=0, maximum=100
            ),
            ParameterSpec(
                "step_seconds", 1.0, "How long each step works, in seconds", minimum=0, maximum=3600
            ),
        ],
        build=_migrate_tenant,
    )
)


def _deploy_with_approval(params):
    return [
        _py("build", "Build the release", step="build", seconds=float(params["step_seconds"])),
        approval_gate(
            "approve",
            "Approve the deployment",
            upstreams=["build"],
            description="A second person checks the release and its parameters before it "
            "reaches the cluster.",
            timeout=int(params["approval_hours"] * 3600),
            on_timeout="fail",
        ),
        _py(
            "deploy",
            "Deploy to the cluster",
            ["approve"],
            step="deploy",
            seconds=float(params["step_seconds"]),
            rollback={"callable": "demo.undo", "kwargs": {"step": "deploy"}},
        ),
        _py(
            "verify",
            "Verify the deployment",
            ["deploy"],
            step="verify",
            seconds=float(params["step_seconds"]),
        ),
    ]


register_definition(
    DefinitionSpec(
        name="Deploy with approval",
        description="A build, then an approval gate: someone other than whoever started the "
        "task approves (or rejects) before the deploy runs; no decision in time fails it.",
        parameters=[
            ParameterSpec("release", "v1.0.0", "The release to deploy", label="Release"),
            ParameterSpec(
                "approval_hours",
                24.0,
                "How long the approval waits before it fails, in hours",
                minimum=0.001,
                maximum=24 * 30,
            ),
            ParameterSpec(
                "step_seconds", 1.0, "How long each step works, in seconds", minimum=0, maximum=3600
            ),
        ],
        build=_deploy_with_approval,
    )
)


register_definition(
    DefinitionSpec(
        name="Back up cluster",
        description="A long-running shell step that prints progress every second; cancel it.",
        parameters=[
            ParameterSpec(
                "seconds", 600, "How long the backup runs, in seconds", minimum=0, maximum=86400
            )
        ],
        build=lambda params: [
            SubtaskSpec(
                "prepare", "Prepare backup", SH, {"command": "echo 'backup destination ready'"}
            ),
            SubtaskSpec(
                "backup",
                "Back up data files",
                SH,
                {
                    "command": 'i=0; while [ "$i" -lt "$TC_PARAM_SECONDS" ]; do i=$((i+1)); '
                    'echo "copied block $i of $TC_PARAM_SECONDS"; sleep 1; done'
                },
                upstreams=["prepare"],
                timeout=int(params["seconds"]) + 60,
            ),
            SubtaskSpec(
                "finish",
                "Finish backup",
                SH,
                {"command": "echo 'backup done'"},
                upstreams=["backup"],
            ),
        ],
    )
)


def _health_url(url: str) -> str:
    """The URL to call, resolved when the task starts, in whichever process starts it (a
    path: on this task center); braces kept as such by the HTTP action's placeholders."""
    return address.on_this_server(url).replace("{", "{{").replace("}", "}}")


register_definition(
    DefinitionSpec(
        name="Check service health",
        description="An HTTP check of a URL (by default this task center's own health endpoint).",
        parameters=[
            ParameterSpec(
                "url",
                "/healthz",
                "URL to call; a path is called on this task center, where `serve` listens",
                label="URL",
                max_length=2000,
                # A whole URL, or a path on this task center.
                pattern=r"https?://\S+|/\S*",
            )
        ],
        build=lambda params: [
            SubtaskSpec(
                "check",
                "Call the health endpoint",
                HTTP,
                {"method": "GET", "url": _health_url(params["url"]), "timeout": 10},
                timeout=30,
            ),
        ],
    )
)


register_definition(
    DefinitionSpec(
        name="Benchmark fan-out",
        description="1 -> width -> 1 no-op subtasks (engine overhead benchmark).",
        parameters=[ParameterSpec("width", 1000, "Parallel subtasks", minimum=1, maximum=100_000)],
        build=lambda params: [
            _py("start", "start", callable="demo.noop"),
            *[
                _py(f"n{i}", f"node {i}", ["start"], callable="demo.noop", parallel_idx=i)
                for i in range(int(params["width"]))
            ],
            _py("end", "end", [f"n{i}" for i in range(int(params["width"]))], callable="demo.noop"),
        ],
    )
)


register_definition(
    DefinitionSpec(
        name="Benchmark chain",
        description="A chain of no-op subtasks (engine overhead benchmark).",
        parameters=[
            ParameterSpec("length", 100, "Subtasks in the chain", minimum=1, maximum=100_000)
        ],
        build=lambda params: [
            _py(f"c{i}", f"link {i}", [f"c{i - 1}"] if i else [], callable="demo.noop")
            for i in range(int(params["length"]))
        ],
    )
)
