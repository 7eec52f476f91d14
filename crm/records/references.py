"""Before rows are deleted, make every other row that points at them stop doing so."""
from sqlalchemy import delete, select, update

from ..extensions import db


def release_references(model, ids) -> None:
    """Null the foreign keys that point at these rows (delete the pointing rows where the key is required).

    `ids` is a list or a select of the rows' ids. Tables other areas add later are covered too, so
    a deletion never fails on PostgreSQL's foreign keys, nor leaves a dangling id on SQLite.
    """
    target = model.__table__
    if "id" not in target.c:
        return
    if isinstance(ids, list):
        if not ids:
            return
    else:
        # Materialise once: the subquery may read the very rows the updates below change.
        ids = list(db.session.scalars(ids))
        if not ids:
            return
    for table in db.metadata.sorted_tables:
        for column in table.columns:
            if not any(fk.column is target.c.id for fk in column.foreign_keys):
                continue
            if column.nullable:
                db.session.execute(update(table).where(column.in_(ids)).values({column.name: None}))
            elif table is not target:
                db.session.execute(delete(table).where(column.in_(ids)))
