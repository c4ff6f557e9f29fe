"""Supporting documents: upload (type from content, atomic, SHA-256), list and download.

Every route needs "upload", on an account whose program takes documents
(web.access.account_route); the rules
(what a file is, the stores) live in domain.documents. Another journey sends
people here with `draft=<its draft's token>` (the files go with that form when
it is sent) and `next=<a path to go back to>`."""

from __future__ import annotations

import logging
import re

from flask import Blueprint, abort, current_app, render_template, request, session, url_for
from flask_login import current_user
from werkzeug.exceptions import HTTPException

from domain import audit, documents, drafts, requests
from models import Account, Grant, ServiceRequest
from web.access import account_or_404, account_route
from web.database import get_db, now
from web.errors import render_error
from web.forms import bind
from web.htmx import render, see_other
from web.uploads import SCANNER_UNAVAILABLE, accepts_files, check_and_scan, document_store, quota, send_document

from .forms import UploadForm

bp = Blueprint("documents", __name__, url_prefix="/documents")
log = logging.getLogger("portal.documents")

_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,64}")
_DRAFT_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,43}")


# --- Settings ----------------------------------------------------------------------------


def _limits() -> dict:
    max_bytes = current_app.config["UPLOAD_MAX_BYTES"]
    return {
        "max_size": documents.size_text(max_bytes),
        "max_files": current_app.config["MAX_FILES_PER_UPLOAD"],
        "accepted": documents.ACCEPTED_LIST,
        "accept": documents.ACCEPT_ATTRIBUTE,
    }


# --- Pieces --------------------------------------------------------------------------------


def _not_offered(account, grant):
    return render_template("documents/not_offered.html", account=account, grant=grant, current="documents")


def _draft_or_404(db, account, token: str):
    """The signed-in person's own draft on this account named by `token`; None
    when no token was given; 404 for anything else."""
    if not token:
        return None
    draft = (
        drafts.by_token(db, account_id=account.id, user_id=current_user.id, token=token)
        if _DRAFT_TOKEN.fullmatch(token)
        else None
    )
    if draft is None:
        abort(404)
    return draft


def _names(items) -> str:
    names = [f"“{name}”" for name in items]
    if len(names) <= 1:
        return "".join(names)
    listed = ", ".join(names[:-1]) + " and " + names[-1]
    return f"{len(names)} files: {listed}" if len(names) > 2 else listed


def _done(result: documents.Uploaded, draft) -> str:
    if draft is not None and result.request is None:
        if not result.documents:
            return "Those files were already uploaded for this form."
        what = requests.KIND_LABELS.get(draft.kind, "form").lower()
        return (
            f"Uploaded {_names(d.uploaded_name for d in result.documents)}. They go with your {what} when you send it."
        )
    assert result.request is not None  # only a draft's upload makes no request
    names = _names(d.uploaded_name for d in result.documents) or "your files"
    return f"Uploaded {names}. Your reference number is {result.request.reference}."


def _context(account, grant, form, draft, next_url, **extra) -> dict:
    query = {k: v for k, v in (("draft", draft.token if draft is not None else None), ("next", next_url)) if v}
    return {
        "account": account,
        "grant": grant,
        "form": form,
        "draft": draft,
        "next_url": next_url,
        "action": url_for("documents.upload", number=account.number, **query),
        "draft_label": requests.KIND_LABELS.get(draft.kind, "form").lower() if draft is not None else "",
        "back_url": next_url or url_for("documents.index", number=account.number),
        "current": "documents",
        **_limits(),
        **extra,
    }


def _fresh_form(db, account, draft, next_url, about: str | None = None, restore: bool = False) -> UploadForm:
    """The form as a GET shows it: with what the person had typed before a time-out
    when `restore` (and the server kept it), a one-time token, and where it goes."""
    form = bind(UploadForm, current_user.id) if restore else UploadForm(formdata=None)
    offered = _choices(db, account, form, draft)
    if not (getattr(form, "restored", False) and _TOKEN.fullmatch(form.token.data or "")):
        form.token.data = requests.new_token()
    form.draft.data = draft.token if draft is not None else ""
    form.next.data = next_url or ""
    if about and about in offered:
        form.about.data = about
    return form


def _choices(db, account, form, draft) -> set[str]:
    """Offer what the files can be about (nothing, for a draft's); the values offered."""
    choices = [] if draft is not None else documents.about_choices(db, account.id)
    offered = [("", "Nothing in particular"), *choices] if choices else []
    form.about.choices = offered
    return {value for value, _label in offered}


# --- Routes ----------------------------------------------------------------------------------


@bp.route("/<account:number>/")
@account_route("upload", feature="upload", not_offered=_not_offered)
def index(account: Account, grant: Grant):
    db = get_db()
    form = _fresh_form(db, account, None, None, about=request.args.get("about"), restore=True)
    return render_template(
        "documents/index.html", rows=documents.of_account(db, account.id), **_context(account, grant, form, None, None)
    )


@bp.route("/<account:number>/upload", methods=["GET", "POST"])
@account_route("upload", feature="upload", not_offered=_not_offered)
@accepts_files(files="MAX_FILES_PER_UPLOAD")
def upload(account: Account, grant: Grant):
    db = get_db()
    source = request.form if request.method == "POST" else request.args
    draft = _draft_or_404(db, account, source.get("draft") or request.args.get("draft") or "")
    next_url = documents.safe_next(source.get("next") or request.args.get("next"))
    if request.method != "POST":
        form = _fresh_form(db, account, draft, next_url, about=request.args.get("about"), restore=True)
        return render(
            "documents/upload.html", "documents/_upload_form.html", **_context(account, grant, form, draft, next_url)
        )
    return _upload_sent(db, account, grant, draft, next_url)


