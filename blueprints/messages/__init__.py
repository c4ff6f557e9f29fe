"""Online mail: secure messages to the signed-in person."""
from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask_login import current_user

from domain import messages
from web.database import get_db, now, write_at_end

bp = Blueprint("messages", __name__, url_prefix="/messages")


@bp.route("/")
def inbox():
    db, user_id = get_db(), current_user.id
    return render_template("messages/inbox.html", rows=messages.for_user(db, user_id),
                           total=messages.count_for_user(db, user_id), unread=messages.unread_count(db, user_id),
                           shown_at_most=messages.SHOWN_AT_MOST)


@bp.route("/<int:message_id>")
def show(message_id: int):
    message = messages.own(get_db(), current_user.id, message_id)
    if message is None:
        abort(404)  # another person's message is the same answer as none at all
    # A GET changes nothing, except bookkeeping: "read" is like a grant's
    # last_used_at, a fact about the visit that harms nothing if lost in a crash.
    # web.database.write_at_end writes it once the page is made, outside the
    # request's reading transaction (and only for the message's own reader).
    marked = messages.read_write(message, now())
    if marked is not None:
        write_at_end(("message-read", message.id), *marked)
    return render_template("messages/show.html", message=message)
