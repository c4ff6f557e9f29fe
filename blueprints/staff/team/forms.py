from flask_wtf import FlaskForm
from wtforms import RadioField, StringField
from wtforms.validators import DataRequired, InputRequired, Length

from domain.staff import ROLE_WORDS
from web.forms import SelectChoice, email_field, one_line

ROLE_CHOICES = [SelectChoice(role, words) for role, words in ROLE_WORDS.items()]


class AddStaffForm(FlaskForm):
    name = StringField(
        "Full name",
        validators=[
            DataRequired("Enter the staff member's full name"),
            Length(max=200, message="Enter a name of 200 characters or fewer"),
            one_line("Enter the name without special characters"),
        ],
    )
    email = email_field("Work email address", hint="The set-up link goes to this address")
    role = RadioField("Role", choices=ROLE_CHOICES, validators=[InputRequired("Choose a role")])


class RoleForm(FlaskForm):
    role = RadioField("Role", choices=ROLE_CHOICES, validators=[InputRequired("Choose a role")])
