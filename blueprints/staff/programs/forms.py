"""A program's rules as a form: code, name, number prefix, filing frequency, due
rule, claim or not, self-service functions, objection days, a description, and
the ways to pay (online banking payee, wire details, cheque payee and address)."""

from __future__ import annotations

import re

from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, InputRequired, Length, Optional, Regexp, ValidationError

from domain import details, registration
from models import FUNCTIONS
from web.forms import SelectChoice, one_line

MOST_OBJECTION_DAYS = 3650


def _strip(value):
    return " ".join(value.split()) if isinstance(value, str) else value


def _upper(value):
    return value.strip().upper() if isinstance(value, str) else value


def _rule_text(value):
    """ "m+1:LAST" as the rules are written: "M+1:last"."""
    if not isinstance(value, str):
        return value
    value = "".join(value.split()).lower()
    return "M" + value[1:] if value.startswith("m") else value


def _due_rule(_form, field):
    problem = registration.due_rule_problem(field.data or "")
    if problem:
        raise ValidationError(problem)


def _lines_without_special_characters(message: str):
    """A validator: text of several lines, without NUL, tabs or other control
    characters (PostgreSQL refuses a NUL in text)."""

    def check(_form, field):
        if any(details.has_control_characters(char) for char in (field.data or "") if char not in "\r\n"):
            raise ValidationError(message)

    return check


_no_special_characters = _lines_without_special_characters("Enter the description without special characters")


def _days(_form, field):
    if not re.fullmatch(r"[0-9]{1,4}", field.data or "") or not 1 <= int(field.data) <= MOST_OBJECTION_DAYS:
        raise ValidationError(f"Enter a whole number of days from 1 to {MOST_OBJECTION_DAYS}")


