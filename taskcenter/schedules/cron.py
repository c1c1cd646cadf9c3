"""Quartz cron expressions, evaluated exactly as Quartz 2.3.2's CronExpression does.

Why not croniter? It is a Unix cron library and cannot be adapted
exactly: day-of-week is 0-6 with SUN=0 (Quartz: 1-7, SUN=1), it has no `?` and no rule that
exactly one of day-of-month/day-of-week is `?`, no `L-n` or `LW`, a different year field,
and above all different fire times around daylight-saving changes and in Quartz's quirky
corners (a `W` day computed from the 31st of a 30-day month, `1-5/0`, trailing characters
Quartz ignores). Plans come from HENGSHI, whose engine is Quartz, so the fire times must be
Quartz's. This module therefore follows Quartz's own algorithm field by field:

- `_Parser` reproduces CronExpression's parser character for character, with its refusal
  messages, and also what it silently accepts.
- `_Calendar` reproduces the parts of java.util.GregorianCalendar that the algorithm leans
  on: lenient fields (day 32 is the 1st of the next month), normalisation on every read,
  and how a wall-clock time inside a DST gap or overlap becomes an instant (see
  `wall_time_to_instant`).
- `CronExpression._time_after` is getTimeAfter: it jumps from field to field (second,
  minute, hour, day, month, year), never second by second, and gives up after the year
  Quartz gives up at, so an expression that never fires answers "no fire time" quickly.

tests/schedules/quartz_cases.json holds fire times and refusals produced by the real Quartz
(tests/schedules/quartz_reference/generate.sh); tests/schedules/test_cron.py checks every
case. Deliberate deviations, where Quartz accepts an expression and then throws or loops
for ever, are refused here with a reason (`_refuse_what_quartz_cannot_evaluate`), and a
loop that revisits an instant ends with "no fire time" instead of hanging.
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SECOND, MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK, YEAR = range(7)
FIELD_NAMES = ("seconds", "minutes", "hours", "day-of-month", "month", "day-of-week", "year")
ALL_SPEC = 99  # Quartz's marker for '*', kept in the value set as Quartz keeps it
NO_SPEC = 98  # Quartz's marker for '?'

# Quartz computes this once, when the class is loaded: "now + 100 years".
MAX_YEAR = datetime.now().year + 100
# Quartz stops looking for a fire time past this year whatever the expression says.
LAST_SEARCHED_YEAR = 2999
# Java's compiled time-zone table ends with 2037; later wall times are resolved by the
# zone's last rule, which treats a time in a spring-forward gap differently.
JAVA_ZONE_TABLE_LAST_YEAR = 2037

MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")  # Quartz numbers them 1-7
_SATURDAY, _SUNDAY = 7, 1

_FIELD_RANGE = {  # (first, last) of the values a range or step walks over
    SECOND: (0, 59),
    MINUTE: (0, 59),
    HOUR: (0, 23),
    DAY_OF_MONTH: (1, 31),
    MONTH: (1, 12),
    DAY_OF_WEEK: (1, 7),
}
_WRAP = {SECOND: 60, MINUTE: 60, HOUR: 24, DAY_OF_MONTH: 31, MONTH: 12, DAY_OF_WEEK: 7}
_INCREMENT_LIMIT = {  # value Quartz refuses above, and the number it names in the message
    SECOND: (59, 60),
    MINUTE: (59, 60),
    HOUR: (23, 24),
    DAY_OF_MONTH: (31, 31),
    DAY_OF_WEEK: (7, 7),
    MONTH: (12, 12),
}
_RANGE_REFUSAL = {  # Quartz's message for a value outside the field's _FIELD_RANGE
    SECOND: "Minute and Second values must be between 0 and 59",
    MINUTE: "Minute and Second values must be between 0 and 59",
    HOUR: "Hour values must be between 0 and 23",
    DAY_OF_MONTH: "Day of month values must be between 1 and 31",
    MONTH: "Month values must be between 1 and 12",
    DAY_OF_WEEK: "Day-of-Week values must be between 1 and 7",
}
_L_OFFSET_PATTERN = re.compile(r"L-[0-9]*W?")
_JAVA_INT = re.compile(r"[+-]?[0-9]+")


class InvalidCron(ValueError):
    """An expression Quartz refuses (or one it accepts but cannot evaluate).

    `reason` is Quartz's own message; `hint`, when there is one, says what to type instead,
    and `advice` is both, as people read them."""

    def __init__(self, reason: str, hint: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.hint = hint

    @property
    def advice(self) -> str:
        return f"{self.reason} {self.hint}" if self.hint else self.reason


class InvalidZone(ValueError):
    """A time zone that is neither an IANA name nor GMT[+-]hh[:mm]."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --- time zones -----------------------------------------------------------------------

