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

from domain import dates, passwords
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
        validators=[
            DataRequired(message),
            Length(max=passwords.MAX_LENGTH, message=f"Enter a password of {passwords.MAX_LENGTH} characters or fewer"),
        ],
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


class DateInputField(Field):
    """A date a person types: the GOV.UK date input, three boxes named `<name>_day`,
    `<name>_month` and `<name>_year` (never the browser's picker, nor year-month-day
    text, so every date is typed one way). `data` is the date, or None when all three
    are empty. `what` names the date in the GOV.UK messages ("The start date must be
    a real date"); `required` is the message when it is missing (None: optional).
    With `checked=False` the domain reads the parts and words the problems (a
    journey's answers), and the view puts its messages here with `show_problem`.
    A query string may carry the day as year-month-day under `<name>` (the links and
    bookmarks a filter makes); a person never types it so."""

    # Drawn by the date_input macro (templates/macros/forms.html), never by a widget.

    def __init__(self, label=None, validators=None, *, what: str, required: str | None = None, checked=True, **kw):
        super().__init__(label, validators, **kw)
        self.what, self.required, self.checked = what, required, checked
        self.parts = dates.parts_of(None)
        self.wrong = ""  # "day", "month", "year" or "date": which boxes the error is about

    def part_name(self, part: str) -> str:
        return f"{self.name}_{part}"

    def part_id(self, part: str) -> str:
        return f"{self.id}_{part}"

    @property
    def error_target(self) -> str:
        """Where the error summary's link goes: the first box that is wrong."""
        return self.part_id(self.wrong if self.wrong in dates.PARTS else "day")

    def flagged(self, part: str) -> bool:
        return bool(self.errors) and self.wrong in (part, "date", "")

    def process(self, formdata, data=unset_value, extra_filters=None):
        self.process_errors = []
        if data is unset_value:
            data = self.default() if callable(self.default) else self.default
        self.object_data = data
        typed = formdata is not None and any(self.part_name(p) in formdata for p in dates.PARTS)
        if typed:
            self.parts = {p: str(formdata.get(self.part_name(p)) or "") for p in dates.PARTS}
        elif formdata is not None and formdata.get(self.name):
            self.parts = _iso_parts(str(formdata.get(self.name)))
        elif isinstance(data, dict):
            self.parts = {p: str(data.get(p) or "") for p in dates.PARTS}
        else:
            self.parts = dates.parts_of(data if data not in (None, unset_value) else None)
        self.data, _message, _part = self._read()

    def _read(self):
        return dates.parse_parts(self.parts["day"], self.parts["month"], self.parts["year"], self.what)

    def pre_validate(self, form):
        if not self.checked:
            raise StopValidation()
        day, message, part = self._read()
        if day is None and message is None and self.required:
            message, part = self.required, "date"
        if message:
            self.wrong = part
            raise StopValidation(message)
        if day is None:
            raise StopValidation()  # optional and empty: no rule to check

    def show_problem(self, message: str, part: str = "date") -> None:
        """Put a message beside the date, about one of its boxes or the whole date."""
        self.wrong = part if not self.errors else self.wrong
        add_error(self, message)


def _iso_parts(text: str) -> dict[str, str]:
    """A year-month-day from a query string as the three boxes (what is not one is kept
    as typed in the day box, so the page says it is not a real date)."""
    year, _, rest = text.strip().partition("-")
    month, _, day = rest.partition("-")
    if not day:
        return {"day": text.strip(), "month": "", "year": ""}
    return {"day": day.lstrip("0") or day, "month": month.lstrip("0") or month, "year": year}


def date_rule(message: str, ok):
    """A validator: the date meets `ok(day)` (like "in the past"), else `message`."""

    def check(_form, field):
        if field.data is not None and not ok(field.data):
            field.wrong = "date"
            raise ValidationError(message)

    return check
