"""The last steps every multi-step journey shares (filing, objections, waivers,
payment arrangements, renewals, direct deposit): the check page, its sending once,
the "already sent" answer and the confirmation.

A journey subclasses Journey and says only what is its own: what it needs and
where its check page is, which draft is its own, when the check page cannot be
shown yet (and what to answer instead), the page itself, and what it sends.
`check` runs the steps in the one order for all:

1. A POST names its draft by token. A draft sent already (a double click, a retry,
   a second tab), or one purged since, answers the confirmation it has (303).
2. Else the named draft, or the person's open one. The journey's `stop` answers
   when it is not ready (no draft, answers missing, the journey closed).
3. GET, or a POST the form or the journey holds back (400): the check page.
4. Else domain.sending.send, holding the draft while it sends; a Refused from the
   journey's build is answered by its `refused` (409); then the confirmation (303).

A POST succeeds with 303 (web.htmx.see_other; web.follow answers htmx with the page). The
confirmation's URL names the request as `reference`, in every journey.

A blueprint declares both pages: `check_route` registers the one check view for
its journey; `confirmation_route` registers its confirmation view, called with the
request already found."""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from domain import drafts, requests, sending
from models import Account, Draft, Grant, ServiceRequest
from web.access import account_route
from web.database import get_db, now
from web.errors import Answer
from web.forms import SendForm, bind
from web.htmx import see_other

# kind of request -> the endpoint of its confirmation page (filled by Journey subclasses)
_CONFIRMATIONS: dict[str, str] = {}


class Journey(ABC):
    """One journey's check page: what `check` asks of it. An instance is made per
    request, for one account (and one subject: a period, a notice, a licence), as
    Journey(account, grant, **the check URL's other values): a journey whose URL
    names its subject takes it in __init__ and finds it (a 404 when not the account's)."""

    blueprint: ClassVar[str]  # its confirmation is "<blueprint>.done", with `number` and `reference`
    permission: ClassVar[str]  # what its pages need of the person's grant (models.PERMISSIONS)
    feature: ClassVar[str]  # the program function it depends on (models.Program.allows)
    check_rule: ClassVar[str] = "/<account:number>/check"  # its check page's URL in the blueprint
    kinds: ClassVar[tuple[str, ...]]  # the kinds of request it makes (the first is the usual one)
    form_class: ClassVar[type[SendForm]]  # the check page's form (the token and a declaration)
    current: ClassVar[str | None] = None  # the tab of the account header its pages are under

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for kind in cls.__dict__.get("kinds", ()):
            _CONFIRMATIONS[kind] = f"{cls.blueprint}.done"

    def __init__(self, account: Account, grant: Grant, *, kind: str | None = None, subject: str = ""):
        self.account, self.grant = account, grant
        self.kind, self.subject = kind or self.kinds[0], subject

    # --- Which draft --------------------------------------------------------------------

    def owns(self, draft: Draft) -> bool:
        """A draft this check page may send (or answer the confirmation of)."""
        return draft.kind == self.kind and draft.subject == self.subject

    def open_draft(self) -> Draft | None:
        return drafts.current(
            get_db(), account_id=self.account.id, user_id=current_user.id, kind=self.kind, subject=self.subject
        )

    # --- What each journey says ---------------------------------------------------------

    @abstractmethod
    def stop(self, draft: Draft | None) -> ResponseReturnValue | None:
        """The answer when the check page cannot be shown for this draft (none yet,
        answers missing or no longer right, the journey closed), or None to go on.
        It may keep what it works out (figures, a schedule) for `page` and `outgoing`."""

    def context(self, draft: Draft) -> dict:
        """What the check page shows besides the account, its form and the draft."""
        return {}

    def page(self, form: SendForm, draft: Draft, status: int) -> ResponseReturnValue:
        """The journey's check page, templates/<blueprint>/check.html."""
        shown = dict(current=self.current, form=form, draft=draft, **self.context(draft))
        return page(f"{self.blueprint}/check.html", self.account, self.grant, **shown), status

    @abstractmethod
    def outgoing(self, draft: Draft, moment: datetime) -> sending.Outgoing:
        """What the draft sends: its summary, its answers and what goes with a new request."""

    def held_back(self, form: SendForm, valid: bool) -> int | None:
        """On a POST: the status of the check page to answer instead of sending
        (the form's errors: 400), or None to send."""
        return None if valid else 400

    def refused(self, refusal: sending.Refused) -> ResponseReturnValue:
        """The answer when the journey's build refused the request (nothing was kept)."""
        raise refusal

    def after_commit(self, submitted: requests.Submitted) -> None:
        """What follows a request once committed (waking the outbox); by default nothing."""
        return None

    def confirmation_url(self, sent: ServiceRequest) -> str:
        return url_for(f"{self.blueprint}.done", number=self.account.number, reference=sent.reference)