_CUSTOM_ZONE = re.compile(r"GMT([+-])([0-9]{1,2})(?::?([0-9]{2}))?")


def parse_zone(text: str) -> tzinfo:
    """An IANA zone ("Asia/Shanghai"), or the custom ids Java accepts ("GMT+08:00",
    "GMT-05:30", "GMT+8", "GMT+0530", "GMT", "UTC"). Raises InvalidZone otherwise: Java
    silently turns an unknown id into GMT; a plan must not silently fire at the wrong hour.
    """
    text = (text or "").strip()
    if text in ("GMT", "UTC", "Z"):
        return timezone(timedelta(0), text)
    custom = _CUSTOM_ZONE.fullmatch(text)
    if custom:
        sign, hours, minutes = custom.group(1), int(custom.group(2)), int(custom.group(3) or 0)
        if hours > 23 or minutes > 59:
            raise InvalidZone(f"Unknown time zone {text!r}: hours 0-23 and minutes 0-59.")
        offset = timedelta(hours=hours, minutes=minutes) * (-1 if sign == "-" else 1)
        return timezone(offset, f"GMT{sign}{hours:02d}:{minutes:02d}")
    if not text or text.startswith(("/", ".")) or ".." in text:
        raise InvalidZone(f"Unknown time zone {text!r}.")
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidZone(
            f"Unknown time zone {text!r}: use an IANA name such as Asia/Shanghai, or GMT+08:00."
        ) from None


def wall_time_to_instant(wall: datetime, zone: tzinfo) -> datetime:
    """The instant GregorianCalendar gives a wall-clock time (naive) in `zone`.

    Java's zone table resolves an ambiguous or skipped wall time with the smaller of the two
    offsets around the transition: in an autumn overlap the second (standard-time) pass, in
    a spring gap the offset before the change, so 02:30 in a 02:00->03:00 gap is 03:30.
    Past the table (2038 on) Java's last rule reads the wall time as standard time and asks
    which offset applies then, which is the offset after the transition in both cases.
    """
    first = _offset(wall.replace(tzinfo=zone, fold=0))
    second = _offset(wall.replace(tzinfo=zone, fold=1))
    if first == second:
        offset = first
    elif wall.year > JAVA_ZONE_TABLE_LAST_YEAR:
        offset = second
    else:
        offset = min(first, second)
    return (wall - offset).replace(tzinfo=UTC)


def _offset(moment: datetime) -> timedelta:
    offset = moment.utcoffset()
    if offset is None:  # only a naive time has none, and every zone here is a tzinfo
        raise ValueError(f"{moment!r} has no UTC offset")
    return offset


class _Calendar:
    """The slice of a lenient java.util.GregorianCalendar that getTimeAfter uses."""

    def __init__(self, zone: tzinfo, instant: datetime):
        self.zone = zone
        self._load(instant)

    def _load(self, instant: datetime) -> None:
        self._instant = instant
        local = instant.astimezone(self.zone)
        self.fields = [
            local.second,
            local.minute,
            local.hour,
            local.day,
            local.month - 1,
            local.weekday(),
            local.year,
        ]
        self._dirty = False

    def set(self, which: int, value: int) -> None:
        self.fields[which] = value
        self._dirty = True

    def get(self, which: int) -> int:
        if self._dirty:
            self._normalise()
        return self.fields[which]

    def instant(self) -> datetime:
        if self._dirty:
            self._normalise()
        return self._instant

    def day_of_week(self) -> int:
        """Java's DAY_OF_WEEK: Sunday 1 ... Saturday 7."""
        return (self.get(DAY_OF_WEEK) + 1) % 7 + 1

    def add_years(self, years: int) -> None:
        """Calendar.add(YEAR, n): keeps the day of month unless the month is shorter."""
        self._normalise()
        year, month = self.fields[YEAR] + years, self.fields[MONTH] + 1
        self.fields[YEAR] = year
        self.fields[DAY_OF_MONTH] = min(self.fields[DAY_OF_MONTH], _month_length(month, year))
        self._normalise()

    def _normalise(self) -> None:
        second, minute, hour, day, month, _, year = self.fields
        year += month // 12
        month %= 12
        wall = datetime(year, month + 1, 1) + timedelta(
            days=day - 1, hours=hour, minutes=minute, seconds=second
        )
        self._load(wall_time_to_instant(wall, self.zone))


