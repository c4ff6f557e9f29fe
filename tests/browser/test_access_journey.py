"""Manage access's "Done when", in a real browser: an owner adds a view-only person
who may see returns but not money, reads the PIN off the page once; that person
enrols with the account number and PIN in a browser of their own, sees the
account's summary, is refused (404) its transactions and has no "Manage access";
the owner removes them, and their very next click on the account is a 404. axe on
the manage page, the add form with errors and the PIN page. The add form also
works with JavaScript off."""

from __future__ import annotations

import re
from datetime import date

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from domain.accounts import format_number
from models import User
from tests.accounts_factory import file_return, give, open_account, post
from tests.browser.conftest import sign_in
from tests.conftest import make_user, outbox

pytestmark = pytest.mark.browser

OWNER = "olive@example.com"
DELEGATE = "dana@example.com"
PIN_PATTERN = re.compile(r"^[ABCDEFGHJKMNPQRSTUVWXYZ2-9]{10}$")
MONEY = "View balances and financial transactions"
RETURNS = "View returns, their assessment status and notices"


def heading(page):
    return page.get_by_role("heading", level=1)


def sub_nav(page):
    return page.get_by_role("navigation", name="This account")


def olive_owns_prairie_inn(live_server, newcomers: dict[str, str], more: tuple[str, ...] = ()) -> list[str]:
    """Olive owns Prairie Inn's Tourism Levy account ($1,250.00 owing and a filed
    return) and an account for each legal name in `more`; each newcomer (email:
    name) has registered but has no account yet. The account numbers, Prairie Inn first."""
    app = live_server.app
    make_user(app, email=OWNER, name="Olive Owner")
    for email, name in newcomers.items():
        make_user(app, email=email, name=name)
    with app.extensions["portal.sessionmaker"]() as db:
        owner = db.scalar(select(User.id).where(User.email == OWNER))
        inn = open_account(
            db, serial=7, legal_name="Prairie Inn Ltd.", operating_name="Prairie Inn", opened_on=date(2026, 5, 1)
        )
        post(db, inn, "assessment", 125_000, date(2026, 7, 20), period_end=date(2026, 6, 30))
        file_return(db, inn, date(2026, 6, 30))
        owned = [inn] + [
            open_account(db, serial=8 + i, legal_name=name, operating_name=None, opened_on=date(2026, 5, 1))
            for i, name in enumerate(more)
        ]
        for account in owned:
            give(db, live_server.clock(), owner, account, role="owner")
        db.commit()
        return [account.number for account in owned]


def enrol(page, number: str, pin: str) -> None:
    """Link the account with its number and PIN, landing on its summary (Prairie Inn's)."""
    page.goto("/enrol/")
    expect(heading(page)).to_have_text("Link a tax account")
    page.get_by_label("Account number").fill(format_number(number))
    page.get_by_label("PIN").fill(pin)
    page.get_by_role("button", name="Link account").click()
    expect(heading(page)).to_have_text("Prairie Inn Ltd.")


@pytest.fixture
def account(live_server):
    return olive_owns_prairie_inn(live_server, {DELEGATE: "Dana Delegate"})[0]


def add_a_person(page):
    """The "Add a person" control on the manage page, whatever role it is given."""
    return page.locator("main a", has_text=re.compile(r"^Add a person$"))


def _add_person(page, name: str, role_label: str, tick: tuple[str, ...], untick: tuple[str, ...]) -> None:
    page.get_by_label("Full name").fill(name)
    page.get_by_label(role_label, exact=True).check()
    # No script sets a role's preset yet: say exactly which boxes are ticked.
    for label in tick:
        page.get_by_label(label, exact=True).check()
    for label in untick:
        page.get_by_label(label, exact=True).uncheck()
    page.get_by_role("button", name="Add person and make a PIN").click()


