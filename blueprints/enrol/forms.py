from flask_wtf import FlaskForm
from wtforms import StringField, ValidationError
from wtforms.validators import DataRequired, Length

from domain.accounts import number_problem


def _valid_number(_form, field):
    # Caught here, before any look-up: a mistyped number never reaches the database.
    problem = number_problem(field.data or "")
    if problem:
        raise ValidationError(problem)


class EnrolForm(FlaskForm):
    number = StringField(
        "Account number", id="number", description="10 digits, from your invitation letter", validators=[_valid_number]
    )
    # "pin_code" is one of the fields a form kept across a time-out never keeps (web.access).
    pin_code = StringField(
        "PIN",
        id="pin",
        description="From your invitation letter",
        validators=[
            DataRequired("Enter the PIN from your invitation letter"),
            Length(max=40, message="Enter the PIN exactly as it is on your invitation letter"),
        ],
    )
