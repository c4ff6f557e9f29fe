"""Security and caching headers on every response, errors and fragments included."""

from __future__ import annotations

import hashlib

from flask import Response, current_app, request

from web.htmx import wants_fragment


def content_security_policy(inline_style_hash: str) -> str:
    """Scripts only from our own files; styles from our files and the one inline
    stylesheet every page carries (web.assets), named by its hash."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            f"style-src 'self' {inline_style_hash}",
            "font-src 'self'",
            "connect-src 'self'",
            "img-src 'self' data:",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "object-src 'none'",
        ]
    )


# A fragment is never a document: htmx inserts it into a page that has its own
# policy. Should one ever be opened as a document, it may load and run nothing.
# Short, because on a slow link every fragment's headers count (docs/performance.md).
FRAGMENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
_CONDITIONS = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_UNMODIFIED_SINCE")


def apply(response: Response) -> Response:
    headers = response.headers
    fragment = wants_fragment()
    headers["Content-Security-Policy"] = FRAGMENT_SECURITY_POLICY if fragment else current_app.extensions["portal.csp"]
    headers["X-Content-Type-Options"] = "nosniff"
    if not fragment:
        # These govern a document (its framing, its links, its window, its features);
        # a fragment lives inside a page that has them, so it goes without: on a slow
        # link, 170 bytes a swap (docs/performance.md).
        headers["X-Frame-Options"] = "DENY"  # for browsers older than frame-ancestors
        headers["Referrer-Policy"] = "same-origin"
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()"
    if request.is_secure:
        headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
    if fragment and _revalidated_fragment(response):
        # A fragment htmx asks for again (the same filter, the same page) costs a
        # few hundred bytes when nothing changed: the browser keeps it, privately,
        # and asks each time with its ETag; the answer is 304 when it is the same.
        # Weak, because compression does not change what it is. The browser drops
        # what it kept at sign-out (Clear-Site-Data, auth.sign_out).
        response.set_etag(hashlib.blake2b(response.get_data(), digest_size=8).hexdigest(), weak=True)
        headers["Cache-Control"] = "private, no-cache"
        if any(name in request.environ for name in _CONDITIONS):
            # Only a request that carries a condition can be answered 304 (or 412):
            # werkzeug's check, and the Date it adds for drop_date to take off, are for those.
            response.make_conditional(request)
    elif "Cache-Control" not in headers or not headers["Cache-Control"].startswith("public"):
        # Pages are personal or carry a CSRF token: nothing dynamic is kept by a
        # browser or proxy, so Back after sign-out shows nothing.
        headers["Cache-Control"] = "no-store"
    if response.mimetype == "text/html":
        response.vary.add("HX-Request")
        response.vary.add("Cookie")
    # A response that must not be shown as a page (an uploaded document) brings
    # its own, stricter, headers (a sandbox CSP, private caching).
    headers.update(getattr(response, "download_headers", None) or {})
    return response


def _revalidated_fragment(response: Response) -> bool:
    """For a fragment (the caller knows): an answer htmx may keep and ask for again."""
    return (
        request.method in ("GET", "HEAD")
        and response.status_code == 200
        and response.mimetype == "text/html"
        and not response.is_streamed
        and "Cache-Control" not in response.headers
    )


def drop_date(response: Response) -> Response:
    """The server (gunicorn, or Werkzeug's) adds Date to every response; one added
    here too, by a conditional response, would go out twice."""
    response.headers.pop("Date", None)
    return response
