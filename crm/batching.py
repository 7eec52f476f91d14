"""Write many new rows in one flush: ids handed out up front, look-ups remembered for the batch.

Services add a new row with `stage(row)`. Outside a batch that is `add` then `flush`, as
before, so the row has its id at once. Inside `write_batch()` (the email import, which writes
hundreds of messages at a time) the row gets an id from a block reserved in advance and is
only added: foreign keys, case references and signal payloads can use the id immediately, and
the whole batch goes to the database in one flush, a multi-row INSERT per table, instead of a
flush (and its round trips) per row.

Ids come from the table's sequence on PostgreSQL (`nextval`, safe with any number of writers).
SQLite has no sequence: the block starts after the table's highest id, which is safe because
SQLite has one writer at a time and the batch holds the write lock (it has already written in
its transaction before it asks for ids). Every row of a reserved table written during a batch
must therefore be staged, so the database never hands out an id of the block itself.

`remembered(key, compute)` keeps what a look-up returned (routing rules, a service, a queue)
for the rest of the batch, so a hundred messages to the same service read its rules once.
"""
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Optional

from sqlalchemy import func, select, text

from .extensions import db

# Tables take blocks of ids, sized by the batch and doubling as needed. On PostgreSQL the ids a
# batch reserved but did not use are skipped, as after a rollback, so case ids (the case
# references people read and quote) are taken there one at a time and never skip numbers. On
# SQLite nothing is skipped: the next block starts after the highest id actually written.
ONE_AT_A_TIME = frozenset({"cases"})


class WriteBatch:
    """Reserved ids per table, and the look-ups remembered until the batch ends."""

    def __init__(self, size_hint: int = 1):
        self.size_hint = max(1, size_hint)
        self._free: dict[str, list[int]] = {}
        self._block: dict[str, int] = {}
        self._sqlite_next: dict[str, int] = {}
        self.memo: dict = {}

    def next_id(self, model) -> int:
        """Return an unused primary key of the model's table, reserving a block when needed."""
        table = model.__table__
        free = self._free.get(table.name)
        if not free:
            one_at_a_time = table.name in ONE_AT_A_TIME and db.session.get_bind().dialect.name == "postgresql"
            block = 1 if one_at_a_time else self._block.get(table.name, self.size_hint)
            self._block[table.name] = block * 2
            free = self._free[table.name] = self._reserve(table, block)
        return free.pop()

    def expect(self, model, count: int) -> None:
        """Reserve exactly `count` ids of the model's table now, for rows the batch will certainly write.

        For a table whose ids are taken one at a time this turns `count` round trips into one,
        without skipping numbers: every id of the block is used before another is taken.
        """
        if count > 0:
            table = model.__table__
            self._free[table.name] = sorted(self._free.get(table.name, []) + self._reserve(table, count),
                                            reverse=True)

    def _reserve(self, table, count: int) -> list[int]:
        connection = db.session.connection()
        if connection.dialect.name == "postgresql":
            ids = connection.execute(
                text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :count)"),
                {"table": table.name, "count": count}).scalars().all()
        else:
            highest = connection.execute(select(func.max(table.c.id))).scalar() or 0
            start = max(highest + 1, self._sqlite_next.get(table.name, 0))
            ids = list(range(start, start + count))
            self._sqlite_next[table.name] = start + count
        return sorted(ids, reverse=True)  # pop() hands them out in increasing order


_current: ContextVar[Optional[WriteBatch]] = ContextVar("write_batch", default=None)


@contextmanager
def write_batch(size_hint: int = 1):
    """Stage new rows without flushing until the block ends (the caller flushes and commits).

    `size_hint` is about how many rows of each table the batch will write (its message count).
    """
    batch = WriteBatch(size_hint)
    token = _current.set(batch)
    try:
        yield batch
    finally:
        _current.reset(token)


def current_batch() -> Optional[WriteBatch]:
    """Return the active batch, if any."""
    return _current.get()


def stage(row, flush: bool = True):
    """Add a new row so that it has its id: reserved in a batch, else by flushing now.

    With `flush=False` a row outside a batch is only added (the caller flushes it later).
    """
    batch = _current.get()
    if batch is None:
        db.session.add(row)
        if flush:
            db.session.flush()
        return row
    if row.id is None:
        row.id = batch.next_id(type(row))
    db.session.add(row)
    return row


def flush_unless_batched() -> None:
    """Flush now, unless a batch will flush everything at its end."""
    if _current.get() is None:
        db.session.flush()


def remembered(key, compute: Callable):
    """Return compute(), kept for the rest of the batch when one is active."""
    batch = _current.get()
    if batch is None:
        return compute()
    if key not in batch.memo:
        batch.memo[key] = compute()
    return batch.memo[key]