def _month_length(month: int, year: int) -> int:
    return calendar.monthrange(year, month)[1]


def _ceiling(values: list[int], value: int) -> int | None:
    """The smallest value >= `value` (TreeSet.tailSet(value).first()), or None."""
    index = bisect_left(values, value)
    return values[index] if index < len(values) else None


# --- parsing --------------------------------------------------------------------------


def _java_int(text: str) -> int:
    """Integer.parseInt: an optional sign and digits, nothing else."""
    if not _JAVA_INT.fullmatch(text) or not -(2**31) <= int(text) < 2**31:
        raise _JavaRuntimeError(f"{text!r} is not a number")
    return int(text)


class _JavaRuntimeError(Exception):
    """Where Quartz's parser fails with a Java runtime exception rather than a message."""


@dataclass
class _Parsed:
    sets: list[set[int]] = field(default_factory=lambda: [set() for _ in range(7)])
    last_day_of_week: bool = False
    nth_day_of_week: int = 0
    last_day_of_month: bool = False
    nearest_weekday: bool = False
    last_day_offset: int = 0


class _Parser:
    """CronExpression.buildExpression, with its messages and its leniency."""

    def __init__(self, expression: str):
        self.expression = expression.upper()
        self.parsed = _Parsed()

    def parse(self) -> _Parsed:
        try:
            self._parse_fields()
        except _JavaRuntimeError as error:
            raise InvalidCron(f"Illegal cron expression format ({error})") from None
        return self.parsed

    def _parse_fields(self) -> None:
        tokens = self.expression.replace("\t", " ").split()
        # Quartz reads at most seven fields and ignores whatever follows.
        for kind, token in enumerate(tokens[:7]):
            self._check_token(kind, token)
            for piece in (part for part in token.split(",") if part):
                self._store(piece, kind)
        if len(tokens) < 6:
            raise InvalidCron("Unexpected end of expression.")
        if len(tokens) == 6:
            self._store("*", YEAR)
        day_of_month_question = NO_SPEC in self.parsed.sets[DAY_OF_MONTH]
        day_of_week_question = NO_SPEC in self.parsed.sets[DAY_OF_WEEK]
        if day_of_month_question == day_of_week_question:
            raise InvalidCron(
                "Support for specifying both a day-of-week AND a day-of-month parameter is "
                "not implemented."
            )

    def _check_token(self, kind: int, token: str) -> None:
        has_list_and_l = "L" in token and len(token) > 1 and "," in token
        if kind == DAY_OF_MONTH and has_list_and_l:
            raise InvalidCron(
                "Support for specifying 'L' and 'LW' with other days of the month is not "
                "implemented"
            )
        if kind == DAY_OF_WEEK and has_list_and_l:
            raise InvalidCron(
                "Support for specifying 'L' with other days of the week is not implemented"
            )
        if kind == DAY_OF_WEEK and token.count("#") > 1:
            raise InvalidCron('Support for specifying multiple "nth" days is not implemented.')

    def _store(self, s: str, kind: int) -> None:
        c = s[0]
        if "A" <= c <= "Z" and s not in ("L", "LW") and not _L_OFFSET_PATTERN.fullmatch(s):
            self._store_name(s, kind)
        elif c == "?":
            self._store_question(s, kind)
        elif c in "*/":
            self._store_every(s, kind)
        elif c == "L":
            self._store_last(s, kind)
        elif c.isdigit() and c.isascii():
            if len(s) == 1:
                self._add(int(c), -1, -1, kind)
            else:
                value, position = int(c), 1
                if s[1].isdigit():
                    value, position = self._number(c, s, 1)
                self._store_after_number(position, s, value, kind)
        else:
            raise InvalidCron(f"Unexpected character: {c}")

    def _substring(self, s: str, start: int, end: int) -> str:
        if end > len(s):
            raise _JavaRuntimeError(f"{s!r} is too short for a three-letter name")
        return s[start:end]

    def _store_name(self, s: str, kind: int) -> None:
        name = self._substring(s, 0, 3)
        end = -1
        if kind == MONTH:
            start = _month_number(name)
            if len(s) > 3 and s[3] == "-":
                end = _month_number(self._substring(s, 4, 7))
        elif kind == DAY_OF_WEEK:
            start = _day_number(name)
            if len(s) > 3 and s[3] == "-":
                end = _day_number(self._substring(s, 4, 7))
            elif len(s) > 3 and s[3] == "#":
                self.parsed.nth_day_of_week = self._nth(s[4:])
            elif len(s) > 3 and s[3] == "L":
                self.parsed.last_day_of_week = True
        else:
            raise InvalidCron(f"Illegal characters for this position: '{name}'")
        # Anything after "MON", "MON-FRI" or "JAN" (a step included) is ignored by Quartz.
        self._add(start, end, 1 if end != -1 else 0, kind)

    def _nth(self, text: str) -> int:
        try:
            nth = _java_int(text)
        except _JavaRuntimeError:
            nth = 0
        if not 1 <= nth <= 5:
            raise InvalidCron("A numeric value between 1 and 5 must follow the '#' option")
        return nth

    def _store_question(self, s: str, kind: int) -> None:
        if len(s) > 2:  # Quartz ignores a single character after '?', refuses more
            raise InvalidCron(f"Illegal character after '?': {s[1]}")
        if kind not in (DAY_OF_WEEK, DAY_OF_MONTH):
            raise InvalidCron("'?' can only be specified for Day-of-Month or Day-of-Week.")
        if kind == DAY_OF_WEEK and not self.parsed.last_day_of_month:
            days_of_month = self.parsed.sets[DAY_OF_MONTH]
            if not days_of_month:
                raise _JavaRuntimeError("no day-of-month value")
            if max(days_of_month) == NO_SPEC:
                raise InvalidCron("'?' can only be specified for Day-of-Month -OR- Day-of-Week.")
        self._add(NO_SPEC, -1, 0, kind)

    def _store_every(self, s: str, kind: int) -> None:
        if s == "*":
            self._add(ALL_SPEC, -1, 0, kind)
            return
        if s[0] == "/" and len(s) == 1:
            raise InvalidCron("'/' must be followed by an integer.")
        position = 1 if s[0] == "*" else 0
        increment = 1
        if s[position] == "/":
            position += 1
            if position >= len(s):
                raise InvalidCron("Unexpected end of string.")
            increment = _java_int(s[position:])
            self._check_increment(increment, kind)
        self._add(ALL_SPEC, -1, increment, kind)

    def _store_last(self, s: str, kind: int) -> None:
        if kind == DAY_OF_WEEK:
            self._add(7, 7, 0, kind)  # a lone 'L' in day-of-week means Saturday
        if kind != DAY_OF_MONTH:
            return
        self.parsed.last_day_of_month = True
        position = 1
        if len(s) > position and s[position] == "-":
            if position + 1 >= len(s):
                raise _JavaRuntimeError("'L-' needs an offset")
            offset, position = self._number("0", s, position + 1)
            if offset > 30:
                raise InvalidCron("Offset from last day must be <= 30")
            self.parsed.last_day_offset = offset
        if len(s) > position and s[position] == "W":
            self.parsed.nearest_weekday = True

    def _store_after_number(self, i: int, s: str, value: int, kind: int) -> None:
        """CronExpression.checkNext: what may follow a number."""
        if i >= len(s):
            self._add(value, -1, -1, kind)
            return
        c = s[i]
        if c == "L":
            if kind != DAY_OF_WEEK:
                raise InvalidCron(f"'L' option is not valid here. (pos={i})")
            if not 1 <= value <= 7:
                raise InvalidCron("Day-of-Week values must be between 1 and 7")
            self.parsed.last_day_of_week = True
            self.parsed.sets[kind].add(value)
        elif c == "W":
            if kind != DAY_OF_MONTH:
                raise InvalidCron(f"'W' option is not valid here. (pos={i})")
            self.parsed.nearest_weekday = True
            if value > 31:
                raise InvalidCron(
                    "The 'W' option does not make sense with values larger than 31 (max number "
                    "of days in a month)"
                )
            self.parsed.sets[kind].add(value)
        elif c == "#":
            if kind != DAY_OF_WEEK:
                raise InvalidCron(f"'#' option is not valid here. (pos={i})")
            self.parsed.nth_day_of_week = self._nth(s[i + 1 :])
            self.parsed.sets[kind].add(value)
        elif c == "-":
            self._store_range(i + 1, s, value, kind)
        elif c == "/":
            if i + 1 >= len(s):
                raise InvalidCron("'/' must be followed by an integer.")
            increment, position = self._number(_digit(s, i + 1), s, i + 2)
            if position < len(s) and not s[i + 2].isdigit():
                raise InvalidCron(f"Unexpected character '{s[i + 2]}' after '/'")
            self._check_increment(increment, kind)
            self._add(value, -1, increment, kind)
        else:
            self._add(value, -1, 0, kind)  # trailing characters are ignored

    def _store_range(self, i: int, s: str, start: int, kind: int) -> None:
        end, position = self._number(_digit(s, i), s, i + 1)
        increment = 1
        if position < len(s) and s[position] == "/":
            # Quartz does not check this increment's size; 0 keeps only the start value.
            increment, _ = self._number(_digit(s, position + 1), s, position + 2)
        self._add(start, end, increment, kind)

    @staticmethod
    def _number(prefix: str, s: str, i: int) -> tuple[int, int]:
        """`prefix` followed by the digits of `s` from `i`; and the position after them."""
        digits = prefix
        while i < len(s) and s[i].isdigit() and s[i].isascii():
            digits += s[i]
            i += 1
        return int(digits), i

    @staticmethod
    def _check_increment(increment: int, kind: int) -> None:
        if kind in _INCREMENT_LIMIT:
            limit, named = _INCREMENT_LIMIT[kind]
            if increment > limit:
                raise InvalidCron(f"Increment > {named} : {increment}")

    def _add(self, value: int, end: int, increment: int, kind: int) -> None:
        """CronExpression.addToSet: range checks, then the values a range or step covers."""
        self._check_range(value, end, kind)
        values = self.parsed.sets[kind]
        if increment in (0, -1) and value != ALL_SPEC:
            values.add(value if value != -1 else NO_SPEC)
            return
        if value == ALL_SPEC and increment <= 0:
            increment = 1
            values.add(ALL_SPEC)
        first, last = _FIELD_RANGE.get(kind, (1970, MAX_YEAR))
        start = first if value in (-1, ALL_SPEC) else value
        stop = last if end == -1 else end
        if stop < start:
            if kind == YEAR:
                raise _JavaRuntimeError("Start year must be less than stop year")
            wrap = _WRAP[kind]
            for number in range(start, stop + wrap + 1, increment):
                wrapped = number % wrap
                if wrapped == 0 and kind in (MONTH, DAY_OF_WEEK, DAY_OF_MONTH):
                    wrapped = wrap
                values.add(wrapped)
        else:
            values.update(range(start, stop + 1, increment))

    @staticmethod
    def _check_range(value: int, end: int, kind: int) -> None:
        if value == ALL_SPEC or (value == NO_SPEC and kind in (DAY_OF_MONTH, DAY_OF_WEEK)):
            return
        if kind not in _RANGE_REFUSAL:
            return
        first, last = _FIELD_RANGE[kind]
        # Quartz refuses only 0 below the day-of-week range (a -1, "no value", passes).
        too_low = value == 0 if kind == DAY_OF_WEEK else value < first
        if too_low or value > last or end > last:
            raise InvalidCron(_RANGE_REFUSAL[kind])


