"""Secure messages, the agency's side: the threads (those awaiting a reply
first), writing to an account (everyone on it who receives messages) or to one
person, and answering in a thread, which closes its item in the "messages"
queue. Officers and above. Rules in domain.messages."""

from __future__ import annotations

import re

from flask import Blueprint, abort, render_template, request, session, url_for

from domain import documents, messages, requests
from domain.accounts import find_by_number, number_problem
from models import User
from web.access import require_staff_role
from web.database import get_db, now
from web.dates import today
from web.htmx import render, see_other
from web.mailer import kick_outbox
from web.sessions import signed_in_user
from web.uploads import accepts_files, check_files, chosen_files, document_store, send_document, upload_limits

from .forms import AddresseeForm, NewMessageForm, StaffReplyForm

bp = Blueprint("messages", __name__, url_prefix="/messages")

ROLE = "officer"
SECTION = "messages"
SHOWS = {"awaiting": "Awaiting a reply", "all": "All messages"}
_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,64}")
EXPIRED = "This form has expired. Send the message again"


@bp.before_request
def officers_and_above():
    require_staff_role(ROLE)


def _staff() -> User:
    return signed_in_user()


@bp.route("/")
def index():
    show = request.args.get("show", "awaiting")
    if show not in SHOWS:
        show = "awaiting"
    rows = messages.threads_for_staff(get_db(), awaiting_only=show == "awaiting")
    return render_template(
        "staff/messages/index.html", rows=rows, show=show, shows=SHOWS, topics=messages.TOPICS, staff_section=SECTION
    )


# --- Writing a new message ------------------------------------------------------------------


def _choose(form, status=200):
    return render_template("staff/messages/choose.html", form=form, staff_section=SECTION), status


def _person_or_404(db, raw: str) -> User:
    # ASCII digits, and few of them: int() refuses "²" and more than 4300 digits.
    wellformed = raw.isascii() and raw.isdigit() and len(raw) <= 10
    person = db.get(User, int(raw)) if wellformed and 0 < int(raw) <= messages.MAX_ID else None
    if person is None or person.is_staff:
        abort(404)
    return person


def _new_page(account, person, form, status=200, problem=None):
    """The message form: who it goes to and, for an account, everyone on it (to
    write to one of them alone)."""
    people = messages.people_on_account(get_db(), account.id, today()) if person is None else []
    going_to = (
        [person] if person is not None else [user for user, receives in people if receives and not user.is_disabled]
    )
    action = url_for(".new", account=account.number if account else None, person=person.id if person else None)
    return render_template(
        "staff/messages/new.html",
        account=account,
        person=person,
        people=people,
        going_to=going_to,
        form=form,
        action=action,
        can_attach=account is not None,
        problem=problem,
        staff_section=SECTION,
        **upload_limits(),
    ), status


def _fresh(form_class):
    form = form_class(formdata=None)
    form.token.data = requests.new_token()
    return form


def _checked_key(form) -> str:
    key = form.token.data or ""
    if _TOKEN.fullmatch(key):
        return key
    form.body.errors = [*form.body.errors, EXPIRED]
    return ""


def _checked_files(form, account_id: int | None) -> list:
    chosen = chosen_files(form.files.name)
    checked: list[documents.Checked] = []
    if chosen and account_id is None:
        form.files.errors = ["Files can be attached only to messages about an account"]
    elif chosen:
        checked, form.files.errors = check_files(chosen, account_id)
    return checked


