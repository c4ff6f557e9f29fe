"""Page or fragment: decided in one place.

A request wants a fragment when htmx sent it (HX-Request) and it is neither a
boosted navigation nor a history restore, which both need the whole page.
"""

from __future__ import annotations

from flask import Response, make_response, redirect, render_template, request
from werkzeug.wrappers import Response as BaseResponse  # what redirect() gives; Flask's Response is one


def wants_fragment() -> bool:
    # Asked several times a request (the view, the headers, the caching); the WSGI
    # environ holds the headers as they came, without werkzeug's header wrapper.
    environ = request.environ
    return (
        environ.get("HTTP_HX_REQUEST") == "true"
        and environ.get("HTTP_HX_BOOSTED") != "true"
        and environ.get("HTTP_HX_HISTORY_RESTORE_REQUEST") != "true"
    )


def is_htmx() -> bool:
    return request.environ.get("HTTP_HX_REQUEST") == "true"


def render(page: str, fragment: str, status: int = 200, **context) -> Response:
    """The page, or only its swappable region; the page includes the same partial."""
    response = make_response(render_template(fragment if wants_fragment() else page, **context), status)
    response.vary.add("HX-Request")
    return response


def see_other(location: str) -> BaseResponse:
    """Success after a POST: 303 to the next page. The browser follows it for a plain
    form; for htmx, web.follow answers with that page in the POST's own response."""
    return redirect(location, 303)


def client_redirect(location: str, status: int = 401) -> Response:
    """Send the browser (not the swap target) elsewhere: never swap a page into a fragment."""
    response = make_response("", status)
    response.headers["HX-Redirect"] = location
    return response
