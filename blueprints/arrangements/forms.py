"""Forms of the payment arrangement journey. The rules (money, dates, the
program's limits) are checked by domain.arrangements; these forms only carry
the answers and the CSRF token, so every message comes from one place."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, StringField
from wtforms.fields.choices import SelectChoice

from domain.arrangements import FREQUENCIES
from web.forms import SendForm, declaration_field, strip


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
        filters=[strip],
        description="In dollars, like 1250.00. The last payment is what is left, so it can be less",
    )
    first_day = StringField("Day", id="first_day", filters=[strip])
    first_month = StringField("Month", id="first_month", filters=[strip])
    first_year = StringField("Year", id="first_year", filters=[strip])


class CheckForm(SendForm):
    seen_balance = HiddenField()  # the balance the schedule was worked out from
    declaration = declaration_field(
        "I agree to pay as scheduled. I understand that interest keeps accruing on the unpaid balance until it is "
        "paid in full, and that missing a payment may cancel the arrangement",
        "Confirm that you agree to pay as scheduled to send your proposal",
    )
