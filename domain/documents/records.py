"""The Document rows: keeping checked files (tied to an account, one of its
requests, a draft or a secure message's post), the per-account quota checked in
the transaction that keeps them, and reading and listing them. Plain functions,
no Flask.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from domain import audit, requests
from domain.documents.content import KINDS, Checked, clean_text
from domain.documents.stores import DatabaseStore, FilesystemStore, new_stored_name
from models import MAX_ID, Account, Document, DocumentContent, Draft, ServiceRequest, User

# Kinds a document can be tied to in "What is it about?".
ABOUT_KINDS = ("return", "claim", "amended_return", "amended_claim", "objection", "waiver")
MAX_DESCRIPTION = 200

# --- Keeping them ----------------------------------------------------------------------


@dataclass
class Uploaded:
    documents: list[Document]
    request: ServiceRequest | None  # the "documents" request (None for a draft's upload)
    created: bool  # False: this key (or these files, for a draft) had been uploaded before


@dataclass(frozen=True)
class Quota:
    """What one account may keep in all: bytes and files (0: no limit)."""

    max_bytes: int = 0
    max_files: int = 0


class QuotaExceeded(Exception):
    """The files would take the account past its quota; nothing was kept."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def enforce_quota(db: Session, account_id: int, files: list[Checked], quota: Quota) -> None:
    """Hold the account's row, then count what it keeps: two uploads at the same
    moment (two tabs, two servers) take turns here, so the second counts the
    first's files and both cannot slip under the quota. The hold lasts until the
    caller's commit or rollback (PostgreSQL: a row lock; SQLite: the write lock)."""
    if not files or not (quota.max_bytes > 0 or quota.max_files > 0):
        return
    db.execute(
        update(Account)
        .where(Account.id == account_id)
        .values(status=Account.status)
        .execution_options(synchronize_session=False)
    )
    used_bytes, used_files = db.execute(
        select(func.coalesce(func.sum(Document.size_bytes), 0), func.count(Document.id)).where(
            Document.account_id == account_id
        )
    ).one()
    adding = sum(len(f.content) for f in files)
    these = "this file" if len(files) == 1 else f"these {len(files)} files"
    if quota.max_files > 0 and used_files + len(files) > quota.max_files:
        raise QuotaExceeded(
            f"This account can keep up to {quota.max_files:,} documents and already has "
            f"{used_files:,}, so {these} cannot be added. Contact us if you need to send more"
        )
    if quota.max_bytes > 0 and used_bytes + adding > quota.max_bytes:
        room = max(quota.max_bytes - used_bytes, 0)
        raise QuotaExceeded(
            f"This account can keep up to {human_size(quota.max_bytes)} of documents and has "
            f"{human_size(room)} left, so {these} ({human_size(adding)}) cannot be added. "
            "Contact us if you need to send more"
        )


def _add(
    db: Session,
    now: datetime,
    *,
    store,
    account_id: int,
    user_id: int,
    files: list[Checked],
    description: str,
    service_request_id: int | None,
    draft_id: int | None,
    written: list[str],
    message_post_id: int | None = None,
    quota: Quota | None = None,
) -> list[Document]:
    if quota is not None:
        enforce_quota(db, account_id, files, quota)
    kept = []
    for checked in files:
        stored_name = new_stored_name()
        store.put(db, stored_name, checked.content)
        if store.kind == "filesystem":
            written.append(stored_name)
        document = Document(
            account_id=account_id,
            service_request_id=service_request_id,
            draft_id=draft_id,
            stored_name=stored_name,
            uploaded_name=checked.name,
            content_type=checked.content_type,
            size_bytes=len(checked.content),
            sha256=checked.sha256,
            storage=store.kind,
            description=description,
            uploaded_at=now,
            uploaded_by_user_id=user_id,
            message_post_id=message_post_id,
        )
        db.add(document)
        kept.append(document)
    db.flush()
    for document in kept:
        audit.record(
            db,
            now,
            "document.uploaded",
            actor_user_id=user_id,
            account_id=account_id,
            document=document.id,
            sha256=document.sha256,
            size=document.size_bytes,
            storage=store.kind,
        )
    return kept


def _summary(files: list[Checked], about: ServiceRequest | None) -> str:
    count = f"{len(files)} supporting document{'s' if len(files) != 1 else ''}"
    where = f" for {about.reference}" if about is not None else ""
    return f"{count}{where}: {', '.join(f.name for f in files)}"[:300]


