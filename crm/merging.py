"""Merged records: a customer, case or conversation merged into another points at it by merged_into_id."""
from typing import Optional, TypeVar

from .extensions import db

Row = TypeVar("Row")


def live_record(row: Optional[Row]) -> Optional[Row]:
    """Follow merged_into links from a row to the record of its model that holds it now."""
    seen = set()
    # A link back to a row already passed ends the walk there, so bad data cannot loop forever.
    while row is not None and row.merged_into_id and row.id not in seen:
        seen.add(row.id)
        row = db.session.get(type(row), row.merged_into_id)
    return row
