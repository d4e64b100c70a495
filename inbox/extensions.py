"""Flask extensions, created unbound and initialised in create_app()."""

from __future__ import annotations

from flask_babel import Babel
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import MetaData

# Stable constraint names so Alembic migrations are reproducible on SQLite and PostgreSQL.
naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Objects stay readable after commit (templates render what was just saved without re-querying).
db = SQLAlchemy(metadata=MetaData(naming_convention=naming_convention),
               session_options={"expire_on_commit": False})
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
htmx = Htmx()

# On SQLite, transactions opened while this is true take the write lock at BEGIN
# (BEGIN IMMEDIATE), so concurrent writers queue on busy_timeout instead of failing when a
# read turns into a write. Requests that change data (every method but GET and HEAD, and the
# GET views marked `writes`) and jobs set it; tests and scripts read without locking.
sqlite_write_intent: ContextVar[bool] = ContextVar("sqlite_write_intent", default=False)

# The endpoint of a GET request that said it only reads, while it runs: a write there is a
# view that should have been marked `writes` (see _guard_reads in inbox/__init__.py).
sqlite_reading_view: ContextVar[str | None] = ContextVar("sqlite_reading_view", default=None)


def writes(view):
    """Mark a GET view that changes data (opening a conversation marks it read): on SQLite its
    transaction takes the write lock at BEGIN, as a form's does. Other GET views read with a
    plain BEGIN beside the writers (WAL): taking the lock for every page made agents' pages wait
    in line behind each other and behind the webhooks."""
    view.writes = True  # functools.wraps carries it through login_required
    return view


@contextmanager
def write_apart():
    """A write of its own inside a view that reads (an API token's last use): the reading
    transaction ends, and the write's own takes SQLite's write lock at BEGIN and commits."""
    db.session.commit()
    intent, reading = sqlite_write_intent.set(True), sqlite_reading_view.set(None)
    try:
        yield
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    finally:
        sqlite_reading_view.reset(reading)
        sqlite_write_intent.reset(intent)