def upload(
    db: Session,
    now: datetime,
    *,
    store,
    account,
    user_id: int,
    files: list[Checked],
    description: str = "",
    key: str,
    about: ServiceRequest | None = None,
    draft: Draft | None = None,
    written: list[str],
    quota: Quota | None = None,
) -> Uploaded:
    """Keep checked files. Tied to a draft: its documents (a file already tied to it
    is not kept twice). Otherwise a "documents" request made idempotently on `key`
    (a retry answers the first upload and keeps nothing more), the documents tied
    to `about` when given, else to that request. Names of files written to a disk
    are added to `written`, so the caller can remove them if the commit fails
    (see commit_or_discard). With a quota, QuotaExceeded when the files do not fit
    (checked in this transaction, after the account's row is held). The caller commits."""
    description = clean_text(description)[:MAX_DESCRIPTION]
    try:
        if draft is not None and draft.submitted_request_id is None:
            kept = _add(
                db,
                now,
                store=store,
                account_id=account.id,
                user_id=user_id,
                files=_new_to_draft(db, draft, files),
                description=description,
                service_request_id=None,
                draft_id=draft.id,
                written=written,
                quota=quota,
            )
            return Uploaded(kept, None, bool(kept))
        if draft is not None:  # already sent: the documents go with the request it became
            about = db.get(ServiceRequest, draft.submitted_request_id)
        return _upload_as_request(
            db,
            now,
            store=store,
            account=account,
            user_id=user_id,
            files=files,
            description=description,
            key=key,
            about=about,
            written=written,
            quota=quota,
        )
    except BaseException:
        store.discard(written)
        written.clear()
        raise


def _new_to_draft(db: Session, draft: Draft, files: list[Checked]) -> list[Checked]:
    """The files not tied to the draft already (the same bytes under the same name), each once."""
    fresh, seen = [], set()
    for checked in files:
        twin = db.scalar(
            select(Document.id)
            .where(
                Document.draft_id == draft.id,
                Document.sha256 == checked.sha256,
                Document.uploaded_name == checked.name,
            )
            .limit(1)
        )
        if twin is None and (checked.sha256, checked.name) not in seen:
            seen.add((checked.sha256, checked.name))
            fresh.append(checked)
    return fresh


def _upload_as_request(
    db: Session,
    now: datetime,
    *,
    store,
    account,
    user_id: int,
    files: list[Checked],
    description: str,
    key: str,
    about: ServiceRequest | None,
    written: list[str],
    quota: Quota | None,
) -> Uploaded:
    """A "documents" request made once on `key`, the files tied to it (or to `about`)."""
    made: list[Document] = []

    def build(db_, request):
        made.extend(
            _add(
                db_,
                now,
                store=store,
                account_id=account.id,
                user_id=user_id,
                files=files,
                description=description,
                service_request_id=about.id if about is not None else request.id,
                draft_id=None,
                written=written,
                quota=quota,
            )
        )
        data = requests.answers(request)
        data["documents"] = [document.id for document in made]
        request.data = json.dumps(data, sort_keys=True)

    result = requests.submit(
        db,
        now,
        account=account,
        user_id=user_id,
        kind="documents",
        key=key,
        summary=_summary(files, about),
        data=_request_data(files, description, about),
        build=build,
    )
    if not result.created:
        store.discard(written)  # another worker made it first: its files stand, these go
        written.clear()
        return Uploaded(documents_of_upload(db, result.request), result.request, False)
    return Uploaded(made, result.request, True)


def _request_data(files: list[Checked], description: str, about: ServiceRequest | None) -> dict:
    """What the "documents" request records: its files, their description and what they are about."""
    return {
        "files": [
            {"name": f.name, "type": KINDS[f.kind].short, "size": len(f.content), "sha256": f.sha256} for f in files
        ],
        "description": description,
        "about": about.reference if about is not None else "",
    }


def attach_to_post(
    db: Session,
    now: datetime,
    *,
    store,
    account_id: int,
    user_id: int,
    post_id: int,
    files: list[Checked],
    written: list[str],
    quota: Quota | None = None,
) -> list[Document]:
    """Keep checked files as the attachments of a secure message's post. No
    "documents" request is made: the message itself is what the agency answers.
    The caller commits (see commit_or_discard)."""
    try:
        return _add(
            db,
            now,
            store=store,
            account_id=account_id,
            user_id=user_id,
            files=files,
            description="",
            service_request_id=None,
            draft_id=None,
            written=written,
            message_post_id=post_id,
            quota=quota,
        )
    except BaseException:
        store.discard(written)
        written.clear()
        raise


def documents_of_upload(db: Session, request: ServiceRequest) -> list[Document]:
    ids = requests.answers(request).get("documents") or []
    if not ids:
        return []
    return list(db.scalars(select(Document).where(Document.id.in_([int(i) for i in ids])).order_by(Document.id)))


# --- Reading them ----------------------------------------------------------------------


def of_request(db: Session, request_id: int) -> list[Document]:
    """The documents sent with a request, in the order they were uploaded."""
    query = select(Document).where(Document.service_request_id == request_id)
    return list(db.scalars(query.order_by(Document.uploaded_at, Document.id)))


