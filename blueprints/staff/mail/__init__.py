"""Paper mail: the notices and letters to print and post (the owner chose paper,
or the letter carries a PIN), oldest first, each marked mailed once it is in the
post. Any staff member may print and mark; every step is audited. The rules live
in domain.mail."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, session, url_for
from flask_login import current_user

from blueprints.mail import pdf_attachment
from domain import audit, mail
from models import Account
from web.database import get_db, now
from web.dates import today
from web.errors import render_error
from web.htmx import see_other
from web.sessions import signed_in_user

bp = Blueprint("mail", __name__, url_prefix="/mail")


def _item_or_404(item_id: int):
    item = mail.get(get_db(), item_id)
    if item is None:
        abort(404)
    return item


@bp.route("/")
def index():
    rows = mail.paper_queue(get_db())
    return render_template(
        "staff/mail/index.html",
        rows=rows,
        kind_labels=mail.KIND_LABELS,
        shown_at_most=mail.QUEUE_SHOWN_AT_MOST,
        staff_section="mail",
    )


@bp.route("/items/<int:item_id>.pdf")
def download(item_id: int):
    db = get_db()
    item = _item_or_404(item_id)
    account = db.get_one(Account, item.account_id)
    # A letter may carry a PIN: who printed what is on the record.
    audit.record(
        db,
        now(),
        "mail.downloaded",
        actor_user_id=current_user.id,
        account_id=item.account_id,
        mail=item.id,
        kind=item.kind,
    )
    db.commit()
    return pdf_attachment(item.content, mail.filename(item, account.number))


@bp.route("/items/<int:item_id>/mailed", methods=["POST"])
def mark_mailed(item_id: int):
    db = get_db()
    item = _item_or_404(item_id)
    try:
        marked = mail.mark_mailed(db, now(), item, signed_in_user(), today=today())
    except mail.NotPaper:
        return render_error(
            409,
            title="This item went online",
            message="It was posted online, under the account's Mail, so there is nothing to mail.",
        )
    if marked:
        db.commit()
        session["notice"] = f"Marked “{item.title}” as mailed."
    else:
        db.rollback()  # end the UPDATE that matched nothing: SQLite holds its write lock until then
        session["notice"] = f"“{item.title}” was already marked as mailed."
    return see_other(url_for(".index"))
