"""Forms of assessing and reassessing a return. The rules (amounts, reasons, what
can be assessed now) are domain.assessments'; these forms carry the answers,
the CSRF token and the one-time key that makes a second submission post nothing."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, StringField, TextAreaField

from web.forms import SelectChoice

# Penalty and interest lines offered on the form: a fixed number, so it works without JavaScript.
CHARGE_LINES = 2
CHARGE_CHOICES = [SelectChoice("penalty", "Penalty"), SelectChoice("interest", "Interest")]


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _kind(number: int) -> RadioField:
    return RadioField(
        f"Charge {number}: type",
        id=f"charge{number}_kind",
        validate_choice=False,
        choices=CHARGE_CHOICES,
        default="penalty",
    )


def _amount(number: int) -> StringField:
    return StringField(
        f"Charge {number}: amount",
        id=f"charge{number}_amount",
        filters=[_strip],
        description="In dollars, like 125.00",
    )


def _reason(number: int) -> StringField:
    return StringField(
        f"Charge {number}: reason",
        id=f"charge{number}_reason",
        filters=[_strip],
        description="Shown on the notice. Up to 200 characters",
    )


class AssessForm(FlaskForm):
    # Declared in the order the page asks (WTForms orders the error summary the same way).
    key = HiddenField()
    assessed = StringField(
        "Assessed amount",
        id="assessed",
        filters=[_strip],
        description="In dollars. It starts as the amount filed",
    )
    charge1_kind, charge1_amount, charge1_reason = _kind(1), _amount(1), _reason(1)
    charge2_kind, charge2_amount, charge2_reason = _kind(2), _amount(2), _reason(2)
    note = TextAreaField(
        "Note to the account's people (optional)",
        id="note",
        filters=[_strip],
        description="Needed when the assessed amount differs from the amount filed. They read it "
        "with the decision on their request and in the message about the notice",
    )

    def charge_fields(self):
        """(kind, amount, reason) fields of each line, in order."""
        return [
            (self[f"charge{n}_kind"], self[f"charge{n}_amount"], self[f"charge{n}_reason"])
            for n in range(1, CHARGE_LINES + 1)
        ]


class ReassessForm(FlaskForm):
    key = HiddenField()
    new_total = StringField(
        "New assessed total",
        id="new_total",
        filters=[_strip],
        description="What the period's tax comes to now, in dollars. We post the "
        "difference from the current total as an adjustment",
    )
    reason = StringField(
        "Reason",
        id="reason",
        filters=[_strip],
        description="Shown on the adjustment, the notice of reassessment and the message. Up to 200 characters",
    )
