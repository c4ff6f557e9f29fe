from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional, Regexp

from web.forms import code_field, one_line, password_field


class DetailsForm(FlaskForm):
    name = StringField(
        "Full name",
        validators=[
            DataRequired("Enter your full name"),
            Length(max=200, message="Enter a name of 200 characters or fewer"),
            one_line("Enter your name without special characters"),
        ],
    )
    phone = StringField(
        "Telephone number",
        description="For example, 780 427 3044. Optional",
        validators=[
            Optional(),
            Length(max=30, message="Enter a telephone number of 30 characters or fewer"),
            Regexp(r"^[0-9 +().-]{7,30}$", message="Enter a telephone number, like 780 427 3044"),
        ],
    )


class ChangePasswordForm(FlaskForm):
    current_password = password_field("Current password", "Enter your current password")
    new_password = password_field("New password", "Enter a new password")
    new_password_confirm = PasswordField(
        "Confirm your new password",
        validators=[DataRequired("Confirm your new password"), EqualTo("new_password", "The passwords do not match")],
    )


class EnableTwoFactorForm(FlaskForm):
    password = password_field("Your password", "Enter your password")
    code = StringField(
        "Code from your authenticator app",
        validators=[
            DataRequired("Enter the 6-digit code from your authenticator app"),
            Length(max=10, message="Enter the 6-digit code from your authenticator app"),
        ],
    )


class PasswordAndCodeForm(FlaskForm):
    password = password_field("Password", "Enter your password")
    code = code_field()


def sign_out_others_form(has_two_factor: bool) -> PasswordAndCodeForm:
    """Ending sessions asks for the password again, and the code when the person has
    a second factor (ASVS 5.0 7.5.2): a borrowed session cannot lock its owner out."""
    form = PasswordAndCodeForm()
    if not has_two_factor:
        del form.code
    return form
