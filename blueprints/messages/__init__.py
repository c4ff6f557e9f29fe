"""Secure messages: the signed-in person's conversations with the agency. They
read a thread (which marks their copies read), reply in it with attached files
(through the document checks), open the attachments, and write to the agency
about an account whose messages they read ("write to us", once per form). Rules in domain.messages;
anyone who does not take part in a thread gets the same 404 as no thread at all."""

from __future__ import annotations

import re

from flask import Blueprint, abort, g, render_template, request, session, url_for
from flask_login import current_user
from werkzeug.exceptions import NotFound

from domain import documents, messages, requests
from web.access import account_or_404, account_route
from web.database import get_db, now, write_at_end
from web.dates import today
from web.errors import render_error
from web.htmx import render, see_other
from web.mailer import kick_outbox
from web.sessions import signed_in_user
from web.uploads import accepts_files, check_files, chosen_files, document_store, quota, send_document, upload_limits

from .forms import ReplyForm, WriteForm

bp = Blueprint("messages", __name__, url_prefix="/messages")

_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,64}")
EXPIRED = "This form has expired. Send your reply again"
EXPIRED_MESSAGE = "This form has expired. Send your message again"


@bp.route("/")
def inbox():
    db, user_id = get_db(), current_user.id
    total, unread = messages.thread_count_for_user(db, user_id, today())
    return render_template(
        "messages/inbox.html",
        rows=messages.threads_for_user(db, user_id, today()),
        total=total,
        unread=unread,
        writable=messages.accounts_to_write_about(db, user_id, today()),
    )


def _thread_or_404(thread_id: int):
    thread = messages.thread_for_reader(get_db(), current_user.id, thread_id, today())
    if thread is None:
        abort(404)  # a thread the person does not take part in is the same answer as none at all
    return thread


def _thread_page(thread, form: ReplyForm, status: int = 200):
    db = get_db()
    account = messages.account_of(db, thread)
    return render(
        "messages/thread.html",
        "messages/_thread.html",
        status=status,
        thread=thread,
        account=account,
        posts=messages.posts_of(db, thread),
        form=form,
        can_attach=thread.account_id is not None,
        **upload_limits(),
    )


def _fresh_form() -> ReplyForm:
    form = ReplyForm(formdata=None)
    form.token.data = requests.new_token()
    return form


@bp.route("/<id:thread_id>")
def thread(thread_id: int):
    db = get_db()
    found = _thread_or_404(thread_id)
    unread = messages.unread_in_thread(db, current_user.id, found.id)
    if unread:
        # A GET changes nothing, except bookkeeping: "read" is like a grant's
        # last_used_at, a fact about the visit that harms nothing if lost in a
        # crash. web.database.write_at_end writes it once the page is made,
        # outside the request's reading transaction; the header's count is told now.
        write_at_end(("messages-read", found.id), *messages.read_write(current_user.id, found.id, now()))
        g.messages_just_read = unread
    return _thread_page(found, _fresh_form())


def _one_time_key(form, expired: str) -> str:
    """The form's one-time key (what makes a double submit one message), or "" with
    `expired` beside the text when the form carries none of ours."""
    key = form.token.data or ""
    if not _TOKEN.fullmatch(key):
        form.body.errors = [*form.body.errors, expired]
        return ""
    return key


@bp.route("/<id:thread_id>/reply", methods=["POST"])
@accepts_files(files="MAX_FILES_PER_UPLOAD")
def reply(thread_id: int):
    db = get_db()
    found = _thread_or_404(thread_id)
    form = ReplyForm()
    form.validate()
    key = _one_time_key(form, EXPIRED)
    chosen = chosen_files(form.files.name)
    checked: list[documents.Checked] = []
    if chosen and found.account_id is None:
        form.files.errors = ["Files can be attached only to messages about an account"]
    elif chosen:
        checked, form.files.errors = check_files(chosen, found.account_id)
    if form.body.errors or form.files.errors:
        form.token.data = key or requests.new_token()
        return _thread_page(found, form, status=400)
    store = document_store()
    written: list[str] = []
    try:
        sent = messages.reply_from_account(
            db,
            now(),
            user=signed_in_user(),
            thread=found,
            body=form.body.data or "",  # validated: there is a body
            key=key,
            files=checked,
            store=store,
            written=written,
            quota=quota(),
        )
    except messages.MessageRefused as refused:
        db.rollback()
        getattr(form, refused.field or "body").errors = [refused.message]
        return _thread_page(found, form, status=400)
    except documents.QuotaExceeded as over:
        # The account keeps as much as it may (web.uploads.quota): 422, as for an upload.
        db.rollback()
        form.files.errors = [over.message]
        return _thread_page(found, form, status=422)
    documents.commit_or_discard(db, store, written)
    kick_outbox()
    session["notice"] = "Your reply was sent. We will answer it here."
    return see_other(url_for(".thread", thread_id=found.id) + f"#post-{sent.post.id}")


