"""Full-text search over message bodies: one interface, two engines.

- SQLite: an FTS5 external-content table `message_fts` over `message.body` (the text is stored
  once, in `message`), kept in sync by three triggers; the `unicode61 remove_diacritics 2`
  tokenizer folds accents, so "reservation" finds "réservation".
- PostgreSQL: a GIN expression index on `to_tsvector('simple', <body with accents folded>)`;
  folding uses translate() (immutable, no extension needed) with the same table as `fold()`.

Words match by prefix ("reserv" finds "réservation"); all words of the query must match. On
SQLite a search looks at the MAX_MATCHES most recent matching messages: a word found in 150,000
messages would otherwise cost seconds, and the inbox shows the most recent conversations first
anyway; rarer queries (most of them) are exact. PostgreSQL gets the same bound another way (its GIN
index returns matches in no order): when the newest RECENT_MESSAGES messages hold RECENT_MATCHES_ENOUGH
matches or more, the search keeps the conversations of those (one GIN lookup intersected with the primary
key's range, then a list of ids); otherwise it reads every match, which are then few.
Contacts (name, company, email, phone) are searched by substring, like LIKE '%q%': on SQLite through a
second FTS5 table, `contact_fts`, with the trigram tokenizer (a 3-character window index that answers
substring queries of 3 characters or more, case-folded); shorter queries use LIKE, and so does PostgreSQL.
On 50,000 contacts the LIKE scan cost ~105 ms of every inbox search, the trigram lookup < 1 ms.
Tickets (subject, description) are searched by substring too, accents folded: on SQLite a third trigram
table, `ticket_fts`, holds the folded text (written by triggers; SQLite's trigram tokenizer cannot fold
accents before 3.45); on PostgreSQL a side table, `ticket_search`, holds the same folded text (written by
a trigger: folded once per write, not once per row and search), with a pg_trgm GIN index that answers
LIKE when the extension can be created (otherwise the LIKE scans the stored text, still correct). An
index on the folding expression itself cost 4.3 s for a word in 11,500 of 30,000 tickets: the
planner rechecks every candidate row, recomputing translate() over the accent table each time.
Contacts on PostgreSQL get a pg_trgm GIN index on the same four columns (when the extension can be
created), which answers their ILIKE.
A ticket query of one or two characters is what a person types for a ticket number ("12", "#7": the
caller matches the number) or the start of a word: it matches the tickets whose subject has a word
starting with it, through a word index (SQLite: an FTS5 table `ticket_words` over `ticket.subject` with
1- and 2-character prefix indexes; PostgreSQL: a GIN index on the subject's `simple` tsvector, queried
with `xy:*`), never a scan of every ticket's text (LIKE '%xy%' cost ~170 ms of CPU on 30,000 tickets).

`install(connection)` creates the DDL (idempotent; `table="contact"` / `"ticket"` for the contacts' /
tickets' index). It runs after `create_all` (the events below, so test databases have it) and from the
migrations that add them (same statements, `ddl()`).
"""

from __future__ import annotations

import re

from sqlalchemy import (
    ARRAY, Integer, bindparam, column, event, false, func, literal_column, or_, select, table as table_, text,
)
from sqlalchemy.exc import DBAPIError

from .models.contact import Contact
from .models.message import Message
from .models.ticket import Ticket

FTS_TABLE = "message_fts"
CONTACT_FTS_TABLE = "contact_fts"
TICKET_FTS_TABLE = "ticket_fts"
TICKET_WORDS_TABLE = "ticket_words"
_CONTACT_COLUMNS = "name, company, email, phone"
TRIGRAM = 3  # shortest substring the trigram index can answer
PG_INDEX = "ix_message_body_fts"
PG_TICKET_TABLE = "ticket_search"  # ticket id, folded text (PostgreSQL)
PG_TICKET_INDEX = "ix_ticket_search_trgm"
PG_LEGACY_TICKET_INDEX = "ix_ticket_text_trgm"  # the folding expression's index, before migration 0013
PG_CONTACT_INDEX = "ix_contact_search_trgm"
PG_TICKET_WORDS_INDEX = "ix_ticket_subject_words"

