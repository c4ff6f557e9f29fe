"""Staff sign-ins (administrators only): add a staff member, change a role,
send a new set-up link, revoke access."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, session, url_for

from domain import people, tokens
from domain import staff as staff_people
from models import User
from web.access import require_staff_role
from web.database import get_db, now
from web.forms import EmptyForm, add_error
from web.htmx import see_other
from web.limits import may_email
from web.links import emailed_link
from web.mailer import kick_outbox, queue_email
from web.secret_key import secret_key
from web.sessions import signed_in_user

from .forms import AddStaffForm, RoleForm

bp = Blueprint("team", __name__, url_prefix="/team")


@bp.before_request
def administrators_only():
    require_staff_role("administrator")


def _member_or_404(user_id: int) -> User:
    member = get_db().get(User, user_id) if 0 < user_id < 2**31 else None
    if member is None or not member.is_staff:
        abort(404)
    return member


def _send_set_up_link(db, moment, member: User) -> None:
    # The password-reset link: it works once, and only until the password is set.
    token = tokens.make_token(
        secret_key(), "reset-password", {"uid": member.id, "fp": people.password_fingerprint(member)}, moment
    )
    link = emailed_link("auth.reset_password", token=token)
    minutes = current_app.config["RESET_LINK_MAX_AGE_SECONDS"] // 60
    queue_email(
        db,
        moment,
        member.email,
        "Set up your TRA back-office sign-in",
        f"Hello {member.name},\n\nAn administrator has given you a staff sign-in for TRA Client "
        f"Self-Service. Choose your password by opening this link:\n\n{link}\n\n"
        f"The link works once and expires in {minutes} minutes; an administrator can send another. "
        "When you first sign in at /staff/sign-in you will set up two-step sign-in with an "
        "authenticator app.\n",
    )


def _page(form: AddStaffForm, status: int = 200):
    return render_template(
        "staff/team/index.html",
        form=form,
        members=staff_people.members(get_db()),
        role_words=staff_people.ROLE_WORDS,
        role_hints=staff_people.ROLE_HINTS,
        staff_section="team",
    ), status


@bp.route("/", methods=["GET"])
def index():
    return _page(AddStaffForm(formdata=None))


@bp.route("/", methods=["POST"])
def add():
    form = AddStaffForm()
    if not form.validate_on_submit():
        return _page(form, 400)
    db, moment = get_db(), now()
    try:
        member = staff_people.add(
            db,
            moment,
            name=form.name.data or "",  # validated: required, so text
            email=form.email.data or "",
            role=form.role.data,
            by=signed_in_user(),
        )
    except staff_people.StaffRefused as refused:
        add_error(getattr(form, refused.field or "email"), str(refused))
        db.rollback()
        return _page(form, 400)
    _send_set_up_link(db, moment, member)
    db.commit()
    kick_outbox()
    session["notice"] = f"{member.name} has been added. A set-up link is on its way to {member.email}."
    return see_other(url_for(".member", user_id=member.id))


@bp.route("/<int:user_id>", methods=["GET"])
def member(user_id: int):
    member = _member_or_404(user_id)
    form = RoleForm(formdata=None, role=member.staff_role)
    return render_template(
        "staff/team/member.html",
        member=member,
        form=form,
        empty=EmptyForm(),
        role_words=staff_people.ROLE_WORDS,
        role_hints=staff_people.ROLE_HINTS,
        staff_section="team",
    )


@bp.route("/<int:user_id>/role", methods=["POST"])
def change_role(user_id: int):
    member = _member_or_404(user_id)
    form = RoleForm()
    if form.validate_on_submit():
        db = get_db()
        try:
            staff_people.change_role(db, now(), member=member, role=form.role.data, by=signed_in_user())
        except staff_people.StaffRefused as refused:
            db.rollback()
            add_error(form.role, str(refused))
        else:
            db.commit()
            session["notice"] = f"{member.name} is now {staff_people.ROLE_WORDS[form.role.data].lower()}."
            return see_other(url_for(".member", user_id=member.id))
    return render_template(
        "staff/team/member.html",
        member=member,
        form=form,
        empty=EmptyForm(),
        role_words=staff_people.ROLE_WORDS,
        role_hints=staff_people.ROLE_HINTS,
        staff_section="team",
    ), 400


@bp.route("/<int:user_id>/set-up-link", methods=["POST"])
def set_up_link(user_id: int):
    member = _member_or_404(user_id)
    if EmptyForm().validate_on_submit() and not member.is_disabled:
        db, moment = get_db(), now()
        if not may_email(member.email):
            db.commit()  # let go of the limit's lock (domain.throttle)
            session["notice"] = (
                f"We have sent {member.email} several emails in the last hour, so no new link "
                "was sent. The last one still works: try again in an hour if it does not arrive."
            )
            return see_other(url_for(".member", user_id=member.id))
        _send_set_up_link(db, moment, member)
        db.commit()
        kick_outbox()
        session["notice"] = f"A new set-up link is on its way to {member.email}."
    return see_other(url_for(".member", user_id=member.id))


@bp.route("/<int:user_id>/revoke", methods=["POST"])
def revoke(user_id: int):
    member = _member_or_404(user_id)
    if EmptyForm().validate_on_submit():
        db = get_db()
        try:
            ended = staff_people.revoke(db, now(), member=member, by=signed_in_user())
        except staff_people.StaffRefused as refused:
            db.rollback()
            session["notice"] = str(refused)
        else:
            db.commit()
            session["notice"] = (
                f"{member.name}'s staff access has been revoked; {ended} session{'s' if ended != 1 else ''} ended."
            )
    return see_other(url_for(".member", user_id=member.id))
