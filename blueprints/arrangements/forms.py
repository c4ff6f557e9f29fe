"""Forms of the payment arrangement journey. The rules (money, dates, the
program's limits) are checked by domain.arrangements; these forms only carry
the answers and the CSRF token, so every message comes from one place."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField

from domain.arrangements import FREQUENCIES
from web.forms import DateInputField, SendForm, declaration_field, radio_field, text_field

INSTALMENT_HINT = "In dollars, like 1250.00. The last payment is what is left, so it can be less"


class ProposeForm(FlaskForm):
    # Declared in the order the page asks (WTForms orders the error summary the same way).
    frequency = radio_field("How often will you pay?", "frequency", FREQUENCIES)
    instalment = text_field("How much will you pay each time?", "instalment", INSTALMENT_HINT)
    # Read and checked by domain.arrangements, with the journey's other answers.
    first = DateInputField(
        "When will you make the first payment?", id="first", what="The date of your first payment", checked=False
    )


class CheckForm(SendForm):
    seen_balance = HiddenField()  # the balance the schedule was worked out from
    declaration = declaration_field(
        "I agree to pay as scheduled. I understand that interest keeps accruing on the unpaid balance until it is "
        "paid in full, and that missing a payment may cancel the arrangement",
        "Confirm that you agree to pay as scheduled to send your proposal",
    )
