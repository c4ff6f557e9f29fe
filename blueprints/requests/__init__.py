"""The account's request history: everything submitted through self-service, with
its reference and status, and each request's answers as submitted. A person sees
the kinds of request their grant lets them make (domain.requests.KIND_PERMISSIONS):
the routes need any permission that makes some kind of request."""

from __future__ import annotations

from flask import Blueprint, abort, render_template

from domain import requests
from domain.documents import of_request as documents_of_request
from models import Account, Grant, User
from web.access import account_route
from web.database import get_db

bp = Blueprint("requests", __name__, url_prefix="/requests")

ANY_REQUEST = tuple(sorted(set(requests.KIND_PERMISSIONS.values())))


@bp.route("/<account:number>/")
@account_route(*ANY_REQUEST)
def history(account: Account, grant: Grant):
    rows = requests.of_account(get_db(), account.id, requests.visible_kinds(grant))
    return render_template(
        "requests/history.html",
        account=account,
        grant=grant,
        rows=rows,
        kinds=requests.KIND_LABELS,
        statuses=requests.STATUS_WORDS,
        current=None,
    )


@bp.route("/<account:number>/<request_reference>")
@account_route(*ANY_REQUEST)
def show(account: Account, grant: Grant, request_reference: str):
    db = get_db()
    found = requests.find(db, account.id, request_reference)
    if found is None or found.kind not in requests.visible_kinds(grant):
        abort(404)
    documents = documents_of_request(db, found.id)
    submitted_by = db.get(User, found.submitted_by_user_id)
    return render_template(
        "requests/show.html",
        account=account,
        grant=grant,
        found=found,
        answers=requests.readable_answers(found),
        documents=documents,
        submitted_by=submitted_by.name if submitted_by else "Someone no longer registered",
        kinds=requests.KIND_LABELS,
        statuses=requests.STATUS_WORDS,
        current=None,
    )