# Same folding on both sides on PostgreSQL: the index expression and the query terms.
_ACCENTED = "àáâãäåçèéêëìíîïñòóôõöùúûüýÿœæÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝŸ"
_PLAIN = "aaaaaaceeeeiiiinooooouuuuyyoaAAAAAACEEEEIIIINOOOOOUUUUYY"
assert len(_ACCENTED) == len(_PLAIN)
_FOLD = str.maketrans(_ACCENTED, _PLAIN)
_PG_DOCUMENT = f"to_tsvector('simple'::regconfig, translate(message.body, '{_ACCENTED}', '{_PLAIN}'))"
_WORD = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 8
MAX_MATCHES = 5000  # most recent matching messages considered (bench/RESULTS.md: search)
RECENT_MESSAGES = 60_000  # PostgreSQL: the newest messages it searches first…
RECENT_MATCHES_ENOUGH = 1000  # …and keeps alone when they hold this many matches (see _pg_recent_bound)

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


def _sqlite_fold(expression: str, pairs) -> str:
    """SQL replacing each accented letter of `pairs` by its plain one in `expression` (SQLite has
    no translate(), and triggers cannot call Python)."""
    for accented, plain in pairs:
        expression = f"replace({expression}, '{accented}', '{plain}')"
    return expression


