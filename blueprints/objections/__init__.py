"""Notices of objection against a notice of assessment or reassessment, within the program's deadline."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("objections", __name__, url_prefix="/objections")
