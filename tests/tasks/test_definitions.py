import pytest

from taskcenter.core.errors import InvalidDefinition
from taskcenter.tasks import services, verbs
from taskcenter.tasks.definitions import (
    DefinitionSpec,
    SubtaskSpec,
    register_definition,
    validate_subtasks,
)
from taskcenter.tasks.models import NodeType, TaskInstance
from taskcenter.tasks.parameters import InvalidParameters

SH = NodeType.SHELL_TASK


def shell(key, upstreams=()):
    return SubtaskSpec(key, key, SH, {"command": "true"}, upstreams=list(upstreams))


def test_cycle_is_refused_naming_the_nodes():
    with pytest.raises(InvalidDefinition, match=r"cycle through a, b"):
        validate_subtasks("loop", [shell("a", ["b"]), shell("b", ["a"]), shell("c")])


def test_unknown_upstream_is_refused():
    with pytest.raises(InvalidDefinition, match="unknown upstream 'nope'"):
        validate_subtasks("bad", [shell("a", ["nope"])])


def test_unknown_callable_is_refused():
    spec = SubtaskSpec("a", "a", NodeType.PYTHON_TASK, {"callable": "os.system"})
    with pytest.raises(InvalidDefinition, match="Unknown callable 'os.system'"):
        validate_subtasks("bad", [spec])


def test_duplicate_key_and_empty_dag_are_refused():
    with pytest.raises(InvalidDefinition, match="duplicate subtask key 'a'"):
        validate_subtasks("dup", [shell("a"), shell("a")])
    with pytest.raises(InvalidDefinition, match="has no subtasks"):
        validate_subtasks("empty", [])


def test_action_without_its_required_field_is_refused():
    spec = SubtaskSpec("a", "a", NodeType.HTTP_TASK, {"method": "GET"})
    with pytest.raises(InvalidDefinition, match="needs 'url'"):
        validate_subtasks("bad", [spec])


def test_topological_order_keeps_declaration_order():
    ordered = validate_subtasks("ok", [shell("c", ["a", "b"]), shell("a"), shell("b", ["a"])])
    assert [s.key for s in ordered] == ["a", "b", "c"]


@pytest.mark.django_db
def test_invalid_registered_definition_creates_no_task():
    register_definition(
        DefinitionSpec(name="Broken cycle", build=lambda p: [shell("a", ["b"]), shell("b", ["a"])])
    )
    with pytest.raises(InvalidDefinition, match="cycle"):
        verbs.task_start(definition_name="Broken cycle")
    assert not TaskInstance.objects.exists()


@pytest.mark.django_db
def test_unknown_definition_and_unknown_parameter_are_refused():
    with pytest.raises(InvalidDefinition, match="no task definition named 'Nope'"):
        verbs.task_start(definition_name="Nope")
    with pytest.raises(InvalidParameters, match="'colour' is not a parameter of this job"):
        verbs.task_start(definition_name="Reinstall OCP agent", parameters={"colour": "red"})
    assert not TaskInstance.objects.exists()


@pytest.mark.django_db
def test_data_definition_is_stored_versioned_and_refuses_python_steps():
    spec = {"subtasks": [{"key": "a", "kind": "SHELL_TASK", "action": {"command": "echo hi"}}]}
    first = services.definition_create_from_data(name="Echo", spec=spec)
    second = services.definition_create_from_data(name="Echo", spec=spec)
    assert (first.version, second.version) == (1, 2)
    python_step = {
        "subtasks": [{"key": "a", "kind": "PYTHON_TASK", "action": {"callable": "demo.noop"}}]
    }
    with pytest.raises(InvalidDefinition, match="SHELL_TASK, HTTP_TASK or APPROVAL_TASK"):
        services.definition_create_from_data(name="Sneaky", spec=python_step)
    cyclic = {
        "subtasks": [
            {"key": "a", "kind": "SHELL_TASK", "action": {"command": "x"}, "upstreams": ["b"]},
            {"key": "b", "kind": "SHELL_TASK", "action": {"command": "x"}, "upstreams": ["a"]},
        ]
    }
    with pytest.raises(InvalidDefinition, match="cycle"):
        services.definition_create_from_data(name="Cyclic", spec=cyclic)


@pytest.mark.django_db
def test_refused_parameters_leave_no_definition_row():
    from taskcenter.tasks.models import TaskDefinition

    with pytest.raises(InvalidParameters, match="'bad' is not a parameter"):
        verbs.task_start(definition_name="Reinstall OCP agent", parameters={"bad": 1})
    assert not TaskDefinition.objects.exists()


@pytest.mark.django_db
def test_load_definition_command_stores_versions_and_refuses_bad_documents(tmp_path):
    import json

    from django.core.management import CommandError, call_command

    from taskcenter.tasks.models import TaskDefinition

    good = tmp_path / "rotate.json"
    good.write_text(
        json.dumps(
            {
                "description": "Rotate logs",
                "parameters": [{"name": "dir", "default": "/var/log/app"}],
                "subtasks": [
                    {
                        "key": "rotate",
                        "kind": "SHELL_TASK",
                        "action": {"command": "echo $TC_PARAM_DIR"},
                    },
                    {
                        "key": "ping",
                        "kind": "HTTP_TASK",
                        "upstreams": ["rotate"],
                        "action": {"url": "http://127.0.0.1:9/healthz"},
                    },
                ],
            }
        )
    )
    call_command("load_definition", "Rotate logs", str(good))
    call_command("load_definition", "Rotate logs", str(good))
    assert list(
        TaskDefinition.objects.filter(name="Rotate logs")
        .values_list("version", flat=True)
        .order_by("version")
    ) == [1, 2]
    task = verbs.task_start(definition_name="Rotate logs")
    assert task.subtask_total == 2 and task.definition.version == 2
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("load_definition", "Broken", str(broken))
    cyclic = tmp_path / "cyclic.json"
    cyclic.write_text(
        json.dumps(
            {
                "subtasks": [
                    {
                        "key": "a",
                        "kind": "SHELL_TASK",
                        "action": {"command": "x"},
                        "upstreams": ["a"],
                    }
                ]
            }
        )
    )
    with pytest.raises(CommandError, match="cycle"):
        call_command("load_definition", "Cyclic", str(cyclic))
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("load_definition", "Missing", str(tmp_path / "nope.json"))
    assert not TaskDefinition.objects.filter(name__in=["Broken", "Cyclic", "Missing"]).exists()


@pytest.mark.django_db
def test_load_definition_command_reads_standard_input_for_a_dash():
    import io
    import json

    from django.core.management import call_command

    from taskcenter.tasks.models import TaskDefinition

    document = {"subtasks": [{"key": "a", "kind": "SHELL_TASK", "action": {"command": "true"}}]}
    out = io.StringIO()
    call_command(
        "load_definition", "From stdin", "-", stdin=io.StringIO(json.dumps(document)), stdout=out
    )
    assert TaskDefinition.objects.filter(name="From stdin", version=1).exists()
    assert "stored 'From stdin' version 1" in out.getvalue()
