"""Full-text search over message bodies: one interface, two engines.

- SQLite: an FTS5 external-content table `message_fts` over `message.body` (the text is stored
  once, in `message`), kept in sync by three triggers; the `unicode61 remove_diacritics 2`
  tokenizer folds accents, so "reservation" finds "réservation".
- PostgreSQL: a GIN expression index on `to_tsvector('simple', <body with accents folded>)`;
  folding uses translate() (immutable, no extension needed) with the same table as `fold()`.

Words match by prefix ("reserv" finds "réservation"); all words of the query must match. On
SQLite a search looks at the MAX_MATCHES most recent matching messages: a word found in 150,000
messages would otherwise cost seconds, and the inbox shows the most recent conversations first
anyway; rarer queries (most of them) are exact. PostgreSQL reads every match from the GIN index.
`install(connection)` creates the DDL (idempotent). It runs after `create_all` (the event below,
so test databases have it) and from the migration that adds it (same statements, `ddl()`).
"""

from __future__ import annotations

import re

from sqlalchemy import Integer, column, event, false, func, literal_column, select, text

from .models.message import Message

FTS_TABLE = "message_fts"
PG_INDEX = "ix_message_body_fts"

# Same folding on both sides on PostgreSQL: the index expression and the query terms.
_ACCENTED = "àáâãäåçèéêëìíîïñòóôõöùúûüýÿœæÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝŸ"
_PLAIN = "aaaaaaceeeeiiiinooooouuuuyyoaAAAAAACEEEEIIIINOOOOOUUUUYY"
assert len(_ACCENTED) == len(_PLAIN)
_FOLD = str.maketrans(_ACCENTED, _PLAIN)
_PG_DOCUMENT = f"to_tsvector('simple'::regconfig, translate(message.body, '{_ACCENTED}', '{_PLAIN}'))"
_WORD = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 8
MAX_MATCHES = 5000  # most recent matching messages considered (bench/RESULTS.md: search)

_SQLITE_DDL = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5("
    "body, content='message', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_ai AFTER INSERT ON message BEGIN "
    f"INSERT INTO {FTS_TABLE}(rowid, body) VALUES (new.id, new.body); END",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_ad AFTER DELETE ON message BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, body) VALUES ('delete', old.id, old.body); END",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_au AFTER UPDATE OF body ON message BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, body) VALUES ('delete', old.id, old.body); "
    f"INSERT INTO {FTS_TABLE}(rowid, body) VALUES (new.id, new.body); END",
)
_POSTGRES_DDL = (f"CREATE INDEX IF NOT EXISTS {PG_INDEX} ON message USING gin ({_PG_DOCUMENT})",)


def ddl(dialect_name: str) -> tuple[str, ...]:
    """The statements `install` runs, for the migration that adds search to existing databases."""
    return {"sqlite": _SQLITE_DDL, "postgresql": _POSTGRES_DDL}.get(dialect_name, ())


def install(connection) -> None:
    """Create the search table/triggers or index if missing; a new FTS5 table is filled from `message`."""
    dialect = connection.dialect.name
    fresh = dialect == "sqlite" and connection.execute(
        text("SELECT 1 FROM sqlite_master WHERE name = :n"), {"n": FTS_TABLE}).first() is None
    for statement in ddl(dialect):
        connection.exec_driver_sql(statement)
    if fresh:
        rebuild(connection)


def rebuild(connection) -> None:
    """Re-index every message (SQLite after bulk loads without triggers; PostgreSQL needs nothing)."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")


def fold(text_: str) -> str:
    return text_.translate(_FOLD).lower()


def terms(q: str) -> list[str]:
    """The words of a query, accents folded, at most MAX_TERMS (a pasted paragraph stays cheap)."""
    return _WORD.findall(fold(q))[:MAX_TERMS]


def message_match(q: str, *, dialect_name: str):
    """A condition on Message: its body contains every word of `q` (each as a prefix)."""
    words = terms(q)
    if not words:
        return false()
    if dialect_name == "postgresql":
        query = " & ".join(f"{w}:*" for w in words)
        # The document stays literal SQL so the planner recognises the GIN index's expression.
        return literal_column(_PG_DOCUMENT).op("@@")(func.to_tsquery(literal_column("'simple'::regconfig"), query))
    if dialect_name == "sqlite":
        query = " ".join(f'"{w}"*' for w in words)  # quoted: words are never FTS5 operators
        # Newest first (rowid = message id) and bounded: FTS5 walks its index backwards and stops.
        matches = text(f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :fts_query "
                       "ORDER BY rowid DESC LIMIT :fts_limit").bindparams(
            fts_query=query, fts_limit=MAX_MATCHES).columns(column("rowid", Integer))
        return Message.id.in_(matches)
    like = "%" + " ".join(words) + "%"  # any other engine: slow but correct enough
    return Message.body.ilike(like)


def conversations_matching(workspace_id: int, q: str, *, dialect_name: str):
    """Ids of the workspace's conversations with a message matching `q` (on SQLite: among the
    MAX_MATCHES most recent matches), as a subquery."""
    # On PostgreSQL the bound is not applied: with ORDER BY id LIMIT the planner walks the primary key
    # backwards testing every row, which for a rare word means the whole table (measured: 40 s).
    return select(Message.conversation_id).where(
        Message.workspace_id == workspace_id, message_match(q, dialect_name=dialect_name))


@event.listens_for(Message.__table__, "after_create")
def _install_after_create(_table, connection, **_kw) -> None:
    """`db.create_all()` (tests, fresh databases) gets the search DDL with the table."""
    install(connection)


@event.listens_for(Message.__table__, "before_drop")
def _uninstall_before_drop(_table, connection, **_kw) -> None:
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {FTS_TABLE}")


def include_name(name, type_, _parent_names) -> bool:
    """Alembic's filter: the search objects are not models (created by `install`), so schema
    comparisons (autogenerate, the migrations test) leave them out."""
    if type_ == "table":
        return not (name or "").startswith(FTS_TABLE)
    if type_ == "index":
        return name != PG_INDEX
    return True


def drop_ddl(dialect_name: str) -> tuple[str, ...]:
    """The statements that remove what `install` created (the migration's downgrade)."""
    if dialect_name == "sqlite":
        return tuple(f"DROP TRIGGER IF EXISTS {FTS_TABLE}_{suffix}" for suffix in ("ai", "ad", "au")) + (
            f"DROP TABLE IF EXISTS {FTS_TABLE}",)
    if dialect_name == "postgresql":
        return (f"DROP INDEX IF EXISTS {PG_INDEX}",)
    return ()
