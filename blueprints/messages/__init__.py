"""Online mail: secure messages to the signed-in person."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("messages", __name__, url_prefix="/messages")