def find(db: Session, account_id: int, document_id: int) -> Document | None:
    """The account's document with this id; None for another account's, a secure
    message's attachment (its conversation's readers open it there) or none (the
    staff side's URL takes any integer)."""
    if not isinstance(document_id, int) or not 0 < document_id <= MAX_ID:
        return None
    document = db.get(Document, document_id)
    if document is None or document.account_id != account_id or document.message_post_id is not None:
        return None
    return document


class Damaged(Exception):
    """The stored bytes are missing or no longer match their SHA-256."""


def content_of(db: Session, document: Document, directory: str | os.PathLike | None) -> bytes:
    """The document's bytes from the store it was written to (whatever the
    current setting), checked against its SHA-256."""
    store = DatabaseStore() if document.storage == "database" else FilesystemStore(directory or ".")
    content = store.read(db, document.stored_name)
    if content is None or hashlib.sha256(content).hexdigest() != document.sha256:
        raise Damaged(document.stored_name)
    return content


@dataclass(frozen=True)
class Row:
    document: Document
    uploaded_by: str
    about: str
    type_label: str
    size: str


def human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} byte{'s' if size != 1 else ''}"


def of_account(db: Session, account_id: int) -> list[Row]:
    """The account's documents, newest first, with who uploaded each and what it is about.
    Files attached to a secure message belong to its conversation, read there by its readers."""
    documents = list(
        db.scalars(
            select(Document)
            .where(Document.account_id == account_id, Document.message_post_id.is_(None))
            .order_by(Document.uploaded_at.desc(), Document.id.desc())
        )
    )
    user_ids = {d.uploaded_by_user_id for d in documents}
    request_ids = {d.service_request_id for d in documents if d.service_request_id is not None}
    draft_ids = {d.draft_id for d in documents if d.draft_id is not None}
    names = dict(db.execute(select(User.id, User.name).where(User.id.in_(user_ids))).all()) if user_ids else {}
    # Keyed by what a document may hold, None too: a document of neither finds nothing.
    by_request: dict[int | None, ServiceRequest] = (
        {r.id: r for r in db.scalars(select(ServiceRequest).where(ServiceRequest.id.in_(request_ids)))}
        if request_ids
        else {}
    )
    by_draft: dict[int | None, Draft] = (
        {d.id: d for d in db.scalars(select(Draft).where(Draft.id.in_(draft_ids)))} if draft_ids else {}
    )
    by_type = {kind.content_type: kind.short for kind in KINDS.values()}
    rows = []
    for document in documents:
        rows.append(
            Row(
                document=document,
                uploaded_by=names.get(document.uploaded_by_user_id, "Someone"),
                about=_about_text(by_request.get(document.service_request_id), by_draft.get(document.draft_id)),
                type_label=by_type.get(document.content_type, document.content_type),
                size=human_size(document.size_bytes),
            )
        )
    return rows


def _about_text(request: ServiceRequest | None, draft: Draft | None) -> str:
    if request is not None:
        if request.kind == "documents":
            return f"General ({request.reference})"
        return f"{requests.KIND_LABELS.get(request.kind, 'Request')} {request.reference}"
    if draft is not None:
        return f"{requests.KIND_LABELS.get(draft.kind, 'A form')}, not sent yet"
    return "General"


def about_choices(db: Session, account_id: int) -> list[tuple[str, str]]:
    """(reference, label) of the account's returns, objections and waiver requests."""
    return [
        (r.reference, f"{r.summary or requests.KIND_LABELS[r.kind]} ({r.reference})")
        for r in requests.of_account(db, account_id, ABOUT_KINDS)
    ]


def about_request(db: Session, account_id: int, reference: str | None) -> ServiceRequest | None:
    request = requests.find(db, account_id, (reference or "").strip())
    return request if request is not None and request.kind in ABOUT_KINDS else None


def safe_next(target: str | None) -> str | None:
    """A path on this site to go back to: starts with one "/", no scheme or host,
    no backslash, no spaces or control characters. None otherwise."""
    if not target or len(target) > 1000 or not target.startswith("/") or target.startswith("//"):
        return None
    if any(ch == "\\" or ord(ch) <= 0x20 or ord(ch) >= 0x7F for ch in target):
        return None
    return target


def remove_abandoned(db: Session, draft_ids) -> list[str]:
    """Delete the documents tied to drafts that are being purged (never sent), and
    their database content; the caller commits, then discards the returned stored
    names from a filesystem store (after the commit: a rollback keeps the files)."""
    draft_ids = list(draft_ids)
    if not draft_ids:
        return []
    names = list(db.scalars(select(Document.stored_name).where(Document.draft_id.in_(draft_ids))))
    if names:
        db.execute(delete(DocumentContent).where(DocumentContent.stored_name.in_(names)))
        db.execute(delete(Document).where(Document.stored_name.in_(names)))
    return names
