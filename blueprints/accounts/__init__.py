"""A tax account: its summary, financial transactions and assessment status.
Every route goes through web.account_access.account_or_404."""

from flask import Blueprint

bp = Blueprint("accounts", __name__, url_prefix="/accounts")

from . import returns, views  # noqa: E402,F401  (routes register on bp)
