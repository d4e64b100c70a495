"""Flask extensions, created unbound and initialised in create_app()."""

from __future__ import annotations

from flask_babel import Babel
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx
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
# read turns into a write. Requests and jobs set it; tests and scripts read without locking.
sqlite_write_intent: ContextVar[bool] = ContextVar("sqlite_write_intent", default=False)


def reads_only(view):
    """Mark a view that never writes: on SQLite its transaction opens with a plain BEGIN and
    reads beside the writers (WAL) instead of queueing for the write lock with them. For the
    pages every open inbox asks for at once after a live event."""
    view.reads_only = True  # functools.wraps carries it through login_required
    return view
