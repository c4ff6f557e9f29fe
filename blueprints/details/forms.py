"""The account details form: two structured addresses and the contact. The
fields and their checks also serve the back office's account registration."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField, ValidationError
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Email, Length, Optional, StopValidation

from domain import details


def _strip(value):
    return details.tidy(value) if isinstance(value, str) else value


def one_line(what: str):
    def check(_form, field):
        if isinstance(field.data, str) and details.has_control_characters(field.data):
            raise ValidationError(f"Enter {what} on one line, without special characters")

    return check


def required(message: str):
    def check(_form, field):
        if not isinstance(field.data, str) or not field.data.strip():
            raise StopValidation(message)

    return check


def address_fields(prefix: str, which: str) -> dict:
    """The five fields of one address, named <prefix>_line1 ... <prefix>_postal."""
    return {
        f"{prefix}_line1": StringField(
            "Address line 1",
            id=f"{prefix}_line1",
            filters=[_strip],
            validators=[
                required(f"Enter address line 1 of the {which}"),
                one_line(f"address line 1 of the {which}"),
                Length(
                    max=details.LINE_MAX,
                    message=f"Enter address line 1 of the {which} in {details.LINE_MAX} characters or fewer",
                ),
            ],
        ),
        f"{prefix}_line2": StringField(
            "Address line 2 (optional)",
            id=f"{prefix}_line2",
            filters=[_strip],
            validators=[
                Optional(),
                one_line(f"address line 2 of the {which}"),
                Length(
                    max=details.LINE_MAX,
                    message=f"Enter address line 2 of the {which} in {details.LINE_MAX} characters or fewer",
                ),
            ],
        ),
        f"{prefix}_city": StringField(
            "Town or city",
            id=f"{prefix}_city",
            filters=[_strip],
            validators=[
                required(f"Enter the town or city of the {which}"),
                one_line(f"the town or city of the {which}"),
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
            validators=[required(f"Enter the postal code of the {which}")],
        ),
    }


def contact_fields() -> dict:
    return {
        "contact_name": StringField(
            "Contact name",
            id="contact_name",
            filters=[_strip],
            description="The person we should ask for about this account",
            validators=[
                required("Enter the contact name"),
                one_line("the contact name"),
                Length(max=200, message="Enter a contact name of 200 characters or fewer"),
            ],
        ),
        "contact_phone": StringField(
            "Phone number",
            id="contact_phone",
            filters=[_strip],
            description="A Canadian or North American number, like 403-678-5521. Add an extension after it, "
            "like 403-678-5521 ext. 12",
            validators=[required("Enter a phone number")],
        ),
        "contact_email": StringField(
            "Email address (optional)",
            id="contact_email",
            filters=[_strip],
            validators=[
                Optional(),
                one_line("the email address"),
                Length(max=254, message="Enter an email address of 254 characters or fewer"),
                Email(
                    "Enter an email address in the correct format, like name@example.com", check_deliverability=False
                ),
            ],
        ),
    }


class _Base(FlaskForm):
    # Where letters (PINs and cheques among them) and emails go: never filled in again
    # after a time-out (web.forms.bind); the page shows what is held now.
    asked_again = frozenset(
        {"mailing_line1", "mailing_line2", "mailing_city", "mailing_province", "mailing_postal", "contact_email"}
    )
    # What the form was based on, and its one-time submission key.
    profile_version = HiddenField()
    token = HiddenField()


# Fields made in page order: WTForms orders them (and the error summary) by when they were made.
DetailsForm = type(
    "DetailsForm",
    (_Base,),
    {
        **address_fields("mailing", "mailing address"),
        **address_fields("physical", "physical address"),
        **contact_fields(),
    },
)


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


add_checks(DetailsForm)


def initial(account) -> dict:
    """The form's values from the stored details."""
    data = {}
    for prefix in ("mailing", "physical"):
        parts = details.parse_address(getattr(account, f"{prefix}_address"))
        for key, value in parts.as_dict().items():
            data[f"{prefix}_{key}"] = value
    data.update(
        contact_name=account.contact_name or "",
        contact_phone=account.contact_phone or "",
        contact_email=account.contact_email or "",
        profile_version=str(account.profile_version),
    )
    return data


def typed_values(form) -> dict[str, str]:
    """The stored form of what the form holds (after validation)."""
    values = {}
    for prefix in ("mailing", "physical"):
        parts = details.Address(
            *(getattr(form, f"{prefix}_{key}").data or "" for key in ("line1", "line2", "city", "province", "postal"))
        )
        values[f"{prefix}_address"] = details.compose_address(parts)
    values.update(
        contact_name=form.contact_name.data or "",
        contact_phone=form.contact_phone.data or "",
        contact_email=form.contact_email.data or "",
    )
    return values
