"""Command-line tasks: `flask --app app <command>`. Each command is a thin shell
over domain functions: it reads its options, opens a session, calls the domain
and says what happened. `cli` holds the top-level commands and the groups (every
one run in the application's context: flask.cli.AppGroup); `register` adds them
to the app's own `flask` command, in the factory."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from domain import backup, consents, decisions, documents, enrolment, outbox, passwords, people, requests, retention
from domain.access import AccessRefused
from domain.accounts import find_by_number, format_number, number_problem
from domain.files import write_atomically
from web import assets
from web.mailer import send_outbox
from web.sessions import limits_from
from web.uploads import document_directory

cli = AppGroup("portal", help="The portal's commands (each is registered on `flask` itself).")


def register(app: Flask) -> None:
    for command in cli.commands.values():
        app.cli.add_command(command)


def _session() -> Session:
    return current_app.extensions["portal.sessionmaker"]()


def _now():
    return current_app.extensions["portal.clock"]()


def _database_url() -> str:
    return current_app.config["DATABASE_URL"]


def _document_dir() -> str:
    return document_directory(current_app.config, current_app.instance_path)


# --- The database's migrations ---------------------------------------------------------------
# migrations.runner is imported when a command needs it: it brings Alembic, most of
# a second of every start of the portal otherwise.


@cli.command("db-upgrade")
def db_upgrade():
    """Apply every database migration (safe to run on each deploy)."""
    from migrations.runner import upgrade

    upgrade(_database_url())
    click.echo("Database is up to date.")


@cli.command("db-current")
def db_current():
    """Say which migration the database is at, and which the code needs."""
    from migrations.runner import current_of, head

    found, needed = current_of(_database_url()), head()
    click.echo(f"Database: {found or 'not migrated'}. This code needs: {needed}.")
    if found != needed:
        raise SystemExit(1)


@cli.command("db-history")
def db_history():
    """List the migrations, oldest first."""
    from migrations.runner import history

    for revision, doc in history():
        click.echo(f"{revision}  {doc.splitlines()[0] if doc else ''}")


@cli.command("db-downgrade")
@click.option("--yes", is_flag=True, help="Confirm: undo the newest migration (its data may be lost).")
def db_downgrade(yes: bool):
    """Undo the newest migration, one step (before rolling back to the previous release)."""
    from migrations.runner import current_of, downgrade_one_step

    if not yes:
        raise click.UsageError("Undoing a migration may drop data: run again with --yes")
    downgrade_one_step(_database_url())
    click.echo(f"Database is now at {current_of(_database_url()) or 'no migration'}.")


# --- Setting up ------------------------------------------------------------------------------


@cli.command("build-assets")
def build_assets():
    """Minify and pre-compress the static files (Brotli and gzip) into build/static/."""
    root = Path(current_app.root_path)
    for asset in assets.build(root / "static", root / "build" / "static"):
        sizes = ", ".join(f"{encoding} {len(data):,} B" for encoding, data in asset.encoded.items())
        click.echo(f"{asset.hashed}: {len(asset.content):,} B" + (f" ({sizes})" if sizes else ""))


def _load_demo(demo, if_empty: bool) -> None:
    with _session() as db:
        config = current_app.config
        created = demo.build_demo(
            db, _now(), only_if_empty=if_empty, tz=config["SERVICE_TIMEZONE"], base_url=config["PUBLIC_BASE_URL"]
        )
    click.echo("Demo data loaded." if created else "Demo data already present; nothing changed.")
    if created:
        for spec in demo.DEMO_ACCOUNTS:
            if spec.pin:
                click.echo(f"  {spec.program_name}: account {spec.number}, PIN {spec.pin}")


def _build_benchmark(demo, accounts: int, transactions: int, batch_size: int) -> None:
    engine = current_app.extensions["portal.engine"]
    click.echo(
        f"Building benchmark data: {accounts:,} accounts, {transactions:,} ledger entries ({engine.dialect.name})."
    )
    result = demo.build_benchmark(
        engine,
        _now(),
        accounts=accounts,
        transactions=transactions,
        batch_size=batch_size,
        tz=current_app.config["SERVICE_TIMEZONE"],
        progress=click.echo,
    )
    if not result.created:
        click.echo("Benchmark data already present; nothing changed.")
    else:
        click.echo(
            f"Built {result.accounts:,} accounts and {result.transactions:,} ledger entries in {result.seconds:.1f} s."
        )
    click.echo(f"Benchmark sign-in (a grant on every benchmark account): {demo.BENCH_EMAIL} {demo.BENCH_PASSWORD}")


@cli.command("demo-data")
@click.option("--if-empty", is_flag=True, help="Only when the database has no people yet.")
@click.option(
    "--accounts",
    type=click.IntRange(min=1),
    help="Build a benchmark database instead: this many accounts (default 5,000).",
)
@click.option(
    "--transactions",
    type=click.IntRange(min=0),
    help="Benchmark: this many ledger entries over those accounts (default 1,000,000).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=100),
    default=50_000,
    show_default=True,
    help="Benchmark: rows per insert and commit.",
)
def demo_data(if_empty: bool, accounts: int | None, transactions: int | None, batch_size: int):
    """Load the demo people and accounts (README lists them), or with --accounts
    and --transactions build benchmark data. Deterministic: same clock date, same data."""
    import demo  # the demo's people and builders: never needed by a running portal

    if current_app.config["PORTAL_ENV"] == "production":
        # The demo people's passwords and PINs are published in the README.
        raise click.ClickException(
            "demo-data loads people whose passwords are published in the README: it "
            "does not run with PORTAL_ENV=production"
        )
    if accounts is None and transactions is None:
        _load_demo(demo, if_empty)
    else:
        _build_benchmark(demo, accounts or 5_000, 1_000_000 if transactions is None else transactions, batch_size)


@cli.command("create-staff")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(["officer", "supervisor", "administrator"]), required=True)
@click.password_option()
def create_staff(email: str, name: str, role: str, password: str):
    """Create a staff sign-in; it must set up two-step sign-in at first sign-in."""
    problem = passwords.password_problem(password, name=name, email=email, second_factor=True)
    if problem:
        raise click.BadParameter(problem, param_hint="password")
    moment = _now()
    with _session() as db:
        if people.find_by_email(db, email):
            raise click.BadParameter("someone already signs in with that email", param_hint="email")
        user = people.register(db, moment, name=name, email=email, password=password)
        user.staff_role, user.email_verified_at = role, moment
        db.commit()
    click.echo(f"Staff sign-in created for {email} ({role}).")


# --- The agency's work, until (and beside) the back office ------------------------------------


@cli.command("issue-pin")
@click.option("--account", "number", required=True, help="The account number (spaces allowed).")
@click.option(
    "--role",
    type=click.Choice(["owner", "authorized", "delegate", "representative", "viewer"]),
    default="owner",
    show_default=True,
    help="The permissions the PIN carries, as a role preset.",
)
@click.option("--days", type=click.IntRange(1, 365), default=90, show_default=True, help="How long it works.")
def issue_pin(number: str, role: str, days: int):
    """Issue an invitation PIN for an account, as the agency (until the staff side does it)."""
    problem = number_problem(number)
    if problem:
        raise click.BadParameter(problem, param_hint="--account")
    with _session() as db:
        account = find_by_number(db, number)
        if account is None:
            raise click.BadParameter("no account has that number", param_hint="--account")
        pin = enrolment.issue_pin(db, _now(), account, role=role, valid_days=days)
        db.commit()
    # The only time the PIN is shown: it is stored hashed.
    click.echo(
        f"Account {format_number(account.number)} ({account.legal_name}): PIN {pin}, role {role}, valid {days} days."
    )


consents_cli = AppGroup(
    "consents", help="Review representatives' consents, as the agency (until the staff back office does it)."
)
cli.add_command(consents_cli)


@consents_cli.command("list")
def consents_list():
    """The consents waiting for review, oldest first."""
    with _session() as db:
        waiting = consents.waiting_for_review(db)
        if not waiting:
            click.echo("No consents are waiting for review.")
        forms = consents.signed_forms(db, [consent.id for consent, _account in waiting])
        for consent, account in waiting:
            ends = f"{consent.ends_on:%Y-%m-%d}" if consent.ends_on else "no end date"
            paper = " [signed form uploaded: flask consents document]" if consent.id in forms else ""
            click.echo(
                f"{consent.id}: {account.legal_name} ({format_number(account.number)}) -> "
                f"{consent.representative_name}{f' of {consent.firm_name}' if consent.firm_name else ''}, "
                f"{consent.permissions}, {consent.starts_on:%Y-%m-%d} to {ends}{paper}"
            )


@consents_cli.command("remind")
def consents_remind():
    """Remind the managers of each representative's request about to lapse
    unanswered, once per request (run by the hourly timer; the clock is injected)."""
    moment = _now()
    day = moment.astimezone(ZoneInfo(current_app.config["SERVICE_TIMEZONE"])).date()
    with _session() as db:
        reminded = consents.remind_before_lapse(db, moment, day)
        db.commit()
    if reminded:
        send_outbox(current_app, "cli")
    click.echo(f"Reminded the managers of {reminded} request(s) about to lapse.")


def _decide_consent(consent_id: int, decide):
    """`decide(db, now, consent)` in a transaction; what it returns."""
    with _session() as db:
        consent = consents.find(db, consent_id)
        if consent is None:
            raise click.BadParameter("no consent has that number", param_hint="CONSENT_ID")
        try:
            said = decide(db, _now(), consent)
        except AccessRefused as error:
            raise click.ClickException(error.message) from None
        db.commit()
    return said


@consents_cli.command("approve")
@click.argument("consent_id", type=int)
def consents_approve(consent_id: int):
    """Approve a consent: the representative is emailed a PIN."""
    to = _decide_consent(consent_id, decisions.approve_consent_by_agency)
    click.echo(f"Consent {consent_id} approved; the PIN is in the outbox for {to} (flask send-email sends it).")


@consents_cli.command("document")
@click.argument("consent_id", type=int)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, writable=True),
    help="Where to write the signed form (a PDF).",
)
def consents_document(consent_id: int, out: str):
    """Write a consent's uploaded signed form to a file, to review it."""
    with _session() as db:
        document = consents.signed_forms(db, [consent_id]).get(consent_id)
        if document is None:
            raise click.ClickException(f"Consent {consent_id} has no uploaded form")
        write_atomically(os.path.abspath(out), document.content)  # never a half-written file
    click.echo(f"Wrote {document.size_bytes:,} bytes (SHA-256 {document.sha256}) to {out}.")