def test_owner_adds_a_view_only_person_who_enrols_and_is_then_removed(browser, live_server, account):
    number = account
    summary_url = re.compile(rf"/accounts/{number}/$")

    # --- Olive, the owner: Manage access from the account's own navigation.
    owner = browser.page()
    sign_in(owner, OWNER, expect_heading="Welcome, Olive Owner")
    owner.goto(f"/accounts/{number}/")
    expect(heading(owner)).to_have_text("Prairie Inn Ltd.")
    expect(owner.locator("main")).to_contain_text("$1,250.00")
    sub_nav(owner).get_by_role("link", name="Manage access").click()
    expect(heading(owner)).to_have_text("Manage access")
    expect(owner).to_have_url(re.compile(rf"/access/{number}/$"))
    expect(sub_nav(owner).get_by_role("link", name="Manage access")).to_have_attribute("aria-current", "page")
    people = owner.locator("table", has=owner.locator("caption", has_text="People with access"))
    expect(people.locator("caption")).to_have_text("People with access (1)")
    expect(people.locator("tbody tr")).to_have_count(1)
    expect(people.locator("tbody tr").first).to_contain_text("Olive Owner")
    expect(people.locator("tbody tr").first).to_contain_text("You")
    browser.check(owner, "manage")

    # The add form, sent empty: the error summary, focused, links to the name.
    add_a_person(owner).click()
    expect(heading(owner)).to_have_text("Add a person")
    expect(owner).to_have_url(re.compile(rf"/access/{number}/add$"))
    owner.get_by_role("button", name="Add person and make a PIN").click()
    errors = owner.locator(".error-summary")
    expect(errors).to_be_focused()
    expect(errors).to_contain_text("Enter the person's full name")
    expect(errors.get_by_role("link", name="Enter the person's full name")).to_have_attribute("href", "#name")
    expect(owner.locator("#name")).to_have_attribute("aria-invalid", "true")
    expect(owner).to_have_title(re.compile(r"^Error: "))
    browser.check(owner, "add-errors")

    # View only, returns but not money.
    _add_person(owner, "Dana Delegate", "View only", tick=(RETURNS,), untick=(MONEY,))
    expect(heading(owner)).to_have_text("PIN for Dana Delegate")
    expect(owner).to_have_url(re.compile(rf"/access/{number}/pins/\d+$"))
    pin = owner.locator("#pin-value").inner_text().strip()
    assert PIN_PATTERN.match(pin), f"not a PIN: {pin!r}"
    panel = owner.locator("#pin-panel")
    expect(panel).to_contain_text(format_number(number))
    expect(panel).to_contain_text("View only")
    expect(panel.locator(".permission-list li")).to_have_text([RETURNS])
    browser.check(owner, "pin")

    # Shown once: the same address again no longer shows it.
    pin_url = owner.url
    owner.goto(pin_url)
    expect(heading(owner)).to_have_text("PIN for Dana Delegate")
    expect(owner.locator("#pin-value")).to_have_count(0)
    expect(owner.locator("main")).not_to_contain_text(pin)

    owner.goto(f"/access/{number}/")
    expect(owner.locator("main")).to_contain_text("People invited who have not enrolled yet")
    expect(owner.locator("main")).to_contain_text("Dana Delegate")

    # --- Dana, in a browser of her own: enrol with the number and the PIN.
    dana = browser.page()
    sign_in(dana, DELEGATE, expect_heading="Welcome, Dana Delegate")
    enrol(dana, number, pin)
    expect(dana).to_have_url(summary_url)

    # She sees the summary and the returns, not the money, not Manage access.
    nav = sub_nav(dana)
    expect(nav.get_by_role("link", name="Summary")).to_be_visible()
    expect(nav.get_by_role("link", name="Assessment status")).to_be_visible()
    expect(nav.get_by_role("link", name="Financial transactions")).to_have_count(0)
    expect(dana.get_by_role("link", name="Manage access")).to_have_count(0)
    expect(dana.locator("main")).to_contain_text("Filed")
    expect(dana.locator("main")).not_to_contain_text("$")
    expect(dana.get_by_role("heading", name="Balance")).to_have_count(0)
    browser.check(dana, "delegate-summary")

    response = dana.goto(f"/accounts/{number}/transactions")
    assert response.status == 404, f"transactions without view_financial answered {response.status}"
    expect(heading(dana)).to_have_text("Page not found")
    expect(dana.locator("main")).not_to_contain_text("Prairie Inn")
    response = dana.goto(f"/access/{number}/")
    assert response.status == 404, f"manage access without manage_access answered {response.status}"
    expect(heading(dana)).to_have_text("Page not found")

    response = dana.goto(f"/accounts/{number}/")
    assert response.status == 200
    expect(heading(dana)).to_have_text("Prairie Inn Ltd.")

    # --- Olive: Dana is on the list now; remove her.
    owner.goto(f"/access/{number}/")
    expect(people.locator("caption")).to_have_text("People with access (2)")
    dana_row = people.locator("tbody tr", has_text="Dana Delegate")
    expect(dana_row).to_contain_text("View only")
    expect(dana_row.locator(".permission-list li")).to_have_text([RETURNS])
    expect(owner.locator("main")).to_contain_text("None. People you add show here")
    dana_row.get_by_role("link", name="Change Dana Delegate's access").click()
    expect(heading(owner)).to_have_text("Dana Delegate's access")
    expect(owner).to_have_url(re.compile(rf"/access/{number}/people/\d+$"))
    expect(owner.get_by_label("View only", exact=True)).to_be_checked()
    expect(owner.get_by_label(MONEY, exact=True)).not_to_be_checked()
    expect(owner.get_by_label(RETURNS, exact=True)).to_be_checked()
    browser.check(owner, "person")
    owner.get_by_role("link", name="Remove Dana Delegate's access to this account").click()
    expect(heading(owner)).to_have_text("Remove Dana Delegate's access?")
    browser.check(owner, "remove")
    owner.get_by_role("button", name="Remove access").click()
    expect(owner).to_have_url(re.compile(rf"/access/{number}/$"))
    expect(owner.locator(".notice")).to_contain_text("Dana Delegate can no longer use this account.")
    expect(people.locator("caption")).to_have_text("People with access (1)")
    expect(people).not_to_contain_text("Dana Delegate")
    expect(owner.locator("main")).to_contain_text("People whose access was removed")

    # --- Dana's very next click on the account: the stranger's 404, but she is told why.
    with dana.expect_response(lambda r: re.search(rf"/accounts/{number}/$", r.url) is not None) as answer:
        sub_nav(dana).get_by_role("link", name="Summary").click()
    assert answer.value.status == 404, f"the removed person's next click answered {answer.value.status}"
    expect(heading(dana)).to_have_text("You no longer have access to this account")
    expect(dana.locator("main")).to_contain_text("Ask the account's owner")
    expect(dana.locator("main")).not_to_contain_text("Prairie Inn")
    response = dana.goto(f"/accounts/{number}/")
    assert response.status == 404
    dana.goto("/")
    expect(dana.locator("main")).not_to_contain_text("Prairie Inn")


