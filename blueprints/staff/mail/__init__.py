"""Paper mail: letters and notices to print and post. (Under construction.)"""
from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("mail", __name__, url_prefix="/mail")


@bp.route("/")
def index():
    return render_template("staff/placeholder.html", title="Mail", staff_section="mail")


@bp.route("/items/<int:item_id>.pdf")
def download(item_id):
    return render_template("staff/placeholder.html", title="Mail", staff_section="mail")