@consents_cli.command("reject")
@click.argument("consent_id", type=int)
@click.option("--reason", required=True, help="Why, in words the account's managers will read.")
def consents_reject(consent_id: int, reason: str):
    """Reject a consent, with the reason the account's managers see."""
    _decide_consent(
        consent_id, lambda db, moment, consent: decisions.reject_consent_by_agency(db, moment, consent, reason)
    )
    click.echo(f"Consent {consent_id} rejected.")


requests_cli = AppGroup(
    "requests",
    help="Act on what people sent through self-service, as the agency "
    "(the back office's work queues do the same, and more).",
)
cli.add_command(requests_cli)


@requests_cli.command("list")
def requests_list():
    """The requests waiting for a decision or for processing, oldest first."""
    with _session() as db:
        waiting = requests.waiting(db)
        if not waiting:
            click.echo("No requests are waiting.")
        for request, account in waiting:
            click.echo(
                f"{request.reference}: {requests.KIND_LABELS[request.kind]}, {account.legal_name} "
                f"({format_number(account.number)}), sent {request.submitted_at:%Y-%m-%d %H:%M} UTC: "
                f"{request.summary}"
            )


def _decide_request(reference: str, approve: bool, reason: str | None) -> None:
    with _session() as db:
        request = requests.by_reference(db, reference)
        if request is None:
            raise click.BadParameter("no request has that reference", param_hint="REFERENCE")
        try:
            decisions.decide_request_by_agency(db, _now(), request, approve, reason)
        except ValueError as error:
            raise click.ClickException(str(error)) from None
        db.commit()


