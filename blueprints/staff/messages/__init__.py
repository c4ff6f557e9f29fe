"""Secure messages: staff write to an account or a person and answer replies. (Under construction.)"""
from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("messages", __name__, url_prefix="/messages")


@bp.route("/")
def index():
    return render_template("staff/placeholder.html", title="Messages", staff_section="messages")


@bp.route("/<int:thread_id>")
def thread(thread_id):
    return render_template("staff/placeholder.html", title="Messages", staff_section="messages")


@bp.route("/new")
def new():
    return render_template("staff/placeholder.html", title="Messages", staff_section="messages")
