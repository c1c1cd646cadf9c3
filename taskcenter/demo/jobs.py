"""HENGSHI's job classes, under their own names, mapped to harmless demo definitions.

So every request of seed 003 sent as it is to a demo server succeeds: each job class runs
a two-step definition that logs a few lines per step and returns a small result table
({schema, data}), which is what a context's logs and results show per subKey (subtask).
"""

from __future__ import annotations

from taskcenter.schedules.jobs import register_job_class
from taskcenter.tasks.definitions import (
    DefinitionSpec,
    ParameterSpec,
    SubtaskSpec,
    register_callable,
    register_definition,
)
from taskcenter.tasks.models import NodeType

JOB_PACKAGE = "com.hengshi.nangaparbat.schedulejob"

# (job class, definition name, title pattern, {parameter: description}) as in seed 003.
HENGSHI_JOBS = [
    ("NotebookJob", "hengshi.notebook", "notebook{notebook}", {"notebook": "notebook id"}),
    ("PipelineJob", "hengshi.pipeline", "pipeline{pipeline}", {"pipeline": "pipeline id"}),
    (
        "DatasetJob",
        "hengshi.dataset",
        "app{app}-dataset{dataset}",
        {"app": "app id", "dataset": "dataset id"},
    ),
    ("AppEmailJob", "hengshi.app_email", "app{app} email", {"app": "app id"}),
    ("AppDatasetRefreshJob", "hengshi.app_refresh", "app{app} refresh", {"app": "app id"}),
    ("DBBatchSyncJob", "hengshi.db_batch_sync", "sync{syncProj}", {"syncProj": "project id"}),
]


@register_callable("demo.hengshi_step")
def hengshi_step(ctx, step: str, seconds: float = 0.3) -> dict:
    """One step of a demo job: a few log lines and a one-row result."""
    ctx.log(f"{step} start {ctx.params}")
    ctx.sleep(seconds)
    ctx.log(f"{step} done")
    return {
        "schema": [{"name": "step", "type": "string"}, {"name": "run", "type": "number"}],
        "data": [[step, ctx.run_time]],
    }


def _definition(name: str, parameters: dict[str, str]) -> DefinitionSpec:
    def build(params: dict) -> list[SubtaskSpec]:
        return [
            SubtaskSpec(
                key=key,
                name=f"{name} {key}",
                kind=NodeType.PYTHON_TASK,
                action={"callable": "demo.hengshi_step", "kwargs": {"step": key}},
                upstreams=upstreams,
            )
            for key, upstreams in (("prepare", []), ("run", ["prepare"]))
        ]

    return DefinitionSpec(
        name=name,
        description=f"Demo of a HENGSHI {name.split('.', 1)[1]} job: two short steps.",
        parameters=[
            # HENGSHI's clients send these ids as numbers or as text: any JSON value.
            ParameterSpec(name=param, required=True, description=text, type="any")
            for param, text in parameters.items()
        ],
        build=build,
    )


for job_name, definition_name, title, parameters in HENGSHI_JOBS:
    register_definition(_definition(definition_name, parameters))
    register_job_class(f"{JOB_PACKAGE}.{job_name}", definition=definition_name, title=title)
