"""Ledger entries by hand: payments, refunds, transfers, adjustments and reversals. (Under construction.)"""
from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("ledger", __name__, url_prefix="/ledger")


@bp.route("/<number>/")
def account(number):
    return render_template("staff/placeholder.html", title="Ledger", staff_section="accounts")
