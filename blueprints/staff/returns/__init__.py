"""Assessing and reassessing returns and claims. (Under construction.)"""
from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("returns", __name__, url_prefix="/returns")


@bp.route("/<int:return_id>")
def show(return_id):
    return render_template("staff/placeholder.html", title="Returns", staff_section="accounts")
