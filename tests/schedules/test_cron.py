"""Quartz cron fire times and refusals, checked against the real Quartz.

tests/schedules/quartz_cases.json was written by Quartz 2.3.2 itself
(tests/schedules/quartz_reference/generate.sh); no Java is needed to run these tests.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from taskcenter.schedules import cron

HERE = Path(__file__).resolve().parent
REFERENCE = json.loads((HERE / "quartz_cases.json").read_text())
CASES = REFERENCE["cases"]
ROOT = HERE.parent.parent

# Where Quartz fails with a Java runtime exception instead of a message, only the refusal is
# compared: the reason given here explains the problem instead of naming the exception.
JAVA_RUNTIME_FAILURE = "Illegal cron expression format (java."

# Expressions Quartz accepts but cannot evaluate: it throws on every evaluation, loops for
# ever, or searches a century to find nothing. We refuse them with a reason (or, for the
# loop, report no fire time) on purpose.
DEVIATIONS = {
    "L * * ? * *": "refused: Quartz throws NoSuchElementException (no seconds value)",
    "0 L * ? * *": "refused: Quartz throws NoSuchElementException (no minutes value)",
    "0 0 0 1 L ?": "refused: Quartz throws NoSuchElementException (no month value)",
    "0 0 0 1 * ? L": "refused: Quartz accepts a year field with no year and never fires",
    "0 0 0 0W * ?": "refused: Quartz loops for ever on a day-of-month of 0",
    "0 0 0 ? * 8#1": "refused: Quartz does not check the day before '#' and never fires",
    "0 0 10 L-30W * ?": "no fire time: Quartz loops for ever in February",
}


def _case_id(case: dict) -> str:
    return f"{case['expression']!r}@{case['zone']}@{case['after']}"


def _iso(moments: list[datetime]) -> list[str]:
    return [moment.strftime("%Y-%m-%dT%H:%M:%SZ") for moment in moments]


# The deviations have their own test below; every other case must match Quartz.
MATCHED_CASES = [case for case in CASES if case["expression"] not in DEVIATIONS]


@pytest.mark.parametrize("case", MATCHED_CASES, ids=_case_id)
def test_matches_quartz(case):
    expression = case["expression"]
    if "error" in case:
        with pytest.raises(cron.InvalidCron) as refused:
            cron.parse(expression)
        if not case["error"].startswith(JAVA_RUNTIME_FAILURE):
            assert refused.value.reason == case["error"]
        return
    after = datetime.fromisoformat(case["after"])
    fires = cron.parse(expression).next_fire_times(after, case["zone"], case["count"])
    assert _iso(fires) == case["fires"]
    assert all(fire.tzinfo is UTC for fire in fires)


@pytest.mark.parametrize("expression", sorted(DEVIATIONS))
def test_deviations_from_quartz(expression):
    if expression == "0 0 10 L-30W * ?":
        # It answers (nothing, ever); how fast is benchmarks/scheduler_throughput.py's.
        start = datetime(2024, 1, 15, tzinfo=UTC)
        assert cron.parse(expression).next_fire_times(start, "UTC", 3) == []
        return
    with pytest.raises(cron.InvalidCron):
        cron.parse(expression)


def test_reference_covers_what_the_issue_asks_for():
    expressions = " ".join(case["expression"] for case in CASES)
    for special in ("?", "L-", "L ", "W", "LW", "#", "/", "-", ","):
        assert special in expressions
    zones = {case["zone"] for case in CASES}
    assert {"GMT+08:00", "GMT-05:30", "Europe/Berlin", "America/New_York"} <= zones
    assert {"Australia/Sydney", "Australia/Lord_Howe"} <= zones
    assert sum("error" in case for case in CASES) >= 50
    assert len(CASES) >= 150


def test_seed_expression_fires_on_sundays_at_00_15():
    fires = cron.parse("0 15 0 ? * 1").next_fire_times(
        datetime(2024, 1, 15, tzinfo=UTC), cron.parse_zone("GMT+08:00"), 3
    )
    local = [fire.astimezone(timezone(timedelta(hours=8))) for fire in fires]
    assert [(moment.isoweekday(), moment.hour, moment.minute) for moment in local] == [
        (7, 0, 15)
    ] * 3


def test_generator_is_documented_and_kept():
    script = HERE / "quartz_reference" / "generate.sh"
    assert script.exists() and (HERE / "quartz_reference" / "Generate.java").exists()
    assert "libquartz2-java" in script.read_text()
    assert (HERE / "quartz_reference" / "inputs.tsv").exists()
    manual = (ROOT / "docs" / "schedules.md").read_text()
    assert "tests/schedules/quartz_reference/generate.sh" in manual
    assert REFERENCE["generator"] == "tests/schedules/quartz_reference/generate.sh"


@pytest.mark.parametrize(
    ("expression", "zone"),
    [("0 0 0 30 2 ?", "UTC"), ("0 0 0 1 1 ? 2020", "Europe/Berlin"), ("0 0 0 31 4,6 ?", "UTC")],
)
def test_an_expression_that_never_fires_answers_quickly(expression, zone):
    # It answers at all; how fast is timed by benchmarks/scheduler_throughput.py.
    assert cron.parse(expression).next_fire_times(datetime.now(UTC), zone, 5) == []


def test_a_far_fire_time_is_found_by_jumping_fields():
    # Timed by benchmarks/scheduler_throughput.py.
    fires = cron.parse("59 59 23 31 12 ? 2099").next_fire_times(
        datetime(2024, 1, 1, tzinfo=UTC), "UTC", 2
    )
    assert _iso(fires) == ["2099-12-31T23:59:59Z"]


def test_after_must_be_aware_and_fractions_of_a_second_are_dropped():
    every_second = cron.parse("* * * * * ?")
    with pytest.raises(ValueError):
        every_second.next_fire_times(datetime(2024, 1, 1), "UTC", 1)
    start = datetime(2024, 1, 1, 0, 0, 0, 900_000, tzinfo=UTC)
    assert _iso(every_second.next_fire_times(start, "UTC", 1)) == ["2024-01-01T00:00:01Z"]


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("GMT+08:00", timedelta(hours=8)),
        ("GMT-05:30", -timedelta(hours=5, minutes=30)),
        ("GMT+8", timedelta(hours=8)),
        ("GMT+0545", timedelta(hours=5, minutes=45)),
        ("GMT", timedelta(0)),
        ("UTC", timedelta(0)),
    ],
)
def test_parse_zone_fixed_offsets(text, offset):
    assert cron.parse_zone(text).utcoffset(None) == offset


def test_parse_zone_iana():
    zone = cron.parse_zone("Asia/Shanghai")
    assert zone.utcoffset(datetime(2024, 1, 1)) == timedelta(hours=8)


@pytest.mark.parametrize("text", ["Mars/Olympus", "GMT+25:00", "GMT+08:61", "+08:00", "", "../x"])
def test_parse_zone_refuses(text):
    with pytest.raises(cron.InvalidZone) as refused:
        cron.parse_zone(text)
    assert refused.value.reason


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("0 0 0 ? * ?", "'?' can only be specified for Day-of-Month -OR- Day-of-Week."),
        ("0 0 0 * * *", "Support for specifying both a day-of-week AND a day-of-month"),
        ("0 0 0 ? * 0", "Day-of-Week values must be between 1 and 7"),
        ("0 0 0 ? * 6#6", "A numeric value between 1 and 5 must follow the '#' option"),
        ("0 0 0 L-40 * ?", "Offset from last day must be <= 30"),
        ("0 0 0 ? * MO", "Illegal cron expression format"),
    ],
)
def test_refusals_carry_a_reason(expression, reason):
    with pytest.raises(cron.InvalidCron) as refused:
        cron.parse(expression)
    assert refused.value.reason.startswith(reason)
    assert str(refused.value) == refused.value.reason


@pytest.mark.parametrize(
    ("expression", "reason", "hint"),
    [
        ("* * * * *", "Unexpected end of expression.",
         "Quartz needs seconds first: did you mean `0 * * * * ?`"),
        ("30 2 * * 1-5", "Unexpected end of expression.",
         "Quartz needs seconds first: did you mean `0 30 2 ? * 2-6`"),  # Unix Monday is 1
        ("0 0 12 * * *", "Support for specifying both a day-of-week AND a day-of-month",
         "Use `?` in one of them: did you mean `0 0 12 * * ?`"),
        ("0 0 12 1 * MON", "Support for specifying both a day-of-week AND a day-of-month",
         "Use `?` in one of them: did you mean `0 0 12 ? * MON`"),
        ("0 0 0 ? * ?", "'?' can only be specified",
         "Use `?` in one of them: did you mean `0 0 0 * * ?`"),
        ("0 0 0 ? * 0", "Day-of-Week values must be between 1 and 7", ""),
    ],
)  # fmt: skip
def test_refusals_of_common_mistakes_say_what_to_type(expression, reason, hint):
    # Quartz's own reason stays as Quartz words it; the hint follows it in `advice`.
    with pytest.raises(cron.InvalidCron) as refused:
        cron.parse(expression)
    assert refused.value.reason.startswith(reason)
    assert refused.value.hint == hint
    assert refused.value.advice == f"{refused.value.reason} {hint}".strip()


def test_an_expression_that_never_fires_says_why():
    now = datetime(2026, 12, 7, tzinfo=UTC)
    for expression, reason in (
        ("0 0 0 30 2 ?", "This expression never fires: February has no day 30."),
        ("0 0 0 30,31 2 ?", "This expression never fires: February has no day 30 or 31."),
        ("0 0 0 1 1 ? 2020", "This expression never fires: no date from now on matches it."),
        ("0 0 0 29 2 ?", ""),  # leap years
        ("0 0 12 * * ?", ""),
    ):
        assert cron.never_fires_reason(cron.parse(expression), "UTC", now) == reason, expression
