"""Unix-cron as Cloud Scheduler accepts it: five fields, evaluated on the wall clock of a time zone.

Fields, in order: minute 0-59, hour 0-23, day of month 1-31, month 1-12 or JAN-DEC, day of week
0-6 or SUN-SAT (7 is Sunday too). A field is ``*``, a value, a range ``a-b``, a step over ``*`` or
over a range (``*/15``, ``8-18/2``), or a comma-separated list of those. Names are
case-insensitive and may bound ranges (``MON-FRI``).

Day of month and day of week (crontab(5)): when both are restricted (neither starts with ``*``),
a day matches when *either* matches (``0 9 1,15 * MON`` runs on the 1st, the 15th and every
Monday); otherwise both must match, which means only the restricted one counts.

Time zones. Cloud Scheduler "runs on wall clock time" in the job's zone; Google documents that
daylight saving time can make jobs "run or not run unexpectedly" and that a job scheduled at a
time that occurs twice "may observe execution anomalies", and recommends UTC. It documents no
exact rule, so this evaluator takes the wall clock literally: a fire time is every instant at which
the zone's clock shows a matching minute. A wall time inside a spring-forward gap never shows, so
it does not fire that day (``30 2 * * *`` in Europe/Paris on the last Sunday of March); a wall
time inside a fall-back overlap shows twice, so it fires twice, at two distinct UTC instants
(``30 1 * * *`` in America/New_York on the first Sunday of November). ``dst_effects`` lists such
days for a schedule. Pure: no I/O besides the system's time zone database.

Not accepted (Cloud Scheduler does not document them): ``?``, ``L``, ``W``, ``#``, ``@daily``
and other macros, a seconds field, the English-like "every 5 minutes" syntax, a step on a single
value (``5/15``: write ``5-59/15``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class CronError(ValueError):
    """A cron expression or a time zone Cloud Scheduler would not accept; the message says why."""


_MONTHS: Final = {
    m: i
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1
    )
}
_WEEKDAYS: Final = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
# name, low, high, names
_FIELDS: Final[tuple[tuple[str, int, int, dict[str, int]], ...]] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _WEEKDAYS),
)
_MAX_DAY: Final = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}
_ELEMENT_RE: Final = re.compile(r"^(?:(\*)|([0-9A-Za-z]+)(?:-([0-9A-Za-z]+))?)(?:/([0-9]+))?$")
_QUARTZ_RE: Final = re.compile(r"[?#]|^(?:\d*[LW]|LW)$")
# A schedule that matches some day fires again within 8 years (29 February skips at most 7 years).
_HORIZON_DAYS: Final = 8 * 366 + 2


@dataclass(frozen=True)
class Cron:
    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    day_restricted: bool
    weekday_restricted: bool

    @classmethod
    def parse(cls, expression: str) -> Cron:
        """Parse five fields; raises CronError naming every bad field."""
        if not isinstance(expression, str) or not expression.strip():
            raise CronError("cron: expected five fields (minute hour day-of-month month day-of-week)")
        text = expression.strip()
        if text.startswith("@"):
            raise CronError(f"cron {text!r}: macros such as @daily are not unix-cron; write five fields")
        parts = text.split()
        if len(parts) != 5:
            hint = " (Cloud Scheduler has no seconds field)" if len(parts) == 6 else ""
            raise CronError(
                f"cron {text!r}: expected five fields (minute hour day-of-month month day-of-week), "
                f"got {len(parts)}{hint}"
            )
        problems: list[str] = []
        sets = [_parse_field(part, *spec, problems) for part, spec in zip(parts, _FIELDS, strict=True)]
        if problems:
            raise CronError(f"cron {text!r}: " + "; ".join(problems))
        minutes, hours, days, months, weekdays = sets
        weekdays = {0 if d == 7 else d for d in weekdays}
        cron = cls(
            " ".join(parts),
            tuple(sorted(minutes)),
            tuple(sorted(hours)),
            frozenset(days),
            frozenset(months),
            frozenset(weekdays),
            day_restricted=not parts[2].startswith("*"),
            weekday_restricted=not parts[4].startswith("*"),
        )
        if not (cron.day_restricted and cron.weekday_restricted) and not any(
            d <= _MAX_DAY[m] for m in cron.months for d in cron.days
        ):
            raise CronError(
                f"cron {text!r}: never fires (day {'/'.join(map(str, sorted(days)))} does not exist in "
                f"month {'/'.join(map(str, sorted(months)))})"
            )
        return cron

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = day.isoweekday() % 7 in self.weekdays
        if self.day_restricted and self.weekday_restricted:
            return dom or dow
        return dom and dow

    def _day_instants(self, day: date, zone: tzinfo) -> list[datetime]:
        """The UTC instants at which ``zone``'s wall clock shows a matching minute of ``day``."""
        out: list[datetime] = []
        for hour in self.hours:
            for minute in self.minutes:
                wall = datetime(day.year, day.month, day.day, hour, minute)
                out.extend(_instants(wall, zone))
        return sorted(set(out))

    def fires(self, zone: tzinfo, after: datetime) -> Iterator[datetime]:
        """Fire times strictly after ``after`` (an aware datetime), in order, as UTC datetimes."""
        start = _aware(after).astimezone(UTC)
        day = start.astimezone(zone).date() - timedelta(days=1)
        for _ in range(_HORIZON_DAYS):
            if self.matches_day(day):
                for instant in self._day_instants(day, zone):
                    if instant > start:
                        yield instant
            day += timedelta(days=1)

    def next_fires(self, zone: tzinfo, after: datetime, count: int) -> list[datetime]:
        out: list[datetime] = []
        for instant in self.fires(zone, after):
            if len(out) >= count:
                break
            out.append(instant)
        return out

    def between(self, zone: tzinfo, start: datetime, end: datetime) -> list[datetime]:
        """Fire times ``t`` with ``start < t <= end``."""
        out: list[datetime] = []
        stop = _aware(end).astimezone(UTC)
        for instant in self.fires(zone, start):
            if instant > stop:
                break
            out.append(instant)
        return out

    def dst_effects(self, zone: tzinfo, after: datetime, days: int = 366) -> list[str]:
        """Matching wall times in the next ``days`` that do not exist (no fire) or exist twice
        (two fires), one sentence each."""
        notes: list[str] = []
        day = _aware(after).astimezone(zone).date()
        for _ in range(days):
            if self.matches_day(day) and _offset_changes(day, zone):
                for hour in self.hours:
                    for minute in self.minutes:
                        wall = datetime(day.year, day.month, day.day, hour, minute)
                        instants = _instants(wall, zone)
                        if not instants:
                            notes.append(f"{wall:%Y-%m-%d %H:%M} does not exist in {zone}: no fire")
                        elif len(instants) > 1:
                            at = " and ".join(f"{i:%H:%MZ}" for i in instants)
                            notes.append(f"{wall:%Y-%m-%d %H:%M} occurs twice in {zone}: fires at {at}")
            day += timedelta(days=1)
        return notes


