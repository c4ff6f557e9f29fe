"""Forms of the payment arrangement journey. The rules (money, dates, the
program's limits) are checked by domain.arrangements; these forms only carry
the answers and the CSRF token, so every message comes from one place."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired

from domain.arrangements import FREQUENCIES


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class ProposeForm(FlaskForm):
    # Declared in the order the page asks (WTForms orders the error summary the same way).
    frequency = RadioField(
        "How often will you pay?",
        id="frequency",
        validate_choice=False,
        choices=[SelectChoice(value, label) for value, label in FREQUENCIES.items()],
    )
    instalment = StringField(
        "How much will you pay each time?",
        id="instalment",
        filters=[_strip],
        description="In dollars, like 1250.00. The last payment is what is left, so it can be less",
    )
    first_day = StringField("Day", id="first_day", filters=[_strip])
    first_month = StringField("Month", id="first_month", filters=[_strip])
    first_year = StringField("Year", id="first_year", filters=[_strip])


class CheckForm(FlaskForm):
    token = HiddenField()
    seen_balance = HiddenField()
    declaration = BooleanField(
        "I agree to pay as scheduled. I understand that interest keeps accruing on the unpaid balance until it is "
        "paid in full, and that missing a payment may cancel the arrangement",
        id="declaration",
        validators=[DataRequired("Confirm that you agree to pay as scheduled to send your proposal")],
    )
