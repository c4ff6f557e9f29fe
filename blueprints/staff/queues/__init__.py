"""Work queues: every submission, received, in progress and decided. (Under construction.)"""
from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("queues", __name__, url_prefix="/queues")


@bp.route("/")
def index():
    return render_template("staff/placeholder.html", title="Queues", staff_section="queues")


@bp.route("/items/<int:item_id>")
def item(item_id):
    return render_template("staff/placeholder.html", title="Queues", staff_section="queues")
