"""Service hours on the taxpayer side: 503 with Retry-After when closed, a banner
before a closing. Health, staff and static files stay up."""

from __future__ import annotations

import math
from datetime import timedelta

from flask import current_app, g, request

from domain.service_hours import status_at
from web.access import rule_for_endpoint
from web.database import now
from web.errors import render_error


def gate():
    if rule_for_endpoint(request.endpoint).always_open:
        return None
    moment = now()
    status = status_at(current_app.extensions["portal.schedule"], moment)
    if not status.open:
        # A closed service always says when it reopens (domain.service_hours.status_at).
        reopens_in = (status.reopens_at - moment).total_seconds() if status.reopens_at is not None else 0
        retry = max(60, math.ceil(reopens_in))
        body, code = render_error(
            503, title="The service is closed for maintenance", message=None, reopens_at=status.reopens_at
        )
        return body, code, {"Retry-After": str(retry)}
    warning = timedelta(minutes=current_app.config["SERVICE_CLOSING_WARNING_MINUTES"])
    if status.closes_at is not None and status.closes_at - moment <= warning:
        g.closing_at = status.closes_at
    return None
