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
Contacts (name, company, email, phone) are searched by substring, like LIKE '%q%': on SQLite through a
second FTS5 table, `contact_fts`, with the trigram tokenizer (a 3-character window index that answers
substring queries of 3 characters or more, case-folded); shorter queries, and PostgreSQL, use LIKE.
On 50,000 contacts the LIKE scan cost ~105 ms of every inbox search, the trigram lookup < 1 ms.

`install(connection)` creates the DDL (idempotent; `table="contact"` for the contacts' index). It runs after `create_all` (the event below,
so test databases have it) and from the migration that adds it (same statements, `ddl()`).
"""

from __future__ import annotations

import re

from sqlalchemy import Integer, column, event, false, func, literal_column, or_, select, text

from .models.contact import Contact
from .models.message import Message

FTS_TABLE = "message_fts"
CONTACT_FTS_TABLE = "contact_fts"
_CONTACT_COLUMNS = "name, company, email, phone"
TRIGRAM = 3  # shortest substring the trigram index can answer
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
_NEW_CONTACT = ", ".join(f"new.{c.strip()}" for c in _CONTACT_COLUMNS.split(","))
_OLD_CONTACT = ", ".join(f"old.{c.strip()}" for c in _CONTACT_COLUMNS.split(","))
_SQLITE_CONTACT_DDL = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {CONTACT_FTS_TABLE} USING fts5("
    f"{_CONTACT_COLUMNS}, content='contact', content_rowid='id', tokenize='trigram')",
    f"CREATE TRIGGER IF NOT EXISTS {CONTACT_FTS_TABLE}_ai AFTER INSERT ON contact BEGIN "
    f"INSERT INTO {CONTACT_FTS_TABLE}(rowid, {_CONTACT_COLUMNS}) VALUES (new.id, {_NEW_CONTACT}); END",
    f"CREATE TRIGGER IF NOT EXISTS {CONTACT_FTS_TABLE}_ad AFTER DELETE ON contact BEGIN "
    f"INSERT INTO {CONTACT_FTS_TABLE}({CONTACT_FTS_TABLE}, rowid, {_CONTACT_COLUMNS}) "
    f"VALUES ('delete', old.id, {_OLD_CONTACT}); END",
    f"CREATE TRIGGER IF NOT EXISTS {CONTACT_FTS_TABLE}_au AFTER UPDATE OF {_CONTACT_COLUMNS} ON contact BEGIN "
    f"INSERT INTO {CONTACT_FTS_TABLE}({CONTACT_FTS_TABLE}, rowid, {_CONTACT_COLUMNS}) "
    f"VALUES ('delete', old.id, {_OLD_CONTACT}); "
    f"INSERT INTO {CONTACT_FTS_TABLE}(rowid, {_CONTACT_COLUMNS}) VALUES (new.id, {_NEW_CONTACT}); END",
)
_FTS_TABLES = {"message": FTS_TABLE, "contact": CONTACT_FTS_TABLE}


def ddl(dialect_name: str, table: str = "message") -> tuple[str, ...]:
    """The statements `install` runs, for the migrations that add search to existing databases."""
    if table == "contact":
        return _SQLITE_CONTACT_DDL if dialect_name == "sqlite" else ()
    return {"sqlite": _SQLITE_DDL, "postgresql": _POSTGRES_DDL}.get(dialect_name, ())


def install(connection, table: str = "message") -> None:
    """Create the search table/triggers or index if missing; a new FTS5 table is filled from its
    content table (`message`, or `contact` with table="contact")."""
    dialect = connection.dialect.name
    fresh = dialect == "sqlite" and connection.execute(
        text("SELECT 1 FROM sqlite_master WHERE name = :n"), {"n": _FTS_TABLES[table]}).first() is None
    for statement in ddl(dialect, table):
        connection.exec_driver_sql(statement)
    if fresh:
        rebuild(connection, table)


def rebuild(connection, table: str = "message") -> None:
    """Re-index every message (or contact) (SQLite after bulk loads without triggers; PostgreSQL
    needs nothing)."""
    if connection.dialect.name == "sqlite":
        name = _FTS_TABLES[table]
        connection.exec_driver_sql(f"INSERT INTO {name}({name}) VALUES ('rebuild')")


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


def contacts_matching(workspace_id: int, q: str, *, dialect_name: str):
    """Ids of the workspace's contacts whose name, company, email or phone contains `q` (any case),
    as a subquery."""
    if dialect_name == "sqlite" and len(q) >= TRIGRAM:
        phrase = '"' + q.replace('"', '""') + '"'  # one quoted string: a substring, never operators
        ids = text(f"SELECT rowid FROM {CONTACT_FTS_TABLE} WHERE {CONTACT_FTS_TABLE} MATCH :contact_query"
                   ).bindparams(contact_query=phrase).columns(column("rowid", Integer))
        return select(Contact.id).where(Contact.workspace_id == workspace_id, Contact.id.in_(ids))
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    like = f"%{escaped}%"
    return select(Contact.id).where(
        Contact.workspace_id == workspace_id,
        or_(Contact.name.ilike(like, escape="\\"), Contact.company.ilike(like, escape="\\"),
            Contact.email.ilike(like, escape="\\"), Contact.phone.ilike(like, escape="\\")))


@event.listens_for(Message.__table__, "after_create")
def _install_after_create(_table, connection, **_kw) -> None:
    """`db.create_all()` (tests, fresh databases) gets the search DDL with the table."""
    install(connection)


@event.listens_for(Contact.__table__, "after_create")
def _install_contacts_after_create(_table, connection, **_kw) -> None:
    install(connection, "contact")


@event.listens_for(Message.__table__, "before_drop")
def _uninstall_before_drop(_table, connection, **_kw) -> None:
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {FTS_TABLE}")


@event.listens_for(Contact.__table__, "before_drop")
def _uninstall_contacts_before_drop(_table, connection, **_kw) -> None:
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {CONTACT_FTS_TABLE}")


def include_name(name, type_, _parent_names) -> bool:
    """Alembic's filter: the search objects are not models (created by `install`), so schema
    comparisons (autogenerate, the migrations test) leave them out."""
    if type_ == "table":
        return not (name or "").startswith((FTS_TABLE, CONTACT_FTS_TABLE))
    if type_ == "index":
        return name != PG_INDEX
    return True


def drop_ddl(dialect_name: str, table: str = "message") -> tuple[str, ...]:
    """The statements that remove what `install` created (the migrations' downgrades)."""
    if table == "contact":
        if dialect_name != "sqlite":
            return ()
        return tuple(f"DROP TRIGGER IF EXISTS {CONTACT_FTS_TABLE}_{suffix}" for suffix in ("ai", "ad", "au")) + (
            f"DROP TABLE IF EXISTS {CONTACT_FTS_TABLE}",)
    if dialect_name == "sqlite":
        return tuple(f"DROP TRIGGER IF EXISTS {FTS_TABLE}_{suffix}" for suffix in ("ai", "ad", "au")) + (
            f"DROP TABLE IF EXISTS {FTS_TABLE}",)
    if dialect_name == "postgresql":
        return (f"DROP INDEX IF EXISTS {PG_INDEX}",)
    return ()
