"""The one parameter validator (taskcenter.tasks.parameters), by properties: for every
declared type and bound, valid values are accepted unchanged, invalid ones are refused by
name, and all the problems of one request are reported together."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskcenter.core.errors import InvalidDefinition
from taskcenter.tasks import parameters as typed
from taskcenter.tasks.definitions import DefinitionSpec, ParameterSpec, definition_from_data
from taskcenter.tasks.parameters import INT64_MAX, InvalidParameters

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def job(*params: ParameterSpec) -> DefinitionSpec:
    return DefinitionSpec(name="Job", build=lambda p: [], parameters=list(params))


def refused(spec: DefinitionSpec, given: dict) -> dict[str, str]:
    with pytest.raises(InvalidParameters) as caught:
        typed.resolve(spec, given)
    return caught.value.problems


JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)

# --- One declaration per type, with its bounds ---------------------------------------------------

COUNT = ParameterSpec("count", 1, minimum=0, maximum=100)
RATIO = ParameterSpec("ratio", 0.5, minimum=-1.5, maximum=2.5)
FLAG = ParameterSpec("flag", False)
STEP = ParameterSpec("step", "copy", type="choice", choices=("", "copy", "verify"))
WHEN = ParameterSpec("when", type="datetime")
TOKEN = ParameterSpec("token", type="secret", max_length=12)
CODE = ParameterSpec("code", "ab", max_length=8, pattern=r"[a-z]+")


@PROPERTY
@given(st.integers(min_value=0, max_value=100))
def test_an_integer_within_its_bounds_is_accepted_unchanged(value):
    assert typed.resolve(job(COUNT), {"count": value}) == {"count": value}


@PROPERTY
@given(st.one_of(st.integers(max_value=-1), st.integers(min_value=101)))
def test_an_integer_out_of_its_bounds_is_refused_by_name(value):
    problems = refused(job(COUNT), {"count": value})
    assert list(problems) == ["count"]
    assert "0" in problems["count"] or "100" in problems["count"]


@PROPERTY
@given(st.one_of(st.booleans(), st.floats(), st.text(), st.none(), st.lists(st.integers())))
def test_an_integer_refuses_every_other_json_type(value):
    assert list(refused(job(COUNT), {"count": value})) == ["count"]


@PROPERTY
@given(st.one_of(st.floats(min_value=-1.5, max_value=2.5), st.integers(min_value=-1, max_value=2)))
def test_a_number_within_its_bounds_is_accepted_unchanged(value):
    assert typed.resolve(job(RATIO), {"ratio": value})["ratio"] == value


@PROPERTY
@given(
    st.one_of(
        st.floats(max_value=-1.5, exclude_max=True),
        st.floats(min_value=2.5, exclude_min=True),
        st.just(math.nan),
        st.booleans(),
        st.text(),
        st.none(),
    )
)
def test_a_number_out_of_bounds_not_finite_or_not_a_number_is_refused(value):
    assert list(refused(job(RATIO), {"ratio": value})) == ["ratio"]


@PROPERTY
@given(st.booleans())
def test_a_boolean_is_accepted_unchanged(value):
    assert typed.resolve(job(FLAG), {"flag": value}) == {"flag": value}


@PROPERTY
@given(st.one_of(st.integers(), st.text(), st.none(), st.floats()))
def test_a_boolean_refuses_anything_else(value):
    assert refused(job(FLAG), {"flag": value}) == {"flag": "must be true or false"}


@PROPERTY
@given(st.sampled_from(STEP.choices))
def test_a_choice_accepts_each_of_its_choices(value):
    assert typed.resolve(job(STEP), {"step": value}) == {"step": value}


@PROPERTY
@given(st.one_of(JSON_SCALARS).filter(lambda v: v not in STEP.choices))
def test_a_choice_refuses_what_is_not_listed(value):
    problems = refused(job(STEP), {"step": value})
    assert problems == {"step": 'must be one of "", "copy", "verify"'}


@PROPERTY
@given(st.datetimes(timezones=st.timezones()).filter(lambda moment: moment.utcoffset() is not None))
def test_a_date_time_with_its_zone_is_accepted_unchanged(moment):
    text = moment.isoformat()
    assert typed.resolve(job(WHEN), {"when": text}) == {"when": text}


@PROPERTY
@given(st.one_of(st.datetimes().map(lambda m: m.isoformat()), st.text(max_size=30), st.integers()))
def test_a_date_time_without_a_zone_or_not_one_is_refused(value):
    assert list(refused(job(WHEN), {"when": value})) == ["when"]


@PROPERTY
@given(st.text(max_size=12).filter(lambda t: "\x00" not in t))
def test_a_secret_within_its_length_is_accepted_unchanged(value):
    assert typed.resolve(job(TOKEN), {"token": value}) == {"token": value}


@PROPERTY
@given(st.text(min_size=13, max_size=40))
def test_a_secret_too_long_is_refused_without_its_value_in_the_words(value):
    problems = refused(job(TOKEN), {"token": value})
    assert list(problems) == ["token"]
    assert value not in problems["token"]
    with pytest.raises(InvalidParameters) as caught:
        typed.resolve(job(TOKEN), {"token": value})
    assert value not in caught.value.message


@PROPERTY
@given(st.from_regex(r"[a-z]{1,8}", fullmatch=True))
def test_a_string_matching_its_pattern_within_its_length_is_accepted(value):
    assert typed.resolve(job(CODE), {"code": value}) == {"code": value}


@PROPERTY
@given(
    st.one_of(
        st.from_regex(r"[a-z]{9,20}", fullmatch=True),
        st.text(min_size=1, max_size=8).filter(lambda t: not t.isascii() or not t.isalpha()),
        st.integers(),
    )
)
def test_a_string_too_long_off_its_pattern_or_not_text_is_refused(value):
    if isinstance(value, str) and value.isascii() and value.isalpha() and value.islower():
        return
    assert list(refused(job(CODE), {"code": value})) == ["code"]


@PROPERTY
@given(st.text(max_size=10), st.text(max_size=10))
def test_a_nul_in_any_text_is_refused_by_name(before, after):
    value = f"{before}\x00{after}"
    any_json = ParameterSpec("data", type="any")
    text = ParameterSpec("name", "")
    problems = refused(job(any_json, text), {"data": {"k": [value]}, "name": value})
    assert set(problems) == {"data", "name"}
    assert all("NUL" in why for why in problems.values())


# --- Required, defaults, unknown names, and all problems at once ---------------------------------

ALL = [COUNT, RATIO, FLAG, STEP, WHEN, TOKEN, CODE]
INVALID = {
    "count": st.one_of(st.integers(min_value=101), st.text(), st.booleans()),
    "ratio": st.one_of(st.floats(min_value=3), st.text(), st.none()),
    "flag": st.one_of(st.integers(), st.text()),
    "step": st.text(min_size=1).filter(lambda t: t not in STEP.choices),
    "when": st.text(max_size=5),
    "token": st.text(min_size=13, max_size=20),
    "code": st.from_regex(r"[A-Z]{1,4}", fullmatch=True),
}


@PROPERTY
@given(st.sets(st.sampled_from(sorted(INVALID)), min_size=1), st.data())
def test_every_invalid_parameter_is_reported_together_each_by_name(names, data):
    given_values = {name: data.draw(INVALID[name], label=name) for name in names}
    unknown = data.draw(st.sets(st.from_regex(r"x_[a-z]{1,5}", fullmatch=True), max_size=2))
    given_values.update({name: 1 for name in unknown})
    spec = job(*ALL, ParameterSpec("needed", required=True))
    with pytest.raises(InvalidParameters) as caught:
        typed.resolve(spec, given_values)
    assert set(caught.value.problems) == set(names) | unknown | {"needed"}
    assert caught.value.problems["needed"] == "is required"
    for name in names | unknown | {"needed"}:
        assert f"'{name}'" in caught.value.message
    assert [target for target, _ in caught.value.targets()] == [
        f"parameters.{name}" for name in caught.value.problems
    ]


@PROPERTY
@given(st.dictionaries(st.sampled_from([p.name for p in ALL]), st.none(), max_size=0))
def test_absent_parameters_take_their_defaults(empty):
    assert typed.resolve(job(*ALL), empty) == {p.name: p.default for p in ALL}


def test_a_declaration_whose_default_breaks_its_bounds_is_refused():
    with pytest.raises(InvalidDefinition, match="'seconds': its default should be greater"):
        ParameterSpec("seconds", -1, minimum=0)
    with pytest.raises(InvalidDefinition, match="unknown type 'colour'"):
        ParameterSpec("x", type="colour")
    with pytest.raises(InvalidDefinition, match="needs its 'choices'"):
        ParameterSpec("x", type="choice")


def test_a_data_definition_declares_the_same_types_and_bounds():
    spec = definition_from_data(
        "Echo",
        1,
        {
            "parameters": [
                {"name": "seconds", "type": "integer", "default": 5, "min": 0, "max": 60,
                 "label": "Seconds", "help": "How long"},
                {"name": "mode", "type": "choice", "choices": ["fast", "slow"], "required": True},
                {"name": "password", "type": "secret", "maxLength": 20},
            ],
            "subtasks": [{"key": "a", "kind": "SHELL_TASK", "action": {"command": "true"}}],
        },
    )  # fmt: skip
    assert [p.describe()["type"] for p in spec.parameters] == ["integer", "choice", "secret"]
    problems = refused(spec, {"seconds": -5, "password": 7})
    assert set(problems) == {"seconds", "mode", "password"}
    assert spec.parameters[0].describe() == {
        "name": "seconds", "label": "Seconds", "type": "integer", "required": False,
        "default": 5, "min": 0, "max": 60, "maxLength": None, "pattern": None, "choices": None,
        "help": "How long",
    }  # fmt: skip
    with pytest.raises(InvalidDefinition, match="unknown key"):
        definition_from_data(
            "Bad", 1, {"parameters": [{"name": "a", "minimum": 1}], "subtasks": []}
        )


def test_integers_default_to_64_bits_and_masked_hides_secrets():
    spec = job(ParameterSpec("n", 0), TOKEN)
    assert list(refused(spec, {"n": INT64_MAX + 1})) == ["n"]
    assert typed.masked(spec, {"n": 1, "token": "hunter2"}) == {"n": 1, "token": "••••••"}


def test_patterns_are_pythons_and_match_the_whole_value():
    spec = job(ParameterSpec("user", "guest", pattern=r"(?!admin\b)[a-z]+"))
    assert typed.resolve(spec, {"user": "alice"}) == {"user": "alice"}
    assert list(refused(spec, {"user": "admin"})) == ["user"]
    assert list(refused(spec, {"user": "alice!"})) == ["user"]
