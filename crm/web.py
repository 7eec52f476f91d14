"""The one way a staff page runs a change: call the service, commit, flash, and answer.

Views validate their form, then hand `act` the domain action and what to answer either way; the
commit, the rollback and the flashed message live here, not in each view.
"""
from typing import Callable, Optional, Union

from flask import flash

from .errors import DomainError
from .extensions import db


def refusal_message(error: DomainError) -> str:
    """Return a refusal in words, with the fields at fault when there are any."""
    detail = "; ".join(m for messages in error.fields.values() for m in messages)
    return f"{error.message}: {detail}" if detail and detail not in error.message else error.message


def act(action: Callable[[], object], success: Union[str, Callable[[object], Optional[str]], None],
        done: Callable[[object], object], refused: Callable[[DomainError], object]):
    """Run action and commit, flash success and answer done(result); on a DomainError roll back, flash why
    and answer refused(error).

    `success` is the message, a function of the action's result (say, the new record) that words it, or
    None when the answer itself shows it worked (a download, a dry run's page).
    """
    try:
        result = action()
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        flash(refusal_message(error), "error")
        return refused(error)
    message = success(result) if callable(success) else success
    if message:
        flash(message, "success")
    return done(result)
