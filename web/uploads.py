"""Requests that carry files may be larger than any other form: a view says so
with @accepts_files, and its request gets the upload limit before anything
(the CSRF check in the access gate included) reads the body.

    @accepts_files                                   one file of UPLOAD_MAX_BYTES
    @accepts_files(files="MAX_FILES_PER_UPLOAD")     as many files as that setting says
    @accepts_files(files=3)                          three files

It also checks the files a form sent (check_files), says where documents are
kept (document_store), and sends one back as a download that is never shown as
a page (send_document).
"""
from __future__ import annotations

import io
import logging
import os

from flask import current_app, request, send_file

from domain import documents
from web.errors import render_error

log = logging.getLogger("portal.documents")
# A download is never shown as a page: saved, not sniffed, run in a sandbox if
# opened anyway, and kept by no cache.
DOWNLOAD_HEADERS = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff",
                    "Cache-Control": "private, no-store"}

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


def document_directory(config, instance_path: str) -> str:
    """Where the filesystem store keeps documents (DOCUMENT_DIR, else instance/documents)."""
    return config.get("DOCUMENT_DIR") or os.path.join(instance_path, "documents")


def document_store():
    """The store new documents go to, as this deployment is set (domain.documents.store_kind)."""
    config = current_app.config
    kind = documents.store_kind(config.get("DOCUMENT_STORE"), config["DATABASE_URL"])
    return documents.make_store(kind, document_directory(config, current_app.instance_path),
                                static_dir=current_app.extensions.get("portal.static_dir"))


def send_document(db, document):
    """The document's bytes as an attachment under its uploaded name; the error
    page (500) when its stored copy is missing or changed."""
    try:
        content = documents.content_of(db, document, document_directory(current_app.config,
                                                                        current_app.instance_path))
    except documents.Damaged:
        log.error("document %s: stored content missing or changed", document.id)
        return render_error(500, title="We cannot open this document just now",
                            message="Its stored copy could not be read. Contact us and quote the document's name.")
    return attachment(content, document.content_type, document.uploaded_name or "document")


def attachment(content: bytes, mimetype: str, name: str):
    """Bytes sent as a download under `name`, never shown as a page (DOWNLOAD_HEADERS,
    which web.headers applies last, over the site's own)."""
    response = send_file(io.BytesIO(content), mimetype=mimetype, as_attachment=True, download_name=name,
                         conditional=False, etag=False, max_age=None)
    response.headers.update(DOWNLOAD_HEADERS)
    response.download_headers = DOWNLOAD_HEADERS
    return response


def chosen_files(field_name: str) -> list:
    """The files sent in a form's file field (an empty field sends one with no name)."""
    return [f for f in request.files.getlist(field_name) if f.filename]


def check_files(chosen: list) -> tuple[list, list[str]]:
    """The chosen files checked by domain.documents, within the number and the
    size the settings allow: (those fit to keep, the messages for those refused)."""
    max_files, max_bytes = current_app.config["MAX_FILES_PER_UPLOAD"], current_app.config["UPLOAD_MAX_BYTES"]
    if len(chosen) > max_files:
        return [], [f"Select up to {max_files} files at a time"]
    return documents.check_all([(f.filename, f.stream.read(max_bytes + 1)) for f in chosen], max_bytes)


def upload_limits() -> dict:
    """What a file field's hint says: the types, the size and how many at once."""
    return {"max_size": documents.size_text(current_app.config["UPLOAD_MAX_BYTES"]),
            "max_files": current_app.config["MAX_FILES_PER_UPLOAD"], "accepted": documents.ACCEPTED_LIST,
            "accept": documents.ACCEPT_ATTRIBUTE}
