"""Forms of a notice of objection."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField, ValidationError
from wtforms.validators import DataRequired, Length

from domain.objections import MAX_TEXT, REQUIRED_MESSAGES, TOO_LONG, parse_amount
from web.forms import DECLARATION, SendForm, declaration_field, text_field


def _text(name: str, label: str, hint: str) -> StringField:
    required, short_enough = DataRequired(REQUIRED_MESSAGES[name]), Length(max=MAX_TEXT, message=TOO_LONG[name])
    return text_field(label, name, hint, required, short_enough, area=True)


class ObjectionForm(FlaskForm):
    # Declared in the order the page shows them (and the error summary lists them).
    reasons = _text(
        "reasons",
        "Why do you disagree with the notice?",
        "Say which parts of the assessment you think are wrong and why. Up to 5,000 characters",
    )
    facts = _text(
        "facts",
        "What are the facts?",
        "The facts that support your objection: what happened, when, and the figures. Up to 5,000 characters",
    )
    relief = _text(
        "relief",
        "What do you want us to change?",
        "For example, remove the penalty, or reduce the tax assessed to what you reported. Up to 5,000 characters",
    )
    amount = text_field("Amount you want changed, in dollars (optional)", "amount", "If you know it, like 1250.00")

    def validate_amount(self, field):
        _cents, message = parse_amount(field.data if isinstance(field.data, str) else "")
        if message:
            raise ValidationError(message)


class CheckForm(SendForm):
    declaration = declaration_field(DECLARATION, "Confirm the declaration to send your objection")
