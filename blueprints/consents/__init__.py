"""Representatives by consent: a manager of the account signs a consent for one
individual, or answers a representative's request; the agency reviews it (a CLI,
`flask consents`, until the staff back office); a representative sees their
client list. Rules in domain.consents; account routes need "manage_access"
(web.access.account_route)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, session, url_for
from flask_login import current_user

from domain import access, consents
from domain.access import AccessRefused
from models import Account, Consent, Grant
from web.access import account_route, configured_caps, one_button_change, refused_change
from web.database import get_db, now
from web.dates import today
from web.forms import EmptyForm, add_error, bind
from web.htmx import see_other
from web.limits import BY_YOU_TODAY, person_held_back, try_again_after
from web.sessions import signed_in_user
from web.uploads import accepts_files, check_and_scan

from .forms import AcceptForm, AskForm, ConsentForm, UploadForm

bp = Blueprint("consents", __name__, url_prefix="/consents")
ASK_SENT = (
    "If the account number and legal name match an account, we have sent your request to the people who "
    "manage it. They have 10 working days to answer; you will see the account in your client list once "
    "they have signed and we have reviewed the consent."
)
STATUS_WORDS = {
    "requested": "Asked for by the representative",
    "submitted": "Waiting for our review",
    "approved": "In force",
    "rejected": "Not approved",
    "declined": "Declined",
    "revoked": "Revoked",
    "lapsed": "Lapsed (not answered in 10 working days)",
    "ended": "Ended",
}


def _consent_or_404(account, consent_id: int) -> Consent:
    consent = get_db().get(Consent, consent_id)
    if consent is None or consent.account_id != account.id:
        abort(404)
    return consent


@bp.route("/<account:number>/")
@account_route("manage_access")
def for_account(account: Account, grant: Grant):
    day = today()
    db = get_db()
    rows = [(c, consents.shown_status(c, day)) for c in consents.for_account(db, account.id)]
    forms = consents.signed_forms(db, [c.id for c, _status in rows])
    return render_template(
        "consents/account.html",
        account=account,
        grant=grant,
        rows=rows,
        signed_forms=forms,
        words=STATUS_WORDS,
        permission_labels=access.PERMISSION_LABELS,
        form=EmptyForm(),
        current="access",
    )


@bp.route("/<account:number>/new", methods=["GET", "POST"])
@account_route("manage_access")
def sign(account: Account, grant: Grant):
    form = bind(ConsentForm, current_user.id)
    status = 200
    if form.validate_on_submit():
        db = get_db()
        try:
            consents.sign(
                db,
                now(),
                today(),
                account=account,
                actor=grant,
                name=form.representative_name.data,
                email=form.representative_email.data,
                firm_name=form.firm_name.data,
                permissions=form.permissions.data or [],
                starts_on=form.starts_on.data,
                ends_on=form.ends_on.data,
                caps=configured_caps(),
            )
        except AccessRefused as error:
            refused_change(account, grant, form, error)
            status = 400
        else:
            db.commit()
            session["notice"] = (
                f"Consent signed for {form.representative_name.data}. We will review it and email them their PIN."
            )
            return see_other(url_for(".for_account", number=account.number))
    elif form.errors:
        status = 400
    return render_template(
        "consents/sign.html", account=account, grant=grant, form=form, current="access", today=today()
    ), status


@bp.route("/<account:number>/upload", methods=["GET", "POST"])
@account_route("manage_access")
@accepts_files
def upload(account: Account, grant: Grant):
    """The paper way: the signed form as a PDF, with the details we need to act on it."""
    form = bind(UploadForm, current_user.id)
    status = 200
    if form.validate_on_submit():
        db, moment = get_db(), now()
        upload_file = form.signed_form.data
        content, problem, unavailable_only = _signed_form_checked(upload_file, account.id)
        if problem:
            add_error(form.signed_form, problem)
            status = 503 if unavailable_only else 400
        else:
            try:
                _sign_on_paper(db, moment, account, grant, form, upload_file, content)
            except AccessRefused as error:
                refused_change(account, grant, form, error)
                status = 400
            else:
                session["notice"] = (
                    f"Signed form received for {form.representative_name.data}. We will review "
                    "it and email them their PIN."
                )
                return see_other(url_for(".for_account", number=account.number))
    elif form.errors:
        status = 400
    return render_template(
        "consents/upload.html",
        account=account,
        grant=grant,
        form=form,
        current="access",
        today=today(),
        max_mb=current_app.config["UPLOAD_MAX_BYTES"] // (1024 * 1024),
    ), status


def _signed_form_checked(upload_file, account_id: int) -> tuple[bytes, str | None, bool]:
    """The file's bytes, what is wrong with it (None: nothing), and whether only the
    malware scanner could not answer (the file may be fine: try later)."""
    content = upload_file.read(current_app.config["UPLOAD_MAX_BYTES"] + 1)
    problem = consents.pdf_problem(content, current_app.config["UPLOAD_MAX_BYTES"])
    unavailable_only = False
    if not problem:
        # Then the same checks and malware scan as every other upload (web.uploads):
        # a PDF may still carry a page of HTML, an appended archive or a virus.
        upload_file.stream.seek(0)
        checked = check_and_scan([upload_file], account_id)
        problem = checked.messages[0] if checked.messages else None
        unavailable_only = checked.unavailable and not checked.refused
    return content, problem, unavailable_only


def _sign_on_paper(db, moment, account, grant, form, upload_file, content: bytes) -> None:
    """The consent as the form describes it, with the signed form attached, committed
    together (or neither). AccessRefused when the account cannot take it."""
    consent = consents.sign(
        db,
        moment,
        today(),
        account=account,
        actor=grant,
        name=form.representative_name.data,
        email=form.representative_email.data,
        firm_name=form.firm_name.data,
        permissions=form.permissions.data or [],
        starts_on=form.starts_on.data,
        ends_on=form.ends_on.data,
        caps=configured_caps(),
    )
    consents.attach_signed_form(
        db,
        moment,
        consent=consent,
        uploaded_name=upload_file.filename or "",
        content=content,
        user_id=grant.user_id,
    )
    db.commit()  # the consent and its form together, or neither


@bp.route("/<account:number>/<id:consent_id>/accept", methods=["GET", "POST"])
@account_route("manage_access")
def accept(account: Account, grant: Grant, consent_id: int):
    consent = _consent_or_404(account, consent_id)
    form = bind(AcceptForm, current_user.id)
    status = 200
    if form.validate_on_submit():
        db = get_db()
        try:
            consents.accept(
                db,
                now(),
                today(),
                account=account,
                actor=grant,
                consent=consent,
                permissions=form.permissions.data or [],
                starts_on=form.starts_on.data,
                ends_on=form.ends_on.data,
                caps=configured_caps(),
            )
        except AccessRefused as error:
            refused_change(account, grant, form, error)
            status = 400
        else:
            db.commit()
            session["notice"] = f"Consent signed for {consent.representative_name}. We will review it."
            return see_other(url_for(".for_account", number=account.number))
    elif form.errors:
        status = 400
    return render_template(
        "consents/accept.html",
        account=account,
        grant=grant,
        form=form,
        consent=consent,
        status_word=STATUS_WORDS[consents.shown_status(consent, today())],
        current="access",
        today=today(),
    ), status


def _one_step(account: Account, grant: Grant, consent_id: int, action, done: str):
    consent = _consent_or_404(account, consent_id)
    changed, _ = one_button_change(account, grant, lambda db: action(db, consent))
    if changed:
        session["notice"] = done.format(name=consent.representative_name)
    return see_other(url_for(".for_account", number=account.number))


@bp.route("/<account:number>/<id:consent_id>/decline", methods=["POST"])
@account_route("manage_access")
def decline(account: Account, grant: Grant, consent_id: int):
    return _one_step(
        account,
        grant,
        consent_id,
        lambda db, consent: consents.decline(db, now(), today(), account=account, actor=grant, consent=consent),
        "You declined {name}'s request.",
    )


@bp.route("/<account:number>/<id:consent_id>/revoke", methods=["POST"])
@account_route("manage_access")
def revoke(account: Account, grant: Grant, consent_id: int):
    return _one_step(
        account,
        grant,
        consent_id,
        lambda db, consent: consents.revoke(db, now(), account=account, actor=grant, consent=consent),
        "Consent revoked: {name} can no longer use this account, from their next click.",
    )


@bp.route("/ask", methods=["GET", "POST"])
def ask():
    user = signed_in_user()
    form = bind(AskForm, user.id)
    status = 200
    if form.validate_on_submit():
        db = get_db()
        held_back = person_held_back("consent-ask", user.id, current_app.config["CONSENT_REQUESTS_PER_DAY"])
        if held_back is not None:
            db.commit()  # let go of the limit's lock (domain.throttle)
            add_error(form.number, try_again_after(held_back, BY_YOU_TODAY))
            return render_template("consents/ask.html", form=form), 429
        consents.ask(db, now(), user=user, number=form.number.data, legal_name=form.legal_name.data)
        db.commit()
        session["notice"] = ASK_SENT
        return see_other(url_for(".clients"))
    elif form.errors:
        status = 400
    return render_template("consents/ask.html", form=form), status


@bp.route("/clients")
def clients():
    db, day = get_db(), today()
    return render_template(
        "consents/clients.html",
        clients=consents.clients(db, current_user.id, day),
        permission_labels=access.PERMISSION_LABELS,
    )
