"""Commands: crm subject-access, crm erase-customer, crm retention (progress on stderr, JSON last)."""
import json
import os

import click

from ..auth.roles import RECORDS_OFFICERS
from ..cli import RECORD_ID, crm, fail
from ..errors import DomainError
from ..extensions import db
from ..models import User


def _progress(kind: str, count: int) -> None:
    click.echo(f"{kind}: {count}", err=True)


def _officer(email):
    """Return the records officer the command acts as (--as), or None for the system."""
    if not email:
        return None
    from ..customers.identity import normalise_email

    user = db.session.scalar(db.select(User).where(User.email == normalise_email(email)))
    if user is None or user.role not in RECORDS_OFFICERS or not user.active:
        fail(f"{email} is not an active records officer")
    return user


@crm.command("subject-access")
@click.argument("customer_id", type=RECORD_ID)
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, writable=True))
@click.option("--reference", default=None, help="The request's reference (e.g. SAR-2026-014).")
@click.option("--as", "as_email", default=None, help="Records officer the export is audited to.")
@click.option("--exclude", multiple=True, help="Leave out an item, as kind:id (repeatable).")
@click.option("--mask", multiple=True, help="Replace this text with [redacted] everywhere (repeatable).")
@click.option("--without-internal", is_flag=True, help="Leave out internal notes.")
def subject_access_command(customer_id, out_path, reference, as_email, exclude, mask, without_internal):
    """Write everything held about a customer to a ZIP; the last line is JSON."""
    from .subject_access import Redaction, write_subject_access

    actor = _officer(as_email)
    tmp = out_path + ".part"
    try:
        redaction = Redaction.parse(exclude, mask, without_internal)
        with open(tmp, "wb") as out:
            result = write_subject_access(customer_id, out, actor, reference, redaction, progress=_progress)
        db.session.commit()
    except (DomainError, OSError) as error:
        db.session.rollback()  # nothing written, nothing audited as disclosed
        if os.path.exists(tmp):
            os.remove(tmp)
        fail(error.message if isinstance(error, DomainError) else f"cannot write {out_path}: {error.strerror}")
    os.replace(tmp, out_path)
    click.echo(json.dumps({"customer_id": result["customer_id"], "file": out_path, "items": result["items"]}))


@crm.command("erase-customer")
@click.argument("customer_id", type=RECORD_ID)
@click.option("--reason", required=True, help="Why (the request and its lawful basis).")
@click.option("--reference", default=None, help="The request's reference.")
@click.option("--dry-run", is_flag=True, help="Count what would be erased; change nothing.")
@click.option("--as", "as_email", default=None, help="Records officer the erasure is audited to.")
def erase_customer_command(customer_id, reason, reference, dry_run, as_email):
    """Erase a customer's personal data (refused under a legal hold); the last line is JSON counts."""
    from .erasure import erase_customer

    actor = _officer(as_email)
    try:
        result = erase_customer(customer_id, actor, reason, reference, dry_run=dry_run)
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        fail(f"{error.message}: {json.dumps(error.fields)}" if error.fields else error.message)
    click.echo(("dry run: nothing changed" if dry_run else f"customer {result['customer_id']} erased"), err=True)
    click.echo(json.dumps({"customer_id": result["customer_id"], "dry_run": dry_run, **result["counts"]}))


@crm.command("retention")
@click.option("--dry-run", is_flag=True, help="Count what is due; change nothing.")
@click.option("--batch", default=500, show_default=True, type=click.IntRange(1, 10000))
def retention_command(dry_run, batch):
    """Apply the retention schedules now (the worker does it daily); the last line is JSON counts per kind."""
    from .retention import run_retention

    run = run_retention(actor=None, dry_run=dry_run, on_batch=db.session.commit, progress=_progress, batch=batch)
    db.session.commit()
    click.echo(f"retention run {run.id}{' (dry run)' if dry_run else ''}; held back: {json.dumps(run.held)}", err=True)
    click.echo(json.dumps(run.counts))
