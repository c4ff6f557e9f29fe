"""Help guides (public): the table's URL names the account number's guide."""

from __future__ import annotations


def extend(db, account, now, table) -> None:
    table["slug"] = "account-number"
