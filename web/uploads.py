"""Requests that carry files may be larger than any other form: a view says so
with @accepts_files, and its request gets the upload limit before anything
(the CSRF check in the access gate included) reads the body.

    @accepts_files                                   one file of UPLOAD_MAX_BYTES
    @accepts_files(files="MAX_FILES_PER_UPLOAD")     as many files as that setting says
    @accepts_files(files=3)                          three files

It also checks the files a form sent (check_files: what they are, then the
malware scan of domain.scanning), says where documents are kept
(document_store) and how much an account may keep (quota), and sends one back
as a download that is never shown as a page, under a safe name (send_document).
"""

from __future__ import annotations

import io
import logging
import os
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from flask import Response, current_app, request, send_file
from flask_login import current_user

from domain import audit, documents, scanning
from web.errors import render_error

log = logging.getLogger("portal.documents")
# A download is never shown as a page: saved, not sniffed, run in a sandbox if
# opened anyway, and kept by no cache.
DOWNLOAD_HEADERS = {
    "Content-Security-Policy": "sandbox",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, no-store",
}

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
    return documents.make_store(
        kind,
        document_directory(config, current_app.instance_path),
        static_dir=current_app.extensions.get("portal.static_dir"),
    )


def quota() -> documents.Quota:
    """What one account may keep in documents, as this deployment is set."""
    config = current_app.config
    return documents.Quota(
        max_bytes=int(config.get("DOCUMENT_QUOTA_BYTES") or 0), max_files=int(config.get("DOCUMENT_QUOTA_FILES") or 0)
    )


def send_document(db, document):
    """The document's bytes as an attachment under its uploaded name; the error
    page (500) when its stored copy is missing or changed."""
    try:
        content = documents.content_of(db, document, document_directory(current_app.config, current_app.instance_path))
    except documents.Damaged:
        log.error("document %s: stored content missing or changed", document.id)
        return render_error(
            500,
            title="We cannot open this document just now",
            message="Its stored copy could not be read. Contact us and quote the document's name.",
        )
    return attachment(content, document.content_type, document.uploaded_name or "document")


class DownloadResponse(Response):
    """A response that must not be shown as a page: web.headers applies its
    `download_headers` last, over the site's own."""

    download_headers = DOWNLOAD_HEADERS


def attachment(content: bytes, mimetype: str, name: str):
    """Bytes sent as a download under `name`, never shown as a page (DOWNLOAD_HEADERS,
    which web.headers applies last, over the site's own)."""
    response = DownloadResponse.force_type(
        send_file(
            io.BytesIO(content),
            mimetype=mimetype,
            as_attachment=True,
            download_name=name,
            conditional=False,
            etag=False,
            max_age=None,
        )
    )
    response.headers["Content-Disposition"] = content_disposition(name)
    response.headers.update(DOWNLOAD_HEADERS)
    return response


# Names Windows keeps for devices: a file saved as "CON.pdf" or "lpt1.txt" cannot be opened there.
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}
_ASCII_UNSAFE = re.compile(r"[^A-Za-z0-9 ._()+,=@&#!~'-]")


def download_name(name: str | None) -> str:
    """A name fit to save under on any system: cleaned as for display (no folders,
    control or direction characters), no characters Windows forbids (<>:"|?*),
    and not a Windows device name."""
    name = re.sub(r'[<>:"|?*]', "_", documents.clean_name(name)) or "document"
    if name.split(".", 1)[0].strip().upper() in _WINDOWS_RESERVED:
        name = "_" + name
    return name


def content_disposition(name: str | None) -> str:
    """`attachment` with the name as RFC 6266 asks: an ASCII `filename` any browser
    reads (nothing that could end the quoted string or the header), and the
    exact name, UTF-8 and percent-encoded, in `filename*` (RFC 8187)."""
    name = download_name(name)
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    ascii_name = " ".join(_ASCII_UNSAFE.sub("_", ascii_name).split()).strip(". ")
    extension = documents.extension_of(name)
    if not ascii_name.strip("._ ") or ascii_name == extension:
        ascii_name = "document" + (extension if extension.isascii() else "")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='!#$&+^`|~')}"


def chosen_files(field_name: str) -> list:
    """The files sent in a form's file field (an empty field sends one with no name)."""
    return [f for f in request.files.getlist(field_name) if f.filename]


