from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectMultipleField

from web.forms import email_field


class SubscribeForm(FlaskForm):
    """The programs to hear about, and where. Which programs exist is the view's to
    check (the choices are the programs table)."""

    programs = SelectMultipleField("Which programs do you want updates about?", id="programs", validate_choice=False)
    email = email_field(hint="We will email you a link to confirm before we send any updates")
