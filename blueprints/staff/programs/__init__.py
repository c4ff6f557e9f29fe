"""Programs: register and change tax programs (administrators). (Under construction.)"""
from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("programs", __name__, url_prefix="/programs")


@bp.route("/")
def index():
    return render_template("staff/placeholder.html", title="Programs", staff_section="programs")
