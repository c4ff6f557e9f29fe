"""Accounts and people as the agency sees them, registration, invitation letters and PINs. (Under construction.)"""
from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("accounts", __name__, url_prefix="/accounts")


@bp.route("/")
def index():
    return render_template("staff/placeholder.html", title="Accounts", staff_section="accounts")


@bp.route("/pins")
def pins():
    return render_template("staff/placeholder.html", title="Accounts", staff_section="pins")


@bp.route("/<number>")
def show(number):
    return render_template("staff/placeholder.html", title="Accounts", staff_section="accounts")
