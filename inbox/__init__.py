"""Coccinelle: an omnichannel customer-support inbox."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask
from sqlalchemy import event

from . import broker
from .config import DEFAULTS, load_config
from .extensions import babel, csrf, db, htmx, login_manager, migrate, sqlite_reading_view, sqlite_write_intent


def create_app(config: dict | None = None) -> Flask:
    """Build the app. Nothing runs at import time; tests pass their own config."""
    app = Flask(__name__, instance_relative_config=True)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.update(DEFAULTS)
    app.config.update(load_config(Path(app.instance_path)))
    app.config.update(config or {})
    _init_logging(app.config["LOG_LEVEL"])

    from . import models  # noqa: F401  (registers the tables on the metadata)

    _size_the_pool(app)
    db.init_app(app)
    migrations = Path(__file__).resolve().parent.parent / "migrations"
    migrate.init_app(app, db, directory=str(migrations), render_as_batch=True)
    csrf.init_app(app)
    htmx.init_app(app)
    broker.init_app(app)
    from .i18n import init_app as init_i18n
    init_i18n(app)
    _init_login(app)
    with app.app_context():
        _tune_sqlite(db.engine, testing=app.config.get("TESTING", False))
    _lock_per_request(app)

    from .blueprints import register_blueprints
    register_blueprints(app)
    from .errors_http import register_error_handlers
    register_error_handlers(app)
    from .cli import register_cli
    register_cli(app)
    return app


def _init_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":
        # The twilio client logs every request with its headers; RQ logs every job twice.
        for noisy in ("twilio.http_client", "rq.worker", "rq.scheduler"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def _init_login(app: Flask) -> None:
    from sqlalchemy.orm import joinedload

    from .models import User

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def load_user(user_id: str):
        # Every signed-in page reads the workspace (time zone, locale, the top bar): same query.
        return db.session.get(User, int(user_id), options=[joinedload(User.workspace)])

    from flask_babel import lazy_gettext
    login_manager.login_message = lazy_gettext("Please log in to continue.")


def _size_the_pool(app: Flask) -> None:
    """PostgreSQL: a gthread worker serves many requests at once. With SQLAlchemy's default pool (5
    kept, 10 more opened and closed after use), 16 webhooks at once in a worker opened and closed a
    connection on most of them, and PostgreSQL started a server process for each (RESULTS §19)."""
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            **app.config["SQLALCHEMY_ENGINE_OPTIONS"],
            "pool_size": app.config["DATABASE_POOL_SIZE"], "max_overflow": app.config["DATABASE_MAX_OVERFLOW"]}


def _tune_sqlite(engine, *, testing: bool) -> None:
    """WAL for concurrent readers; BEGIN IMMEDIATE (see sqlite_write_intent) so writers queue."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE" if sqlite_write_intent.get() else "BEGIN")

    _guard_reads(engine, strict=testing)


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _guard_reads(engine, *, strict: bool) -> None:
    """A GET view that writes without being marked `writes` opened a plain BEGIN: its write would
    fail at once (SQLITE_BUSY_SNAPSHOT) whenever another request wrote since its first read. Tests
    fail on it; in production it is logged, once per view."""
    warned: set[str] = set()

    @event.listens_for(engine, "before_cursor_execute")
    def _on_execute(_conn, _cursor, statement, _params, _context, _many):
        view = sqlite_reading_view.get()
        if view is None or not statement.lstrip()[:7].upper().startswith(_WRITES):
            return
        message = f"GET {view} writes to the database: mark its view @writes (inbox.extensions)"
        if strict:
            raise RuntimeError(message)
        if view not in warned:
            warned.add(view)
            logging.getLogger(__name__).warning(message)


def _lock_per_request(app: Flask) -> None:
    from flask import g, request

    @app.before_request
    def _write_intent():
        view = app.view_functions.get(request.endpoint)
        if request.method in ("GET", "HEAD") and not getattr(view, "writes", False):
            g._reading_view_token = sqlite_reading_view.set(request.endpoint or request.path)
            return
        g._write_intent_token = sqlite_write_intent.set(True)

    @app.teardown_request
    def _reset_write_intent(_exc):
        token = g.pop("_write_intent_token", None)
        if token is not None:
            sqlite_write_intent.reset(token)
        token = g.pop("_reading_view_token", None)
        if token is not None:
            sqlite_reading_view.reset(token)
