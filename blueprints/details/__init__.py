"""The account's details: addresses and contacts, with optimistic locking and a change history.

Rules in domain.details. Every route needs "update_profile" (web.access.account_route).
A save names the profile_version the form was based on: when someone else saved
first, nothing is written and the page answers 409 with their change and what
this person typed side by side."""

from __future__ import annotations

from flask import Blueprint, render_template, request, session, url_for
from flask_login import current_user

from domain import audit, details, requests
from models import Account, Grant
from web.access import account_route
from web.database import get_db, now
from web.forms import bind
from web.htmx import see_other

from .forms import DetailsForm, initial, typed_values

bp = Blueprint("details", __name__, url_prefix="/details")

NOTHING_CHANGED = "You have not changed any details. Change what you need to, then save."


def _saved_notice(reference: str) -> str:
    return f"Details updated. Reference {reference}"


@bp.route("/<account:number>/")
@account_route("update_profile")
def show(account: Account, grant: Grant):
    last = details.last_change(get_db(), account.id)
    return render_template("details/show.html", account=account, grant=grant, last=last, current="summary")


@bp.route("/<account:number>/history")
@account_route("update_profile")
def history(account: Account, grant: Grant):
    return render_template(
        "details/history.html",
        account=account,
        grant=grant,
        changes=details.history(get_db(), account.id),
        current="summary",
    )


def _edit_page(account, grant, form, status: int = 200, **extra):
    return render_template(
        "details/edit.html",
        account=account,
        grant=grant,
        form=form,
        provinces=details.PROVINCES,
        current="summary",
        **extra,
    ), status


def _fresh_form(account):
    """The form filled from what is stored now, with a new submission key."""
    form = DetailsForm(formdata=None, data={**initial(account), "token": requests.new_token()})
    form.restored = False
    return form


def _refused(form, message: str):
    form.form_errors.append(message)


@bp.route("/<account:number>/edit", methods=["GET", "POST"])
@account_route("update_profile")
def edit(account: Account, grant: Grant):
    db = get_db()
    if request.method != "POST":
        form = bind(DetailsForm, current_user.id, data={**initial(account), "token": requests.new_token()})
        if form.restored and not form.token.data:
            form.token.data = requests.new_token()
        return _edit_page(account, grant, form)

    form = bind(DetailsForm, current_user.id)
    token = form.token.data if isinstance(form.token.data, str) else ""
    if not form.validate_on_submit():
        return _edit_page(account, grant, form, 400)
    if not token or len(token) > 64:
        return _not_sent(account, grant, form)

    # The same key again (a double click, a retry): the same answer, nothing saved twice.
    done = requests.by_key(db, token)
    if done is not None:
        if done.account_id != account.id or done.kind != "profile":
            return _not_sent(account, grant, form)
        session["notice"] = _saved_notice(done.reference)
        return see_other(url_for(".show", number=account.number))

    seen = form.profile_version.data
    seen = int(seen) if isinstance(seen, str) and seen.isascii() and seen.isdigit() and len(seen) < 10 else None
    if seen is None:
        return _not_sent(account, grant, form)

    typed = typed_values(form)
    before = details.current_values(account)
    if seen != account.profile_version:
        return _conflict(account, grant, typed)
    changed = details.changes(before, typed)
    if not changed:
        return _edit_page(account, grant, form, nothing_changed=NOTHING_CHANGED)
    return _save(db, account, grant, form, token=token, seen=seen, typed=typed, changed=changed)


def _not_sent(account, grant, form):
    """A form that was not this page's, or was tampered with: nothing saved, 400."""
    _refused(form, "This form could not be sent. Reload the page and make your change again")
    return _edit_page(account, grant, form, 400)


def _save(db, account, grant, form, *, token: str, seen: int, typed: dict, changed: dict):
    """The change saved as a "profile" request made once on `token`, if the details
    are still at the version the form showed (else the conflict page)."""
    moment = now()

    def build(db, made):
        made.status = "completed"
        details.apply(db, account.id, seen, changed)

    details.hold(db, account.id)
    try:
        submitted = requests.submit(
            db,
            moment,
            account=account,
            user_id=current_user.id,
            kind="profile",
            key=token,
            summary=details.summary(changed),
            data=changed,
            build=build,
        )
    except details.Conflict:
        db.rollback()
        db.refresh(account)
        return _conflict(account, grant, typed)
    except ValueError:
        db.rollback()
        return _not_sent(account, grant, form)
    if submitted.created:
        audit.record(
            db,
            moment,
            "profile.changed",
            actor_user_id=current_user.id,
            account_id=account.id,
            reference=submitted.request.reference,
            fields=sorted(changed),
        )
    db.commit()
    session["notice"] = _saved_notice(submitted.request.reference)
    return see_other(url_for(".show", number=account.number))


def _conflict(account, grant, typed: dict):
    """Someone saved first: show their change in the form, and what this person typed beside it."""
    db = get_db()
    last = details.last_change(db, account.id)
    current = details.current_values(account)
    differences = [
        (details.FIELD_WORDS[name][0].upper() + details.FIELD_WORDS[name][1:], current[name], typed[name])
        for name in details.FIELDS
        if details.changes({name: current[name]}, {name: typed[name]})
    ]
    form = _fresh_form(account)
    return _edit_page(account, grant, form, 409, conflict=last, differences=differences)