# --- Writing to the agency ---------------------------------------------------------------


def _write_page(account, form: WriteForm, status: int = 200):
    return render_template("messages/write.html", account=account, form=form, **upload_limits()), status


def _refuse(form, field: str, message: str, account, status: int = 400):
    get_db().rollback()
    getattr(form, field).errors = [message]
    return _write_page(account, form, status)


def _not_offered(account, grant):
    """The program takes no messages online: say so (200), change nothing."""
    return render_template("messages/not_offered.html", account=account, grant=grant)


@bp.route("/<account:number>/new", methods=["GET", "POST"])
@account_route("receive_messages", feature="messages", not_offered=_not_offered)
@accepts_files(files="MAX_FILES_PER_UPLOAD")
def write(account, grant):
    """Whoever reads the account's messages may write about it; anyone else
    gets 404 from account_route. The form's one-time token makes a double
    submit the same message."""
    if request.method == "GET":
        form = WriteForm(formdata=None)
        form.token.data = requests.new_token()
        return _write_page(account, form)
    form = WriteForm()
    form.validate()
    key = _one_time_key(form, EXPIRED_MESSAGE)
    chosen = chosen_files(form.files.name)
    checked, form.files.errors = check_files(chosen, account.id) if chosen else ([], [])
    if any(field.errors for field in (form.topic, form.subject, form.body, form.files)):
        form.token.data = key or requests.new_token()
        return _write_page(account, form, 400)
    return _send_written(account, form, key, checked)


def _send_written(account, form: WriteForm, key: str, checked: list):
    store = document_store()
    written: list[str] = []
    try:
        sent = messages.write_to_agency(
            get_db(),
            now(),
            user=signed_in_user(),
            account=account,
            topic=form.topic.data,
            subject=form.subject.data or "",  # validated: there is a subject and a body
            body=form.body.data or "",
            key=key,
            files=checked,
            store=store,
            written=written,
            quota=quota(),
        )
    except messages.MessageRefused as refused:
        return _refuse(form, refused.field or "body", refused.message, account)
    except documents.QuotaExceeded as over:
        return _refuse(form, "files", over.message, account, 422)
    documents.commit_or_discard(get_db(), store, written)
    if sent.created:
        session["notice"] = "Your message was sent. We will answer it here, in Messages."
    return see_other(url_for(".thread", thread_id=sent.thread.id))


@bp.errorhandler(413)
def too_large(error):
    """Files larger together than a reply may carry: the thread again, saying so
    beside the field (the body was never read, so nothing was kept)."""
    if request.endpoint == "messages.write" and current_user.is_authenticated:
        return _too_large_to_write()
    if request.endpoint != "messages.reply" or not current_user.is_authenticated:
        return render_error(413)
    thread_id = (request.view_args or {}).get("thread_id")
    found = (
        messages.thread_for_reader(get_db(), current_user.id, thread_id, today())
        if isinstance(thread_id, int)
        else None
    )
    if found is None:
        return render_error(404)
    form = _fresh_form()
    limits = upload_limits()
    form.files.errors = [
        f"The files you selected are too large to send. Each file must be smaller than "
        f"{limits['max_size']}, and you can attach up to {limits['max_files']} at a time"
    ]
    return _thread_page(found, form, status=413)


def _too_large_to_write():
    """The write page again, saying so beside the files (nothing was read or kept);
    a person who may not write about the account gets 404, as ever."""
    number = (request.view_args or {}).get("number", "")
    try:
        account, _grant = account_or_404(number, "receive_messages")
    except NotFound:
        return render_error(404)
    form = WriteForm(formdata=None)
    form.token.data = requests.new_token()
    limits = upload_limits()
    form.files.errors = [
        f"The files you selected are too large to send. Each file must be smaller than "
        f"{limits['max_size']}, and you can attach up to {limits['max_files']} at a time"
    ]
    return _write_page(account, form, 413)


@bp.route("/<id:thread_id>/attachments/<id:document_id>")
def attachment(thread_id: int, document_id: int):
    db = get_db()
    document = messages.attachment_of(db, _thread_or_404(thread_id), document_id)
    if document is None:
        abort(404)
    return send_document(db, document)
