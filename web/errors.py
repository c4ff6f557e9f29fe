"""Error pages in the site's layout, never a stack trace."""

from __future__ import annotations

import logging
from contextlib import suppress

from flask import Flask, Response, g, make_response, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from werkzeug.exceptions import HTTPException, InternalServerError

from domain.files import StorageFull
from web.htmx import wants_fragment

log = logging.getLogger("portal.errors")

MESSAGES = {
    400: ("There is a problem with your request", "The request could not be understood. Go back and try again."),
    401: ("You need to sign in", "Sign in to continue."),
    403: (
        "You do not have access to this page",
        "Your sign-in does not give you access to this page. "
        "If you think it should, ask the person who manages the account.",
    ),
    404: (
        "Page not found",
        "If you typed the web address, check it is correct. If you pasted it, check you copied all of it.",
    ),
    405: ("There is a problem with your request", "This page cannot be used that way. Go back and try again."),
    413: ("What you sent is too large", "Go back and send less at once."),
    429: ("Too many attempts", "Wait a few minutes before you try again."),
    500: (
        "Sorry, there is a problem with the service",
        "Try again later. What you submitted has not been lost if you saw a confirmation.",
    ),
    503: ("Sorry, the service is unavailable", "Try again later."),
}

# A 404 about an account the person once used (web.access.account_or_404): the same
# status a stranger gets, but they are told why rather than left to think it vanished.
ACCESS_REMOVED = {
    "title": "You no longer have access to this account",
    "message": "Ask the account's owner if you need it again.",
}


def render_error(status: int, *, title: str | None = None, message: str | None = None, **context):
    default_title, default_message = MESSAGES.get(status, MESSAGES[500])
    template = "errors/_error.html" if wants_fragment() else "errors/error.html"
    body = render_template(
        template, status=status, title=title or default_title, message=message or default_message, **context
    )
    return body, status


def _record_not_found() -> None:
    """A 404 to a signed-in person on a protected view is an audited refusal
    (web.access.record_not_found). The answer is still the 404 if the audit log
    cannot be written: the failure is logged, never turned into a 500."""
    from web.access import record_not_found

    try:
        record_not_found()
    except SQLAlchemyError as failure:
        log.error("refusal not audited: %s", type(failure).__name__)


class Answer(Exception):
    """Raised from inside a view to answer the request with this response, as abort(404)
    answers a 404. werkzeug's abort(response) would do it too, but Flask then runs the
    response as a WSGI app and sends its body as a stream, which Flask-Compress leaves
    uncompressed (a 17 KB page instead of 5 KB)."""

    def __init__(self, response: ResponseReturnValue):
        super().__init__()
        self.response = make_response(response)


def answer(error: Answer) -> Response:
    return error.response


def register(app: Flask) -> None:
    app.register_error_handler(Answer, answer)
    app.register_error_handler(CSRFError, csrf_failed)
    app.register_error_handler(HTTPException, http_error)
    # First of the before-request steps, so a database that failed while the session
    # opened reaches database_unavailable before any view runs.
    app.before_request_funcs.setdefault(None, []).insert(0, database_failed_while_opening_the_session)
    app.register_error_handler(OperationalError, database_unavailable)
    app.register_error_handler(StorageFull, storage_full)
    app.register_error_handler(InternalServerError, internal_error)


def csrf_failed(error: CSRFError):
    from domain import audit
    from web.database import get_db, now

    db = get_db()
    db.rollback()
    actor = current_user.id if current_user.is_authenticated else None
    audit.record(db, now(), "csrf.refused", "failure", actor_user_id=actor, endpoint=request.endpoint)
    db.commit()
    return render_error(
        400,
        title="Your form has expired",
        message="For your security the form could not be sent. Go back, reload the page and try again.",
    )


def http_error(error: HTTPException):
    if error.code is None or error.code < 400:
        return error
    removed = error.code == 404 and g.get("refusal_reason") == "removed"
    if error.code == 404:
        _record_not_found()
    body, status = render_error(error.code, **(ACCESS_REMOVED if removed else {}))
    # Keep the headers the error carries: Allow on a 405 (HTTP requires it),
    # Retry-After on a 429 or 503.
    return body, status, [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]


def database_failed_while_opening_the_session() -> None:
    # web.sessions notes a database that failed before any view could run; raised
    # here, first of the before-request steps, it reaches the handler below.
    error = g.pop("database_error", None)
    if error is not None:
        raise error


def _roll_back_the_request() -> None:
    db = g.get("db")
    if db is not None:
        with suppress(SQLAlchemyError):  # a failed transaction: nothing of it is kept
            db.rollback()


def database_unavailable(error: OperationalError):
    log.error("database unavailable: %s", type(error.orig).__name__ if error.orig else "unknown")
    g.database_unavailable = True  # web.sessions then keeps nothing of this request
    _roll_back_the_request()
    body, status = render_error(503, message="We cannot reach our records just now. Try again in a minute.")
    return body, status, {"Retry-After": "60"}


def storage_full(error: StorageFull):
    # 507 Insufficient Storage (RFC 4918 11.5): the server cannot store what the
    # request needs. The file was never kept (domain.files) and the request's
    # transaction is rolled back here, so nothing is half-kept.
    log.error("document storage full: %s", error.strerror)
    _roll_back_the_request()
    body, status = render_error(
        507,
        title="We cannot keep your files just now",
        message="Nothing you sent was kept. Try again in an hour, or contact us.",
    )
    return body, status, {"Retry-After": "3600"}


def internal_error(error: InternalServerError):
    original = getattr(error, "original_exception", None)
    if isinstance(original, OperationalError):
        # The database failed after the view, saving the session (a first visit's
        # new session row): the same 503.
        return database_unavailable(original)
    return render_error(500)
