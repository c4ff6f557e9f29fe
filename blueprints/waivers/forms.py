"""Forms of a request to waive penalties and interest."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import RadioField, SelectMultipleField, TextAreaField, ValidationError
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from domain.waivers import MAX_TEXT, REASONS
from web.forms import DECLARATION, SendForm, declaration_field, strip


class EntriesForm(FlaskForm):
    # The choices are the account's charges, set by the view; domain.waivers.pick checks them.
    entries = SelectMultipleField(
        "Which penalties and interest do you want us to waive?",
        id="entries",
        validate_choice=False,
        description="Select all that apply",
    )


class ReasonForm(FlaskForm):
    reason = RadioField(
        "Why should we waive them?",
        id="reason",
        validate_choice=False,
        choices=[SelectChoice(value, label) for value, label in REASONS.items()],
    )
    explanation = TextAreaField(
        "Explain what happened",
        id="explanation",
        filters=[strip],
        description="What happened, when, and how it kept you from filing or paying on time. Up to 5,000 characters",
        validators=[
            DataRequired("Explain why we should waive the penalties and interest"),
            Length(max=MAX_TEXT, message="The explanation must be 5,000 characters or fewer"),
        ],
    )

    def validate_reason(self, field):
        if field.data not in REASONS:
            raise ValidationError("Select why we should waive the penalties and interest")


class CheckForm(SendForm):
    declaration = declaration_field(DECLARATION, "Confirm the declaration to send your request")
