"""The address at the start of every link we email (a confirmation, a password reset,
an invitation letter's registration address).

It is PUBLIC_BASE_URL. In development with no PUBLIC_BASE_URL set, it is instead the
loopback address and port the request came in on, so `make run PORT=8123`, `flask run`
on 5000 or gunicorn on any port email links that open on the server that sent them. Only
a loopback host is taken from the request: a forged Host header can point a link at
nothing but the reader's own machine, and production never looks at it."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, has_request_context, request, url_for

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def link_base() -> str:
    """The scheme, host and port emailed links start with, without a trailing slash."""
    configured = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    if not current_app.config.get("LINKS_FOLLOW_THE_SERVED_ADDRESS") or not has_request_context():
        return configured
    served = urlsplit(request.host_url)
    if served.hostname not in LOOPBACK_HOSTS:
        return configured
    return f"{served.scheme}://{served.netloc}"


def emailed_link(endpoint: str, **values) -> str:
    """The full address of a page, for an email."""
    return link_base() + url_for(endpoint, **values)
