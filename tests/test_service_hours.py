"""Service hours: the published TRACS schedule, and how the site behaves around it.

Open 07:00-24:00 Mountain time; closed Thursday 23:00-24:00, Sunday 07:00-10:00
and from 17:30 on the first working day of each month (Alberta holidays are not
working days).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app import create_app
from domain.service_hours import (
    ALWAYS_OPEN,
    TRACS,
    first_working_day,
    is_working_day,
    schedule_from_config,
    status_at,
)
from tests.conftest import make_user

MT = ZoneInfo("America/Edmonton")


def mt(*args) -> datetime:
    """A Mountain-time wall-clock moment (fold=0: the first of a repeated hour)."""
    return datetime(*args, tzinfo=MT)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def same_instant(a: datetime | None, b: datetime) -> bool:
    return a is not None and a.astimezone(UTC) == b.astimezone(UTC)


# --- the calendar ------------------------------------------------------------------


@pytest.mark.parametrize(
    "year,month,expected",
    [
        (2026, 11, date(2026, 11, 2)),  # Sunday the 1st
        (2026, 12, date(2026, 12, 1)),  # an ordinary Tuesday
        (2027, 1, date(2027, 1, 4)),  # New Year's Day Friday, then a weekend
        (2027, 2, date(2027, 2, 1)),  # Monday (Family Day is the 15th)
        (2027, 7, date(2027, 7, 2)),  # Canada Day is Thursday the 1st
        (2025, 9, date(2025, 9, 2)),  # Labour Day is Monday the 1st
        (2026, 8, date(2026, 8, 3)),  # Saturday the 1st (Heritage Day is a Monday, the 3rd, not a statutory holiday)
    ],
    ids=lambda v: str(v),
)
def test_first_working_day(year, month, expected):
    assert first_working_day(year, month) == expected


@pytest.mark.parametrize(
    "day,working",
    [
        (date(2027, 1, 1), False),  # New Year's Day
        (date(2027, 1, 4), True),
        (date(2027, 2, 15), False),  # Family Day, Alberta
        (date(2026, 12, 25), False),
        (date(2026, 11, 28), False),  # Saturday
        (date(2026, 11, 29), False),  # Sunday
        (date(2026, 11, 30), True),
    ],
)
def test_working_days(day, working):
    assert is_working_day(day) is working


# --- the schedule at given moments -----------------------------------------------------

OPEN_CASES = [
    # (moment, next closing)
    (mt(2026, 11, 23, 7, 0), mt(2026, 11, 24, 0, 0)),  # Monday opening
    (mt(2026, 11, 23, 11, 0), mt(2026, 11, 24, 0, 0)),
    (mt(2026, 11, 23, 23, 59, 59), mt(2026, 11, 24, 0, 0)),
    (mt(2026, 11, 26, 22, 59), mt(2026, 11, 26, 23, 0)),  # Thursday before maintenance
    (mt(2026, 11, 28, 23, 30), mt(2026, 11, 29, 0, 0)),  # Saturday night
    (mt(2026, 11, 29, 10, 0), mt(2026, 11, 30, 0, 0)),  # Sunday after maintenance
    (mt(2026, 12, 1, 17, 29), mt(2026, 12, 1, 17, 30)),  # first working day, before 17:30
    (mt(2027, 1, 1, 18, 0), mt(2027, 1, 2, 0, 0)),  # a holiday is not the first working day
    (mt(2027, 7, 1, 18, 0), mt(2027, 7, 1, 23, 0)),  # Canada Day, a Thursday
    (mt(2027, 7, 2, 17, 0), mt(2027, 7, 2, 17, 30)),  # the first working day after it
]

CLOSED_CASES = [
    # (moment, reopening)
    (mt(2026, 11, 23, 6, 59), mt(2026, 11, 23, 7, 0)),  # before opening
    (mt(2026, 11, 24, 0, 0), mt(2026, 11, 24, 7, 0)),  # midnight
    (mt(2026, 11, 26, 23, 0), mt(2026, 11, 27, 7, 0)),  # Thursday maintenance through the night
    (mt(2026, 11, 26, 23, 59), mt(2026, 11, 27, 7, 0)),
    (mt(2026, 11, 29, 0, 30), mt(2026, 11, 29, 10, 0)),  # Saturday night into Sunday maintenance
    (mt(2026, 11, 29, 7, 0), mt(2026, 11, 29, 10, 0)),
    (mt(2026, 11, 29, 9, 59), mt(2026, 11, 29, 10, 0)),
    (mt(2026, 12, 1, 17, 30), mt(2026, 12, 2, 7, 0)),  # first working day from 17:30
    (mt(2026, 12, 1, 22, 0), mt(2026, 12, 2, 7, 0)),
    (mt(2027, 1, 4, 17, 30), mt(2027, 1, 5, 7, 0)),  # Monday 4 January 2027
    (mt(2027, 7, 1, 23, 15), mt(2027, 7, 2, 7, 0)),  # Thursday maintenance on Canada Day
    (mt(2027, 7, 2, 17, 30), mt(2027, 7, 3, 7, 0)),
    (mt(2026, 11, 2, 18, 0), mt(2026, 11, 3, 7, 0)),  # Monday 2 November 2026
]


@pytest.mark.parametrize("moment,closes", OPEN_CASES, ids=[c[0].isoformat() for c in OPEN_CASES])
def test_open(moment, closes):
    status = status_at(TRACS, moment)
    assert status.open is True
    assert status.reopens_at is None
    assert same_instant(status.closes_at, closes), status.closes_at
    # The same answer whatever zone the moment is given in.
    from_utc = status_at(TRACS, moment.astimezone(UTC))
    assert from_utc.open and same_instant(from_utc.closes_at, closes)


@pytest.mark.parametrize("moment,reopens", CLOSED_CASES, ids=[c[0].isoformat() for c in CLOSED_CASES])
def test_closed(moment, reopens):
    status = status_at(TRACS, moment.astimezone(UTC))
    assert status.open is False
    assert status.closes_at is None
    assert same_instant(status.reopens_at, reopens), status.reopens_at


def test_first_working_day_of_january_2027_is_monday_the_4th():
    assert status_at(TRACS, mt(2027, 1, 1, 17, 45)).open  # a holiday: open until midnight
    assert status_at(TRACS, mt(2027, 1, 4, 17, 29)).open
    assert not status_at(TRACS, mt(2027, 1, 4, 17, 30)).open
    assert status_at(TRACS, mt(2027, 1, 5, 17, 45)).open


@pytest.mark.parametrize(
    "moment", [mt(2026, 11, 23, 3, 0), mt(2026, 11, 26, 23, 30), mt(2026, 11, 29, 8, 0), mt(2026, 12, 1, 20, 0)]
)
def test_always_open_schedule(moment):
    status = status_at(ALWAYS_OPEN, moment)
    assert status.open and status.closes_at is None and status.reopens_at is None


# --- daylight saving time ---------------------------------------------------------------


def test_spring_forward_sunday():
    # Sunday 14 March 2027: 02:00 MST becomes 03:00 MDT, inside the Sunday closure.
    saturday_night = utc(2027, 3, 14, 6, 30)  # 23:30 MST Saturday
    status = status_at(TRACS, saturday_night)
    assert status.open and status.closes_at.astimezone(UTC) == utc(2027, 3, 14, 7, 0)
    for moment in (utc(2027, 3, 14, 8, 30), utc(2027, 3, 14, 9, 30), utc(2027, 3, 14, 15, 59)):
        status = status_at(TRACS, moment)
        assert not status.open
        assert status.reopens_at.astimezone(UTC) == utc(2027, 3, 14, 16, 0)  # 10:00 MDT
    status = status_at(TRACS, utc(2027, 3, 14, 16, 0))
    assert status.open
    assert status.closes_at.astimezone(UTC) == utc(2027, 3, 15, 6, 0)  # midnight MDT


def test_after_spring_forward_opening_follows_local_time():
    # Monday 15 March 2027: 07:00 MDT is 13:00 UTC (it was 14:00 UTC the week before).
    assert not status_at(TRACS, utc(2027, 3, 15, 12, 59)).open
    assert status_at(TRACS, utc(2027, 3, 15, 13, 0)).open
    assert status_at(TRACS, utc(2027, 3, 8, 13, 30)).open is False  # 06:30 MST a week earlier
    assert status_at(TRACS, utc(2027, 3, 8, 14, 0)).open


def test_fall_back_sunday():
    # Sunday 1 November 2026: 02:00 MDT becomes 01:00 MST; 01:xx happens twice.
    first_one_thirty = utc(2026, 11, 1, 7, 30)  # 01:30 MDT
    second_one_thirty = utc(2026, 11, 1, 8, 30)  # 01:30 MST
    assert first_one_thirty.astimezone(MT).hour == second_one_thirty.astimezone(MT).hour == 1
    for moment in (first_one_thirty, second_one_thirty, utc(2026, 11, 1, 16, 59)):
        status = status_at(TRACS, moment)
        assert not status.open
        assert status.reopens_at.astimezone(UTC) == utc(2026, 11, 1, 17, 0)  # 10:00 MST
    status = status_at(TRACS, utc(2026, 11, 1, 17, 0))
    assert status.open and status.closes_at.astimezone(UTC) == utc(2026, 11, 2, 7, 0)


def test_saturday_night_before_fall_back():
    status = status_at(TRACS, utc(2026, 11, 1, 5, 30))  # 23:30 MDT Saturday
    assert status.open and status.closes_at.astimezone(UTC) == utc(2026, 11, 1, 6, 0)
    status = status_at(TRACS, utc(2026, 11, 1, 6, 0))
    assert not status.open and status.reopens_at.astimezone(UTC) == utc(2026, 11, 1, 17, 0)


def test_schedule_from_config():
    assert schedule_from_config("always", "America/Edmonton").always_open
    tracs = schedule_from_config("tracs", "America/Edmonton")
    assert not tracs.always_open and tracs.closures == TRACS.closures
    with pytest.raises(ValueError):
        schedule_from_config("sometimes", "America/Edmonton")


# --- the site around the schedule -----------------------------------------------------------


@pytest.fixture
def tracs_app(app_config):
    application = create_app({**app_config, "SERVICE_HOURS": "tracs"})
    yield application
    application.extensions["portal.engine"].dispose()


NIGHTLY = "The service is closed for the night"


@pytest.mark.parametrize(
    "moment,reopens,title",
    [
        (mt(2026, 11, 26, 23, 30), mt(2026, 11, 27, 7, 0), "The service is closed for maintenance"),
        (mt(2026, 11, 29, 8, 0), mt(2026, 11, 29, 10, 0), "The service is closed for maintenance"),
        (mt(2026, 12, 1, 18, 0), mt(2026, 12, 2, 7, 0), "The service is closed for maintenance"),
        (mt(2026, 11, 24, 3, 0), mt(2026, 11, 24, 7, 0), NIGHTLY),
    ],
    ids=["thursday", "sunday", "first-working-day", "night"],
)
@pytest.mark.parametrize("path", ["/", "/auth/sign-in", "/auth/register", "/profile/"])
def test_closed_taxpayer_pages_answer_503(tracs_app, clock, moment, reopens, title, path):
    clock.set(moment.astimezone(UTC))
    response = tracs_app.test_client().get(path)
    assert response.status_code == 503
    expected = int((reopens - moment).total_seconds())
    assert int(response.headers["Retry-After"]) == expected
    body = response.get_data(as_text=True)
    assert "<!doctype html>" in body.lower()
    assert title in body
    assert ("The service closes each night from midnight to 7 am Mountain time." in body) == (title == NIGHTLY)
    local = reopens.astimezone(MT)
    wording = local.strftime("%-I:%M %p on %A %-d %B %Y").replace("AM", "am").replace("PM", "pm")
    assert f"It opens again at <strong>{wording}</strong>" in body
    assert response.headers["Cache-Control"] == "no-store"


def test_the_closed_page_links_only_to_a_page_served_while_closed(tracs_app, clock):
    """The closed page's "start page" link, and its header's, led to another 503: every
    link on it (header and footer too), signed out and signed in, is served; a signed-in
    person can still sign out."""
    from tests.conftest import Auth

    make_user(tracs_app)
    signed_in = tracs_app.test_client()
    clock.set(mt(2026, 11, 23, 23, 55).astimezone(UTC))
    assert Auth(signed_in, tracs_app).sign_in().status_code == 303
    clock.set(mt(2026, 11, 24, 0, 5).astimezone(UTC))  # closed for the night; the session lives
    for client in (tracs_app.test_client(), signed_in):
        response = client.get("/auth/sign-in" if client is not signed_in else "/profile/")
        assert response.status_code == 503
        page = response.get_data(as_text=True)
        links = set(re.findall(r'href="(/[^"#]*)"', page)) - set(re.findall(r'href="(/static/[^"]*)"', page))
        assert "/pages/service-hours" in links and "/pages/help/" in links
        for link in links:
            assert client.get(link).status_code == 200, link
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    out = signed_in.post("/auth/sign-out", data={"csrf_token": token})
    assert out.status_code == 303 and out.headers["Location"].startswith("/auth/signed-out")
    assert "data-sign-out" in page and "data-sign-out" not in signed_in.get("/profile/").get_data(as_text=True)


def test_retry_after_counts_real_seconds_across_dst(tracs_app, clock):
    clock.set(utc(2027, 3, 14, 8, 0))  # 01:00 MST; reopening at 10:00 MDT is 8 real hours later
    response = tracs_app.test_client().get("/auth/sign-in")
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) == 8 * 3600


def test_closed_for_a_signed_in_taxpayer_too(tracs_app, clock):
    make_user(tracs_app)
    client = tracs_app.test_client()
    from tests.conftest import Auth

    clock.set(mt(2026, 11, 26, 22, 0).astimezone(UTC))
    assert Auth(client, tracs_app).sign_in().status_code == 303
    assert client.get("/profile/").status_code == 200
    clock.advance(hours=1, minutes=1)
    response = client.get("/profile/")
    assert response.status_code == 503
    htmx = client.get("/profile/details", headers={"HX-Request": "true"})
    assert htmx.status_code == 503 and "<html" not in htmx.get_data(as_text=True)
    assert "Retry-After" in htmx.headers


@pytest.mark.parametrize(
    "path,status",
    [
        ("/healthz", 200),
        ("/staff/sign-in", 200),
        ("/pages/service-hours", 200),
        ("/pages/accessibility", 200),
        ("/auth/signed-out", 200),
        ("/staff/", 303),
    ],
)
def test_always_open_routes_stay_up_when_closed(tracs_app, clock, path, status):
    clock.set(mt(2026, 11, 26, 23, 30).astimezone(UTC))
    response = tracs_app.test_client().get(path)
    assert response.status_code == status
    assert "Retry-After" not in response.headers
    if path == "/healthz":
        assert response.get_json() == {"status": "ok", "database": "ok"}


def test_static_assets_stay_up_when_closed(tracs_app, clock):
    clock.set(mt(2026, 11, 26, 23, 30).astimezone(UTC))
    hashed = tracs_app.extensions["portal.assets"]["css/site.css"]
    assert tracs_app.test_client().get(f"/static/{hashed}").status_code == 200


@pytest.mark.parametrize(
    "moment,banner",
    [
        (mt(2026, 11, 26, 22, 44, 59), None),
        (mt(2026, 11, 26, 22, 45), "11:00 pm"),
        (mt(2026, 11, 26, 22, 59), "11:00 pm"),
        (mt(2026, 11, 23, 23, 50), "12:00 am"),
        (mt(2026, 12, 1, 17, 20), "5:30 pm"),
        (mt(2026, 12, 1, 17, 10), None),
        (mt(2026, 11, 23, 11, 0), None),
    ],
    ids=lambda v: v.isoformat() if isinstance(v, datetime) else str(v),
)
def test_closing_banner_within_15_minutes(tracs_app, clock, moment, banner):
    clock.set(moment.astimezone(UTC))
    response = tracs_app.test_client().get("/auth/sign-in")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    if banner is None:
        assert "The service closes at" not in body
    else:
        why = "the night" if banner == "12:00 am" else "maintenance"  # midnight is the nightly close
        assert f"The service closes at {banner} Mountain time for {why}." in body


def test_service_hours_page_lists_the_schedule(tracs_app, clock):
    clock.set(mt(2026, 11, 26, 23, 30).astimezone(UTC))
    body = tracs_app.test_client().get("/pages/service-hours").get_data(as_text=True)
    assert "Thursday" in body and "Sunday" in body


@pytest.mark.parametrize("hour", [3, 6, 23])
def test_default_always_open_at_night(app, client, clock, hour):
    assert app.config["SERVICE_HOURS"] == "always"
    clock.set(mt(2026, 11, 26, hour, 0).astimezone(UTC))
    response = client.get("/auth/sign-in")
    assert response.status_code == 200
    assert "Retry-After" not in response.headers
    assert "The service closes at" not in response.get_data(as_text=True)


def test_the_default_setting_is_always(monkeypatch):
    import config

    monkeypatch.delenv("SERVICE_HOURS", raising=False)
    assert config.from_environment()["SERVICE_HOURS"] == "always"
    monkeypatch.setenv("SERVICE_HOURS", "tracs")
    assert config.from_environment()["SERVICE_HOURS"] == "tracs"


def test_closing_time_advances_across_the_closure():
    moment = mt(2026, 11, 26, 22, 0)
    status = status_at(TRACS, moment)
    assert same_instant(status.closes_at, mt(2026, 11, 26, 23, 0))
    after = status_at(TRACS, status.closes_at + timedelta(seconds=1))
    assert not after.open and same_instant(after.reopens_at, mt(2026, 11, 27, 7, 0))
