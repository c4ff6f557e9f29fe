"""The audit log viewer, with a CSV export. (Under construction.)"""
from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("audit", __name__, url_prefix="/audit")


@bp.route("/")
def index():
    return render_template("staff/placeholder.html", title="Audit", staff_section="audit")
