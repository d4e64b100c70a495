"""RQ jobs: thin, JSON-serialisable arguments (ids), idempotent, run inside an app context."""

from __future__ import annotations

import functools

from ..extensions import db, sqlite_write_intent


def job(func):
    """Give each job a fresh database session, whatever happened in the previous one."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        db.session.remove()  # nothing left over from whatever ran before in this context
        token = sqlite_write_intent.set(True)
        try:
            return func(*args, **kwargs)
        finally:
            db.session.remove()
            sqlite_write_intent.reset(token)

    return wrapper
