"""Forms for managing access: who, which role, which permissions."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField, SelectMultipleField, StringField, ValidationError
from wtforms.validators import DataRequired, Email, Length, Optional

from domain.access import INVITABLE_ROLES, PERMISSION_LABELS, ROLE_LABELS
from domain.grants import ROLE_PRESETS
from models import PERMISSIONS
from web.forms import SelectChoice, one_line


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class PersonMixin:
    # Declared before PermissionsMixin: WTForms orders fields (and so the error
    # summary) by when they were made, and the page shows these first.
    name = StringField(
        "Full name",
        id="name",
        filters=[_strip],
        description="The one person who will use this PIN. Access is for individuals, never a firm",
        validators=[
            DataRequired("Enter the person's full name"),
            Length(max=200, message="Enter a name of 200 characters or fewer"),
            one_line("Enter the name without special characters"),
        ],
    )
    email = StringField(
        "Email address (optional)",
        id="email",
        filters=[_strip],
        description="Only to send them the PIN, if you want to. The email does not name the account",
        validators=[
            Optional(),
            Length(max=254, message="Enter an email address of 254 characters or fewer"),
            Email("Enter an email address in the correct format, like name@example.com", check_deliverability=False),
        ],
    )
    send_email = BooleanField("Email the PIN to this person", id="send-email")

    def validate_send_email(self, field):
        if field.data and not (self.email.data or "").strip():
            raise ValidationError("Enter their email address, or do not ask us to email the PIN")


class PermissionsMixin:
    role = RadioField(
        "Role",
        id="role",
        choices=[SelectChoice(r, ROLE_LABELS[r]) for r in INVITABLE_ROLES],
        default="viewer",
        validate_choice=False,
        description="A role is a starting set of permissions: change them below if you need to",
    )
    permissions = SelectMultipleField(
        "What can this person do?",
        id="permissions",
        choices=[SelectChoice(p, PERMISSION_LABELS[p]) for p in PERMISSIONS],
        validate_choice=False,
        default=list(ROLE_PRESETS["viewer"]),
        description="Select all that apply",
    )


# Never filled in again after a time-out (web.forms.bind): they grant access, or send the PIN.
_GRANTS = frozenset({"role", "permissions"})


class ChangeForm(PermissionsMixin, FlaskForm):
    asked_again = _GRANTS


class InviteForm(PersonMixin, PermissionsMixin, FlaskForm):
    asked_again = _GRANTS | {"email", "send_email"}