def _digit(s: str, i: int) -> str:
    """The single digit Quartz reads with Integer.parseInt(String.valueOf(s.charAt(i)))."""
    if i >= len(s):
        raise _JavaRuntimeError(f"{s!r} ends where a number should follow")
    if not (s[i].isdigit() and s[i].isascii()):
        raise _JavaRuntimeError(f"{s[i]!r} is not a number")
    return s[i]


def _month_number(name: str) -> int:
    if name not in MONTH_NAMES:
        raise InvalidCron(f"Invalid Month value: '{name}'")
    return MONTH_NAMES.index(name) + 1


def _day_number(name: str) -> int:
    if name not in DAY_NAMES:
        raise InvalidCron(f"Invalid Day-of-Week value: '{name}'")
    return DAY_NAMES.index(name) + 1


def _refuse_what_quartz_cannot_evaluate(expression: str, parsed: _Parsed) -> None:
    """Expressions Quartz's parser accepts but its evaluator cannot handle (deviations).

    An empty value set (an 'L' in the seconds, minutes, hours, month or year field) makes
    Quartz throw NoSuchElementException on every evaluation, or never fire; a day-of-month
    of 0 (as in "0W") makes it loop for ever. Refusing them when a plan is saved is the only
    useful answer. ("L-30W" also makes Quartz loop for ever; `_time_after` stops that loop
    and reports no fire time.)
    """
    for kind in (SECOND, MINUTE, HOUR, MONTH, YEAR):
        if not parsed.sets[kind]:
            raise InvalidCron(
                f"'L' is only valid in the day-of-month and day-of-week fields, not in the "
                f"{FIELD_NAMES[kind]} field"
            )
    if 0 in parsed.sets[DAY_OF_MONTH]:
        raise InvalidCron("Day of month values must be between 1 and 31")
    # "8#1" passes Quartz's parser (the value before '#' is not checked) and never fires,
    # after a search of a hundred years.
    if any(not 1 <= day <= 7 for day in parsed.sets[DAY_OF_WEEK] - {NO_SPEC, ALL_SPEC}):
        raise InvalidCron("Day-of-Week values must be between 1 and 7")