SCANNER_UNAVAILABLE = "We cannot check files for viruses just now, so nothing was uploaded. Try again in a few minutes"


@dataclass
class FileCheck:
    """The chosen files, checked: those fit to keep; the messages for those
    refused; and whether the malware scanner could not answer (then nothing is
    kept, and the person is asked to try again later: fail closed)."""

    accepted: list = field(default_factory=list)
    refused: list = field(default_factory=list)
    unavailable: bool = False

    @property
    def messages(self) -> list[str]:
        return [*self.refused, *([SCANNER_UNAVAILABLE] if self.unavailable else [])]


def scan(checked: list) -> tuple[list, bool]:
    """Each checked file through domain.scanning: (refusals for files carrying
    malware, whether the scanner could not answer for some file)."""
    config = current_app.config
    address = config.get("CLAMD_ADDRESS") or ""
    timeout = float(config.get("CLAMD_TIMEOUT_SECONDS") or 30)
    refused, unavailable = [], False
    for file in checked:
        verdict = scanning.scan(file.content, clamd_address=address, timeout=timeout)
        if verdict.outcome == "infected":
            message = (
                f"“{file.name}” contains a virus or other harmful content ({verdict.signature}): we cannot accept it"
            )
            refused.append(documents.Refusal(message, "malware", signature=verdict.signature, sha256=file.sha256))
        elif verdict.outcome != "clean":
            log.error("malware scan unavailable: %s", verdict.detail)
            unavailable = True
    return refused, unavailable


def check_and_scan(chosen: list, account_id: int | None = None) -> FileCheck:
    """The chosen files checked by domain.documents, within the number and the
    size the settings allow, then scanned for malware when all are fit. Every
    file refused for its content is written to the audit log."""
    max_files, max_bytes = current_app.config["MAX_FILES_PER_UPLOAD"], current_app.config["UPLOAD_MAX_BYTES"]
    if len(chosen) > max_files:
        return FileCheck(refused=[f"Select up to {max_files} files at a time"])
    result = FileCheck(*documents.check_all([(f.filename, f.stream.read(max_bytes + 1)) for f in chosen], max_bytes))
    if not result.refused:
        result.refused, result.unavailable = scan(result.accepted)
    if result.refused or result.unavailable:
        audit_refusal(account_id, result)
        result.accepted = []
    return result


def audit_refusal(account_id: int | None, result: FileCheck) -> None:
    """ "document.refused" in the audit log, in a transaction of its own (the
    request's own changes, if any, are its view's to commit or not): why each
    file was refused, and its SHA-256 when it carried malware."""
    from web.database import now

    reasons = [getattr(r, "reason", "other") for r in result.refused]
    if result.unavailable:
        reasons.append("scanner_unavailable")
    detail: dict[str, Any] = {"reasons": reasons, "endpoint": request.endpoint}
    malware = [
        {"signature": r.signature, "sha256": r.sha256}
        for r in result.refused
        if isinstance(r, documents.Refusal) and r.reason == "malware"
    ]
    if malware:
        detail["malware"] = malware
    user_id = current_user.id if current_user and current_user.is_authenticated else None
    maker = current_app.extensions["portal.sessionmaker"]
    try:
        with maker() as db:
            audit.record(
                db, now(), "document.refused", "failure", actor_user_id=user_id, account_id=account_id, **detail
            )
            db.commit()
    except Exception:  # the refusal stands, and is in the log, even if the audit write fails
        log.exception("could not audit a refused upload: %s", detail)


def check_files(chosen: list, account_id: int | None = None) -> tuple[list, list[str]]:
    """check_and_scan, as (those fit to keep, the messages for those refused):
    a scanner that cannot answer is one more message, and nothing is kept."""
    result = check_and_scan(chosen, account_id)
    return result.accepted, result.messages


def upload_limits() -> dict:
    """What a file field's hint says: the types, the size and how many at once."""
    return {
        "max_size": documents.size_text(current_app.config["UPLOAD_MAX_BYTES"]),
        "max_files": current_app.config["MAX_FILES_PER_UPLOAD"],
        "accepted": documents.ACCEPTED_LIST,
        "accept": documents.ACCEPT_ATTRIBUTE,
    }
