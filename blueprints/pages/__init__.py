"""The start page and the pages every government service has."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request, session
from flask_login import current_user

from domain import consents, overview, totp
from domain import sessions as session_store
from domain.access import accounts_due_for_review
from web.access import access
from web.database import get_db, now
from web.dates import today
from web.htmx import render, wants_fragment
from web.sessions import limits_from, signed_in_user

bp = Blueprint("pages", __name__, url_prefix="/pages")

# The help guides, in the order the index lists them: each is
# templates/pages/help/<slug>.html at /pages/help/<slug>, and the page it helps with
# links to it ("Help with this"). tests/test_help.py fails when a guide has no page
# linking to it, or a template no entry here.
HELP_GUIDES = {
    "account-number": "How to find your account number",
    "enrol": "Link a tax account to your sign-in",
    "manage-access": "Manage who can use an account",
    "representatives": "Give a representative access",
    "file": "File a return or claim",
    "upload": "Upload supporting documents",
    "object": "Object to a notice of assessment",
    "waiver": "Ask us to waive penalties and interest",
    "payment-arrangement": "Set up a payment arrangement",
    "direct-deposit": "Get refunds by direct deposit",
    "payments": "Pay what you owe and check your payments",
}


@access(anonymous=True)
def home():
    if not current_user.is_authenticated:
        return render_template("pages/start.html")
    db = get_db()
    # Every account the person holds a live grant on: searched and paged by keyset
    # (?q=…&after=<account number>); htmx asks for the results part only.
    # PostgreSQL refuses a NUL in text, so neither reaches a query: a NUL is no part
    # of any name or number, and a mark that is not an account number is the first page.
    after = request.args.get("after") or None
    if after is not None and not (after.isascii() and after.isdigit() and len(after) <= 20):
        after = None
    accounts = overview.dashboard(
        db, current_user.id, today(), query=request.args.get("q", "").replace("\x00", ""), after=after
    )
    if wants_fragment():
        return render("pages/home.html", "accounts/_dashboard_results.html", listing=accounts)
    user = signed_in_user()  # the whole page lists their recovery codes left
    active = session_store.count_active_for_user(db, user.id, now(), limits_from(current_app.config))
    reviews_due = accounts_due_for_review(db, user.id, today(), current_app.config["ACCESS_REVIEW_MONTHS"])
    return render(
        "pages/home.html",
        "accounts/_dashboard_results.html",
        user=user,
        active_sessions=active,
        recovery_left=totp.unused_recovery_codes(user),
        notice=session.pop("notice", None),
        listing=accounts,
        reviews_due=reviews_due,
        requests_to_answer=consents.requests_to_answer(db, user.id, today()),
        lapse_days=consents.REQUEST_LAPSE_WORKING_DAYS,
    )


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


# Help is public and open at all hours: a person who cannot sign in, or finds the
# service closed, needs it most.
@bp.route("/help/")
@access(public=True, always_open=True)
def help_index():
    return render_template("pages/help/index.html", guides=HELP_GUIDES)


@bp.route("/help/<slug>")
@access(public=True, always_open=True)
def help_guide(slug: str):
    if slug not in HELP_GUIDES:
        abort(404)
    return render_template(f"pages/help/{slug}.html", title=HELP_GUIDES[slug], guides=HELP_GUIDES)
