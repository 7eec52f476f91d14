"""Who may run the information-governance actions: the records role alone (admins grant it)."""
from ..auth.roles import RECORDS_OFFICERS, RETENTION_EDITORS
from ..errors import Forbidden


def is_records_officer(user) -> bool:
    """Say whether the user holds the records role (admins do not pass: the role is granted, not implied)."""
    return bool(getattr(user, "is_authenticated", False)) and getattr(user, "role", None) in RECORDS_OFFICERS


def require_records(user) -> None:
    """Refuse anyone but a records officer."""
    if not is_records_officer(user):
        raise Forbidden("Only the records (information governance) role may do this")


def require_retention_editor(user) -> None:
    """Refuse anyone who may not change the retention schedules (records officers and admins may)."""
    if not (getattr(user, "is_authenticated", False) and getattr(user, "role", None) in RETENTION_EDITORS):
        raise Forbidden("Only records officers and admins may change the retention schedules")
