"""Identity: register, verify the email, sign in (with a second factor), sign out,
reset a forgotten password, re-confirm after an hour, and the session clock."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, jsonify, make_response, redirect, render_template, request, session, url_for
from flask_login import current_user

from domain import audit, passwords, people, throttle, tokens
from models import User
from web import credentials
from web.access import access, record_refusal, safe_next
from web.database import get_db, now
from web.forms import EmptyForm, add_error
from web.htmx import render, see_other, wants_fragment
from web.limits import client_held_back, may_email, try_again_after
from web.links import emailed_link
from web.mailer import kick_outbox, queue_email
from web.secret_key import secret_key
from web.sessions import count_as_activity, reauth_remaining, server_session, signed_in_user

from .forms import CodeForm, ConfirmForm, ForgotPasswordForm, RegisterForm, ResetPasswordForm, SignInForm

bp = Blueprint("auth", __name__, url_prefix="/auth")

SECOND_FACTOR_STEP = timedelta(minutes=5)
RESEND_LIMIT = 3
RESEND_WINDOW = timedelta(hours=1)

NOTICES = {
    "idle": "You were signed out because you did nothing for {idle_minutes} minutes. Sign in again to carry on. "
    "If you were filling in a form, what you had typed is kept for you: sign in again to get it back.",
    "ended": "You were signed out because your session was ended, for example after a password change. Sign in again.",
    "signed-out": "You have signed out.",
    "password-reset": "Your password has been changed. Sign in with your new password.",
    "verified": "Your email address is confirmed. Sign in to continue.",
}


def _link(endpoint: str, **values) -> str:
    return emailed_link(endpoint, **values)


def _send_verification(db, moment, user: User) -> None:
    token = tokens.make_token(secret_key(), "verify-email", {"uid": user.id, "email": user.email}, moment)
    hours = current_app.config["EMAIL_LINK_MAX_AGE_SECONDS"] // 3600
    queue_email(
        db,
        moment,
        user.email,
        "Confirm your email address",
        f"Hello {user.name},\n\nConfirm your email address for TRA Client Self-Service by opening this link "
        f"and pressing the button on the page:\n\n{_link('auth.verify', token=token)}\n\n"
        f"The link works once and expires in {hours} hours. It does not sign you in.\n\n"
        "If you did not create an account, you can ignore this email.\n",
    )


def _person_for_link(
    purpose: str, token: str, max_age_setting: str, *, invalid, used
) -> tuple[str | None, User | None]:
    """(what is wrong with an emailed link: "invalid", "expired", "used", "someone-else" or
    None; its person). A link is for the person it was sent to: someone else signed in (a
    forwarded email, a shared computer) is refused, and the link still works for its holder."""
    db = get_db()
    try:
        payload = tokens.read_token(secret_key(), purpose, token, current_app.config[max_age_setting], now())
    except tokens.TokenError as error:
        return error.reason, None
    person = db.get(User, payload.get("uid"))
    if person is None or invalid(person, payload):
        return "invalid", None
    if current_user.is_authenticated and current_user.id != person.id:
        record_refusal(current_user.id, "not-the-named-person")  # audited, like every refusal
        return "someone-else", None
    if tokens.is_used(db, token) or used(person, payload):
        return "used", person
    return None, person


# --- Registration and email verification -------------------------------------


@bp.route("/register", methods=["GET", "POST"])
@access(public=True)
def register():
    if current_user.is_authenticated:
        return redirect(url_for("home"), 303)
    form = RegisterForm()
    if form.validate_on_submit():
        # Each field is required: validated, each holds text (WTForms types data as str | None).
        name, email, password = form.name.data or "", form.email.data or "", form.password.data or ""
        problem = passwords.password_problem(password, name=name, email=email, second_factor=False)
        held_back = None if problem else client_held_back()
        if problem:
            add_error(form.password, problem)
        elif held_back is not None:
            get_db().commit()  # let go of the limit's lock (domain.throttle) before the session is saved
            add_error(form.email, try_again_after(held_back))
            return render("auth/register.html", "auth/_register_form.html", 429, form=form)
        else:
            db, moment = get_db(), now()
            emailed = may_email(email)  # counted alike for a new and a known address
            existing = people.find_by_email(db, email)
            if existing is None:
                user = people.register(db, moment, name=name, email=email, password=password)
                _send_verification(db, moment, user)
            else:
                # Same answer as a new registration, so the form cannot be used
                # to learn who has an account; the owner hears of the attempt.
                # The hash is thrown away: it makes both answers take as long.
                passwords.hash_password(password)
                audit.record(db, moment, "account.register_existing", "refused", subject_user_id=existing.id)
                if emailed:
                    _tell_of_existing_account(db, moment, existing)
            db.commit()
            kick_outbox()
            session["registered_email"] = email.strip().lower()
            return see_other(url_for(".check_email"))
    status = 400 if form.errors else 200
    return render("auth/register.html", "auth/_register_form.html", status, form=form)


def _tell_of_existing_account(db, moment, existing: User) -> None:
    queue_email(
        db,
        moment,
        existing.email,
        "You already have an account",
        "Someone tried to create an account for TRA Client Self-Service with this email address. You "
        "already have one.\n\nIf this was you, sign in, or reset your password at "
        f"{_link('auth.forgot_password')}.\n\nIf it was not you, you need do nothing.\n",
    )


@bp.route("/check-email")
@access(public=True)
def check_email():
    return render_template("auth/check_email.html", email=session.get("registered_email"))


@bp.route("/verify/<token>", methods=["GET", "POST"])
@access(public=True, unverified_ok=True, reauth_exempt=True, two_factor_setup=True)
def verify(token: str):
    db, moment = get_db(), now()
    problem, user = _person_for_link(
        "verify-email",
        token,
        "EMAIL_LINK_MAX_AGE_SECONDS",
        invalid=lambda person, payload: person.email != payload.get("email"),
        used=lambda person, payload: person.email_verified_at is not None,
    )
    form = EmptyForm()
    if problem or user is None:  # no person comes only with a problem
        return render_template("auth/link_problem.html", problem=problem or "invalid", purpose="verify"), 400
    if request.method == "POST" and form.validate_on_submit():
        try:
            tokens.mark_used(db, token, "verify-email", moment)
        except tokens.TokenError:
            return render_template("auth/link_problem.html", problem="used", purpose="verify"), 400
        people.mark_email_verified(db, moment, user)
        db.commit()
        if current_user.is_authenticated and current_user.id == user.id:
            return see_other(url_for("home"))
        return see_other(url_for(".sign_in", reason="verified"))
    return render_template("auth/verify.html", form=form, email=user.email)


@bp.route("/verify-email", methods=["GET", "POST"])
@access(unverified_ok=True, two_factor_setup=True)
def verify_pending():
    user = signed_in_user()
    if user.email_verified_at is not None:
        return redirect(url_for("home"), 303)
    form = EmptyForm()
    sent = False
    if form.validate_on_submit():
        db, moment = get_db(), now()
        key = throttle.key_for(secret_key(), f"verify:{user.id}")
        if throttle.failures(db, "verify-resend", key, moment, RESEND_WINDOW) >= RESEND_LIMIT:
            db.rollback()  # let go of the key's lock (domain.throttle) before the session is saved
            return render_template("auth/verify_pending.html", form=form, user=user, limited=True), 429
        throttle.record_failure(db, "verify-resend", key, moment)
        _send_verification(db, moment, user)
        db.commit()
        kick_outbox()
        sent = True
    return render_template("auth/verify_pending.html", form=form, user=user, sent=sent)


# --- Sign in, second factor, sign out ----------------------------------------


@bp.route("/sign-in", methods=["GET", "POST"])
@access(public=True)
def sign_in():
    if current_user.is_authenticated and request.method == "GET":
        return redirect(safe_next(request.args.get("next"), url_for("home")), 303)
    form = SignInForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next"), "")
    status = 200
    if form.validate_on_submit():
        db = get_db()
        result = credentials.check_password(form.email.data or "", form.password.data or "")  # required: text
        if result.locked:
            add_error(form.email, credentials.TOO_MANY_PASSWORDS)
            status = 429
        elif result.user is None:
            add_error(form.email, "Enter a correct email address and password")
            status = 400
        elif result.user.has_two_factor:
            # The password's fingerprint too: a password changed or reset before the
            # code is given ends this half-finished sign-in like any other session.
            session["pending_sign_in"] = {
                "user_id": result.user.id,
                "at": now().timestamp(),
                "next": safe_next(form.next.data, ""),
                "password": people.password_fingerprint(result.user),
            }
            db.commit()
            return see_other(url_for(".second_factor"))
        else:
            return credentials.complete_sign_in(result.user, form.next.data, "password")
    elif form.errors:
        status = 400
    reason = request.args.get("reason", "")
    response = render(
        "auth/sign_in.html",
        "auth/_sign_in_form.html",
        status,
        form=form,
        notice=NOTICES.get(reason, "").format(idle_minutes=current_app.config["SESSION_IDLE_SECONDS"] // 60),
    )
    return forget_kept_fragments(response) if reason in ("idle", "ended") else response


@bp.route("/code", methods=["GET", "POST"])
@access(public=True)
def second_factor():
    pending = session.get("pending_sign_in")
    moment = now()
    if not pending or moment.timestamp() - pending.get("at", 0) > SECOND_FACTOR_STEP.total_seconds():
        session.pop("pending_sign_in", None)
        return redirect(url_for(".sign_in"), 303)
    db = get_db()
    user = db.get(User, pending["user_id"])
    if user is None or not user.is_active or pending.get("password") != people.password_fingerprint(user):
        session.pop("pending_sign_in", None)
        return redirect(url_for(".sign_in"), 303)
    form = CodeForm()
    status = 200
    if form.validate_on_submit():
        factor, locked = credentials.check_code(user, form.code.data or "")  # required: text
        if locked:
            add_error(form.code, credentials.TOO_MANY_CODES)
            status = 429
        elif factor is None:
            add_error(form.code, "Enter a correct security code")
            status = 400
        else:
            return credentials.complete_sign_in(user, pending.get("next"), factor)
    elif form.errors:
        status = 400
    return render_template("auth/code.html", form=form), status


@bp.route("/sign-out", methods=["POST"])
# Signing out works at any hour: the closed page offers it.
@access(public=True, reauth_exempt=True, signed_out_noop="auth.signed_out", always_open=True)
def sign_out():
    form = EmptyForm()
    if form.validate_on_submit() and current_user.is_authenticated:
        db = get_db()
        audit.record(db, now(), "signout", actor_user_id=current_user.id)
        db.commit()
        server_session().end("signed-out")
    return forget_kept_fragments(see_other(url_for(".signed_out")))


@bp.route("/signed-out")
@access(public=True, always_open=True)
def signed_out():
    reason = request.args.get("reason")
    return forget_kept_fragments(make_response(render_template("auth/signed_out.html", reason=reason)))


def forget_kept_fragments(response):
    """The browser keeps the fragments htmx fetched (web.headers: private, revalidated
    each time, so repeating a filter costs a 304): at sign-out, and on the page a
    timed-out session lands on, it drops them, so a shared computer holds no one's
    figures afterwards."""
    response.headers["Clear-Site-Data"] = '"cache"'
    return response


# --- Forgotten password -------------------------------------------------------


@bp.route("/forgot-password", methods=["GET", "POST"])
@access(public=True)
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        db, moment = get_db(), now()
        held_back = client_held_back()
        if held_back is not None:
            db.commit()  # let go of the limit's lock (domain.throttle) before the session is saved
            add_error(form.email, try_again_after(held_back))
            return render_template("auth/forgot_password.html", form=form), 429
        email = form.email.data or ""  # required: text
        if may_email(email):
            user = people.find_by_email(db, email)
            if user is not None and user.is_active:
                token = tokens.make_token(
                    secret_key(),
                    "reset-password",
                    {"uid": user.id, "fp": people.password_fingerprint(user)},
                    moment,
                )
                minutes = current_app.config["RESET_LINK_MAX_AGE_SECONDS"] // 60
                queue_email(
                    db,
                    moment,
                    user.email,
                    "Reset your password",
                    f"Hello {user.name},\n\nSomeone asked to reset the password for your TRA Client "
                    f"Self-Service sign-in. To choose a new password, open this link:\n\n"
                    f"{_link('auth.reset_password', token=token)}\n\nThe link works once and expires in "
                    f"{minutes} minutes.\n\nIf you did not ask for this, you need do nothing: your password "
                    "has not changed.\n",
                )
                audit.record(db, moment, "password.reset_requested", subject_user_id=user.id)
        db.commit()
        kick_outbox()
        return see_other(url_for(".reset_sent"))
    return render_template("auth/forgot_password.html", form=form), 400 if form.errors else 200


@bp.route("/reset-sent")
@access(public=True)
def reset_sent():
    return render_template("auth/reset_sent.html")


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
@access(public=True)
def reset_password(token: str):
    db, moment = get_db(), now()
    problem, user = _person_for_link(
        "reset-password",
        token,
        "RESET_LINK_MAX_AGE_SECONDS",
        invalid=lambda person, payload: not person.is_active,
        # Once the password has changed, every earlier reset link is spent.
        used=lambda person, payload: payload.get("fp") != people.password_fingerprint(person),
    )
    if problem or user is None:  # no person comes only with a problem
        return render_template("auth/link_problem.html", problem=problem or "invalid", purpose="reset"), 400
    form = ResetPasswordForm()
    status = 200
    if form.validate_on_submit():
        new_password = form.new_password.data or ""  # required: text
        issue = passwords.password_problem(
            new_password, name=user.name, email=user.email, second_factor=user.has_two_factor
        )
        if issue:
            add_error(form.new_password, issue)
        else:
            try:
                tokens.mark_used(db, token, "reset-password", moment)
            except tokens.TokenError:
                return render_template("auth/link_problem.html", problem="used", purpose="reset"), 400
            people.set_password(db, moment, user, new_password, event="password.reset")
            queue_email(
                db,
                moment,
                user.email,
                "Your password has been changed",
                "The password for your TRA Client Self-Service sign-in was just changed and every "
                "session was signed out.\n\nIf you did not do this, reset your password now and "
                "contact Tax and Revenue Administration.\n",
            )
            db.commit()
            kick_outbox()
            if current_user.is_authenticated:
                server_session().end("password-changed")
            return see_other(url_for(".sign_in", reason="password-reset"))
    if form.errors:
        status = 400
    return render_template("auth/reset_password.html", form=form, user=user), status


# --- Re-confirmation after an hour, and the session clock ---------------------


@bp.route("/confirm", methods=["GET", "POST"])
@access(reauth_exempt=True, unverified_ok=True, two_factor_setup=True)
def confirm():
    user = signed_in_user()
    form = ConfirmForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next"), "")
    status = 200
    if form.validate_on_submit():
        db, moment = get_db(), now()
        status, factor = credentials.check_password_and_code(user, form.password, form.code)
        if status == 200:
            server_session().begin_authenticated(user.id, moment)
            audit.record(db, moment, "signin.reconfirmed", actor_user_id=user.id, factor=factor)
            db.commit()
            if form.stay.data:
                # The in-page dialog: the page underneath, and whatever was typed
                # into it, stays exactly as it was.
                response = current_app.response_class("", 204)
                response.headers["HX-Trigger"] = "session-reconfirmed"
                return response
            return see_other(safe_next(form.next.data, url_for("home")))
    elif form.errors:
        status = 400
    if wants_fragment() and status != 200:
        status = 200  # htmx shows the dialog's errors in place
    return render(
        "auth/confirm.html", "auth/_confirm_form.html", status, form=form, user=user, in_dialog=wants_fragment()
    )


def _session_state() -> dict:
    config, moment = current_app.config, now()
    if not current_user.is_authenticated:
        return {"signed_in": False}
    state = server_session()
    last = state.last_activity_at or moment
    idle_left = config["SESSION_IDLE_SECONDS"] - (moment - last).total_seconds()
    return {
        "signed_in": idle_left > 0,
        "idle_remaining": max(0, int(idle_left)),
        "reauth_remaining": reauth_remaining(state, moment, config["SESSION_REAUTH_SECONDS"]),
        "warning_seconds": config["SESSION_WARNING_SECONDS"],
        "two_factor": current_user.has_two_factor,
    }


@bp.route("/session")
@access(public=True, reauth_exempt=True, unverified_ok=True, two_factor_setup=True)
def session_status():
    """For the page's timer. Sent as a background request, so asking is not activity."""
    return jsonify(_session_state())


@bp.route("/session/extend", methods=["POST"])
@access(reauth_exempt=True, unverified_ok=True, two_factor_setup=True)
def session_extend():
    """ "Stay signed in": activity, even when sent as a background request."""
    count_as_activity(server_session(), now())
    return jsonify(_session_state())
