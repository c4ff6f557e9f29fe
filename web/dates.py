"""Today's date where the service is (SERVICE_TIMEZONE), from the injected clock."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from flask import current_app

from web.database import now


def today() -> date:
    return now().astimezone(ZoneInfo(current_app.config["SERVICE_TIMEZONE"])).date()
