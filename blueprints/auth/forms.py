from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from web.forms import code_field, email_field, one_line, password_field


class RegisterForm(FlaskForm):
    name = StringField(
        "Full name",
        validators=[
            DataRequired("Enter your full name"),
            Length(max=200, message="Enter a name of 200 characters or fewer"),
            one_line("Enter your name without special characters"),
        ],
    )
    email = email_field(hint="We will send you a link to confirm it")
    password = password_field(
        "Create a password",
        "Enter a password",
        hint="At least 15 characters. A few random words together make a strong, memorable password",
    )
    password_confirm = PasswordField(
        "Confirm your password",
        validators=[DataRequired("Confirm your password"), EqualTo("password", "The passwords do not match")],
    )


class SignInForm(FlaskForm):
    email = email_field()
    password = password_field("Password", "Enter your password")
    next = HiddenField()


class CodeForm(FlaskForm):
    code = code_field()


class ForgotPasswordForm(FlaskForm):
    email = email_field()


class ResetPasswordForm(FlaskForm):
    new_password = password_field(
        "New password", "Enter a new password", hint="At least 15 characters, or 8 if you use an authenticator app"
    )
    new_password_confirm = PasswordField(
        "Confirm your new password",
        validators=[DataRequired("Confirm your new password"), EqualTo("new_password", "The passwords do not match")],
    )


class ConfirmForm(FlaskForm):
    password = password_field("Password", "Enter your password")
    code = StringField(
        "Security code",
        description="The 6-digit code from your authenticator app, or a recovery code",
        validators=[Length(max=20, message="Enter the 6-digit code or a recovery code")],
    )
    next = HiddenField()
    stay = BooleanField(default=False)
