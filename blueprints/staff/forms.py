from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from web.forms import email_field, one_line, password_field


class StaffSignInForm(FlaskForm):
    email = email_field("Work email address")
    password = password_field("Password", "Enter your password")
    # Optional here: a new staff account has no second factor until its first sign-in.
    code = StringField(
        "Security code",
        description="The 6-digit code from your authenticator app, or a recovery code",
        validators=[Length(max=20, message="Enter the 6-digit code or a recovery code")],
    )


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
            one_line("Enter the search without special characters"),
        ],
    )
