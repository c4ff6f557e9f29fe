"""Finding an account, and registering one: its program, names, two structured
addresses (the shape domain.details stores and the taxpayer's details page
edits), the contact and the day it opened."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from web.details_fields import add_checks, address_fields, contact_fields, tidy
from web.forms import DateInputField, not_blank, one_line


class AccountSearchForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search changes nothing

    q = StringField(
        "Account number or name",
        description="An account number (spaces are fine), or part of a legal or operating name",
        validators=[
            DataRequired("Enter an account number or a name"),
            Length(max=200, message="Enter 200 characters or fewer"),
            one_line("Enter the search without special characters"),
        ],
    )


def _text(label: str, what: str, most: int, *, required: bool = True, **kwargs) -> StringField:
    first = not_blank(f"Enter {what}") if required else Optional()
    return StringField(
        label,
        filters=[tidy],
        **kwargs,
        validators=[
            first,
            one_line(f"Enter {what} on one line, without special characters"),
            Length(max=most, message=f"Enter {what} in {most} characters or fewer"),
        ],
    )


class _AccountBasics(FlaskForm):
    key = HiddenField()  # one-time: one press of the button (or two) makes one account
    program_code = SelectField(
        "Program", id="program_code", validate_choice=False, validators=[DataRequired("Choose a program")]
    )
    legal_name = _text(
        "Legal name",
        "the legal name",
        200,
        id="legal_name",
        description="As registered: a corporation's name, or an individual's full name",
    )
    operating_name = _text(
        "Operating name (optional)",
        "the operating name",
        200,
        required=False,
        id="operating_name",
        description="The name the business trades under, if different",
    )


# Fields made in page order: WTForms orders them (and the error summary) by when they were made.
RegisterAccountForm = type(
    "RegisterAccountForm",
    (_AccountBasics,),
    {
        **address_fields("mailing", "mailing address"),
        **address_fields("physical", "physical address"),
        **contact_fields(),
        "opened_on": DateInputField(
            "Date the account opened",
            id="opened_on",
            what="The date the account opened",
            required="Enter the date the account opened",
            description="For example, 31 1 2026. Filing periods start from it",
        ),
    },
)
add_checks(RegisterAccountForm)
