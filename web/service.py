"""Service hours on the taxpayer side: 503 with Retry-After when closed, a banner
before a closing. Health, staff and static files stay up."""

from __future__ import annotations

import math
from datetime import datetime, time, timedelta

from flask import current_app, g, request

from domain.service_hours import Schedule, status_at, why_closed
from web.access import rule_for_endpoint
from web.database import now
from web.errors import render_error


def gate():
    if rule_for_endpoint(request.endpoint).always_open:
        return None
    moment, schedule = now(), current_app.extensions["portal.schedule"]
    status = status_at(schedule, moment)
    if not status.open:
        # A closed service always says when it reopens (domain.service_hours.status_at).
        reopens_in = (status.reopens_at - moment).total_seconds() if status.reopens_at is not None else 0
        retry = max(60, math.ceil(reopens_in))
        body, code = render_error(503, **closed_words(schedule, moment), reopens_at=status.reopens_at)
        return body, code, {"Retry-After": str(retry)}
    warning = timedelta(minutes=current_app.config["SERVICE_CLOSING_WARNING_MINUTES"])
    if status.closes_at is not None and status.closes_at - moment <= warning:
        g.closing_at = status.closes_at
        g.closing_for = "the night" if why_closed(schedule, status.closes_at) == "night" else "maintenance"
    return None


def _hour(moment: time | None) -> str:
    """7 am, 5:30 pm, midnight: a time of day as the service hours page writes it."""
    if moment is None or moment == time(0):
        return "midnight"
    text = f"{moment.hour % 12 or 12}" + (f":{moment.minute:02d}" if moment.minute else "")
    return f"{text} {'am' if moment.hour < 12 else 'pm'}"


def closed_words(schedule: Schedule, moment: datetime) -> dict[str, str]:
    """The closed page's title and message: the nightly close is named as what it is,
    with its hours, and only a closure window is called maintenance."""
    if why_closed(schedule, moment) == "night":
        return {
            "title": "The service is closed for the night",
            "message": f"The service closes each night from {_hour(schedule.closes)} to "
            f"{_hour(schedule.opens)} Mountain time.",
        }
    return {"title": "The service is closed for maintenance", "message": "Try again later."}
