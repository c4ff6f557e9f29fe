"""Work queues: every submission, received, in progress and decided. Staff see
the queues and their items, take an item (or put it back), a supervisor
reassigns, and the item's page records the decision (domain.decisions), which
closes it. Returns and claims are decided by assessing them (staff.returns)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for
from werkzeug.routing import BuildError

from blueprints.enrol import AGENCY_PHONE
from domain import arrangements, consents, decisions, enrolment_requests, once, people, requests, work, work_view
from domain.access import PERMISSION_LABELS
from domain.accounts import find_by_number
from models import WORK_QUEUES, Account, Document, ServiceRequest, User, WorkItem
from web.access import require_staff_role
from web.database import get_db, now
from web.dates import today
from web.forms import EmptyForm, SelectChoice
from web.htmx import render, see_other
from web.mailer import kick_outbox
from web.sessions import signed_in_user
from web.uploads import attachment

from .forms import AssignForm, DecisionForm, LetterForm, QueueFilterForm

bp = Blueprint("queues", __name__, url_prefix="/queues")
SECTION = "queues"
LIMIT = 200  # items on one list; the oldest come first, and they are the ones to work


def _me() -> User:
    return signed_in_user()


def _url_if_built(endpoint: str, **values) -> str | None:
    """A link to another part of the back office, when that part has the page."""
    if endpoint not in current_app.view_functions:
        return None
    try:
        return url_for(endpoint, **values)
    except BuildError:
        return None


# --- The queues ------------------------------------------------------------------------


@bp.route("/")
def index():
    if request.args.get("queue") in WORK_QUEUES:  # a link that names the queue as a parameter
        return redirect(url_for(".queue", queue=request.args["queue"]))
    db = get_db()
    me = _me()
    supervising = work.at_least(me, "supervisor")
    by_assignee = []
    if supervising:
        held = work.open_by_assignee(db)
        names = people.names_of(db, held)
        by_assignee = sorted(
            (
                (names.get(user_id, "Someone no longer on staff"), count)
                for user_id, count in held.items()
                if user_id is not None
            )
        )
        if held.get(None):
            by_assignee.append(("No one yet (unassigned)", held[None]))
    return render_template(
        "staff/queues/index.html",
        counts=work.counts(db, now()),
        supervising=supervising,
        by_assignee=by_assignee,
        mine=work.open_count_for(db, me.id),
        age_text=work.age_text,
        staff_section=SECTION,
    )


@bp.route("/mine")
def mine():
    return _listing(None)


@bp.route("/<queue>")
def queue(queue: str):
    if queue not in WORK_QUEUES:
        abort(404)
    return _listing(queue)


def _listing(queue: str | None):
    """A queue's items (or mine, in every queue), oldest first, filtered by the GET form."""
    db = get_db()
    me = _me()
    form = QueueFilterForm(formdata=request.args)
    status = 200
    rows = []
    if form.check():
        mine_only = queue is None or form.assignee.data == "mine"
        found = work.items(
            db,
            queue=queue,
            statuses=form.statuses,
            assignee_user_id=me.id if mine_only else None,
            unassigned=queue is not None and form.assignee.data == "unassigned",
            limit=LIMIT,
        )
        rows = work_view.rows(db, found)
    else:
        status = 400
    action = url_for(".mine") if queue is None else url_for(".queue", queue=queue)
    return render(
        "staff/queues/list.html",
        "staff/queues/_items.html",
        status,
        form=form,
        rows=rows,
        queue=queue,
        title=work.QUEUE_LABELS[queue] if queue else "Your items",
        action=action,
        limit=LIMIT,
        status_words=work.STATUS_WORDS,
        outcome_words=work.OUTCOME_WORDS,
        queue_labels=work.QUEUE_LABELS,
        staff_section=SECTION,
    )


# --- One item ----------------------------------------------------------------------------


def _item_or_404(item_id: int) -> WorkItem:
    item = work.find(get_db(), item_id)
    if item is None:
        abort(404)
    return item


def _documents(db, submission: ServiceRequest, account: Account | None) -> list[tuple[Document, str | None]]:
    return [
        (d, _url_if_built("staff.accounts.document", number=account.number, document_id=d.id) if account else None)
        for d in work_view.submitted_documents(db, submission)
    ]


def _permissions(can_decide: bool, item: WorkItem, me: User) -> dict[str, bool]:
    is_open = item.status in work.OPEN
    supervising = work.at_least(me, "supervisor")
    return {
        "take": is_open and item.assignee_user_id != me.id and (item.assignee_user_id is None or supervising),
        "release": is_open and item.assignee_user_id is not None and (item.assignee_user_id == me.id or supervising),
        "assign": is_open and supervising,
        "decide": can_decide,
    }


