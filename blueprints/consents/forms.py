"""Forms for representatives' consents."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, SelectMultipleField, StringField, ValidationError
from wtforms.validators import DataRequired, Email, Length, Optional

from domain.access import PERMISSION_LABELS
from models import PERMISSIONS
from web.dates import today
from web.forms import DateInputField, SelectChoice


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class RepresentativeMixin:
    # Declared before TermsMixin: WTForms orders fields (and so the error summary)
    # by when they were made, and the page shows these first.
    representative_name = StringField(
        "Representative's full name",
        id="representative_name",
        filters=[_strip],
        description="One individual. Each person who will act for you needs their own consent",
        validators=[
            DataRequired("Enter the representative's full name"),
            Length(max=200, message="Enter a name of 200 characters or fewer"),
        ],
    )
    representative_email = StringField(
        "Representative's email address",
        id="representative_email",
        filters=[_strip],
        description="We send their PIN here once we have reviewed the consent",
        validators=[
            DataRequired("Enter the representative's email address"),
            Length(max=254, message="Enter an email address of 254 characters or fewer"),
            Email("Enter an email address in the correct format, like name@example.com", check_deliverability=False),
        ],
    )
    firm_name = StringField(
        "Firm (optional)",
        id="firm_name",
        filters=[_strip],
        description="Recorded for reference: access is for the person, not the firm",
        validators=[Optional(), Length(max=200, message="Enter 200 characters or fewer")],
    )


class TermsMixin:
    # Nothing is ticked to start with: a box ticked for the manager is a consent nobody gave.
    permissions = SelectMultipleField(
        "What can the representative do?",
        id="permissions",
        validate_choice=False,
        choices=[SelectChoice(p, PERMISSION_LABELS[p]) for p in PERMISSIONS if p != "manage_access"],
        description="Select all that apply",
    )
    starts_on = DateInputField(
        "Start date",
        id="starts_on",
        what="The start date",
        required="Enter the date the consent starts",
        default=today,
        description="For example, 31 1 2027",
    )
    ends_on = DateInputField(
        "End date (optional)",
        id="ends_on",
        what="The end date",
        description="Leave it empty for a consent that lasts until you revoke it",
    )


class DeclarationMixin:
    declaration = BooleanField(
        "I declare that I may sign for this taxpayer, and I consent to this individual acting for them on this "
        "account as set out here",
        id="declaration",
        validators=[DataRequired("Confirm the declaration to sign the consent")],
    )


class SignedFormMixin:
    signed_form = FileField(
        "The signed form (PDF)",
        id="signed_form",
        description="Form AT4931 with Part 4 signed, scanned or saved as a PDF, up to 10 MB",
        validators=[FileRequired("Select the signed form")],
    )


# Never filled in again after a time-out (web.forms.bind): who acts for the taxpayer, what
# they may do, and where their PIN goes.
_TERMS = frozenset({"permissions"})
_REPRESENTATIVE = _TERMS | {"representative_name", "representative_email", "firm_name"}


class AcceptForm(TermsMixin, DeclarationMixin, FlaskForm):
    asked_again = _TERMS


class UploadForm(RepresentativeMixin, TermsMixin, SignedFormMixin, FlaskForm):
    asked_again = _REPRESENTATIVE


class AskForm(FlaskForm):
    number = StringField(
        "Your client's account number",
        id="number",
        filters=[_strip],
        description="10 digits",
        validators=[DataRequired("Enter the account number")],
    )
    legal_name = StringField(
        "The account's legal name",
        id="legal_name",
        filters=[_strip],
        description="Exactly as your client's notices show it",
        validators=[
            DataRequired("Enter the account's legal name"),
            Length(max=200, message="Enter 200 characters or fewer"),
        ],
    )

    def validate_number(self, field):
        from domain.accounts import number_problem

        problem = number_problem(field.data or "")
        if problem:
            raise ValidationError(problem)


class ConsentForm(RepresentativeMixin, TermsMixin, DeclarationMixin, FlaskForm):
    asked_again = _REPRESENTATIVE
