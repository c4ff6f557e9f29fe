"""Direct deposit: Canadian banking details for refunds, shown masked; changing them needs a fresh password."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("direct_deposit", __name__, url_prefix="/direct-deposit")