@bp.route("/new", methods=["GET", "POST"])
@accepts_files(files="MAX_FILES_PER_UPLOAD")
def new():
    """`?account=<number>`: to everyone on the account who receives messages;
    `?person=<user id>`: to one person (with `account` too: about that account,
    on which they must have access). Without either: a form asking for the account."""
    db = get_db()
    raw_number, raw_person = request.args.get("account", ""), request.args.get("person", "")
    if not raw_number and not raw_person:
        return _choose(AddresseeForm(formdata=None))
    account = person = None
    if raw_number:
        problem = number_problem(raw_number)
        if problem is None:
            account = find_by_number(db, raw_number)
        if account is None:
            chooser = AddresseeForm(formdata=None, account=raw_number)
            chooser.account.errors = [problem or "No account has this number"]
            return _choose(chooser, 400 if problem else 404)
    if raw_person:
        person = _person_or_404(db, raw_person)
    if request.method == "GET":
        return _new_page(account, person, _fresh(NewMessageForm))
    form = NewMessageForm()
    form.validate()
    key = _checked_key(form)
    checked = _checked_files(form, account.id if account is not None else None)
    if any(field.errors for field in (form.subject, form.body, form.files)):
        form.token.data = key or requests.new_token()
        return _new_page(account, person, form, 400)
    store = document_store()
    written: list[str] = []
    try:
        sent = messages.start_thread(
            db,
            now(),
            today(),
            staff=_staff(),
            account=account,
            to_user=person,
            subject=form.subject.data or "",  # validated: required, so text
            body=form.body.data or "",
            key=key,
            files=checked,
            store=store,
            written=written,
        )
    except messages.MessageRefused as refused:
        db.rollback()
        problem = refused.message
        if refused.field in ("subject", "body", "files"):
            getattr(form, refused.field).errors = [problem]
            problem = None
        return _new_page(account, person, form, 400, problem=problem)
    documents.commit_or_discard(db, store, written)
    kick_outbox()
    if sent.created:
        session["notice"] = f"Message sent to {_count(len(sent.delivered))}."
    return see_other(url_for(".thread", thread_id=sent.thread.id))


def _count(people: int) -> str:
    return f"{people} {'person' if people == 1 else 'people'}"


# --- A thread ---------------------------------------------------------------------------------


def _thread_or_404(thread_id: int):
    found = messages.find_thread(get_db(), thread_id)
    if found is None:
        abort(404)
    return found


def _thread_page(found, form, status=200, problem=None):
    db = get_db()
    row = messages.staff_row(db, found)
    going_to = [db.get(User, user_id) for user_id in messages.recipients(db, found, today())]
    return render(
        "staff/messages/thread.html",
        "staff/messages/_thread.html",
        status=status,
        row=row,
        thread=found,
        posts=messages.posts_of(db, found),
        going_to=going_to,
        topics=messages.TOPICS,
        form=form,
        can_attach=found.account_id is not None,
        problem=problem,
        staff_section=SECTION,
        **upload_limits(),
    )


@bp.route("/<int:thread_id>")
def thread(thread_id: int):
    return _thread_page(_thread_or_404(thread_id), _fresh(StaffReplyForm))


@bp.route("/<int:thread_id>/reply", methods=["POST"])
@accepts_files(files="MAX_FILES_PER_UPLOAD")
def reply(thread_id: int):
    db = get_db()
    found = _thread_or_404(thread_id)
    form = StaffReplyForm()
    form.validate()
    key = _checked_key(form)
    checked = _checked_files(form, found.account_id)
    if form.body.errors or form.files.errors:
        form.token.data = key or requests.new_token()
        return _thread_page(found, form, 400)
    store = document_store()
    written: list[str] = []
    try:
        sent = messages.reply_from_agency(
            db,
            now(),
            today(),
            staff=_staff(),
            thread=found,
            body=form.body.data or "",  # validated: required, so text
            key=key,
            files=checked,
            store=store,
            written=written,
        )
    except messages.MessageRefused as refused:
        db.rollback()
        form.token.data = key
        return _thread_page(found, form, 400, problem=refused.message)
    documents.commit_or_discard(db, store, written)
    kick_outbox()
    if sent.created:
        session["notice"] = f"Reply sent to {_count(len(sent.delivered))}."
    return see_other(url_for(".thread", thread_id=found.id) + f"#post-{sent.post.id}")


@bp.route("/<int:thread_id>/attachments/<int:document_id>")
def attachment(thread_id: int, document_id: int):
    db = get_db()
    document = messages.attachment_of(db, _thread_or_404(thread_id), document_id)
    if document is None:
        abort(404)
    return send_document(db, document)
