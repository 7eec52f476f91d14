"""Flask-Migrate, imported only when migrations are run.

Flask-Migrate imports Alembic as it is imported (about 0.18 s of CPU, an eighth of every command's
start-up: bench/README.md), yet only `flask db ...` and code that migrates need it. `init_app`
therefore registers a `db` command group and an `app.extensions["migrate"]` that both build the
real Flask-Migrate on first use: `flask db upgrade`, `flask_migrate.upgrade()` and
`migrations/env.py` work exactly as with `Migrate(app, db)`.
"""
import click


class LazyMigrate:
    """Migrate's settings, kept until something asks for migrations."""

    def __init__(self):
        self.db = None
        self.options: dict = {}

    def init_app(self, app, db, **options):
        """Register `flask db` and app.extensions["migrate"]; neither imports Alembic yet."""
        self.db, self.options = db, options
        app.extensions["migrate"] = _DeferredConfig(app, self)
        app.cli.add_command(_DeferredDbGroup(app, self), name="db")

    def install(self, app):
        """Initialise the real Flask-Migrate on the app (once) and return its extension config."""
        config = app.extensions.get("migrate")
        if isinstance(config, _DeferredConfig):
            from flask_migrate import Migrate

            Migrate().init_app(app, self.db, **self.options)  # replaces both stand-ins
            config = app.extensions["migrate"]
        return config


class _DeferredConfig:
    """Stands for Flask-Migrate's app.extensions["migrate"] until an attribute of it is read."""

    def __init__(self, app, migrate: LazyMigrate):
        self._app, self._migrate = app, migrate

    def __getattr__(self, name):
        return getattr(self._migrate.install(self._app), name)


class _DeferredDbGroup(click.Group):
    """`flask db`: Flask-Migrate's own command group, loaded when a db command is listed or run."""

    def __init__(self, app, migrate: LazyMigrate):
        super().__init__(name="db", help="Perform database migrations.")
        self._app, self._migrate = app, migrate

    def _real(self) -> click.Group:
        self._migrate.install(self._app)
        return self._app.cli.commands["db"]

    def list_commands(self, ctx):
        return self._real().list_commands(ctx)

    def get_command(self, ctx, name):
        return self._real().get_command(ctx, name)

    def make_context(self, info_name, args, parent=None, **extra):
        # The real group's options (--directory, -x) and callback apply, not this stand-in's.
        return self._real().make_context(info_name, args, parent=parent, **extra)
