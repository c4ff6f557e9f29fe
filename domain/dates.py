"""A date typed as day, month and year (the GOV.UK date input), read with the GOV.UK
messages. One reader for every date a person types, so every form words its problems
the same way and points at the part that is wrong."""

from __future__ import annotations

import calendar
import re
from datetime import date

PARTS = ("day", "month", "year")


def parse_parts(day_text: str, month_text: str, year_text: str, what: str) -> tuple[date | None, str | None, str]:
    """(date, None, "date") or (None, message, part), where part is the input the
    message is about ("day", "month", "year"), or "date" for the whole date; all three
    empty is (None, None, "date"): whether a date is needed is the form's rule.
    `what` names the date in messages, like "The start date"."""
    parts = {"day": (day_text or "").strip(), "month": (month_text or "").strip(), "year": (year_text or "").strip()}
    missing = [name for name, value in parts.items() if not value]
    if len(missing) == 3:
        return None, None, "date"
    if missing:
        return None, f"{what} must include a {' and '.join(missing)}", missing[0]
    for name, value in parts.items():
        if not re.fullmatch(r"[0-9]{1,4}", value):
            return None, f"{what} must be a real date", name
    if len(parts["year"]) != 4:
        return None, "Year must include 4 numbers", "year"
    day, month, year = int(parts["day"]), int(parts["month"]), int(parts["year"])
    if not 1 <= month <= 12:
        return None, f"{what} must be a real date", "month"
    if year < 1 or not 1 <= day <= calendar.monthrange(year, month)[1]:
        return None, f"{what} must be a real date", "day" if year >= 1 else "year"
    return date(year, month, day), None, "date"


def parts_of(day: date | None) -> dict[str, str]:
    """The three inputs as a page shows a date it already has."""
    if day is None:
        return dict.fromkeys(PARTS, "")
    return {"day": str(day.day), "month": str(day.month), "year": str(day.year)}
