"""Flask extensions, created without an app and bound in create_app."""
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from .migrating import LazyMigrate
from .realtime import EventSocketIO

# Named constraints so that Alembic batch migrations on SQLite can alter them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # Our server defaults only repeat a Python default (for migrations of existing rows): the ORM must
    # not fetch them back with RETURNING, which on SQLite inserts a batch one statement per row.
    __mapper_args__ = {"eager_defaults": False}


db = SQLAlchemy(model_class=Base)
migrate = LazyMigrate()  # Flask-Migrate, imported when migrations run (crm/migrating.py)
class StaffLoginManager(LoginManager):
    """Flask-Login whose session protection never vetoes a bearer token: such a request is judged by the
    token alone, even when the client also carries a cookie from a resident page."""

    def _session_protection_failed(self):
        from flask import request

        if request.headers.get("Authorization", "")[:7].lower() == "bearer ":
            return False
        return super()._session_protection_failed()


login_manager = StaffLoginManager()
socketio = EventSocketIO()  # Flask-SocketIO, with a lighter Flask context for each event after connect
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)


import marshmallow as _ma  # noqa: E402
from flask_smorest import Api as _SmorestApi  # noqa: E402


class ErrorDetailSchema(_ma.Schema):
    """What went wrong: a stable code, a sentence, and the fields at fault."""

    code = _ma.fields.String(required=True, metadata={"example": "validation_error"})
    message = _ma.fields.String(required=True)
    fields = _ma.fields.Dict(keys=_ma.fields.String(), values=_ma.fields.List(_ma.fields.String()))


class ErrorSchema(_ma.Schema):
    """The body of every error answer: {"error": {"code", "message", "fields"}}."""

    error = _ma.fields.Nested(ErrorDetailSchema, required=True)


class Api(_SmorestApi):
    """flask-smorest, minus its app-wide error handler: crm.http_errors answers errors in our shape."""

    # The OpenAPI document must describe the error body clients really get, not smorest's default.
    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self):
        pass


api = Api()


import sqlite3  # noqa: E402

from sqlalchemy import event  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402


@event.listens_for(Engine, "connect")
def _tune_sqlite(dbapi_connection, connection_record):
    """Use WAL on SQLite files: readers never wait for the writer, and commits need one fsync less."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()
