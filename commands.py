"""Command-line tasks: `flask --app app <command>`."""
from __future__ import annotations

import click
from flask import Flask


def register(app: Flask) -> None:
    @app.cli.command("db-upgrade")
    def db_upgrade():
        """Apply every database migration (safe to run on each deploy)."""
        from migrations.runner import upgrade

        upgrade(app.config["DATABASE_URL"])
        click.echo("Database is up to date.")

    @app.cli.command("seed-demo")
    @click.option("--if-empty", is_flag=True, help="Only when the database has no people yet.")
    def seed_demo(if_empty: bool):
        """Load the demo people (README lists their sign-ins)."""
        from demo import seed

        with app.extensions["portal.sessionmaker"]() as db:
            created = seed(db, app.extensions["portal.clock"](), only_if_empty=if_empty)
        click.echo("Demo data loaded." if created else "Demo data already present; nothing changed.")

    @app.cli.command("send-email")
    def send_email():
        """Send what is waiting in the outbox (a worker's thread also does this)."""
        from web.mailer import send_outbox

        click.echo(f"Sent {send_outbox(app, 'cli')} message(s).")

    @app.cli.command("purge")
    def purge():
        """Delete expired sessions, old throttle counts, used links past any link's
        age and emails sent over 30 days ago (run hourly)."""
        from datetime import timedelta

        from sqlalchemy import delete

        from domain import sessions, throttle
        from models import OutboxEmail, UsedToken
        from web.sessions import limits_from

        moment = app.extensions["portal.clock"]()
        longest_link = max(app.config["EMAIL_LINK_MAX_AGE_SECONDS"], app.config["RESET_LINK_MAX_AGE_SECONDS"])
        with app.extensions["portal.sessionmaker"]() as db:
            gone = sessions.purge(db, moment, limits_from(app.config))
            gone += throttle.purge_older_than(db, moment - timedelta(days=1))
            # A used link older than the longest link age is refused as expired anyway.
            gone += db.execute(delete(UsedToken).where(
                UsedToken.used_at < moment - timedelta(seconds=longest_link, days=1))).rowcount or 0
            gone += db.execute(delete(OutboxEmail).where(
                OutboxEmail.status == "sent", OutboxEmail.sent_at < moment - timedelta(days=30))).rowcount or 0
            db.commit()
        click.echo(f"Purged {gone} row(s).")

    @app.cli.command("create-staff")
    @click.option("--email", required=True)
    @click.option("--name", required=True)
    @click.option("--role", type=click.Choice(["officer", "supervisor", "administrator"]), required=True)
    @click.password_option()
    def create_staff(email: str, name: str, role: str, password: str):
        """Create a staff sign-in; it must set up two-step sign-in at first sign-in."""
        from domain import passwords, people

        problem = passwords.password_problem(password, name=name, email=email, second_factor=True)
        if problem:
            raise click.BadParameter(problem, param_hint="password")
        moment = app.extensions["portal.clock"]()
        with app.extensions["portal.sessionmaker"]() as db:
            if people.find_by_email(db, email):
                raise click.BadParameter("someone already signs in with that email", param_hint="email")
            user = people.register(db, moment, name=name, email=email, password=password)
            user.staff_role, user.email_verified_at = role, moment
            db.commit()
        click.echo(f"Staff sign-in created for {email} ({role}).")
