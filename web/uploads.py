"""Requests that carry files may be larger than any other form: a view says so
with @accepts_files, and its request gets the upload limit before anything
(the CSRF check in the access gate included) reads the body.

    @accepts_files                                   one file of UPLOAD_MAX_BYTES
    @accepts_files(files="MAX_FILES_PER_UPLOAD")     as many files as that setting says
    @accepts_files(files=3)                          three files
"""
from __future__ import annotations

from flask import current_app, request

# Room for the form's other fields and the multipart framing around the file.
_FORM_ALLOWANCE = 64 * 1024
# Each further file's part headers (its name may be long) and boundary.
_PART_ALLOWANCE = 8 * 1024


def accepts_files(view=None, *, files: int | str = 1):
    """Mark a view as taking files: bare for one file, or `files=` a number or
    the name of the setting that holds it."""
    def mark(function):
        function.accepts_files = files
        return function

    return mark(view) if view is not None else mark


def file_count(files, config) -> int:
    if isinstance(files, bool):  # a view marked by hand with `accepts_files = True`
        return 1
    if isinstance(files, str):
        return max(1, int(config.get(files) or 1))
    return max(1, int(files))


def body_limit(config, files=1) -> int:
    """The largest request body a view taking `files` files accepts."""
    count = file_count(files, config)
    return config["UPLOAD_MAX_BYTES"] * count + _FORM_ALLOWANCE + _PART_ALLOWANCE * (count - 1)


def apply_limit() -> None:
    view = current_app.view_functions.get(request.endpoint or "")
    files = getattr(view, "accepts_files", None) if view is not None else None
    if files:
        request.max_content_length = body_limit(current_app.config, files)
