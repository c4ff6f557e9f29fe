"""Everything every template can use: filters, globals and context processors.

One home for them, registered by the app factory (`init_app`), so no feature's
blueprint carries what all the others' templates rely on. The macros (tables,
summary lists, form components) are templates: templates/macros/.
"""

from __future__ import annotations

import functools
from zoneinfo import ZoneInfo

from flask import Flask, current_app, g, has_request_context, session
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from domain import words, work
from domain.accounts import describe_balance, format_amount, format_number
from domain.messages import unread_count
from web.assets import asset_url
from web.database import get_db, now
from web.htmx import is_htmx, wants_fragment
from web.sessions import reauth_remaining, server_session
from web.tables import label_cells


def init_app(app: Flask) -> None:
    app.jinja_env.add_extension("jinja2.ext.do")
    app.context_processor(portal_context)
    app.context_processor(unread_messages_context)
    app.add_template_filter(local_time)
    app.add_template_filter(money)
    app.add_template_filter(balance)
    app.add_template_filter(account_number)
    app.add_template_filter(day)
    app.add_template_filter(label_cells)
    app.add_template_filter(words.event_words)
    app.add_template_filter(words.outcome_words)
    app.add_template_filter(words.humanise)
    app.add_template_filter(words.answer_text)
    app.add_template_global(staff_may)
    app.add_template_global(session_reauth_remaining)


# --- Context processors ------------------------------------------------------------


def portal_context() -> dict:
    config, extensions = current_app.config, current_app.extensions
    return {
        "asset_url": asset_url,
        "inline_css": extensions["portal.inline_css"],
        "favicon": extensions["portal.favicon"],
        "closing_at": g.get("closing_at"),
        "closing_for": g.get("closing_for", "maintenance"),
        "session_idle_seconds": config["SESSION_IDLE_SECONDS"],
        "idle_minutes": config["SESSION_IDLE_SECONDS"] // 60,
        "reauth_minutes": config["SESSION_REAUTH_SECONDS"] // 60,
        "session_warning_seconds": config["SESSION_WARNING_SECONDS"],
        "is_fragment": wants_fragment(),
        "htmx_request": is_htmx(),
        "take_notice": take_notice,
    }


def take_notice():
    """A one-time message after a redirect, kept in the server-side session."""
    return session.pop("notice", None) if "notice" in session else None


def unread_messages_context() -> dict:
    """The header's "Messages (2 unread)" for a signed-in taxpayer: one count on
    the (user_id, read_at) index. Not for staff or signed-out visitors, nor for a
    fragment (it has no header). A thread being read now is marked read once the
    page is made (g.messages_just_read), so it counts as read."""
    if not has_request_context() or wants_fragment() or not current_user.is_authenticated or current_user.is_staff:
        return {}
    try:
        unread = unread_count(get_db(), current_user.id)
    except SQLAlchemyError:
        return {}  # the page (an error page, say) is still made, without the count
    return {"unread_messages": max(0, unread - g.get("messages_just_read", 0))}


# --- Filters -----------------------------------------------------------------------


def local_time(moment, fmt: str = "%-I:%M %p on %A %-d %B %Y") -> str:
    """A moment as people here read it: in the service's time zone, "2:05 pm"."""
    if moment is None:
        return ""
    text = moment.astimezone(ZoneInfo(current_app.config["SERVICE_TIMEZONE"])).strftime(fmt)
    return text.replace("AM", "am").replace("PM", "pm")


def money(cents) -> str:
    return format_amount(int(cents))  # a SUM may come back as Decimal on PostgreSQL


def balance(cents) -> str:
    return describe_balance(int(cents))


def account_number(number: str) -> str:
    return format_number(number)


def day(value, fmt: str = "%-d %b %Y") -> str:
    return _format_day(value, fmt) if value else ""


@functools.lru_cache(maxsize=4096)
def _format_day(value, fmt: str) -> str:
    # A page of transactions shows the same few days over and over.
    return value.strftime(fmt)


# --- Globals -----------------------------------------------------------------------


def staff_may(role: str) -> bool:
    """Whether the signed-in staff member holds `role` or higher (to show only what they can use)."""
    return work.at_least(current_user._get_current_object() if current_user.is_authenticated else None, role)


def session_reauth_remaining() -> int:
    """For the page's session clock, which reads its deadlines from the page and asks
    the server only when a warning is due (one request per action: none on load)."""
    return reauth_remaining(server_session(), now(), current_app.config["SESSION_REAUTH_SECONDS"])