# --- evaluation -----------------------------------------------------------------------


def parse(expression: str) -> CronExpression:
    """Parse a Quartz cron expression; raises InvalidCron(reason) as Quartz would refuse it,
    with a hint of what to type instead where the mistake is a common one."""
    if not isinstance(expression, str):
        raise InvalidCron("A cron expression must be a string.")
    try:
        parsed = _Parser(expression).parse()
    except InvalidCron as refused:
        raise InvalidCron(refused.reason, _hint(expression)) from None
    _refuse_what_quartz_cannot_evaluate(expression, parsed)
    return CronExpression(expression.strip(), parsed)


def never_fires_reason(expression: CronExpression, zone: tzinfo | str, now: datetime) -> str:
    """Why a valid expression has no fire time after `now` ("" when it has one): a plan
    saved with it would be enabled and never run."""
    if expression.next_fire_time(now, zone) is not None:
        return ""
    parsed = expression.parsed
    days = sorted(parsed.sets[DAY_OF_MONTH] - {ALL_SPEC, NO_SPEC})
    months = sorted(parsed.sets[MONTH] - {ALL_SPEC}) if ALL_SPEC not in parsed.sets[MONTH] else []
    longest = {month: _month_length(month, 2000) for month in months}  # 2000: 29 February
    if days and months and all(day > longest[month] for day in days for month in months):
        names = " or ".join(calendar.month_name[month] for month in months)
        wanted = " or ".join(str(day) for day in days)
        return f"This expression never fires: {names} has no day {wanted}."
    return "This expression never fires: no date from now on matches it."


