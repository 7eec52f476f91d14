"""The `crm` command group: flask --app wsgi crm ..."""
import gc
import json
import sys
from contextlib import contextmanager

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.exc import DataError, IntegrityError

from .errors import DomainError
from .extensions import db
from .models.users import ROLES
from .security import ID_LIMIT


class CommandGroup(AppGroup):
    """The crm commands: a value the database refuses ends a command with one line, as it ends a request with a 409."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (DataError, IntegrityError) as error:
            db.session.rollback()  # nothing of the command's unfinished work is kept
            raise click.ClickException(f"the database refused a value: {str(error.orig).splitlines()[0]}") from None


crm = CommandGroup("crm", help="Contact-centre CRM commands.")
RECORD_ID = click.IntRange(1, ID_LIMIT)  # a record's id: larger numbers are no row's, and PostgreSQL refuses them


def fail(message: str):
    """Stop the command with a clear error, no traceback."""
    raise click.ClickException(message)


@crm.command("create-user")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--name", required=True)
@click.option("--password", help="Prompted for when not given.")
def create_user_command(email, role, name, password):
    """Create a staff user."""
    from .auth.accounts import create_user

    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_user(email, name, role, password)
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        fail(f"{error.message}: {json.dumps(error.fields)}" if error.fields else error.message)
    click.echo(f"created {user.role} {user.email} (id {user.id})")


@crm.command("create-token")
@click.argument("email")
@click.option("--label", default=None)
def create_token_command(email, label):
    """Print a new API token for the user on the last line."""
    from .auth.accounts import create_token, find_user

    try:
        user = find_user(email)
    except DomainError as error:
        fail(error.message)
    if not user.active:
        fail(f"User {email} is deactivated")
    try:
        token = create_token(user, label)
    except DomainError as error:
        fail(f"{error.message}: {json.dumps(error.fields)}" if error.fields else error.message)
    db.session.commit()
    click.echo(f"token for {user.email} ({user.role}); it is shown once:", err=True)
    click.echo(token)


@crm.command("revoke-tokens")
@click.argument("email")
def revoke_tokens_command(email):
    """Revoke every API token of a user."""
    from .auth.accounts import find_user, revoke_token

    try:
        user = find_user(email)
    except DomainError as error:
        fail(error.message)
    live = [t for t in user.tokens if t.revoked_at is None]
    for token in live:
        revoke_token(token)
    db.session.commit()
    click.echo(json.dumps({"revoked": len(live)}))


@crm.command("seed-demo")
@click.option("--if-empty", is_flag=True, help="Do nothing when the database already has data.")
@click.option("--customers", default=300, show_default=True, type=click.IntRange(0, 100000))
def seed_demo_command(if_empty, customers):
    """Load demo services, queues, routing rules, forms, staff, customers and history."""
    from . import demo

    if not demo.is_empty():
        if if_empty:
            click.echo("database already has data; demo not loaded", err=True)
            return
        fail("The database already has data; seed-demo loads into an empty database only")
    demo.seed_demo(current_app.config["DEMO_PASSWORD"], customers=customers)
    click.echo(json.dumps({"customers": customers, "staff": [s[0] for s in demo.STAFF]}))


@crm.command("mark-sensitive")
@click.argument("service_code")
@click.option("--off", is_flag=True, help="Make the service ordinary again.")
def mark_sensitive_command(service_code, off):
    """Mark a service sensitive: its cases and conversations only for staff who need them."""
    from .customers.sensitivity import set_service_sensitive
    from .models import Service

    service = db.session.scalar(db.select(Service).where(Service.code == service_code))
    if service is None:
        fail(f"No service {service_code}")
    set_service_sensitive(None, service, not off)
    db.session.commit()
    click.echo(json.dumps({"service": service.code, "sensitive": service.sensitive}))


@crm.command("restrict-customer")
@click.argument("customer_id", type=RECORD_ID)
@click.option("--off", is_flag=True, help="Lift the restriction.")
def restrict_customer_command(customer_id, off):
    """Mark a customer's record restricted: only staff who need it may read it (every read audited)."""
    from .audit import audit
    from .models import Customer

    customer = db.session.get(Customer, customer_id)
    if customer is None:
        fail(f"No customer {customer_id}")
    customer.restricted = not off
    audit(None, "customer.unrestricted" if off else "customer.restricted", "customer", customer.id, via="cli")
    db.session.commit()
    click.echo(json.dumps({"customer_id": customer.id, "restricted": customer.restricted}))


@contextmanager
def collect_between_batches():
    """Run a bulk command with the cyclic garbage collector only between its batches; yield the collect call.

    The ORM leaves a batch's rows as cyclic garbage: the collector's automatic passes ran over every
    object of the process again and again while a batch was built (about a fifth of ingest-email's
    CPU, bench/README.md). Start-up objects are frozen out of every pass, and garbage is collected
    once per batch instead, so memory stays bounded by the batch however long the input.
    """
    was_enabled, was_frozen = gc.isenabled(), gc.get_freeze_count()
    # No full pass first: start-up leaves no cyclic garbage (none of ~190,000 objects), and the pass cost 0.09 s.
    gc.freeze()
    gc.disable()
    try:
        yield gc.collect
    finally:
        if not was_frozen:
            gc.unfreeze()
        if was_enabled:
            gc.enable()


def init_app(app):
    """Attach the command group to the app."""
    app.cli.add_command(crm)


def main():
    """Run `crm COMMAND ...` (the console script) exactly as `flask crm COMMAND ...`; `crm db ...` migrates."""
    from flask.cli import FlaskGroup, ScriptInfo

    from config import SettingError

    from . import create_app

    def app_or_exit():
        try:
            return create_app()
        except SettingError as error:
            sys.exit(f"crm: {error}")  # names the variable, without a traceback

    args = sys.argv[1:]
    if args[:1] == ["db"]:
        FlaskGroup(create_app=app_or_exit, set_debug_flag=False).main(args=args, prog_name="crm")
        return
    info = ScriptInfo(create_app=app_or_exit, set_debug_flag=False)
    info.load_app()  # the areas attach their commands to the group as the app is built
    crm.main(args=args, prog_name="crm", obj=info)  # "Usage: crm ingest-email ...", not "crm crm ..."
