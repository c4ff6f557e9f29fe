"""The start page and the pages every government service has."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template, session
from flask_login import current_user

from domain import sessions as session_store, totp
from web.access import access
from web.database import get_db, now
from web.sessions import limits_from

bp = Blueprint("pages", __name__, url_prefix="/pages")


@access(anonymous=True)
def home():
    if not current_user.is_authenticated:
        return render_template("pages/start.html")
    user = current_user._get_current_object()
    active = session_store.count_active_for_user(get_db(), user.id, now(), limits_from(current_app.config))
    return render_template("pages/home.html", user=user, active_sessions=active,
                           recovery_left=totp.unused_recovery_codes(user), notice=session.pop("notice", None))


@bp.route("/accessibility")
@access(public=True, always_open=True)
def accessibility():
    return render_template("pages/accessibility.html")


@bp.route("/privacy")
@access(public=True, always_open=True)
def privacy():
    return render_template("pages/privacy.html")


@bp.route("/cookies")
@access(public=True, always_open=True)
def cookies():
    return render_template("pages/cookies.html")


@bp.route("/service-hours")
@access(public=True, always_open=True)
def service_hours():
    return render_template("pages/service_hours.html", always_open=current_app.config["SERVICE_HOURS"] == "always")