def _upload_sent(db, account, grant, draft, next_url: str | None):
    """The form as sent: kept all together, or shown again with why beside the field."""
    form = bind(UploadForm, current_user.id)
    _choices(db, account, form, draft)
    form.validate()
    file_errors = list(form.files.errors)
    key = form.token.data or ""
    usable, earlier = _upload_key(db, account, key)
    if earlier is not None:
        # The same upload again (a double click, a retry): its answer, nothing more kept.
        session["notice"] = _done(documents.Uploaded(documents.documents_of_upload(db, earlier), earlier, False), None)
        return see_other(next_url or url_for(".index", number=account.number))
    if not usable:
        file_errors.append("This form has expired. Select the files again and upload them")
        key = ""
    chosen = [f for f in request.files.getlist(form.files.name) if f.filename]
    checked, unavailable = [], False
    if not chosen:
        file_errors.append("Select a file to upload")
    else:
        found = check_and_scan(chosen, account.id)
        checked, unavailable = found.accepted, found.unavailable
        file_errors.extend(found.messages)
    form.files.errors = file_errors

    def again(status: int, **headers):
        several = len(chosen) > 1
        return _form_again(account, grant, form, draft, next_url, status, new_token=not key, several=several, **headers)

    if any(field.errors for field in form):
        if (
            unavailable
            and not any(field.errors for field in form if field is not form.files)
            and file_errors == [SCANNER_UNAVAILABLE]
        ):
            # Only the scanner could not answer: the files may be fine, the service is not (503, try later).
            return again(503, **{"Retry-After": "120"})
        return again(400)
    try:
        result = _keep(db, account, form, checked, key=key, draft=draft)
    except documents.QuotaExceeded as exceeded:
        # The files are sound but the account has no room: 422, the request was understood and cannot be done.
        db.rollback()
        form.files.errors = [exceeded.message]
        _audit_quota(account.id, checked)
        return again(422)
    session["notice"] = _done(result, draft)
    return see_other(next_url or url_for(".index", number=account.number))


def _upload_key(db, account, key: str) -> tuple[bool, ServiceRequest | None]:
    """Whether the form's one-time key may make an upload, and the upload it made
    already on this account, when this is the same one sent again."""
    if not _TOKEN.fullmatch(key):
        return False, None
    if drafts.is_draft_token(db, key):
        # A form's own draft token is its submission key: never an upload's.
        return False, None
    earlier = requests.by_key(db, key)
    if earlier is None:
        return True, None
    if earlier.account_id == account.id and earlier.kind == "documents":
        return True, earlier
    return False, None


def _form_again(account, grant, form, draft, next_url, status: int, *, new_token: bool, several: bool, **headers):
    """The form again, answering `status`, with what is wrong beside the fields; a new
    one-time key when the form's own could not be used."""
    if new_token:
        form.token.data = requests.new_token()
    form.draft.data, form.next.data = (draft.token if draft is not None else ""), next_url or ""
    response = render(
        "documents/upload.html",
        "documents/_upload_form.html",
        status=status,
        **_context(account, grant, form, draft, next_url, several=several),
    )
    response.headers.update(headers)
    return response


def _keep(db, account, form, checked, *, key: str, draft) -> documents.Uploaded:
    """The checked files kept, tied to what the form says they are about, and
    committed (the files written go too if the commit fails). QuotaExceeded when
    they do not fit: nothing is kept."""
    about = documents.about_request(db, account.id, form.about.data) if form.about.data else None
    store = document_store()
    written: list[str] = []
    result = documents.upload(
        db,
        now(),
        store=store,
        account=account,
        user_id=current_user.id,
        files=checked,
        description=form.description.data or "",
        key=key,
        about=about,
        draft=draft,
        written=written,
        quota=quota(),
    )
    documents.commit_or_discard(db, store, written)
    return result


def _audit_quota(account_id: int, checked) -> None:
    db = get_db()
    audit.record(
        db,
        now(),
        "document.refused",
        "failure",
        actor_user_id=current_user.id,
        account_id=account_id,
        reasons=["quota"],
        endpoint=request.endpoint,
        size=sum(len(c.content) for c in checked),
        files=len(checked),
    )
    db.commit()


@bp.errorhandler(413)
def too_large(error):
    """Files larger together than an upload may carry: the form again, saying so
    beside the field (the body was never read, so nothing was kept)."""
    if request.endpoint != "documents.upload" or not current_user.is_authenticated:
        return render_error(413)
    try:
        # The view never ran: the same check its declaration makes, by hand.
        account, grant = account_or_404((request.view_args or {}).get("number", ""), "upload")
        db = get_db()
        draft = _draft_or_404(db, account, request.args.get("draft") or "")
    except HTTPException:
        return render_error(413)
    if not account.program.allows("upload"):
        return render_error(413)
    next_url = documents.safe_next(request.args.get("next"))
    form = _fresh_form(db, account, draft, next_url)
    limits = _limits()
    form.files.errors = [
        f"The files you selected are too large to send. Each file must be smaller than "
        f"{limits['max_size']}, and you can upload up to {limits['max_files']} at a time"
    ]
    return render(
        "documents/upload.html",
        "documents/_upload_form.html",
        status=413,
        **_context(account, grant, form, draft, next_url),
    )


@bp.route("/<account:number>/<id:document_id>/download")
@account_route("upload")
def download(account: Account, grant: Grant, document_id: int):
    db = get_db()
    document = documents.find(db, account.id, document_id)
    if document is None:
        abort(404)
    return send_document(db, document)
