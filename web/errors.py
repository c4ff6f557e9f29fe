"""Error pages in the site's layout, never a stack trace."""
from __future__ import annotations

import logging

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from web.htmx import wants_fragment

log = logging.getLogger("portal.errors")

MESSAGES = {
    400: ("There is a problem with your request", "The request could not be understood. Go back and try again."),
    401: ("You need to sign in", "Sign in to continue."),
    403: ("You do not have access to this page", "Your sign-in does not give you access to this page. If you think it should, ask the person who manages the account."),
    404: ("Page not found", "If you typed the web address, check it is correct. If you pasted it, check you copied all of it."),
    405: ("There is a problem with your request", "This page cannot be used that way. Go back and try again."),
    413: ("What you sent is too large", "Go back and send less at once."),
    429: ("Too many attempts", "Wait a few minutes before you try again."),
    500: ("Sorry, there is a problem with the service", "Try again later. What you submitted has not been lost if you saw a confirmation."),
    503: ("Sorry, the service is unavailable", "Try again later."),
}


def render_error(status: int, *, title: str | None = None, message: str | None = None, **context):
    default_title, default_message = MESSAGES.get(status, MESSAGES[500])
    template = "errors/_error.html" if wants_fragment() else "errors/error.html"
    body = render_template(template, status=status, title=title or default_title,
                           message=message or default_message, **context)
    return body, status


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_failed(error):
        from domain import audit
        from web.database import get_db, now

        db = get_db()
        db.rollback()
        audit.record(db, now(), "csrf.refused", "failure", endpoint=request.endpoint)
        db.commit()
        return render_error(400, title="Your form has expired",
                            message="For your security the form could not be sent. Go back, reload the page and try again.")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.code is None or error.code < 400:
            return error
        body, status = render_error(error.code)
        # Keep the headers the error carries: Allow on a 405 (HTTP requires it),
        # Retry-After on a 429 or 503.
        return body, status, [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]

    @app.errorhandler(OperationalError)
    def database_unavailable(error):
        log.error("database unavailable: %s", type(error.orig).__name__ if error.orig else "unknown")
        return render_error(503, message="We cannot reach our records just now. Try again in a minute."), 503, {"Retry-After": "60"}

    @app.errorhandler(InternalServerError)
    def internal_error(error):
        return render_error(500)
