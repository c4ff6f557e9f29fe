"""The fields of an account's details: two structured addresses and the contact,
with their checks. The taxpayer's details form (blueprints.details) and the back
office's account registration (blueprints.staff.accounts) are made of them."""

from __future__ import annotations

from wtforms import SelectField, StringField, ValidationError
from wtforms.validators import Email, Length, Optional

from domain import details
from web.forms import SelectChoice, not_blank, one_line

PARTS = ("line1", "line2", "city", "province", "postal")


def tidy(value):
    """A filter: text with its spaces tidied (domain.details.tidy)."""
    return details.tidy(value) if isinstance(value, str) else value


def address_fields(prefix: str, which: str) -> dict:
    """The five fields of one address, named <prefix>_line1 ... <prefix>_postal."""
    return {
        f"{prefix}_line1": StringField(
            "Address line 1",
            id=f"{prefix}_line1",
            filters=[tidy],
            validators=[
                not_blank(f"Enter address line 1 of the {which}"),
                one_line(f"Enter address line 1 of the {which} on one line, without special characters"),
                Length(
                    max=details.LINE_MAX,
                    message=f"Enter address line 1 of the {which} in {details.LINE_MAX} characters or fewer",
                ),
            ],
        ),
        f"{prefix}_line2": StringField(
            "Address line 2 (optional)",
            id=f"{prefix}_line2",
            filters=[tidy],
            validators=[
                Optional(),
                one_line(f"Enter address line 2 of the {which} on one line, without special characters"),
                Length(
                    max=details.LINE_MAX,
                    message=f"Enter address line 2 of the {which} in {details.LINE_MAX} characters or fewer",
                ),
            ],
        ),
        f"{prefix}_city": StringField(
            "Town or city",
            id=f"{prefix}_city",
            filters=[tidy],
            validators=[
                not_blank(f"Enter the town or city of the {which}"),
                one_line(f"Enter the town or city of the {which} on one line, without special characters"),
                Length(max=100, message=f"Enter the town or city of the {which} in 100 characters or fewer"),
            ],
        ),
        f"{prefix}_province": SelectField(
            "Province or territory",
            id=f"{prefix}_province",
            validate_choice=False,
            choices=[SelectChoice("", "Choose a province or territory")]
            + [SelectChoice(code, name) for code, name in details.PROVINCES],
        ),
        f"{prefix}_postal": StringField(
            "Postal code",
            id=f"{prefix}_postal",
            description="For example, T5J 2Z2",
            validators=[not_blank(f"Enter the postal code of the {which}")],
        ),
    }


def contact_fields() -> dict:
    return {
        "contact_name": StringField(
            "Contact name",
            id="contact_name",
            filters=[tidy],
            description="The person we should ask for about this account",
            validators=[
                not_blank("Enter the contact name"),
                one_line("Enter the contact name on one line, without special characters"),
                Length(max=200, message="Enter a contact name of 200 characters or fewer"),
            ],
        ),
        "contact_phone": StringField(
            "Phone number",
            id="contact_phone",
            filters=[tidy],
            description="A Canadian or North American number, like 403-678-5521. Add an extension after it, "
            "like 403-678-5521 ext. 12",
            validators=[not_blank("Enter a phone number")],
        ),
        "contact_email": StringField(
            "Email address (optional)",
            id="contact_email",
            filters=[tidy],
            validators=[
                Optional(),
                one_line("Enter the email address on one line, without special characters"),
                Length(max=254, message="Enter an email address of 254 characters or fewer"),
                Email(
                    "Enter an email address in the correct format, like name@example.com", check_deliverability=False
                ),
            ],
        ),
    }


def _check_province(which: str):
    def check(form, field):
        if field.data not in details.PROVINCE_CODES:
            raise ValidationError(f"Select the province or territory of the {which}")

    return check


def _check_postal(form, field):
    if field.errors or not (field.data or "").strip():
        return
    value, problem = details.normalise_postal(field.data if isinstance(field.data, str) else "")
    if problem:
        raise ValidationError(problem)
    field.data = value


def _check_phone(form, field):
    if not (field.data or "").strip():
        return
    value, problem = details.normalise_phone(field.data)
    if problem:
        raise ValidationError(problem)
    field.data = value


def add_checks(form_class) -> None:
    """The checks of the two addresses' provinces and postal codes and of the phone
    number, on a form class made with `address_fields` and `contact_fields`."""
    for prefix, which in (("mailing", "mailing address"), ("physical", "physical address")):
        setattr(form_class, f"validate_{prefix}_province", staticmethod(_check_province(which)))
        setattr(form_class, f"validate_{prefix}_postal", staticmethod(_check_postal))
    form_class.validate_contact_phone = staticmethod(_check_phone)


def address_of(form, prefix: str) -> str:
    """The stored text of one of the form's addresses (after validation)."""
    return details.compose_address(details.Address(*(getattr(form, f"{prefix}_{part}").data or "" for part in PARTS)))