def check(journey: Journey) -> ResponseReturnValue:
    """The check page of any journey: show it (GET), or send its draft once (POST)."""
    db = get_db()
    token = request.form.get("token") if request.method == "POST" else None
    draft = drafts.by_token(db, account_id=journey.account.id, user_id=current_user.id, token=token or "")
    draft = draft if draft is not None and journey.owns(draft) else None
    if draft is not None:
        earlier = sending.sent_request(db, draft)
    else:  # no draft of this journey by that token: purged after it was sent, or none
        earlier = sending.made_with(
            db, token, account_id=journey.account.id, user_id=current_user.id, kinds=journey.kinds
        )
    if earlier is not None:
        return to_confirmation(journey, earlier)
    if draft is None or draft.submitted_request_id is not None:
        draft = journey.open_draft()
    stop = journey.stop(draft)
    if stop is not None:
        return stop
    if draft is None:  # each journey's stop() answers a missing draft itself
        raise RuntimeError(f"{type(journey).__name__}.stop let a missing draft through")
    form = bind(journey.form_class, current_user.id)
    status = 200
    if request.method == "POST":
        held = journey.held_back(form, form.validate_on_submit())
        if held is None:
            return _send(journey, draft)
        status = held
    form.token.data = draft.token
    return journey.page(form, draft, status)


def to_confirmation(journey: Journey, sent: ServiceRequest):
    """On to the request's confirmation: after sending it, and when a draft sent
    before is sent again (the confirmation it already has, never a second request)."""
    return see_other(journey.confirmation_url(sent))


def _send(journey: Journey, draft: Draft) -> ResponseReturnValue:
    db, moment = get_db(), now()
    try:
        submitted = sending.send(
            db,
            moment,
            draft,
            account=journey.account,
            user_id=current_user.id,
            outgoing=journey.outgoing(draft, moment),
        )
    except sending.Refused as refusal:
        db.rollback()  # nothing of the request is kept, and the draft's lock is let go
        return journey.refused(refusal)
    db.commit()
    journey.after_commit(submitted)
    return to_confirmation(journey, submitted.request)


def page(template: str, account: Account, grant: Grant, **shown) -> str:
    """A page of a journey: under the account's header, which shows the account
    and, by the grant, what the person may do (`current`: its tab, if any)."""
    return render_template(template, account=account, grant=grant, **shown)


# --- The routes ----------------------------------------------------------------------------


def check_route(bp: Blueprint, journey: type[Journey], not_offered: Callable) -> None:
    """Declare a journey's check page at its `check_rule` (GET shows it, POST sends
    it): the one view, over the journey made for the URL. It
    needs the journey's permission and program feature; `not_offered(account,
    grant)` answers for a program without the feature (web.access.account_route)."""

    def check_page(account: Account, grant: Grant, **values):
        return check(journey(account, grant, **values))

    check_page.__name__ = check_page.__qualname__ = "check"
    declared = account_route(journey.permission, feature=journey.feature, not_offered=not_offered)
    bp.add_url_rule(journey.check_rule, "check", declared(check_page), methods=["GET", "POST"])


def confirmation_route(bp: Blueprint, journey: type[Journey], not_offered: Callable | None = None) -> Callable:
    """Declare a journey's confirmation, <number>/done/<reference> (the endpoint its
    sending leads to), needing the journey's permission (and its feature too when
    `not_offered` is given). The view is called as view(account, grant, sent),
    `sent` the request found by `confirmation` among the journey's kinds."""
    if bp.name != journey.blueprint:
        raise ValueError(f"{journey.__name__} confirms in {journey.blueprint}, not {bp.name}")
    feature = journey.feature if not_offered is not None else None

    def register(view: Callable) -> Callable:
        @functools.wraps(view)
        def confirmed(account: Account, grant: Grant, reference: str):
            return view(account, grant, confirmation(account, grant, reference, journey.kinds))

        routed: Any = account_route(journey.permission, feature=feature, not_offered=not_offered)(confirmed)
        routed.confirms = journey  # what tests/test_sending.py reads
        bp.add_url_rule("/<account:number>/done/<reference>", "done", routed)
        return view

    return register


# --- The confirmation ------------------------------------------------------------------------


def confirmation(account: Account, grant: Grant, reference: str, kinds: tuple[str, ...]) -> ServiceRequest:
    """The account's request with this reference, of one of these kinds. Another
    kind of the account's requests answers a 303 to where it is shown (raised, as
    werkzeug's abort does); anything else (another account's, no such reference) 404."""
    found = requests.find(get_db(), account.id, reference)
    if found is None:
        abort(404)
    if found.kind not in kinds:
        raise Answer(redirect(elsewhere(account, grant, found), 303))
    return found


def elsewhere(account: Account, grant: Grant, sent: ServiceRequest) -> str:
    """Where a request of the account is shown to this person: its own journey's
    confirmation when they may make that kind, else the request history (which
    lists only the kinds they may see), else the account's summary."""
    endpoint = _CONFIRMATIONS.get(sent.kind)
    views = current_app.view_functions
    if endpoint in views and grant.allows(requests.KIND_PERMISSIONS[sent.kind]):
        return url_for(endpoint, number=account.number, reference=sent.reference)
    if "requests.history" in views:
        return url_for("requests.history", number=account.number)
    return url_for("accounts.summary", number=account.number)
