"""Look-ups the back office's sections share: a 404 for what is not there."""

from __future__ import annotations

from flask import abort

from domain.accounts import find_by_number
from models import Account
from web.database import get_db


def account_or_404(number: str) -> Account:
    """The account a staff page's URL names (its number, spaces allowed)."""
    account = find_by_number(get_db(), number)
    if account is None:
        abort(404)
    return account