def test_add_person_works_with_javascript_off(browser, live_server, account):
    number = account
    page = browser.page(javascript=False)
    sign_in(page, OWNER, expect_heading="Welcome, Olive Owner")
    page.goto(f"/access/{number}/")
    expect(heading(page)).to_have_text("Manage access")
    add_a_person(page).click()
    expect(heading(page)).to_have_text("Add a person")
    page.get_by_label("Email address (optional)").fill("sam@example.com")
    page.get_by_label("Email the PIN to this person").check()
    _add_person(page, "Sam Delegate", "Delegate", tick=(MONEY, RETURNS, "File returns and claims"), untick=())
    expect(heading(page)).to_have_text("PIN for Sam Delegate")
    expect(page).to_have_url(re.compile(rf"/access/{number}/pins/\d+$"))
    assert PIN_PATTERN.match(page.locator("#pin-value").inner_text().strip())
    panel = page.locator("#pin-panel")
    expect(panel.locator(".summary-list__row", has_text="Role").locator("dd")).to_have_text("Delegate")
    expect(panel).to_contain_text("We have also emailed the PIN, without the account details, to sam@example.com")
    expect(panel.locator(".permission-list li")).to_contain_text([MONEY, RETURNS, "File returns and claims"])
    browser.check(page, "pin-no-js", axe=False)
    # The email carries the PIN but names no account.
    mails = [m for m in outbox(live_server.app) if m.to_address == "sam@example.com"]
    assert len(mails) == 1
    assert page.locator("#pin-value").inner_text().strip() in mails[0].body_text
    assert number not in mails[0].body_text and format_number(number) not in mails[0].body_text
    assert "Prairie" not in mails[0].body_text


def test_add_a_person_is_a_link_or_works_like_a_button(browser, live_server, account):
    """templates/access/manage.html gives the "Add a person" link role="button".
    Assistive technology then announces a button, and a keyboard user presses
    Space, which activates a button but not a link: nothing happens (the page
    scrolls), and no script adds Space to it. Either it stays a plain link (as
    "Link an account" on the home page is) or Space must work."""
    page = browser.page()
    sign_in(page, OWNER, expect_heading="Welcome, Olive Owner")
    page.goto(f"/access/{account}/")
    control = add_a_person(page)
    if control.get_attribute("role") != "button":
        expect(page.get_by_role("link", name="Add a person")).to_be_visible()
        return
    control.focus()
    page.keyboard.press("Space")
    page.wait_for_timeout(1_000)  # real time for a navigation to start, if Space started one
    page.wait_for_load_state()
    assert re.search(rf"/access/{account}/add$", page.url), (
        'templates/access/manage.html: "Add a person" is <a role="button">, announced as a button, but Space '
        '(which activates a button) does nothing; drop role="button" so it is the link it is (WCAG 4.1.2, 2.1.1). '
        f"The page stayed on {page.url}"
    )