# --- hints: what to type instead ----------------------------------------------------------

_UNIX_WEEKDAY = re.compile(r"[0-7]")


def _hint(expression: str) -> str:
    """What to type instead of a refused expression, for the two mistakes people make most:
    a Unix cron expression (five fields, no seconds) and a day given both in the month and
    in the week (Quartz wants `?` in one of them). "" when there is nothing better to say."""
    fields = expression.split()
    if len(fields) == 5:
        minute, hour, day, month, weekday = fields
        day, weekday = _one_day_field(day, _unix_weekday(weekday))
        suggestion = f"0 {minute} {hour} {day} {month} {weekday}"
        if _parses(suggestion):
            return f"Quartz needs seconds first: did you mean `{suggestion}`"
        return "Quartz needs seconds first: sec min hour day month weekday [year]."
    if len(fields) in (6, 7) and ("?" in fields[3]) == ("?" in fields[5]):
        day, weekday = _one_day_field(fields[3], fields[5])
        suggestion = " ".join([*fields[:3], day, fields[4], weekday, *fields[6:]])
        if _parses(suggestion):
            return f"Use `?` in one of them: did you mean `{suggestion}`"
        return "Use `?` in one of them (the day of the month or the day of the week)."
    return ""


def _one_day_field(day: str, weekday: str) -> tuple[str, str]:
    """Day-of-month and day-of-week with `?` in the one that says "any day"."""
    if weekday in ("*", "?"):
        return (day if day != "?" else "*"), "?"
    return "?", weekday


def _unix_weekday(weekday: str) -> str:
    """A Unix day-of-week (0 or 7 is Sunday) in Quartz's numbering (1 is Sunday)."""
    return _UNIX_WEEKDAY.sub(lambda digit: str(int(digit.group()) % 7 + 1), weekday)


def _parses(expression: str) -> bool:
    try:
        _refuse_what_quartz_cannot_evaluate(expression, _Parser(expression).parse())
    except InvalidCron:
        return False
    return True


