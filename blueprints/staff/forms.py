from flask_wtf import FlaskForm
from wtforms import StringField, ValidationError
from wtforms.validators import DataRequired, Length

from domain.details import has_control_characters
from web.forms import email_field, password_field


class StaffSignInForm(FlaskForm):
    email = email_field("Work email address")
    password = password_field("Password", "Enter your password")
    # Optional here: a new staff account has no second factor until its first sign-in.
    code = StringField(
        "Security code",
        description="The 6-digit code from your authenticator app, or a recovery code",
        validators=[Length(max=20, message="Enter the 6-digit code or a recovery code")],
    )


def one_line_search(_form, field):
    """A search is one line of text (and PostgreSQL refuses a NUL in one)."""
    if has_control_characters(field.data or ""):
        raise ValidationError("Enter the search without special characters")


class SearchForm(FlaskForm):
    """The staff home's one search box: accounts and people."""

    class Meta:
        csrf = False  # a GET search changes nothing

    q = StringField(
        "Account number, name or email address",
        description="An account number (spaces are fine), a business's legal or operating name, or a "
        "person's name or email address",
        validators=[
            DataRequired("Enter an account number, a name or an email address"),
            Length(max=254, message="Enter 254 characters or fewer"),
            one_line_search,
        ],
    )