class ProgramForm(FlaskForm):
    key = HiddenField()  # one-time, for a new program: one press of the button (or two) makes one
    code = StringField(
        "Code",
        id="code",
        filters=[_upper],
        description="2 to 10 capital letters, like TL. It cannot change later",
        validators=[
            DataRequired("Enter the program's code"),
            Regexp(registration.CODE_PATTERN.pattern + "$", message="Enter a code of 2 to 10 capital letters, like TL"),
        ],
    )
    name = StringField(
        "Name",
        id="name",
        filters=[_strip],
        validators=[
            DataRequired("Enter the program's name"),
            one_line("Enter the name on one line, without special characters"),
            Length(max=120, message="Enter a name of 120 characters or fewer"),
        ],
    )
    number_prefix = StringField(
        "Account number prefix",
        id="number_prefix",
        filters=[_strip],
        description="Two digits, not starting with 0: every account number of the program "
        "starts with them. No other program may use them",
        validators=[
            DataRequired("Enter the two-digit prefix"),
            Regexp(registration.PREFIX_PATTERN.pattern + "$", message="Enter two digits, not starting with 0"),
        ],
    )
    filing_frequency = RadioField(
        "How often are returns filed?",
        id="filing_frequency",
        validate_choice=False,
        choices=[SelectChoice(f, registration.FREQUENCY_WORDS[f]) for f in registration.FREQUENCIES],
        validators=[
            InputRequired("Choose how often returns are filed"),
            AnyOf(registration.FREQUENCIES, message="Choose how often returns are filed"),
        ],
    )
    due_rule = StringField(
        "Due rule",
        id="due_rule",
        filters=[_rule_text],
        description="M+1:last is the last day of the month after the period ends; M+1:25 the "
        "25th of that month; M+6:last six months on",
        validators=[DataRequired("Enter the due rule"), _due_rule],
    )
    is_claim = RadioField(
        "Is it a claim program?",
        id="is_claim",
        validate_choice=False,
        choices=[SelectChoice("no", "No: taxpayers file returns"), SelectChoice("yes", "Yes: taxpayers file claims")],
        validators=[
            InputRequired("Choose whether taxpayers file returns or claims"),
            AnyOf(("no", "yes"), message="Choose whether taxpayers file returns or claims"),
        ],
    )
    functions = SelectMultipleField(
        "What can taxpayers do online?",
        id="functions",
        validate_choice=False,
        choices=[SelectChoice(f, registration.FUNCTION_WORDS[f]) for f in FUNCTIONS],
        description="Select all that apply",
    )
    objection_days = StringField(
        "Days to object to a notice",
        id="objection_days",
        filters=[_strip],
        description="How many days after a notice a taxpayer may file an objection",
        validators=[DataRequired("Enter the number of days to object"), _days],
    )
    description = TextAreaField(
        "Description",
        id="description",
        filters=[lambda v: v.strip() if v else v],
        validators=[Optional(), _no_special_characters, Length(max=2000, message="Enter 2000 characters or fewer")],
    )

    pay_online_payee = StringField(
        "Online banking payee",
        id="pay_online_payee",
        filters=[_strip],
        description="The payee taxpayers add in their bank's online banking, like Alberta Tourism Levy",
        validators=[
            Optional(),
            one_line("Enter the payee on one line, without special characters"),
            Length(max=120, message="Enter a payee of 120 characters or fewer"),
        ],
    )
    pay_wire = TextAreaField(
        "Wire transfer or EFT details",
        id="pay_wire",
        filters=[lambda v: v.strip() if v else v],
        description="One detail a line: bank, institution, transit and account numbers, SWIFT code, beneficiary",
        validators=[
            Optional(),
            _lines_without_special_characters("Enter the wire details without special characters"),
            Length(max=1000, message="Enter 1000 characters or fewer"),
        ],
    )
    pay_cheque_payable_to = StringField(
        "Cheques payable to",
        id="pay_cheque_payable_to",
        filters=[_strip],
        validators=[
            Optional(),
            one_line("Enter who cheques are payable to on one line, without special characters"),
            Length(max=200, message="Enter 200 characters or fewer"),
        ],
    )
    pay_cheque_address = TextAreaField(
        "Address to mail cheques to",
        id="pay_cheque_address",
        filters=[lambda v: v.strip() if v else v],
        validators=[
            Optional(),
            _lines_without_special_characters("Enter the address without special characters"),
            Length(max=500, message="Enter 500 characters or fewer"),
        ],
    )

    def validate_functions(self, field):
        if set(field.data or []) - set(FUNCTIONS):
            raise ValidationError("Choose self-service functions from the list")

    def fields(self) -> registration.ProgramFields:
        # For a validated form: the required fields hold text (WTForms types data as str | None).
        return registration.ProgramFields(
            name=self.name.data or "",
            number_prefix=self.number_prefix.data or "",
            filing_frequency=self.filing_frequency.data or "",
            due_rule=self.due_rule.data or "",
            is_claim=self.is_claim.data == "yes",
            functions=tuple(self.functions.data or ()),
            objection_days=int(self.objection_days.data or ""),
            description=self.description.data or "",
            **{name: getattr(self, name).data or "" for name in registration.PAYMENT_FIELDS},
        )


class UpdateForm(FlaskForm):
    """An update to a program's subscribers, with the form's one-time key (domain.once):
    a double click sends it once."""

    title = StringField(
        "Title",
        id="title",
        filters=[_strip],
        description="The email's subject, after the program's name",
        validators=[
            DataRequired("Enter a title"),
            Length(max=150, message="Enter a title of 150 characters or fewer"),
            one_line("Enter the title on one line"),
        ],
    )
    body = TextAreaField(
        "The update",
        id="body",
        filters=[lambda v: v.strip() if v else v],
        description="Plain text, as the email will show it",
        validators=[
            DataRequired("Enter the update"),
            Length(max=10000, message="Enter 10,000 characters or fewer"),
            _lines_without_special_characters("Enter the update without special characters"),
        ],
    )
    key = HiddenField()