@requests_cli.command("approve")
@click.argument("reference")
@click.option("--note", default=None, help="A note the account's people will read.")
def requests_approve(reference: str, note: str | None):
    """Approve a request (a payment arrangement, a renewal, a waiver, an objection...)."""
    _decide_request(reference, True, note)
    click.echo(f"{reference.upper()} approved.")


@requests_cli.command("decline")
@click.argument("reference")
@click.option("--reason", required=True, help="Why, in words the account's people will read.")
def requests_decline(reference: str, reason: str):
    """Decline a request, with the reason the account's people see."""
    _decide_request(reference, False, reason)
    click.echo(f"{reference.upper()} declined.")


# --- Email ------------------------------------------------------------------------------------

outbox_cli = AppGroup("outbox", help="The outbox of emails: what waits, what failed, send again.")
cli.add_command(outbox_cli)


@outbox_cli.command("status")
def outbox_status():
    """How many emails wait, were sent or failed; the failed ones with their last error."""
    with _session() as db:
        counts, failed = outbox.status(db)
    click.echo(", ".join(f"{state} {counts.get(state, 0)}" for state in ("pending", "sending", "sent", "failed")))
    for email in failed:
        click.echo(
            f"  {email.id}  {email.created_at:%Y-%m-%d %H:%M}  tries {email.attempts}  "
            f"{email.last_error or ''}  {email.subject}"
        )