def time_zone(name: str) -> ZoneInfo:
    """The IANA zone Cloud Scheduler's ``timeZone`` names (``utc`` in any case is UTC)."""
    if not isinstance(name, str) or not name:
        raise CronError(f"time zone {name!r} must be an IANA name such as Europe/Paris or UTC")
    if name.lower() == "utc":
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(
            f"time zone {name!r} is not in the tz database (use an IANA name such as Europe/Paris or UTC)"
        ) from None


def _instants(wall: datetime, zone: tzinfo) -> list[datetime]:
    """0 instants in a gap, 2 in an overlap, else 1 (a naive wall time resolved both ways)."""
    found: list[datetime] = []
    for fold in (0, 1):
        instant = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == wall and instant not in found:
            found.append(instant)
    return sorted(found)


def _offset_changes(day: date, zone: tzinfo) -> bool:
    first = datetime(day.year, day.month, day.day, tzinfo=zone).utcoffset()
    last = datetime(day.year, day.month, day.day, 23, 59, tzinfo=zone).utcoffset()
    return first != last


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone: pass an aware datetime")
    return value


def _value(
    token: str, low: int, high: int, names: dict[str, int], field: str, problems: list[str]
) -> int | None:
    upper = token.upper()
    if upper in names:
        return names[upper]
    if not token.isdigit():
        extra = " (names: " + ", ".join(names) + ")" if names else ""
        problems.append(f"{field}: {token!r} is not a number{extra}")
        return None
    number = int(token)
    if not low <= number <= high:
        problems.append(f"{field}: {number} is out of range {low}-{high}")
        return None
    return number


def _parse_field(
    text: str, field: str, low: int, high: int, names: dict[str, int], problems: list[str]
) -> set[int]:
    values: set[int] = set()
    for element in text.split(","):
        if _QUARTZ_RE.search(element.upper()):
            problems.append(f"{field}: {element!r}: L, W, ? and # are not supported by Cloud Scheduler")
            continue
        m = _ELEMENT_RE.match(element)
        if not m:
            problems.append(f"{field}: {element!r}: expected *, a value, a range a-b, a step */n or a-b/n")
            continue
        star, first, last, step_text = m.groups()
        step = int(step_text) if step_text else 1
        if step_text is not None and step < 1:
            problems.append(f"{field}: step /{step_text} must be at least 1")
            continue
        if star:
            start, end = low, high if field != "day of week" else 6
        else:
            start_v = _value(first, low, high, names, field, problems)
            end_v = _value(last, low, high, names, field, problems) if last else start_v
            if start_v is None or end_v is None:
                continue
            if step_text is not None and last is None:
                problems.append(f"{field}: {element!r}: a step needs a range (write {first}-{high}/{step})")
                continue
            if end_v < start_v:
                problems.append(f"{field}: range {element!r} runs backwards")
                continue
            start, end = start_v, end_v
        values.update(range(start, end + 1, step))
    return values
