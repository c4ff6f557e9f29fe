"""Forms for direct deposit. The numbers are checked by domain.direct_deposit
(one rule for the form, the draft and the submission)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField, ValidationError
from wtforms.validators import Length

from domain import direct_deposit
from web.forms import SendForm, declaration_field, password_field


def _digits(field_name: str):
    def check(_form, field):
        _value, problem = direct_deposit.clean(field_name, field.data)
        if problem:
            raise ValidationError(problem)

    return check


class BankForm(FlaskForm):
    # Declared in the order they appear on a cheque's bottom line.
    transit = StringField(
        "Transit number (branch)",
        id="transit",
        description="5 digits. On a cheque, the first group of numbers after the cheque number",
        validators=[_digits("transit")],
    )
    institution = StringField(
        "Institution number (bank)",
        id="institution",
        description="3 digits. On a cheque, straight after the transit number",
        validators=[_digits("institution")],
    )
    bank_account = StringField(
        "Account number",
        id="bank_account",
        description="7 to 12 digits. On a cheque, the last group of numbers",
        validators=[_digits("bank_account")],
    )

    def answers(self) -> dict:
        return {name: getattr(self, name).data for name in direct_deposit.FIELDS}


class CheckForm(SendForm):
    declaration = declaration_field(
        "I confirm that I may act for this account and that refunds for it should be paid into this bank account",
        "Confirm the declaration to change the direct deposit details",
    )
    password = password_field(
        "Your password",
        "Enter your password",
        hint="We ask for it again because these details decide where refunds are paid",
    )
    code = StringField(
        "Security code",
        id="code",
        description="The 6-digit code from your authenticator app, or a recovery code",
        validators=[Length(max=20, message="Enter the 6-digit code or a recovery code")],
    )
