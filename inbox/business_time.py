"""Business time: deadlines that count only opening hours, skipping closed days and holidays.

Pure functions over a `BusinessCalendar` value: no database, no clock. Callers pass `now`,
so tests freeze time by passing a datetime. Opening hours are wall-clock minutes in the
workspace's time zone; every computation converts each opening to UTC, so a day on which the
clocks change counts its real length.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

Opening = tuple[int, int]  # minutes after local midnight: (540, 1080) is 09:00–18:00
Week = tuple[tuple[Opening, ...], ...]  # seven days, Monday first

MONDAY_TO_FRIDAY_9_TO_6: Week = tuple([((9 * 60, 18 * 60),)] * 5 + [(), ()])
ALWAYS_OPEN: Week = tuple([((0, 24 * 60),)] * 7)
_SEARCH_DAYS = 3 * 366  # a deadline further than this means the calendar is (almost) never open
_HHMM = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    timezone: str = "Europe/Paris"
    week: Week = MONDAY_TO_FRIDAY_9_TO_6
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if len(self.week) != 7:
            raise ValueError("a week has seven days")
        for day in self.week:
            for start, end in day:
                if not 0 <= start < end <= 24 * 60:
                    raise ValueError(f"bad opening {start}-{end}")
        ZoneInfo(self.timezone)  # fails early on an unknown zone

    @property
    def is_never_open(self) -> bool:
        return not any(self.week)

    def openings(self, day: date) -> list[tuple[datetime, datetime]]:
        """The day's opening intervals as aware UTC datetimes (empty on holidays)."""
        if day in self.holidays:
            return []
        tz = ZoneInfo(self.timezone)
        midnight = datetime.combine(day, time())
        return [
            ((midnight + timedelta(minutes=start)).replace(tzinfo=tz).astimezone(UTC),
             (midnight + timedelta(minutes=end)).replace(tzinfo=tz).astimezone(UTC))
            for start, end in sorted(self.week[day.weekday()])
        ]

    def local_date(self, at: datetime) -> date:
        return _aware(at).astimezone(ZoneInfo(self.timezone)).date()

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The moment `duration` of business time after `start` (a deadline)."""
        start = _aware(start).astimezone(UTC)
        remaining = duration
        if remaining <= timedelta(0):
            return start
        if self.is_never_open:
            raise ValueError("the calendar has no opening hours")
        day = self.local_date(start) - timedelta(days=1)  # an opening may start the evening before in UTC
        for _ in range(_SEARCH_DAYS):
            for opens, closes in self.openings(day):
                opens = max(opens, start)
                if opens >= closes:
                    continue
                available = closes - opens
                if remaining <= available:
                    return opens + remaining
                remaining -= available
            day += timedelta(days=1)
        raise ValueError("no business time found within three years")

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Business time elapsed from `start` to `end` (negative when end is before start)."""
        start, end = _aware(start).astimezone(UTC), _aware(end).astimezone(UTC)
        if end < start:
            return -self.between(end, start)
        total = timedelta(0)
        day, last = self.local_date(start) - timedelta(days=1), self.local_date(end)
        while day <= last:
            for opens, closes in self.openings(day):
                overlap = min(closes, end) - max(opens, start)
                if overlap > timedelta(0):
                    total += overlap
            day += timedelta(days=1)
        return total

    def is_open(self, at: datetime) -> bool:
        at = _aware(at).astimezone(UTC)
        day = self.local_date(at)
        return any(opens <= at < closes for d in (day - timedelta(days=1), day)
                   for opens, closes in self.openings(d))


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime: pass an aware (UTC) datetime")
    return value


# -- stored form ----------------------------------------------------------------------------
# JSON in the database and forms: seven lists (Monday first) of ["HH:MM", "HH:MM"] pairs.

def week_from_json(value: Sequence[Sequence[Sequence[str]]] | None, default: Week = MONDAY_TO_FRIDAY_9_TO_6) -> Week:
    if not value:
        return default
    if len(value) != 7:
        raise ValueError("seven days expected")
    return tuple(tuple((parse_hhmm(a), parse_hhmm(b)) for a, b in day) for day in value)


def week_to_json(week: Week) -> list[list[list[str]]]:
    return [[[format_hhmm(a), format_hhmm(b)] for a, b in day] for day in week]


def parse_hhmm(text: str) -> int:
    match = _HHMM.match((text or "").strip())
    if not match:
        raise ValueError(f"not a time of day: {text!r}")
    minutes = int(match.group(1)) * 60 + int(match.group(2))
    if minutes > 24 * 60:
        raise ValueError(f"not a time of day: {text!r}")
    return minutes


def format_hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_day_openings(text: str) -> tuple[Opening, ...]:
    """ "09:00-12:30, 13:30-18:00" → ((540, 750), (810, 1080)); empty text → closed."""
    openings = []
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        start, sep, end = part.partition("-")
        if not sep:
            raise ValueError(f"expected HH:MM-HH:MM, got {part!r}")
        a, b = parse_hhmm(start), parse_hhmm(end)
        if a >= b:
            raise ValueError(f"{part!r} ends before it starts")
        openings.append((a, b))
    return tuple(sorted(openings))


def format_day_openings(openings: Iterable[Opening]) -> str:
    return ", ".join(f"{format_hhmm(a)}-{format_hhmm(b)}" for a, b in openings)