def _submission_context(db, item: WorkItem, submission: ServiceRequest, account: Account | None) -> dict:
    context: dict[str, Any] = dict(
        heading=f"{requests.KIND_LABELS[submission.kind]} {submission.reference}",
        kind_label=requests.KIND_LABELS[submission.kind],
        answers=requests.readable_answers(submission),
        request_status=requests.STATUS_WORDS.get(submission.status, submission.status),
        documents=_documents(db, submission, account),
    )
    arrangement = arrangements.for_request(db, submission) if submission.kind == "arrangement" else None
    if arrangement is not None:
        context.update(
            arrangement=arrangement,
            instalments=arrangements.instalments(db, arrangement),
            frequencies=arrangements.FREQUENCIES,
        )
    if item.queue == "returns" and submission.tax_return_id:
        # The return's page holds the assessment form (staff.returns.assess takes its POST).
        context["assess_url"] = _url_if_built("staff.returns.show", return_id=submission.tax_return_id)
    return context


def _item_context(db, view: work_view.ItemView) -> dict:
    """What the item's page shows of the item and what it is about."""
    item, account, submission, consent, thread = view.item, view.account, view.submission, view.consent, view.thread
    queue_label = work.QUEUE_LABELS[item.queue]
    context: dict[str, Any] = dict(
        item=item,
        account=account,
        submission=submission,
        consent=consent,
        thread=thread,
        names=view.names,
        queue_label=queue_label,
        heading=f"{queue_label}: {item.summary}",
        account_url=_url_if_built("staff.accounts.show", number=account.number) if account else None,
        trail=work_view.trail(db, view),
    )
    if submission is not None:
        context.update(_submission_context(db, item, submission, account))
    if consent is not None:
        context.update(
            signed_form=consents.signed_forms(db, [consent.id]).get(consent.id),
            permission_labels=[PERMISSION_LABELS.get(p, p) for p in consent.permissions.split(",") if p],
        )
    if thread is not None:
        context["thread_url"] = _url_if_built("staff.messages.thread", thread_id=thread.id)
    if view.asked is not None:
        context.update(asked=view.asked, role_labels=enrolment_requests.ROLE_LABELS)
    return context


def _action_forms(db, item: WorkItem, decision_form: DecisionForm | None, assign_form: AssignForm | None) -> dict:
    """What this staff member may do with the item, and the forms to do it with."""
    me = _me()
    choices = decisions.choices_for(item.queue)
    try:
        work.check_can_decide(item, me)
        can_decide = bool(choices)
    except work.WorkRefused:
        can_decide = False
    allowed = _permissions(can_decide, item, me)
    if decision_form is None:
        decision_form = DecisionForm(formdata=None)
    decision_form.decision.choices = [SelectChoice(value, label) for value, label in choices]
    if allowed["assign"] and assign_form is None:
        assign_form = AssignForm(formdata=None)
    if assign_form is not None:
        assign_form.assignee.choices = [SelectChoice("", "Choose a staff member")] + [
            SelectChoice(str(u.id), f"{u.name} ({u.staff_role})") for u in work.staff_members(db)
        ]
    return dict(allowed=allowed, decision_form=decision_form, assign_form=assign_form, action_form=EmptyForm())


def _letter_form(item: WorkItem, letter_form: LetterForm | None) -> LetterForm | None:
    """The form that answers a request for a letter, with the number it names filled in."""
    if item.queue != "enrolments":
        return None
    if letter_form is None:
        asked = enrolment_requests.find(get_db(), item.enrolment_request_id)
        letter_form = LetterForm(formdata=None, data={"number": asked.account_number if asked else ""})
    if not once.valid(letter_form.key.data):
        letter_form.key.data = once.new_key()
    return letter_form


def _show(
    item: WorkItem,
    status: int = 200,
    *,
    decision_form: DecisionForm | None = None,
    assign_form: AssignForm | None = None,
    letter_form: LetterForm | None = None,
    problem: str | None = None,
):
    db = get_db()
    return render_template(
        "staff/queues/item.html",
        problem=problem,
        letter_form=_letter_form(item, letter_form),
        status_words=work.STATUS_WORDS,
        outcome_words=work.OUTCOME_WORDS,
        staff_section=SECTION,
        **_action_forms(db, item, decision_form, assign_form),
        **_item_context(db, work_view.item_view(db, item)),
    ), status


@bp.route("/items/<int:item_id>")
def item(item_id: int):
    return _show(_item_or_404(item_id))


