"""One round trip per action: htmx gets the next page in the POST's own answer.

A form's success is a 303 to the next page (post/redirect/get). Without
JavaScript the browser follows it: two round trips, which plain HTML needs. With
htmx the second one is ours to save: once the POST's answer is complete (the
transaction committed, the session saved, its cookies set), this middleware asks
the application itself for the page the 303 names, as a boosted GET carrying the
cookies the POST just set, and answers with that page and its URL (HX-Push-Url),
to replace the body. On a 2-second link that is one round trip instead of two.

Why a WSGI middleware and not a step inside the app: the GET must be a request
of its own (its own access check, its own session load, the POST's session
already saved), exactly what the browser's GET would have been.

Only a same-site path is followed, at most MAX_HOPS times; anything else (an
off-site address, a plain POST, a GET, a page that is not htmx's) passes through
untouched.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from urllib.parse import unquote_to_bytes, urlsplit

from werkzeug.http import parse_cookie

MAX_HOPS = 3

# What a GET must not inherit from the POST that led to it.
_BODY_KEYS = ("CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH")
_HTMX_REQUEST_KEYS = ("HTTP_HX_TRIGGER", "HTTP_HX_TRIGGER_NAME", "HTTP_HX_TARGET", "HTTP_HX_PROMPT")

Headers = list[tuple[str, str]]


class Answer:
    """A whole WSGI answer, read into memory (a form's answer, never a stream)."""

    def __init__(self, app: Callable, environ: dict) -> None:
        captured: dict = {}

        def start_response(status: str, headers: Headers, exc_info=None):
            captured["status"], captured["headers"] = status, list(headers)
            return lambda data: chunks.append(data)

        chunks: list[bytes] = []
        body = app(environ, start_response)
        try:
            chunks.extend(body)
        finally:
            if hasattr(body, "close"):
                body.close()
        self.status: str = captured["status"]
        self.headers: Headers = captured["headers"]
        self.body = b"".join(chunks)

    @property
    def code(self) -> int:
        return int(self.status.split(" ", 1)[0])

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)

    def set_cookies(self) -> Headers:
        return [(key, value) for key, value in self.headers if key.lower() == "set-cookie"]


def same_site_path(location: str | None) -> str | None:
    """The path and query of a Location on this site, or None (off-site, or not a path)."""
    if not location:
        return None
    parts = urlsplit(location)
    if parts.scheme or parts.netloc or not location.startswith("/") or location.startswith(("//", "/\\")):
        return None
    return location


def cookies_after(cookie_header: str, set_cookies: Headers) -> str:
    """The Cookie header a browser would send once it had taken these Set-Cookie headers."""
    jar = dict(parse_cookie(cookie_header).items())
    for _, value in set_cookies:
        pair, _, attributes = value.partition(";")
        name, _, cookie_value = pair.strip().partition("=")
        lowered = attributes.lower().replace(" ", "")
        if "max-age=0" in lowered or "expires=thu,01jan1970" in lowered:
            jar.pop(name, None)
        else:
            jar[name] = cookie_value
    return "; ".join(f"{name}={value}" for name, value in jar.items())


def get_environ(environ: dict, location: str, set_cookies: Headers) -> dict:
    """The environ of the boosted GET the browser would send for this Location."""
    target = urlsplit(location)
    script_name = environ.get("SCRIPT_NAME", "")
    path = target.path[len(script_name) :] if script_name and target.path.startswith(script_name) else target.path
    following = {key: value for key, value in environ.items() if key not in _BODY_KEYS + _HTMX_REQUEST_KEYS}
    following.update(
        REQUEST_METHOD="GET",
        PATH_INFO=unquote_to_bytes(path).decode("latin-1"),  # WSGI's PATH_INFO: decoded bytes as latin-1
        QUERY_STRING=target.query,
        HTTP_COOKIE=cookies_after(environ.get("HTTP_COOKIE", ""), set_cookies),
        HTTP_HX_REQUEST="true",
        HTTP_HX_BOOSTED="true",  # the whole page, for the body
    )
    following["wsgi.input"] = io.BytesIO(b"")
    return following


class FollowSeeOther:
    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET") in ("GET", "HEAD") or environ.get("HTTP_HX_REQUEST") != "true":
            return self.app(environ, start_response)
        answer = Answer(self.app, environ)
        final, headers = self._follow(answer, environ) if answer.code == 303 else self._stay(answer, environ)
        start_response(final.status, headers)
        return [final.body]

    @staticmethod
    def _stay(answer: Answer, environ: dict) -> tuple[Answer, Headers]:
        """A form sent back with errors (or any answer but 303) is shown where it was
        sent from: a boosted form's URL does not change to the address it posts to."""
        headers = list(answer.headers)
        if environ.get("HTTP_HX_BOOSTED") == "true" and not answer.header("HX-Push-Url"):
            headers.append(("HX-Push-Url", "false"))
        return answer, headers

    def _follow(self, answer: Answer, environ: dict) -> tuple[Answer, Headers]:
        set_cookies: Headers = []
        location = None
        hops = 0
        while answer.code in (301, 302, 303, 307, 308) and hops < MAX_HOPS:
            path = same_site_path(answer.header("Location"))
            if path is None:
                break
            set_cookies += answer.set_cookies()
            location = path
            environ = get_environ(environ, path, set_cookies)
            answer = Answer(self.app, environ)
            hops += 1
        if location is None or 300 <= answer.code < 400:
            # Not followed to the end: the browser's XHR follows what is left itself.
            return answer, set_cookies + list(answer.headers)
        return answer, [
            *set_cookies,
            *answer.headers,
            ("HX-Retarget", "body"),
            ("HX-Reswap", "innerHTML"),
            ("HX-Push-Url", location),
        ]
