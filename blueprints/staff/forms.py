from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from web.forms import code_field, email_field, password_field


class StaffSignInForm(FlaskForm):
    email = email_field("Work email address")
    password = password_field("Password", "Enter your password")
    code = code_field()


class PeopleSearchForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search changes nothing

    q = StringField("Name or email address", validators=[
        DataRequired("Enter a name or email address"), Length(max=254, message="Enter 254 characters or fewer")])