@bp.route("/items/<int:item_id>/signed-form.pdf")
def signed_form(item_id: int):
    """The paper consent form (AT4931) a manager uploaded, to review before deciding."""
    item = _item_or_404(item_id)
    form = consents.signed_forms(get_db(), [item.consent_id]).get(item.consent_id) if item.consent_id else None
    if form is None:
        abort(404)
    return attachment(form.content, "application/pdf", f"consent-{item.consent_id}-signed-form.pdf")


def _back(item: WorkItem, notice: str):
    session["notice"] = notice
    return see_other(url_for(".item", item_id=item.id))


def _refused(item: WorkItem, error: work.WorkRefused, **forms):
    """Nothing changed: the page again with why (409: the item's state is in the way)."""
    get_db().rollback()
    return _show(item, 409, problem=str(error), **forms)


@bp.route("/items/<int:item_id>/take", methods=["POST"])
def take(item_id: int):
    db, item = get_db(), _item_or_404(item_id)
    try:
        work.take(db, now(), item, _me())
    except work.WorkRefused as error:
        return _refused(item, error)
    db.commit()
    return _back(item, "The item is yours. It shows as in review to the account's people.")


@bp.route("/items/<int:item_id>/release", methods=["POST"])
def release(item_id: int):
    db, item = get_db(), _item_or_404(item_id)
    if item.status == "received" and item.assignee_user_id is None:
        return _back(item, "The item is back in its queue.")  # already: a second click changes nothing
    try:
        work.release(db, now(), item, _me())
    except work.WorkRefused as error:
        return _refused(item, error)
    db.commit()
    return _back(item, "The item is back in its queue.")


@bp.route("/items/<int:item_id>/assign", methods=["POST"])
def assign(item_id: int):
    require_staff_role("supervisor")
    db, item = get_db(), _item_or_404(item_id)
    form = AssignForm()
    staff = {str(u.id): u for u in work.staff_members(db)}
    if not form.validate() or form.assignee.data not in staff:
        form.assignee.errors = ["Choose a staff member"]
        return _show(item, 400, assign_form=form)
    to = staff[form.assignee.data]
    if item.assignee_user_id == to.id and item.status == "in_progress":
        return _back(item, f"The item is assigned to {to.name}.")
    try:
        work.assign(db, now(), item, to=to, by=_me())
    except work.WorkRefused as error:
        if error.field:
            form.assignee.errors = [str(error)]
            db.rollback()
            return _show(item, 400, assign_form=form)
        return _refused(item, error, assign_form=form)
    db.commit()
    return _back(item, f"The item is assigned to {to.name}.")


@bp.route("/items/<int:item_id>/decide", methods=["POST"])
def decide(item_id: int):
    db, item = get_db(), _item_or_404(item_id)
    form = DecisionForm()
    if item.status == "decided":
        return _refused(item, decisions.AlreadyDecided("This item has already been decided"), decision_form=form)
    if not form.validate():
        return _show(item, 400, decision_form=form)
    try:
        outcome = decisions.decide(db, now(), today(), item, _me(), form.decision.data, form.reason.data)
    except work.WorkRefused as error:
        if error.field in ("decision", "reason"):
            db.rollback()
            getattr(form, error.field).errors = [str(error)]
            return _show(item, 400, decision_form=form)
        return _refused(item, error, decision_form=form)
    db.commit()
    kick_outbox()
    told = "" if item.queue == "messages" else " The account's people have been told in Messages."
    return _back(item, f"Decided: {work.OUTCOME_WORDS[outcome].lower()}.{told}")


@bp.route("/items/<int:item_id>/letter", methods=["POST"])
def send_letter(item_id: int):
    """Answer a request for an invitation letter: post one to the address on file
    of the account the officer found (domain.enrolment_requests.send_letter)."""
    db, item = get_db(), _item_or_404(item_id)
    form = LetterForm()
    if not form.validate() or not once.valid(form.key.data):
        return _show(item, 400, letter_form=form)
    account = find_by_number(db, form.number.data or "")
    if account is None:
        form.number.errors = ["No account has this number: check it, or close the request without a letter"]
        return _show(item, 400, letter_form=form)
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    place = enrolment_requests.LetterPlace(
        today(),
        base + url_for("auth.register"),
        base + url_for("enrol.start"),
        AGENCY_PHONE,
        current_app.config["SERVICE_TIMEZONE"],
    )
    try:
        enrolment_requests.send_letter(db, now(), item, _me(), account, key=form.key.data, place=place)
    except work.WorkRefused as error:
        db.rollback()
        if error.field == "number":
            form.number.errors = [str(error)]
            return _show(item, 409, letter_form=form)
        return _refused(item, error, letter_form=form)
    except once.AlreadySent:
        db.rollback()
        return _refused(item, work.WorkRefused("This letter was sent already"))
    db.commit()
    return _back(item, "The invitation letter is in the mail to print and post, to the address on file.")