# The folded text comes from a chain of views, each folding some letters: one expression nesting
# 56 replace() calls overflows SQLite's parser stack (~30 levels). The trigram tokenizer folds the
# case (not the accents before SQLite 3.45, hence this).
_FOLD_PAIRS = list(zip(_ACCENTED, _PLAIN, strict=True))
_FOLD_STAGE = 19
_TICKET_FOLD_VIEWS = tuple(f"{TICKET_FTS_TABLE}_fold{i}" for i in range(-(-len(_FOLD_PAIRS) // _FOLD_STAGE)))
_TICKET_SOURCE = _TICKET_FOLD_VIEWS[-1]  # id, subject, description: folded


def _ticket_fold_view(index: int) -> str:
    pairs = _FOLD_PAIRS[index * _FOLD_STAGE:(index + 1) * _FOLD_STAGE]
    source = "(SELECT id, subject, coalesce(description, '') AS description FROM ticket)" if index == 0 \
        else _TICKET_FOLD_VIEWS[index - 1]
    return (f"CREATE VIEW IF NOT EXISTS {_TICKET_FOLD_VIEWS[index]} AS SELECT id, "
            f"{_sqlite_fold('subject', pairs)} AS subject, {_sqlite_fold('description', pairs)} AS description "
            f"FROM {source}")


# Not an external-content table: it holds the folded text, not the ticket's own columns.
_TICKET_INSERT = (f"INSERT INTO {TICKET_FTS_TABLE}(rowid, subject, description) "
                  f"SELECT id, subject, description FROM {_TICKET_SOURCE}")
_SQLITE_TICKET_DDL = (
    *(_ticket_fold_view(i) for i in range(len(_TICKET_FOLD_VIEWS))),
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {TICKET_FTS_TABLE} USING fts5(subject, description, tokenize='trigram')",
    f"CREATE TRIGGER IF NOT EXISTS {TICKET_FTS_TABLE}_ai AFTER INSERT ON ticket BEGIN "
    f"{_TICKET_INSERT} WHERE id = new.id; END",
    f"CREATE TRIGGER IF NOT EXISTS {TICKET_FTS_TABLE}_ad AFTER DELETE ON ticket BEGIN "
    f"DELETE FROM {TICKET_FTS_TABLE} WHERE rowid = old.id; END",
    f"CREATE TRIGGER IF NOT EXISTS {TICKET_FTS_TABLE}_au AFTER UPDATE OF subject, description ON ticket BEGIN "
    f"DELETE FROM {TICKET_FTS_TABLE} WHERE rowid = old.id; {_TICKET_INSERT} WHERE id = new.id; END",
)
_SQLITE_TICKET_FILL = (f"DELETE FROM {TICKET_FTS_TABLE}", _TICKET_INSERT)


def pg_fold_sql(subject: str, description: str) -> str:
    """PostgreSQL expression: a ticket's subject and description, accents folded like fold()."""
    return (f"lower(translate({subject} || ' ' || coalesce({description}, ''), "
            f"'{_ACCENTED}', '{_PLAIN}'))")


_PG_TICKET_SEARCH = table_(PG_TICKET_TABLE, column("ticket_id", Integer), column("document"))
_PG_TICKET_FILL = (f"INSERT INTO {PG_TICKET_TABLE} (ticket_id, document) "
                   f"SELECT id, {pg_fold_sql('subject', 'description')} FROM ticket "
                   "ON CONFLICT (ticket_id) DO UPDATE SET document = excluded.document")
# The table and its trigger need no extension; the index needs pg_trgm (_PG_TICKET_INDEX_DDL).
_PG_TICKET_DDL = (
    f"CREATE TABLE IF NOT EXISTS {PG_TICKET_TABLE} (ticket_id integer PRIMARY KEY "
    "REFERENCES ticket (id) ON DELETE CASCADE, document text NOT NULL)",
    f"CREATE OR REPLACE FUNCTION {PG_TICKET_TABLE}_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    f"INSERT INTO {PG_TICKET_TABLE} (ticket_id, document) "
    f"VALUES (NEW.id, {pg_fold_sql('NEW.subject', 'NEW.description')}) "
    "ON CONFLICT (ticket_id) DO UPDATE SET document = excluded.document; RETURN NULL; END $$",
    # No CREATE TRIGGER IF NOT EXISTS in PostgreSQL (OR REPLACE only since 14).
    f"DROP TRIGGER IF EXISTS {PG_TICKET_TABLE}_write ON ticket",
    f"CREATE TRIGGER {PG_TICKET_TABLE}_write AFTER INSERT OR UPDATE OF subject, description ON ticket "
    f"FOR EACH ROW EXECUTE FUNCTION {PG_TICKET_TABLE}_write()",
)
_PG_TICKET_INDEX_DDL = (f"CREATE INDEX IF NOT EXISTS {PG_TICKET_INDEX} ON {PG_TICKET_TABLE} "
                        "USING gin (document gin_trgm_ops)",)
# One GIN index over the four columns: each ILIKE of contacts_matching is a bitmap scan of it, OR-ed.
_PG_CONTACT_DDL = (f"CREATE INDEX IF NOT EXISTS {PG_CONTACT_INDEX} ON contact USING gin ("
                   + ", ".join(f"{c.strip()} gin_trgm_ops" for c in _CONTACT_COLUMNS.split(",")) + ")",)
# Words of the subject for 1-2 character queries: prefix indexes make "xy"* an index lookup on SQLite;
# unicode61 folds case and accents like fold(). External content: the text stays in `ticket`.
_SQLITE_TICKET_WORDS_DDL = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {TICKET_WORDS_TABLE} USING fts5(subject, content='ticket', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 2', prefix='1 2')",
    f"CREATE TRIGGER IF NOT EXISTS {TICKET_WORDS_TABLE}_ai AFTER INSERT ON ticket BEGIN "
    f"INSERT INTO {TICKET_WORDS_TABLE}(rowid, subject) VALUES (new.id, new.subject); END",
    f"CREATE TRIGGER IF NOT EXISTS {TICKET_WORDS_TABLE}_ad AFTER DELETE ON ticket BEGIN "
    f"INSERT INTO {TICKET_WORDS_TABLE}({TICKET_WORDS_TABLE}, rowid, subject) VALUES ('delete', old.id, old.subject); "
    "END",
    f"CREATE TRIGGER IF NOT EXISTS {TICKET_WORDS_TABLE}_au AFTER UPDATE OF subject ON ticket BEGIN "
    f"INSERT INTO {TICKET_WORDS_TABLE}({TICKET_WORDS_TABLE}, rowid, subject) VALUES ('delete', old.id, old.subject); "
    f"INSERT INTO {TICKET_WORDS_TABLE}(rowid, subject) VALUES (new.id, new.subject); END",
)
_PG_TICKET_WORDS_DOCUMENT = (f"to_tsvector('simple'::regconfig, translate(ticket.subject, '{_ACCENTED}', "
                             f"'{_PLAIN}'))")
_PG_TICKET_WORDS_DDL = (f"CREATE INDEX IF NOT EXISTS {PG_TICKET_WORDS_INDEX} ON ticket "
                        f"USING gin ({_PG_TICKET_WORDS_DOCUMENT})",)
_FTS_TABLES = {"message": FTS_TABLE, "contact": CONTACT_FTS_TABLE, "ticket": TICKET_FTS_TABLE,
               "ticket_words": TICKET_WORDS_TABLE}


def ddl(dialect_name: str, table: str = "message") -> tuple[str, ...]:
    """The statements `install` runs, for the migrations that add search to existing databases."""
    if table == "contact":
        return {"sqlite": _SQLITE_CONTACT_DDL, "postgresql": _PG_CONTACT_DDL}.get(dialect_name, ())
    if table == "ticket":
        return {"sqlite": _SQLITE_TICKET_DDL, "postgresql": _PG_TICKET_DDL + _PG_TICKET_INDEX_DDL}.get(
            dialect_name, ())
    if table == "ticket_words":
        return {"sqlite": _SQLITE_TICKET_WORDS_DDL, "postgresql": _PG_TICKET_WORDS_DDL}.get(dialect_name, ())
    return {"sqlite": _SQLITE_DDL, "postgresql": _POSTGRES_DDL}.get(dialect_name, ())


def install(connection, table: str = "message") -> None:
    """Create the search table/triggers or index if missing; a new table is filled from its content
    table (`message`, or `contact` / `ticket` with table="contact" / "ticket" / "ticket_words")."""
    dialect = connection.dialect.name
    statements = ddl(dialect, table)
    if dialect == "postgresql" and table in ("ticket", "contact") and not _has_trigram_extension(connection):
        # No pg_trgm: LIKE without an index, slower on big workspaces, same results.
        statements = _PG_TICKET_DDL if table == "ticket" else ()
    fresh = _is_missing(connection, table)
    for statement in statements:
        connection.exec_driver_sql(statement)
    if fresh:
        rebuild(connection, table)


def _is_missing(connection, table: str) -> bool:
    """The table `install` fills does not exist yet (a search table; PostgreSQL: ticket_search)."""
    if connection.dialect.name == "sqlite":
        return connection.execute(text("SELECT 1 FROM sqlite_master WHERE name = :n"),
                                  {"n": _FTS_TABLES[table]}).first() is None
    if connection.dialect.name == "postgresql" and table == "ticket":
        return connection.execute(text("SELECT to_regclass(:n)"), {"n": PG_TICKET_TABLE}).scalar() is None
    return False


def rebuild(connection, table: str = "message") -> None:
    """Re-index every message (or contact, or ticket) (after bulk loads without triggers; PostgreSQL
    refills only its ticket_search table, its other indexes follow by themselves)."""
    if connection.dialect.name == "postgresql" and table == "ticket":
        # The index is built after the rows: filled through it row by row, they waited in the GIN index's
        # pending list, read whole by every search (526 pages for a word found nowhere, instead of 14;
        # the planner then preferred a scan of the table) until a vacuum.
        connection.exec_driver_sql(f"DROP INDEX IF EXISTS {PG_TICKET_INDEX}")
        connection.exec_driver_sql(_PG_TICKET_FILL)
        if _has_trigram_extension(connection):
            for statement in _PG_TICKET_INDEX_DDL:
                connection.exec_driver_sql(statement)
        return
    if connection.dialect.name != "sqlite":
        return
    if table == "ticket":  # holds its own (folded) text: refilled, not rebuilt from a content table
        for statement in _SQLITE_TICKET_FILL:
            connection.exec_driver_sql(statement)
        return
    name = _FTS_TABLES[table]
    connection.exec_driver_sql(f"INSERT INTO {name}({name}) VALUES ('rebuild')")


def _has_trigram_extension(connection) -> bool:
    """pg_trgm is there or could be created (trusted since PostgreSQL 13: a database owner may);
    a refusal leaves the transaction usable (savepoint)."""
    if connection.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).first():
        return True
    if not connection.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).first():
        return False
    try:
        with connection.begin_nested():
            connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DBAPIError:
        return False
    return True


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
    """Ids of the workspace's conversations with a message matching `q`, as a subquery. A common
    word is bounded: on SQLite to its MAX_MATCHES most recent matches, on PostgreSQL to the newest
    RECENT_MESSAGES messages when they hold enough matches (_pg_recent_bound)."""
    everything = select(Message.conversation_id).where(
        Message.workspace_id == workspace_id, message_match(q, dialect_name=dialect_name))
    recent = _pg_recent_bound(workspace_id, q) if dialect_name == "postgresql" else None
    return everything if recent is None else recent


def _pg_recent_bound(workspace_id: int, q: str):
    """The conversations of the matches among the newest RECENT_MESSAGES messages, as a list of ids,
    when there are RECENT_MATCHES_ENOUGH of them or more (a common word); None otherwise.

    A common word is in ~160,000 of the bench's 1,000,000 messages: reading them all cost ~190 ms
    warm, and seconds cold. ORDER BY id DESC LIMIT does not bound it either: the planner walks the
    primary key backwards testing every row, which for a rare word means the whole table (40 s).
    Here the GIN lookup is intersected with the primary key's range (a BitmapAnd): ~45 ms, and a rare
    word costs a few index pages more than before. Like SQLite's bound (the MAX_MATCHES newest matches:
    about a month of the bench's history for its most common words), older matches of a common word are
    left out; the bench's 60,000 newest messages are two months. A narrower query reaches them."""
    from .extensions import db

    newest = db.session.scalar(select(func.max(Message.id)))
    if newest is None or newest <= RECENT_MESSAGES:
        return None
    rows = db.session.execute(
        select(Message.conversation_id, func.count()).where(
            Message.workspace_id == workspace_id, Message.id > newest - RECENT_MESSAGES,
            message_match(q, dialect_name="postgresql"))
        .group_by(Message.conversation_id)).all()
    if sum(n for _conversation_id, n in rows) < RECENT_MATCHES_ENOUGH:
        return None
    ids = [conversation_id for conversation_id, _n in rows]
    return select(func.unnest(bindparam("recent_conversations", ids, type_=ARRAY(Integer))))


def contacts_matching(workspace_id: int, q: str, *, dialect_name: str):
    """Ids of the workspace's contacts whose name, company, email or phone contains `q` (any case),
    as a subquery."""
    if dialect_name == "sqlite" and len(q) >= TRIGRAM:
        ids = _trigram_rowids(CONTACT_FTS_TABLE, q, param="contact_query")
        return select(Contact.id).where(Contact.workspace_id == workspace_id, Contact.id.in_(ids))
    like = _like_pattern(q)
    return select(Contact.id).where(
        Contact.workspace_id == workspace_id,
        or_(Contact.name.ilike(like, escape="\\"), Contact.company.ilike(like, escape="\\"),
            Contact.email.ilike(like, escape="\\"), Contact.phone.ilike(like, escape="\\")))


def ticket_ids_matching(q: str, *, dialect_name: str):
    """Ids of the tickets, of every workspace, whose subject or description contains `q` (any case,
    accents folded), as a subquery: the caller's query keeps its workspace's (on SQLite, checking the
    workspace here cost a row lookup per match, ~20 ms for a word in 11,000 tickets). A query shorter
    than the trigram window matches words of the subject by their start instead (is_short_query)."""
    if is_short_query(q):
        return _ticket_ids_by_word_start(q.strip(), dialect_name=dialect_name)
    if dialect_name == "sqlite":
        rowids = _trigram_rowids(TICKET_FTS_TABLE, fold(q), param="ticket_query").subquery()
        return select(rowids.c.rowid)  # a Select: the caller may UNION it
    if dialect_name == "postgresql":  # the stored folded text, through its trigram index
        return select(_PG_TICKET_SEARCH.c.ticket_id).where(
            _PG_TICKET_SEARCH.c.document.like(_like_pattern(fold(q)), escape="\\"))
    like = _like_pattern(q)  # any other engine: a scan
    return select(Ticket.id).where(
        or_(Ticket.subject.ilike(like, escape="\\"), Ticket.description.ilike(like, escape="\\")))


def is_short_query(q: str) -> bool:
    """One or two characters: a ticket number or the start of a word, not a substring to look for
    everywhere (no index answers that: the trigram window is 3)."""
    return len(q.strip()) < TRIGRAM


def _ticket_ids_by_word_start(q: str, *, dialect_name: str):
    """Tickets whose subject has a word starting with `q` (1-2 characters). A number matches
    nothing here: it means the ticket's number, which the caller matches."""
    words = terms(q)
    if not words or q.lstrip("#").isdigit():
        return select(Ticket.id).where(false())
    if dialect_name == "sqlite":
        query = " ".join(f'"{w}"*' for w in words)  # quoted: words are never FTS5 operators
        rowids = text(f"SELECT rowid FROM {TICKET_WORDS_TABLE} WHERE {TICKET_WORDS_TABLE} MATCH :words_query"
                      ).bindparams(words_query=query).columns(column("rowid", Integer)).subquery()
        return select(rowids.c.rowid)
    if dialect_name == "postgresql":
        query = " & ".join(f"{w}:*" for w in words)
        # OFFSET 0 keeps the subquery whole: pulled up into the list's query, PostgreSQL walked the
        # tickets newest first computing each subject's tsvector (300 ms on 30,000 tickets for "xy",
        # which matches nothing) instead of asking the GIN index once (< 1 ms; 40 ms for "de", in
        # 19,000 subjects).
        return select(Ticket.id).where(literal_column(_PG_TICKET_WORDS_DOCUMENT).op("@@")(
            func.to_tsquery(literal_column("'simple'::regconfig"), query))).offset(0)
    return select(Ticket.id).where(Ticket.subject.ilike(_like_pattern(q), escape="\\"))  # any other engine: a scan


def _trigram_rowids(table: str, q: str, *, param: str):
    """Rowids of a trigram FTS5 table whose text contains `q` (3 characters or more)."""
    phrase = '"' + q.replace('"', '""') + '"'  # one quoted string: a substring, never operators
    return text(f"SELECT rowid FROM {table} WHERE {table} MATCH :{param}").bindparams(
        **{param: phrase}).columns(column("rowid", Integer))


def _like_pattern(q: str) -> str:
    """'%q%' with LIKE's wildcards escaped (escape character: backslash)."""
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


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


@event.listens_for(Ticket.__table__, "after_create")
def _install_tickets_after_create(_table, connection, **_kw) -> None:
    install(connection, "ticket")
    install(connection, "ticket_words")


@event.listens_for(Contact.__table__, "before_drop")
def _uninstall_contacts_before_drop(_table, connection, **_kw) -> None:
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {CONTACT_FTS_TABLE}")


@event.listens_for(Ticket.__table__, "before_drop")
def _uninstall_tickets_before_drop(_table, connection, **_kw) -> None:
    # SQLite: the tables and the views over `ticket`; PostgreSQL: ticket_search, which references it.
    if connection.dialect.name in ("sqlite", "postgresql"):
        dialect = connection.dialect.name
        for statement in (*drop_ddl(dialect, "ticket"), *drop_ddl(dialect, "ticket_words")):
            connection.exec_driver_sql(statement)


def include_name(name, type_, _parent_names) -> bool:
    """Alembic's filter: the search objects are not models (created by `install`), so schema
    comparisons (autogenerate, the migrations test) leave them out."""
    if type_ == "table":
        return not (name or "").startswith((*_FTS_TABLES.values(), PG_TICKET_TABLE))
    if type_ == "index":
        return name not in (PG_INDEX, PG_TICKET_INDEX, PG_LEGACY_TICKET_INDEX, PG_TICKET_WORDS_INDEX,
                            PG_CONTACT_INDEX)
    return True


def drop_ddl(dialect_name: str, table: str = "message") -> tuple[str, ...]:
    """The statements that remove what `install` created (the migrations' downgrades)."""
    if dialect_name == "sqlite":
        name = _FTS_TABLES[table]
        views = _TICKET_FOLD_VIEWS[::-1] if table == "ticket" else ()
        return tuple(f"DROP TRIGGER IF EXISTS {name}_{suffix}" for suffix in ("ai", "ad", "au")) + (
            f"DROP TABLE IF EXISTS {name}",) + tuple(f"DROP VIEW IF EXISTS {view}" for view in views)
    if dialect_name == "postgresql":  # the extension stays: other objects may use it
        return {"message": (f"DROP INDEX IF EXISTS {PG_INDEX}",),
                "contact": (f"DROP INDEX IF EXISTS {PG_CONTACT_INDEX}",),
                "ticket": (f"DROP TRIGGER IF EXISTS {PG_TICKET_TABLE}_write ON ticket",
                           f"DROP FUNCTION IF EXISTS {PG_TICKET_TABLE}_write()",
                           f"DROP TABLE IF EXISTS {PG_TICKET_TABLE}",  # and its index
                           f"DROP INDEX IF EXISTS {PG_LEGACY_TICKET_INDEX}"),
                "ticket_words": (f"DROP INDEX IF EXISTS {PG_TICKET_WORDS_INDEX}",)}.get(table, ())
    return ()
