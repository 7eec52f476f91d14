"""The one way a staff page runs a change: call the service, commit, flash, and answer.

Views validate their form, then hand `act` the domain action and what to answer either way; the
commit, the rollback and the flashed message live here, not in each view.
"""
from typing import Callable

from flask import flash

from .errors import DomainError
from .extensions import db


def refusal_message(error: DomainError) -> str:
    """Return a refusal in words, with the fields at fault when there are any."""
    detail = "; ".join(m for messages in error.fields.values() for m in messages)
    return f"{error.message}: {detail}" if detail and detail not in error.message else error.message


def act(action: Callable[[], object], success: str, done: Callable[[], object],
        refused: Callable[[DomainError], object]):
    """Run action and commit, flash success and answer done(); on a DomainError roll back, flash why and answer refused(error)."""
    try:
        action()
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        flash(refusal_message(error), "error")
        return refused(error)
    flash(success, "success")
    return done()
