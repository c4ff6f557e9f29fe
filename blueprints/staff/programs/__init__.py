"""Programs: every member of staff sees the list; administrators register a
program and change its rules (domain.registration); supervisors publish updates
to a program's subscribers (domain.subscriptions)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request, session, url_for
from flask_login import current_user

from domain import once, registration, subscriptions
from models import Program
from web.access import require_staff_role
from web.database import get_db, now
from web.forms import add_error
from web.htmx import see_other
from web.mailer import kick_outbox
from web.secret_key import secret_key

from .forms import ProgramForm, UpdateForm

bp = Blueprint("programs", __name__, url_prefix="/programs")
SECTION = dict(staff_section="programs")


@bp.route("/")
def index():
    db = get_db()
    counts = registration.account_counts(db)
    programs = registration.programs(db)
    return render_template(
        "staff/programs/index.html",
        programs=programs,
        counts=counts,
        subscribers=subscriptions.subscriber_counts(db),
        frequency_words=registration.FREQUENCY_WORDS,
        function_words=registration.FUNCTION_WORDS,
        describe_due_rule=registration.describe_due_rule,
        **SECTION,
    )


def _page(form, program: Program | None, status: int = 200):
    return render_template("staff/programs/form.html", form=form, program=program, **SECTION), status


def _refused(form, program, refused: registration.Refused):
    get_db().rollback()
    if refused.field and hasattr(form, refused.field):
        add_error(getattr(form, refused.field), refused.message)
    else:
        form.form_errors.append(refused.message)
    return _page(form, program, 400)


@bp.route("/new", methods=["GET", "POST"])
def new():
    require_staff_role("administrator")
    if request.method == "GET":
        form = ProgramForm(
            formdata=None, filing_frequency="monthly", is_claim="no", objection_days="90", due_rule="M+1:last"
        )
        form.key.data = once.new_key()
        return _page(form, None)
    form = ProgramForm()
    if not once.valid(form.key.data):
        form.form_errors.append("This form has expired. Check the details and register the program again")
        form.key.data = once.new_key()
    if not form.validate() or form.form_errors:
        return _page(form, None, 400)
    db = get_db()
    try:
        program, created = registration.register_program(
            db, now(), code=form.code.data or "", fields=form.fields(), actor_user_id=current_user.id, key=form.key.data
        )
    except registration.Refused as refused:
        return _refused(form, None, refused)
    except once.AlreadySent:
        db.rollback()
        form.form_errors.append("This form was sent already. Open the register form again")
        form.key.data = once.new_key()
        return _page(form, None, 409)
    db.commit()
    if created:
        session["notice"] = f"Registered the program {program.name} ({program.code})."
    return see_other(url_for(".index"))


def _program_or_404(code: str) -> Program:
    program = registration.find_program(get_db(), code)
    if program is None:
        abort(404)
    return program


@bp.route("/<code>/edit", methods=["GET", "POST"])
def edit(code: str):
    require_staff_role("administrator")
    program = _program_or_404(code)
    if request.method == "GET":
        form = ProgramForm(
            formdata=None,
            code=program.code,
            name=program.name,
            number_prefix=program.number_prefix,
            filing_frequency=program.filing_frequency,
            due_rule=program.due_rule,
            is_claim="yes" if program.is_claim else "no",
            functions=[f for f in program.functions.split(",") if f],
            objection_days=str(program.objection_days),
            description=program.description,
            **{name: getattr(program, name) for name in registration.PAYMENT_FIELDS},
        )
        return _page(form, program)
    form = ProgramForm()
    form.code.data = program.code  # the code names the program: it never changes
    if not form.validate():
        return _page(form, program, 400)
    try:
        changed = registration.change_program(
            get_db(), now(), program=program, fields=form.fields(), actor_user_id=current_user.id
        )
    except registration.Refused as refused:
        return _refused(form, program, refused)
    get_db().commit()
    session["notice"] = (
        f"Saved the changes to {program.name} ({program.code})."
        if changed
        else f"Nothing changed in {program.name} ({program.code})."
    )
    return see_other(url_for(".index"))


# --- Updates to subscribers -----------------------------------------------------------------


def _updates_page(program: Program, form: UpdateForm, status: int = 200):
    db = get_db()
    if not once.valid(form.key.data):
        form.key.data = once.new_key()
    return render_template(
        "staff/programs/updates.html",
        program=program,
        form=form,
        updates=subscriptions.updates_of(db, program.code),
        subscribers=subscriptions.subscriber_counts(db).get(program.code, 0),
        **SECTION,
    ), status


def _links() -> subscriptions.Links:
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    return subscriptions.Links(
        unsubscribe=lambda token: base + url_for("subscriptions.unsubscribe", token=token),
        manage=base + url_for("subscriptions.start"),
    )


@bp.route("/<code>/updates", methods=["GET", "POST"])
def updates(code: str):
    """A program's updates; a supervisor publishes one to its subscribers by email."""
    program = _program_or_404(code)
    if request.method == "GET":
        return _updates_page(program, UpdateForm(formdata=None))
    form = UpdateForm()
    if not form.validate() or not once.valid(form.key.data):
        return _updates_page(program, form, 400)
    # After the form's check, as staff.ledger.post_entry does: a form with nothing
    # in it may be told so by anyone who sees the page; only a supervisor sends.
    require_staff_role("supervisor")
    db, moment = get_db(), now()
    if not once.claim(db, moment, form.key.data, purpose="program-update"):
        db.rollback()
        session["notice"] = "This update was sent already."
        return see_other(url_for(".updates", code=program.code))
    update = subscriptions.publish(
        db,
        moment,
        secret_key(),
        program,
        title=form.title.data or "",
        body=form.body.data or "",
        staff_user_id=current_user.id,
        links=_links(),
    )
    db.commit()
    kick_outbox()
    session["notice"] = f"Sent the update to {update.recipients} subscriber{'s' if update.recipients != 1 else ''}."
    return see_other(url_for(".updates", code=program.code))
