"""The injectable clock. Production reads the system time; tests move a FrozenClock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def system_now() -> datetime:
    return datetime.now(UTC)


class FrozenClock:
    """A clock tests set and advance, so no test sleeps for a timeout."""

    def __init__(self, start: datetime | None = None):
        self.current = start or datetime(2026, 11, 23, 18, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta) -> datetime:
        self.current = self.current + timedelta(**delta)
        return self.current

    def set(self, moment: datetime) -> None:
        self.current = moment
