"""Finding an account, and registering one: its program, names, two structured
addresses (the shape domain.details stores and the taxpayer's details page
edits), the contact and the day it opened."""
from __future__ import annotations

from datetime import date

from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField, ValidationError
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length, Optional, StopValidation

from domain import details

from ..forms import one_line_search


class AccountSearchForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search changes nothing

    q = StringField("Account number or name", description="An account number (spaces are fine), or part of a "
                                                          "legal or operating name",
                    validators=[DataRequired("Enter an account number or a name"),
                                Length(max=200, message="Enter 200 characters or fewer"), one_line_search])


def _tidy(value):
    return details.tidy(value) if isinstance(value, str) else value


def _one_line(what: str):
    def check(_form, field):
        if isinstance(field.data, str) and details.has_control_characters(field.data):
            raise ValidationError(f"Enter {what} on one line, without special characters")
    return check


def _required(message: str):
    def check(_form, field):
        if not isinstance(field.data, str) or not field.data.strip():
            raise StopValidation(message)
    return check


def _text(label: str, what: str, most: int, *, required: bool = True, **kwargs) -> StringField:
    first = _required(f"Enter {what}") if required else Optional()
    return StringField(label, filters=[_tidy], **kwargs, validators=[
        first, _one_line(what), Length(max=most, message=f"Enter {what} in {most} characters or fewer")])


def _province(which: str):
    def check(_form, field):
        if field.data not in details.PROVINCE_CODES:
            raise ValidationError(f"Select the province or territory of the {which}")
    return check


def _postal(_form, field):
    if field.errors:
        return
    value, problem = details.normalise_postal(field.data if isinstance(field.data, str) else "")
    if problem:
        raise ValidationError(problem)
    field.data = value


def _address(prefix: str, which: str) -> dict:
    """The five fields of one address, named <prefix>_line1 ... <prefix>_postal."""
    return {
        f"{prefix}_line1": _text("Address line 1", f"address line 1 of the {which}", details.LINE_MAX,
                                 id=f"{prefix}_line1"),
        f"{prefix}_line2": _text("Address line 2 (optional)", f"address line 2 of the {which}", details.LINE_MAX,
                                 required=False, id=f"{prefix}_line2"),
        f"{prefix}_city": _text("Town or city", f"the town or city of the {which}", 100, id=f"{prefix}_city"),
        f"{prefix}_province": SelectField("Province or territory", id=f"{prefix}_province", validate_choice=False,
                                          choices=[SelectChoice("", "Choose a province or territory")]
                                          + [SelectChoice(code, name) for code, name in details.PROVINCES],
                                          validators=[_province(which)]),
        f"{prefix}_postal": StringField("Postal code", id=f"{prefix}_postal", description="For example, T5J 2Z2",
                                        validators=[_required(f"Enter the postal code of the {which}"), _postal]),
    }


def _phone(_form, field):
    value, problem = details.normalise_phone(field.data)
    if problem:
        raise ValidationError(problem)
    field.data = value


def _opened_on(_form, field):
    try:
        field.data = date.fromisoformat(field.data)
    except (TypeError, ValueError):
        raise ValidationError("Enter the date the account opened as year-month-day, like 2026-01-31") from None


class _AccountBasics(FlaskForm):
    key = HiddenField()  # one-time: one press of the button (or two) makes one account
    program_code = SelectField("Program", id="program_code", validate_choice=False,
                               validators=[DataRequired("Choose a program")])
    legal_name = _text("Legal name", "the legal name", 200, id="legal_name",
                       description="As registered: a corporation's name, or an individual's full name")
    operating_name = _text("Operating name (optional)", "the operating name", 200, required=False,
                           id="operating_name", description="The name the business trades under, if different")


# Fields made in page order: WTForms orders them (and the error summary) by when they were made.
RegisterAccountForm = type("RegisterAccountForm", (_AccountBasics,), {
    **_address("mailing", "mailing address"),
    **_address("physical", "physical address"),
    "contact_name": _text("Contact name", "the contact name", 200, id="contact_name",
                          description="The person we should ask for about this account"),
    "contact_phone": StringField("Phone number", id="contact_phone", filters=[_tidy],
                                 description="A Canadian or North American number, like 403-678-5521",
                                 validators=[_required("Enter a phone number"), _phone]),
    "contact_email": StringField("Email address (optional)", id="contact_email", filters=[_tidy], validators=[
        Optional(), Length(max=254, message="Enter an email address of 254 characters or fewer"),
        Email("Enter an email address in the correct format, like name@example.com", check_deliverability=False)]),
    "opened_on": StringField("Date the account opened", id="opened_on", filters=[_tidy],
                             description="Year-month-day, for example 2026-01-31. Filing periods start from it",
                             validators=[_required("Enter the date the account opened"), _opened_on]),
})


def address_of(form, prefix: str) -> str:
    """The stored text of one of the form's addresses (after validation)."""
    return details.compose_address(details.Address(*(getattr(form, f"{prefix}_{part}").data or ""
                                                     for part in ("line1", "line2", "city", "province", "postal"))))