@outbox_cli.command("retry")
@click.argument("email_id", type=int)
def outbox_retry(email_id: int):
    """Send a failed email again (the next outbox run sends it)."""
    with _session() as db:
        if not outbox.retry(db, email_id, _now()):
            raise click.ClickException(f"No failed email {email_id}: `flask outbox status` lists them")
        db.commit()
    click.echo(f"Email {email_id} will be sent again at the next outbox run.")


@cli.command("send-email")
def send_email():
    """Send what is waiting in the outbox (a worker's thread also does this)."""
    click.echo(f"Sent {send_outbox(current_app, 'cli')} message(s).")


# --- Keeping and restoring --------------------------------------------------------------------


@cli.command("purge")
def purge():
    """Delete expired sessions, old throttle counts, used links past any link's
    age, emails sent over 30 days ago and drafts untouched for 90 days, and files
    of the document folder that no document claims, an hour after they were
    written (a worker killed before its upload committed) (run hourly)."""
    config, moment = current_app.config, _now()
    longest_link = timedelta(seconds=max(config["EMAIL_LINK_MAX_AGE_SECONDS"], config["RESET_LINK_MAX_AGE_SECONDS"]))
    with _session() as db:
        purged = retention.purge(db, moment, session_limits=limits_from(config), longest_link=longest_link)
        db.commit()
    store_kind = documents.store_kind(config.get("DOCUMENT_STORE"), config["DATABASE_URL"])
    documents.make_store(store_kind, _document_dir()).discard(purged.files)
    click.echo(f"Purged {purged.rows} row(s).")
    with _session() as db:
        strays = retention.remove_unclaimed_files(db, _document_dir(), moment)
    click.echo(f"Removed {len(strays)} unclaimed file(s) from the document folder.")


def _counted(summary) -> str:
    """The backup's row counts, as the backup and restore commands say them."""
    return ", ".join(f"{table} {count:,}" for table, count in summary.counts.items())


@cli.command("backup")
@click.argument("path", type=click.Path(file_okay=False))
def backup_command(path: str):
    """Back up the database and the stored documents into PATH, a new directory
    (SQLite: the online backup API, safe while the portal runs; PostgreSQL:
    pg_dump --format=custom). docs/reliability.md says how to restore it."""
    try:
        summary = backup.backup(_database_url(), _document_dir(), path, now=_now())
    except backup.BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"Backed up the {summary.backend} database ({_counted(summary)}) and {summary.documents:,} document "
        f"file(s), {summary.bytes:,} bytes, to {summary.path}."
    )


@cli.command("restore")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.option("--force", is_flag=True, help="Replace what the database and the document folder hold.")
def restore_command(path: str, force: bool):
    """Restore a backup made by `flask backup` into this DATABASE_URL and
    DOCUMENT_DIR, which must be empty (a new database) unless --force. Stop the
    portal first."""
    try:
        summary = backup.restore(path, _database_url(), _document_dir(), force=force)
    except backup.BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"Restored the {summary.backend} database ({_counted(summary)}) and {summary.documents:,} document "
        f"file(s) from {summary.path}."
    )
