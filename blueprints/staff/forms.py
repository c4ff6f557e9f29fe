from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from web.forms import email_field, password_field


class StaffSignInForm(FlaskForm):
    email = email_field("Work email address")
    password = password_field("Password", "Enter your password")
    # Optional here: a new staff account has no second factor until its first sign-in.
    code = StringField("Security code", description="The 6-digit code from your authenticator app, or a recovery code",
                       validators=[Length(max=20, message="Enter the 6-digit code or a recovery code")])


class PeopleSearchForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search changes nothing

    q = StringField("Name or email address", validators=[
        DataRequired("Enter a name or email address"), Length(max=254, message="Enter 254 characters or fewer")])