class CronExpression:
    def __init__(self, expression: str, parsed: _Parsed):
        self.expression = expression
        self.parsed = parsed
        self.values = [sorted(values) for values in parsed.sets]

    def __repr__(self) -> str:
        return f"CronExpression({self.expression!r})"

    def next_fire_times(self, after: datetime, tz: tzinfo | str, count: int) -> list[datetime]:
        """Up to `count` fire times strictly after `after`, as aware UTC datetimes.

        Fewer (possibly none) when the expression stops firing. `after` must be aware; its
        fraction of a second is dropped, as Quartz drops milliseconds.
        """
        if after.tzinfo is None or after.utcoffset() is None:
            raise ValueError("`after` must be an aware datetime")
        zone = parse_zone(tz) if isinstance(tz, str) else tz
        current = after.astimezone(UTC).replace(microsecond=0)
        fires: list[datetime] = []
        while len(fires) < count:
            fire = self._time_after(current, zone)
            if fire is None:
                break
            fires.append(fire)
            current = fire
        return fires

    def next_fire_time(self, after: datetime, tz: tzinfo | str) -> datetime | None:
        fires = self.next_fire_times(after, tz, 1)
        return fires[0] if fires else None

    def _time_after(self, after: datetime, zone: tzinfo) -> datetime | None:
        """CronExpression.getTimeAfter, step for step: each field either fits or moves the
        calendar to its next candidate and restarts the search from there, as Quartz does."""
        seconds, minutes, hours, _, months, days_of_week, years = self.values
        after_time = after + timedelta(seconds=1)
        cl = _Calendar(zone, after_time)
        visited: set[datetime] = set()
        while True:
            if cl.get(YEAR) > LAST_SEARCHED_YEAR:
                return None
            # Quartz loops for ever when a step lands where an earlier one started: stop.
            position = cl.instant()
            if position in visited:
                return None
            visited.add(position)

            second, minute = cl.get(SECOND), cl.get(MINUTE)
            second, wrapped = _next_value(seconds, second)
            if wrapped:
                cl.set(MINUTE, minute + 1)
            cl.set(SECOND, second)

            minute, hour = cl.get(MINUTE), cl.get(HOUR)
            found, wrapped = _next_value(minutes, minute)
            if found != minute or wrapped:
                cl.set(SECOND, 0)
                cl.set(MINUTE, found)
                _set_hour(cl, hour + wrapped)
                continue
            cl.set(MINUTE, minute)

            hour, day = cl.get(HOUR), cl.get(DAY_OF_MONTH)
            found, wrapped = _next_value(hours, hour)
            if found != hour or wrapped:
                # Start of that day (same month), then the hour, DST-aware, as Quartz does.
                _midnight(cl, day + wrapped, cl.get(MONTH))
                _set_hour(cl, found)
                continue
            cl.set(HOUR, hour)

            day, month = cl.get(DAY_OF_MONTH), cl.get(MONTH) + 1
            if NO_SPEC in days_of_week:
                time_of_day = (second, minute, hour)
                kept = self._day_by_day_of_month(cl, day, month, time_of_day, after_time)
            else:
                kept = self._day_by_day_of_week(cl, day, month)
            if kept is None:
                continue
            cl.set(DAY_OF_MONTH, kept)

            month, year = cl.get(MONTH) + 1, cl.get(YEAR)
            if year > MAX_YEAR:
                return None
            found, wrapped = _next_value(months, month)
            if found != month or wrapped:
                _midnight(cl, 1, found - 1)
                cl.set(YEAR, year + wrapped)
                continue
            cl.set(MONTH, month - 1)

            year = cl.get(YEAR)
            next_year = _ceiling(years, year)
            if next_year is None:
                return None
            if next_year != year:
                _midnight(cl, 1, 0)
                cl.set(YEAR, next_year)
                continue
            cl.set(YEAR, year)
            return cl.instant()

    def _day_by_day_of_month(
        self,
        cl: _Calendar,
        day: int,
        month: int,
        time_of_day: tuple[int, int, int],
        after_time: datetime,
    ) -> int | None:
        """The day-of-month rule: the day to keep, or None after moving the calendar."""
        p = self.parsed
        days = self.values[DAY_OF_MONTH]
        year = cl.get(YEAR)
        current_day, current_month = day, month
        if p.last_day_of_month and not p.nearest_weekday:
            day = _month_length(month, year) - p.last_day_offset
            if current_day > day:
                month += 1
                if month > 12:
                    month = 1
                    current_month = 3333  # Quartz's way to force the move below
                    cl.add_years(1)
                day = 1
        elif p.nearest_weekday:
            first = 1 if p.last_day_of_month else days[0]
            target = (
                _month_length(month, year) - p.last_day_offset if p.last_day_of_month else first
            )
            day, fire = _nearest_weekday(cl.zone, target, month, year, time_of_day)
            if fire < after_time:
                day, month = first, month + 1
        else:
            found = _ceiling(days, day)
            if found is not None and found <= _month_length(month, year):
                day = found
            else:
                day, month = days[0], month + 1
        if day != current_day or month != current_month:
            _midnight(cl, day, month - 1)
            return None
        return day

    def _day_by_day_of_week(self, cl: _Calendar, day: int, month: int) -> int | None:
        """The day-of-week rule ('#', 'L' or plain days): the day to keep, or None after
        moving the calendar."""
        p = self.parsed
        days = self.values[DAY_OF_WEEK]
        last_day = _month_length(month, cl.get(YEAR))
        current = cl.day_of_week()
        if p.last_day_of_week:
            add = _days_until(current, days[0])
            if day + add > last_day:
                _midnight(cl, 1, month)
                return None
            while day + add + 7 <= last_day:
                add += 7
            if add > 0:
                _midnight(cl, day + add, month - 1)
                return None
            return day
        if p.nth_day_of_week:
            add = _days_until(current, days[0])
            shifted = add > 0
            day += add
            week = day // 7 + (1 if day % 7 else 0)
            add = (p.nth_day_of_week - week) * 7
            day += add
            if add < 0 or day > last_day:
                _midnight(cl, 1, month)
                return None
            if add > 0 or shifted:
                _midnight(cl, day, month - 1)
                return None
            return day
        wanted = _ceiling(days, current)
        add = _days_until(current, wanted if wanted is not None else days[0])
        if day + add > last_day:
            _midnight(cl, 1, month)
            return None
        if add > 0:
            _midnight(cl, day + add, month - 1)
            return None
        return day


