"""The account details form: two structured addresses and the contact (their
fields and checks are web.details_fields, shared with the back office's account
registration)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField

from domain import details
from web.details_fields import add_checks, address_fields, address_of, contact_fields


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
    values = {f"{prefix}_address": address_of(form, prefix) for prefix in ("mailing", "physical")}
    values.update(
        contact_name=form.contact_name.data or "",
        contact_phone=form.contact_phone.data or "",
        contact_email=form.contact_email.data or "",
    )
    return values
