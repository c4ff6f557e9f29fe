"""Direct deposit: every route needs the "direct_deposit" permission. The
confirmation page names the table's `reference`, another feature's request: it
redirects (303) to where that is shown."""

from __future__ import annotations

NEEDS = {
    "direct_deposit.show": {"direct_deposit"},
    "direct_deposit.change": {"direct_deposit"},
    "direct_deposit.check": {"direct_deposit"},
    "direct_deposit.done": {"direct_deposit"},
}
