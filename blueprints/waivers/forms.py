"""Forms of a request to waive penalties and interest."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectMultipleField, ValidationError
from wtforms.validators import DataRequired, Length

from domain.waivers import MAX_TEXT, REASONS
from web.forms import DECLARATION, SendForm, declaration_field, radio_field, text_field


class EntriesForm(FlaskForm):
    # The choices are the account's charges, set by the view; domain.waivers.pick checks them.
    entries = SelectMultipleField(
        "Which penalties and interest do you want us to waive?",
        id="entries",
        validate_choice=False,
        description="Select all that apply",
    )


class ReasonForm(FlaskForm):
    reason = radio_field("Why should we waive them?", "reason", REASONS)
    explanation = text_field(
        "Explain what happened",
        "explanation",
        "What happened, when, and how it kept you from filing or paying on time. Up to 5,000 characters",
        DataRequired("Explain why we should waive the penalties and interest"),
        Length(max=MAX_TEXT, message="The explanation must be 5,000 characters or fewer"),
        area=True,
    )

    def validate_reason(self, field):
        if field.data not in REASONS:
            raise ValidationError("Select why we should waive the penalties and interest")


class CheckForm(SendForm):
    declaration = declaration_field(DECLARATION, "Confirm the declaration to send your request")
