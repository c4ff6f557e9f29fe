"""Forms of ledger entries by hand. The rules (amounts, dates, periods, signs,
who may post what) are domain.postings'; these forms carry the answers, the
CSRF token and the one-time key that makes a second submission post nothing."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, StringField

from domain.postings import KINDS
from web.forms import DateInputField, SelectChoice, one_line


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def kind_choices(kinds) -> list[SelectChoice]:
    return [SelectChoice(kind, KINDS[kind].label) for kind in kinds]


class EntryForm(FlaskForm):
    # Declared in the order the page asks (WTForms orders the error summary the same way).
    key = HiddenField()
    kind = RadioField("Type of entry", id="kind", validate_choice=False, choices=kind_choices(KINDS))
    amount = StringField(
        "Amount",
        id="amount",
        filters=[_strip],
        description="In dollars, like 1250.00, without a minus sign: the type says whether it is a debit or a credit",
    )
    effective_date = DateInputField(
        "Effective date",
        id="effective_date",
        what="The effective date",
        required="Enter the effective date",
        description="The day it takes effect, for example 23 11 2026",
    )
    period_end = StringField("Period (optional)", id="period_end", filters=[_strip])
    to_account = StringField(
        "Account the amount goes to (transfers only)",
        id="to_account",
        filters=[_strip],
        description="Its 10-digit account number",
    )
    reason = StringField(
        "Reason",
        id="reason",
        filters=[_strip],
        validators=[one_line("Enter the reason on one line, without special characters")],
        description="Shown as the entry's description, to the account's people too. Up to 200 characters",
    )


class ReverseForm(FlaskForm):
    key = HiddenField()
    reason = StringField(
        "Why reverse it?",
        id="reason",
        filters=[_strip],
        validators=[one_line("Enter the reason on one line, without special characters")],
        description="Shown as the reversal's description, to the account's people too. Up to 200 characters",
    )
