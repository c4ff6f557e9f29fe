"""Figures read from the database when /metrics is scraped (web.observability)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import AuthSession, OutboxEmail


def database_figures(db: Session, now: datetime, idle_seconds: int) -> dict[str, tuple[str, float]]:
    """{metric name: (help, value)}."""
    by_status = dict(db.execute(select(OutboxEmail.status, func.count()).group_by(OutboxEmail.status)).all())
    live = (
        db.scalar(
            select(func.count())
            .select_from(AuthSession)
            .where(
                AuthSession.ended_at.is_(None),
                AuthSession.user_id.is_not(None),
                AuthSession.last_activity_at > now - timedelta(seconds=idle_seconds),
            )
        )
        or 0
    )
    return {
        "portal_outbox_pending": (
            "Emails waiting to be sent (retries included)",
            by_status.get("pending", 0) + by_status.get("sending", 0),
        ),
        "portal_outbox_failed": ("Emails given up on after every retry", by_status.get("failed", 0)),
        "portal_sessions_live": ("Signed-in sessions active within the idle limit", live),
    }
