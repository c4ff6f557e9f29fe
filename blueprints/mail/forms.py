"""The owner's choice of paper or online mail."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import RadioField, ValidationError
from wtforms.validators import InputRequired

from web.forms import SelectChoice

CHOOSE = "Choose online or by post"
DELIVERY_CHOICES = (
    SelectChoice("online", "Online: we post notices and letters here and email you when one arrives"),
    SelectChoice("paper", "By post: we mail them to the account's mailing address, for two years"),
)


class DeliveryForm(FlaskForm):
    delivery = RadioField(
        "How should we send this account's notices and letters?",
        id="delivery",
        choices=DELIVERY_CHOICES,
        validators=[InputRequired(CHOOSE)],
        validate_choice=False,
    )

    def validate_delivery(self, field):
        if field.data not in {choice.value for choice in DELIVERY_CHOICES}:
            raise ValidationError(CHOOSE)
