"""Quartz cron expressions in words, for the schedule pages ("every Sunday at 00:15").

Only the shapes people build with the page's builder (and a few common hand-written ones)
get a sentence; anything else reads "cron <expression>", which is never wrong.
"""

from __future__ import annotations

from taskcenter.schedules import cron
from taskcenter.schedules.cron import (
    ALL_SPEC,
    DAY_OF_MONTH,
    DAY_OF_WEEK,
    HOUR,
    MINUTE,
    MONTH,
    NO_SPEC,
    SECOND,
    YEAR,
)

DAY_WORDS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}
FULL = {SECOND: 60, MINUTE: 60, HOUR: 24, DAY_OF_MONTH: 31, MONTH: 12, DAY_OF_WEEK: 7}


def describe(expression: str, zone: str | None = None) -> str:
    """A short English description; the zone, when given, is appended in parentheses.

    Raises cron.InvalidCron for an expression Quartz refuses.
    """
    parsed = cron.parse(expression)
    words = _sentence(parsed) or f"cron {parsed.expression}"
    return f"{words} ({zone})" if zone else words


def _values(expression: cron.CronExpression, kind: int) -> list[int]:
    return [value for value in expression.values[kind] if value not in (ALL_SPEC, NO_SPEC)]


def _every(expression: cron.CronExpression, kind: int) -> bool:
    return len(_values(expression, kind)) == FULL[kind]


def _step(expression: cron.CronExpression, kind: int) -> int | None:
    """n when the field is exactly 0, n, 2n, ... (every n units), else None."""
    values = _values(expression, kind)
    if len(values) < 2 or values[0] != 0:
        return None
    step = values[1]
    return step if values == list(range(0, FULL[kind], step)) else None


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _sentence(expression: cron.CronExpression) -> str | None:
    if not _every(expression, MONTH) or ALL_SPEC not in expression.values[YEAR]:
        return None
    seconds, minutes, hours = (_values(expression, kind) for kind in (SECOND, MINUTE, HOUR))
    every_day = _fires_every_day(expression)
    if every_day:
        frequent = _frequent(expression, seconds, minutes, hours)
        if frequent:
            return frequent
    clock = _clock(seconds, minutes, hours)
    if clock is None:
        return None
    if every_day:
        return f"every day at {clock}"
    return _at(clock, _days(expression))


def _fires_every_day(expression: cron.CronExpression) -> bool:
    """Every day of every month: all days of the month (with '?' for the weekday), or all
    weekdays (with '?' for the day of the month), and no L, W or # in either."""
    p = expression.parsed
    if p.last_day_of_week or p.nth_day_of_week:
        return False
    every_day_of_month = (
        NO_SPEC in expression.values[DAY_OF_WEEK]
        and _every(expression, DAY_OF_MONTH)
        and not (p.last_day_of_month or p.nearest_weekday)
    )
    every_weekday = NO_SPEC in expression.values[DAY_OF_MONTH] and _every(expression, DAY_OF_WEEK)
    return every_day_of_month or every_weekday


def _clock(seconds: list[int], minutes: list[int], hours: list[int]) -> str | None:
    """ "00:15" (or "00:15:30"): one time of day, or None when the fields name several."""
    if len(seconds) != 1 or len(minutes) != 1 or len(hours) != 1:
        return None
    return f"{hours[0]:02d}:{minutes[0]:02d}" + (f":{seconds[0]:02d}" if seconds[0] else "")


def _at(clock: str, days: str | None) -> str | None:
    """ "at 00:15 on day 1 of every month", "every Sunday at 00:15"."""
    if not days:
        return None
    return f"at {clock} {days}" if days.startswith("on ") else f"{days} at {clock}"


def _frequent(expression, seconds, minutes, hours) -> str | None:
    """Schedules that fire several times an hour or a day, every day."""
    if _every(expression, HOUR):
        every_hour = _every_hour(expression, seconds, minutes)
        if every_hour:
            return every_hour
    hour_step = _step(expression, HOUR)
    if hour_step and seconds == [0] and len(minutes) == 1:
        return f"every {hour_step} hours" + _at_minute(minutes[0])
    return None


def _every_hour(expression, seconds, minutes) -> str | None:
    """Every hour: every second, every n seconds, every minute, every n minutes, or once
    an hour."""
    every_minute = _every(expression, MINUTE)
    if every_minute and _every(expression, SECOND):
        return "every second"
    second_step = _step(expression, SECOND)
    if second_step and every_minute:
        return f"every {second_step} seconds"
    if seconds != [0]:
        return None
    minute_step = _step(expression, MINUTE)
    if every_minute:
        return "every minute"
    if minute_step:
        return f"every {minute_step} minutes"
    if len(minutes) == 1:
        return "every hour" + _at_minute(minutes[0])
    return None


def _at_minute(minute: int) -> str:
    return f" at minute {minute}" if minute else ""


def _days(expression: cron.CronExpression) -> str | None:
    if NO_SPEC in expression.values[DAY_OF_MONTH]:
        return _days_of_week(expression)
    return _days_of_month(expression)


def _days_of_week(expression: cron.CronExpression) -> str | None:
    p = expression.parsed
    weekdays = _values(expression, DAY_OF_WEEK)
    if (p.last_day_of_week or p.nth_day_of_week) and len(weekdays) != 1:
        return None
    if p.last_day_of_week:
        return f"on the last {DAY_WORDS[weekdays[0] - 1]} of every month"
    if p.nth_day_of_week:
        ordinal = ORDINALS[p.nth_day_of_week]
        return f"on the {ordinal} {DAY_WORDS[weekdays[0] - 1]} of every month"
    if weekdays == [2, 3, 4, 5, 6]:
        return "every weekday"
    return "every " + _join([DAY_WORDS[day - 1] for day in weekdays])


def _days_of_month(expression: cron.CronExpression) -> str | None:
    p = expression.parsed
    days = _values(expression, DAY_OF_MONTH)
    if p.last_day_of_month:
        before = f"{p.last_day_offset} days before " if p.last_day_offset else ""
        weekday = "last weekday" if p.nearest_weekday and not before else "last day"
        nearest = "the weekday nearest " if p.nearest_weekday and before else ""
        return f"on {nearest}{before}the {weekday} of every month"
    if p.nearest_weekday:
        return f"on the weekday nearest day {days[0]} of every month" if len(days) == 1 else None
    label = "day" if len(days) == 1 else "days"
    return f"on {label} " + _join([str(day) for day in days]) + " of every month"
