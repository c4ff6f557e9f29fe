"""When the taxpayer side is open (seed: TRACS availability).

Open 07:00 to midnight Mountain time every day, closed for maintenance Thursdays
23:00-24:00, Sundays 07:00-10:00, and the first working day of each month from
17:30. Alberta statutory holidays are not working days. All of it is data in a
`Schedule`, so a deployment can change it without code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays


@dataclass(frozen=True)
class Window:
    """A closure on certain days between two local times (end None = midnight)."""

    start: time
    end: time | None
    weekday: int | None = None  # Monday 0 .. Sunday 6; None with first_working_day
    first_working_day: bool = False


@dataclass(frozen=True)
class Schedule:
    timezone: str = "America/Edmonton"
    opens: time = time(7, 0)
    closes: time | None = None  # None = midnight
    closures: tuple[Window, ...] = field(default_factory=tuple)
    always_open: bool = False
    holiday_subdivision: str = "AB"


TRACS = Schedule(
    closures=(
        Window(time(23, 0), None, weekday=3),
        Window(time(7, 0), time(10, 0), weekday=6),
        Window(time(17, 30), None, first_working_day=True),
    )
)
ALWAYS_OPEN = Schedule(always_open=True)


@dataclass(frozen=True)
class ServiceStatus:
    open: bool
    reopens_at: datetime | None  # when closed
    closes_at: datetime | None  # the next closing, when open


@lru_cache(maxsize=32)
def _holidays(year: int, subdivision: str) -> holidays.HolidayBase:
    return holidays.country_holidays("CA", subdiv=subdivision, years=year)


def is_working_day(day: date, subdivision: str = "AB") -> bool:
    return day.weekday() < 5 and day not in _holidays(day.year, subdivision)


def first_working_day(year: int, month: int, subdivision: str = "AB") -> date:
    day = date(year, month, 1)
    while not is_working_day(day, subdivision):
        day += timedelta(days=1)
    return day


def _closed_ranges(schedule: Schedule, day: date, zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
    """The closed intervals of one local day, in local time, merged."""
    start_of_day = datetime.combine(day, time(0), zone)
    end_of_day = datetime.combine(day + timedelta(days=1), time(0), zone)
    ranges = [(start_of_day, datetime.combine(day, schedule.opens, zone))]
    if schedule.closes is not None:
        ranges.append((datetime.combine(day, schedule.closes, zone), end_of_day))
    for window in schedule.closures:
        applies = (window.weekday is not None and day.weekday() == window.weekday) or (
            window.first_working_day and day == first_working_day(day.year, day.month, schedule.holiday_subdivision)
        )
        if applies:
            end = end_of_day if window.end is None else datetime.combine(day, window.end, zone)
            ranges.append((datetime.combine(day, window.start, zone), end))
    ranges.sort()
    merged: list[tuple[datetime, datetime]] = []
    for start, end in ranges:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def status_at(schedule: Schedule, now: datetime) -> ServiceStatus:
    if schedule.always_open:
        return ServiceStatus(True, None, None)
    zone = ZoneInfo(schedule.timezone)
    local = now.astimezone(zone)
    # Closed intervals over a week ahead, merged across midnight.
    ranges: list[tuple[datetime, datetime]] = []
    for offset in range(-1, 9):
        for start, end in _closed_ranges(schedule, local.date() + timedelta(days=offset), zone):
            if ranges and start <= ranges[-1][1]:
                ranges[-1] = (ranges[-1][0], max(end, ranges[-1][1]))
            else:
                ranges.append((start, end))
    for start, end in ranges:
        if start <= local < end:
            return ServiceStatus(False, end, None)
        if start > local:
            return ServiceStatus(True, None, start)
    return ServiceStatus(True, None, None)


def why_closed(schedule: Schedule, moment: datetime) -> str:
    """Why the service is (or will be) closed at `moment`: "night" outside the daily
    opening hours (it closes every night; that is not maintenance), else "maintenance"
    (one of the schedule's closure windows)."""
    local = moment.astimezone(ZoneInfo(schedule.timezone)).time()
    after_hours = local < schedule.opens or (schedule.closes is not None and local >= schedule.closes)
    return "night" if after_hours else "maintenance"


def schedule_from_config(name: str, timezone: str) -> Schedule:
    if name == "always":
        return ALWAYS_OPEN
    if name == "tracs":
        return Schedule(timezone=timezone, opens=TRACS.opens, closes=TRACS.closes, closures=TRACS.closures)
    raise ValueError(f"SERVICE_HOURS must be 'always' or 'tracs', not {name!r}")