def _next_value(values: list[int], current: int) -> tuple[int, bool]:
    """The field's next value from `current` on, and whether it wrapped round to the first
    value (which carries one into the next larger field)."""
    found = _ceiling(values, current)
    return (values[0], True) if found is None else (found, False)


def _days_until(current: int, wanted: int) -> int:
    if current < wanted:
        return wanted - current
    if current > wanted:
        return wanted + 7 - current
    return 0


def _midnight(cl: _Calendar, day: int, month_index: int) -> None:
    """Quartz's "move to 00:00:00 on this day of this (0-based, lenient) month"."""
    cl.set(SECOND, 0)
    cl.set(MINUTE, 0)
    cl.set(HOUR, 0)
    cl.set(DAY_OF_MONTH, day)
    cl.set(MONTH, month_index)


def _set_hour(cl: _Calendar, hour: int) -> None:
    """CronExpression.setCalendarHour: an hour that does not exist (a DST gap) becomes the
    next one."""
    cl.set(HOUR, hour)
    if cl.get(HOUR) != hour and hour != 24:
        cl.set(HOUR, hour + 1)


def _nearest_weekday(
    zone: tzinfo, day: int, month: int, year: int, time_of_day: tuple[int, int, int]
) -> tuple[int, datetime]:
    """The weekday nearest `day` as Quartz computes it, and its fire time at `time_of_day`.

    Quartz never leaves the month at its edges (the 1st on a Saturday gives Monday the 3rd,
    a last day on a Sunday the Friday before). It works on a second calendar normalised at
    midnight of the unshifted day and then sets day and month again, but not the year: a
    day past the month's end (31W in a 30-day month) can therefore land a year later. The
    fire time is what Quartz compares with the search start to decide whether this
    month's W day has passed.
    """
    scratch = _Calendar(zone, datetime(2000, 1, 1, tzinfo=UTC))
    _midnight(scratch, day, month - 1)
    scratch.set(YEAR, year)
    weekday = scratch.day_of_week()
    if weekday == _SATURDAY:
        day = day + 2 if day == 1 else day - 1
    elif weekday == _SUNDAY:
        day = day - 2 if day == _month_length(month, year) else day + 1
    second, minute, hour = time_of_day
    scratch.set(SECOND, second)
    scratch.set(MINUTE, minute)
    scratch.set(HOUR, hour)
    scratch.set(DAY_OF_MONTH, day)
    scratch.set(MONTH, month - 1)
    return day, scratch.instant()
