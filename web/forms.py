"""Form pieces shared by every feature."""

from __future__ import annotations

from flask import request
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import (
    BooleanField,
    Field,
    HiddenField,
    PasswordField,
    RadioField,
    StringField,
    TextAreaField,
    ValidationError,
)

# A choice of a select or radio field, as WTForms 3.3 takes it (it deprecates (value, label)
# tuples). types-WTForms describes WTForms 3.2, which has no SelectChoice: the stubs are
# behind the library, so it is imported once, here, and the forms import it from here.
from wtforms.fields.choices import SelectChoice as SelectChoice  # type: ignore[attr-defined]
from wtforms.utils import unset_value
from wtforms.validators import DataRequired, Email, Length, StopValidation

from domain.details import has_control_characters
from web.access import take_kept_form


def add_error(field: Field, message: str) -> None:
    """Show `message` beside the field, after any it has. WTForms types a field's errors
    as a Sequence (a tuple until the field is validated): replaced, never appended to."""
    field.errors = [*field.errors, message]


class EmptyForm(FlaskForm):
    """A one-button POST: only the CSRF token."""


def strip(value):
    """A filter: typed text without the spaces around it."""
    return value.strip() if isinstance(value, str) else value


# The declaration of a request made for an account (an objection, a waiver request).
DECLARATION = (
    "I declare that the information I have given is correct and complete to the best of my knowledge, and "
    "that I may act for this account"
)


class SendForm(FlaskForm):
    """A journey's check page (web.journeys): the draft's token, so a second tab, a
    double click or a retry sends the same draft, and the journey's declaration."""

    token = HiddenField()


def text_field(label: str, name: str, hint: str = "", *validators, area: bool = False) -> StringField:
    """A text box (with `area`, a text area) whose answer is read without the spaces around it."""
    field_class = TextAreaField if area else StringField
    return field_class(label, id=name, description=hint, filters=[strip], validators=list(validators))


def radio_field(label: str, name: str, options: dict[str, str], hint: str = "") -> RadioField:
    """Radio buttons for the domain's options (value -> label). Whether the answer is
    one of them is the domain's rule, with its own message: WTForms does not check it."""
    choices = [SelectChoice(value, text) for value, text in options.items()]
    return RadioField(label, id=name, description=hint, validate_choice=False, choices=choices)


def declaration_field(label: str, message: str) -> BooleanField:
    """The box a person ticks to declare what they send; `message` when they do not."""
    return BooleanField(label, id="declaration", validators=[DataRequired(message)])


def one_line(message: str):
    """A validator: one line of text, without NUL, tabs, line breaks or other control
    characters (never part of a name, and PostgreSQL refuses a NUL in text)."""

    def check(_form, field):
        if isinstance(field.data, str) and has_control_characters(field.data):
            raise ValidationError(message)

    return check


def not_blank(message: str):
    """A validator: the field holds something besides spaces (else `message`, and no other check runs)."""

    def check(_form, field):
        if not isinstance(field.data, str) or not field.data.strip():
            raise StopValidation(message)

    return check


def email_field(label: str = "Email address", hint: str | None = None) -> StringField:
    return StringField(
        label,
        description=hint or "",
        filters=[strip],
        validators=[
            DataRequired("Enter your email address"),
            Length(max=254, message="Enter an email address of 254 characters or fewer"),
            Email("Enter an email address in the correct format, like name@example.com", check_deliverability=False),
        ],
    )


def password_field(label: str, message: str, hint: str | None = None) -> PasswordField:
    return PasswordField(
        label,
        description=hint or "",
        validators=[DataRequired(message), Length(max=1024, message="Enter a password of 128 characters or fewer")],
    )


def code_field(label: str = "Security code") -> StringField:
    return StringField(
        label,
        description="The 6-digit code from your authenticator app, or one of your recovery codes",
        validators=[
            DataRequired("Enter the security code"),
            Length(max=20, message="Enter the 6-digit code or a recovery code"),
        ],
    )


def bind(form_class, user_id: int | None, **kwargs):
    """The form for this request. On a GET it is filled with what the person had
    typed before a time-out or re-confirmation, when the server kept it, except the
    fields the form class names in `asked_again`: who gets access, what they may do,
    and where mail, PINs or money go are always chosen afresh, so a restored form can
    never carry someone else's choice of them to the button."""
    if request.method == "GET" and user_id is not None:
        kept = take_kept_form(user_id)
        asked_again: frozenset[str] = getattr(form_class, "asked_again", frozenset())
        if kept is not None:
            kept = MultiDict([(name, value) for name, value in kept.items(multi=True) if name not in asked_again])
        if kept:
            form = form_class(formdata=kept, **kwargs)
            for name in asked_again & set(form._fields):
                # As a fresh page shows it: the value held now, or the field's default.
                form[name].process(None, (kwargs.get("data") or {}).get(name, unset_value))
            form.restored = True
            return form
    form = form_class(**kwargs)
    form.restored = False
    return form
