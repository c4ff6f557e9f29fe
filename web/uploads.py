"""Requests that carry files may be larger than any other form: a view says so
with @accepts_files, and its request gets the upload limit before anything
(the CSRF check in the access gate included) reads the body."""
from __future__ import annotations

from flask import current_app, request

# Room for the form's other fields and the multipart framing around the file.
_FORM_ALLOWANCE = 64 * 1024


def accepts_files(view):
    view.accepts_files = True
    return view


def apply_limit() -> None:
    view = current_app.view_functions.get(request.endpoint or "")
    if view is not None and getattr(view, "accepts_files", False):
        request.max_content_length = current_app.config["UPLOAD_MAX_BYTES"] + _FORM_ALLOWANCE
