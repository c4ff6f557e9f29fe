"""The signed-in person's own details, password, second factor and sessions."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, session, url_for

from domain import audit, passwords, people, totp
from domain import sessions as session_store
from web import credentials
from web.access import access
from web.database import get_db, now
from web.forms import add_error, bind
from web.htmx import see_other
from web.mailer import kick_outbox, queue_email
from web.sessions import limits_from, server_session, signed_in_user

from .forms import ChangePasswordForm, DetailsForm, EnableTwoFactorForm, PasswordAndCodeForm, sign_out_others_form

bp = Blueprint("profile", __name__, url_prefix="/profile")


def _me():
    return signed_in_user()


@bp.route("/")
@access(two_factor_setup=True)
def overview():
    user = _me()
    active = session_store.count_active_for_user(get_db(), user.id, now(), limits_from(current_app.config))
    return render_template(
        "profile/overview.html", user=user, active_sessions=active, recovery_left=totp.unused_recovery_codes(user)
    )


@bp.route("/details", methods=["GET", "POST"])
def details():
    user = _me()
    form = bind(DetailsForm, user.id, obj=user)
    if form.validate_on_submit():
        db = get_db()
        user.name, user.phone = form.name.data.strip(), (form.phone.data or "").strip() or None
        audit.record(db, now(), "profile.details_changed", actor_user_id=user.id)
        db.commit()
        session["notice"] = "Your details have been saved."
        return see_other(url_for(".overview"))
    return render_template("profile/details.html", form=form), 400 if form.errors else 200


@bp.route("/password", methods=["GET", "POST"])
@access(two_factor_setup=True)
def password():
    user = _me()
    form = ChangePasswordForm()
    if form.validate_on_submit():
        db, moment = get_db(), now()
        # Both required: validated, each holds text (WTForms types data as str | None).
        current_password, new_password = form.current_password.data or "", form.new_password.data or ""
        # Counted like a sign-in, so a stolen session cannot guess the password.
        check = credentials.check_password(user.email, current_password)
        if check.locked:
            add_error(form.current_password, credentials.TOO_MANY_PASSWORDS)
        elif check.user is None or check.user.id != user.id:
            add_error(form.current_password, "Your current password is not correct")
        else:
            problem = passwords.password_problem(
                new_password, name=user.name, email=user.email, second_factor=user.has_two_factor
            )
            if problem:
                add_error(form.new_password, problem)
            else:
                people.set_password(
                    db,
                    moment,
                    user,
                    new_password,
                    event="password.changed",
                    keep_session_id=server_session().record_id,
                )
                queue_email(
                    db,
                    moment,
                    user.email,
                    "Your password has been changed",
                    "The password for your TRA Client Self-Service sign-in was just changed. Your other "
                    "sessions were signed out.\n\nIf you did not do this, reset your password now and "
                    "contact Tax and Revenue Administration.\n",
                )
                db.commit()
                kick_outbox()
                server_session().begin_authenticated(user.id, moment)
                session["notice"] = "Your password has been changed. Any other sessions have been signed out."
                return see_other(url_for(".overview"))
    status = 429 if credentials.TOO_MANY_PASSWORDS in form.current_password.errors else 400 if form.errors else 200
    return render_template(
        "profile/password.html",
        form=form,
        minimum=passwords.MIN_LENGTH_WITH_SECOND_FACTOR if user.has_two_factor else passwords.MIN_LENGTH_SINGLE_FACTOR,
    ), status


@bp.route("/two-factor", methods=["GET", "POST"])
@access(two_factor_setup=True)
def two_factor():
    user = _me()
    if user.has_two_factor:
        return render_template(
            "profile/two_factor_on.html",
            user=user,
            form=PasswordAndCodeForm(),
            required=people.two_factor_required(user, current_app.config["REQUIRE_TWO_FACTOR_FOR_ALL"]),
            recovery_left=totp.unused_recovery_codes(user),
        )
    # The secret waits in the server-side session until a code proves the app has it.
    secret = session.get("totp_setup_secret")
    if not secret:
        secret = session["totp_setup_secret"] = totp.new_secret()
    form = EnableTwoFactorForm()
    status = 200
    if form.validate_on_submit():
        moment = now()
        # A new factor changes how the person signs in, so it needs their password
        # (counted like a sign-in): a stolen session cannot put the thief's
        # authenticator on the account and lock the owner behind it.
        status, _factor = credentials.check_password_and_code(user, form.password, form.code)
        step = totp.matching_step(secret, form.code.data or "", moment) if status == 200 else None
        if status == 200 and step is None:
            add_error(form.code, "The code is not correct. Check the time on your phone and enter the newest code")
        elif step is not None:
            db = get_db()
            user.totp_secret, user.totp_enabled_at, user.totp_last_step = secret, moment, step
            codes = totp.new_recovery_codes(db, user, moment)
            audit.record(db, moment, "two_factor.enabled", actor_user_id=user.id)
            queue_email(
                db,
                moment,
                user.email,
                "Two-step sign-in is on",
                "Two-step sign-in was turned on for your TRA Client Self-Service sign-in. From now on you "
                "will enter a code from your authenticator app when you sign in.\n\nIf you did not do this, "
                "contact Tax and Revenue Administration.\n",
            )
            db.commit()
            kick_outbox()
            session.pop("totp_setup_secret", None)
            return render_template("profile/recovery_codes.html", codes=codes, first_time=True)
    import segno

    uri = totp.provisioning_uri(secret, user.email)
    qr = segno.make(uri, error="m").svg_data_uri(scale=4, dark="#0b0c0c", light="#ffffff")
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return render_template(
        "profile/two_factor_setup.html",
        form=form,
        qr=qr,
        secret=grouped,
        required=people.two_factor_required(user, current_app.config["REQUIRE_TWO_FACTOR_FOR_ALL"]),
    ), 429 if status == 429 else 400 if form.errors else 200


def _password_and_code_ok(form, user) -> bool:
    status, _factor = credentials.check_password_and_code(user, form.password, form.code)
    return status == 200


@bp.route("/two-factor/recovery-codes", methods=["POST"])
def recovery_codes():
    user = _me()
    form = PasswordAndCodeForm()
    moment = now()
    if user.has_two_factor and form.validate_on_submit() and _password_and_code_ok(form, user):
        db = get_db()
        codes = totp.new_recovery_codes(db, user, moment)
        audit.record(db, moment, "recovery_codes.replaced", actor_user_id=user.id)
        # A new set of codes is a new way in: the person hears of it, as of every factor added or removed.
        queue_email(
            db,
            moment,
            user.email,
            "You have new recovery codes",
            "New recovery codes were made for your TRA Client Self-Service sign-in, and the old ones no "
            "longer work.\n\nIf you did not do this, change your password now and contact Tax and Revenue "
            "Administration.\n",
        )
        db.commit()
        kick_outbox()
        return render_template("profile/recovery_codes.html", codes=codes, first_time=False)
    return render_template(
        "profile/two_factor_on.html",
        user=user,
        form=form,
        action="codes",
        required=people.two_factor_required(user, current_app.config["REQUIRE_TWO_FACTOR_FOR_ALL"]),
        recovery_left=totp.unused_recovery_codes(user),
    ), 400


@bp.route("/two-factor/turn-off", methods=["POST"])
def two_factor_off():
    user = _me()
    form = PasswordAndCodeForm()
    moment = now()
    required = people.two_factor_required(user, current_app.config["REQUIRE_TWO_FACTOR_FOR_ALL"])
    if not required and user.has_two_factor and form.validate_on_submit() and _password_and_code_ok(form, user):
        if len(form.password.data or "") < passwords.MIN_LENGTH_SINGLE_FACTOR:
            # Without a second factor the password alone must be long enough.
            add_error(
                form.password,
                f"Your password is shorter than {passwords.MIN_LENGTH_SINGLE_FACTOR} "
                "characters. Change your password first, then turn off two-step sign-in",
            )
        else:
            db = get_db()
            user.totp_secret = user.totp_enabled_at = user.totp_last_step = None
            for code in list(user.recovery_codes):
                db.delete(code)
            audit.record(db, moment, "two_factor.disabled", actor_user_id=user.id)
            queue_email(
                db,
                moment,
                user.email,
                "Two-step sign-in is off",
                "Two-step sign-in was turned off for your TRA Client Self-Service sign-in.\n\nIf you did "
                "not do this, reset your password now and contact Tax and Revenue Administration.\n",
            )
            db.commit()
            kick_outbox()
            session["notice"] = "Two-step sign-in is off."
            return see_other(url_for(".overview"))
    return render_template(
        "profile/two_factor_on.html",
        user=user,
        form=form,
        action="off",
        required=required,
        recovery_left=totp.unused_recovery_codes(user),
    ), 400


@bp.route("/sessions")
@access(two_factor_setup=True)
def sessions():
    return _sessions_page(sign_out_others_form(_me().has_two_factor))


def _sessions_page(form, status: int = 200):
    user = _me()
    rows = session_store.active_for_user(get_db(), user.id, now(), limits_from(current_app.config))
    return render_template(
        "profile/sessions.html", rows=rows, current_id=server_session().record_id, form=form, user=user
    ), status


@bp.route("/sessions/sign-out-others", methods=["POST"])
@access(two_factor_setup=True)
def sign_out_others():
    user = _me()
    form = sign_out_others_form(user.has_two_factor)
    if not form.validate_on_submit():
        return _sessions_page(form, 400)
    status, _factor = credentials.check_password_and_code(user, form.password, getattr(form, "code", None))
    if status != 200:
        return _sessions_page(form, status)
    db, moment = get_db(), now()
    ended = session_store.end_all_for_user(db, user.id, moment, "other-session", except_id=server_session().record_id)
    audit.record(db, moment, "sessions.others_ended", actor_user_id=user.id, count=ended)
    db.commit()
    session["notice"] = f"Signed out of {ended} other session{'s' if ended != 1 else ''}."
    return see_other(url_for(".sessions"))
