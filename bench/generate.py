"""Generate a large workspace for the benchmarks, fast: bulk inserts, not the request path.

At --scale 1: 100,000 conversations, 1,000,000 messages (one conversation holds 500), 50,000
contacts, 30,000 tickets with their follow-ups, 50 agents, over the last 3 years.

    .venv/bin/python bench/generate.py --scale 0.01              # SQLite file in bench/data/
    DATABASE_URL=postgresql://… .venv/bin/python bench/generate.py  # PostgreSQL (COPY)

The schema comes from the migrations (`flask db upgrade`, as `make run` does) or, with
--schema create_all, from the models; then inbox.search.install() adds the full-text index.
The workspace, the admin, the first agent and the channels go through the real actions; the
volume rows go in with SQLAlchemy Core executemany (SQLite) or COPY (PostgreSQL).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum

from common import (  # noqa: I001  (bench/ is run as scripts)
    ADMIN_EMAIL, AGENT_EMAIL, BIG_THREAD_CONTACT, PASSWORD, WORKSPACE_SLUG, database_url, emit, engine_name,
    make_app,
)

SIZES = {"conversations": 100_000, "messages": 1_000_000, "contacts": 50_000, "tickets": 30_000, "agents": 50}
BIG_THREAD = 500
BATCH = 20_000
YEARS = 3

FIRST = ["Camille", "Léa", "Hugo", "Chloé", "Lucas", "Manon", "Louis", "Inès", "Jules", "Zoé", "Gabriel",
         "Emma", "Raphaël", "Jade", "Arthur", "Louise", "Noé", "Alice", "Théo", "Anaïs"]
LAST = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
        "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "Roux", "Fournier", "Girard", "Bonnet", "Lambert"]
COMPANIES = ["Boulangerie du Port", "Garage Central", "Cabinet Vétérinaire", "Salon Élégance", "Hôtel des Alpes",
             "Pharmacie Saint-Michel", None, None, None]
WORDS = ("bonjour merci réservation rendez-vous livraison facture colis retard annulation paiement "
         "remboursement commande adresse téléphone horaires disponibilité confirmation problème question "
         "demain lundi mardi semaine mois urgent possible avant après client compte mot de passe accès "
         "erreur application site réponse délai prix devis contrat abonnement résiliation échange produit "
         "taille couleur stock magasin ouverture fermeture agence conseiller équipe service qualité").split()
SUBJECTS = ["Problème de livraison", "Question sur la facture", "Demande de remboursement", "Accès au compte",
            "Changement de rendez-vous", "Erreur de paiement", "Réclamation produit", "Devis à envoyer"]
CHANNELS = [("sms", "twilio", "+33757000101"), ("whatsapp", "twilio", "whatsapp:+33757000102"),
            ("email", "smtp", "support@bench.test"), ("telegram", "telegram", "@bench_bot"),
            ("voice", "vapi", "+33757000103")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full sizes (e.g. 0.01)")
    parser.add_argument("--schema", choices=("auto", "migrate", "create_all"), default="auto",
                        help="auto: the migrations, or create_all when they lag behind the models")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    sizes = {k: max(2 if k == "agents" else 1, int(v * args.scale)) for k, v in SIZES.items()}
    sizes["messages"] = max(sizes["messages"], BIG_THREAD + sizes["conversations"])
    url = database_url()
    print(f"generate: {engine_name(url)} scale={args.scale} " + " ".join(f"{k}={v:,}" for k, v in sizes.items()))
    started = time.perf_counter()
    app = make_app(url)
    with app.app_context():
        schema_s = _fresh_schema(app, args.schema)
        ids = _setup_through_actions(sizes["agents"])
        loader = Loader(app)
        counts = Generator(sizes, ids, random.Random(args.seed)).run(loader)
        index_s = loader.finish()
    elapsed = time.perf_counter() - started
    rows = sum(counts.values())
    print(f"schema ({args.schema}) {schema_s:.1f}s, full-text index {index_s:.1f}s")
    for table, n in counts.items():
        print(f"  {table:<20} {n:>10,} rows")
    print(f"total {rows:,} rows in {elapsed:.1f}s = {rows / elapsed:,.0f} rows/s "
          f"(bulk {loader.insert_s:.1f}s = {rows / max(loader.insert_s, 1e-9):,.0f} rows/s)")
    emit("generate", {"engine": engine_name(url), "scale": args.scale, "sizes": sizes, "rows": counts,
                      "elapsed_s": round(elapsed, 2), "rows_per_s": round(rows / elapsed)}, json_path=args.json)
    return 0


def _fresh_schema(app, how: str) -> float:
    """An empty database built like production (migrations) or like the tests (create_all)."""
    from flask_migrate import upgrade

    from inbox import search
    from inbox.extensions import db

    started = time.perf_counter()
    _drop_everything(db)
    if how in ("auto", "migrate"):
        upgrade()
        with db.engine.begin() as conn:  # until the migration adding it exists (idempotent after)
            search.install(conn)
            search.install(conn, "contact")
        missing = _missing_columns(db)
        if how == "auto" and missing:
            print(f"note: the migrations lag behind the models (missing {', '.join(missing[:5])}"
                  f"{'…' if len(missing) > 5 else ''}): schema built with create_all instead")
            _drop_everything(db)
            how = "create_all"
    if how == "create_all":
        db.create_all()  # fires inbox.search's after_create hook
    return time.perf_counter() - started


def _missing_columns(db) -> list[str]:
    import sqlalchemy as sa

    inspector = sa.inspect(db.engine)
    tables = set(inspector.get_table_names())
    missing = []
    for table in db.metadata.sorted_tables:
        if table.name not in tables:
            missing.append(table.name)
            continue
        present = {c["name"] for c in inspector.get_columns(table.name)}
        missing += [f"{table.name}.{c.name}" for c in table.columns if c.name not in present]
    return missing


def _drop_everything(db) -> None:
    import os

    import sqlalchemy as sa

    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    else:
        db.engine.dispose()
        path = db.engine.url.database
        for suffix in ("", "-wal", "-shm"):
            try:
                os.remove(path + suffix)
            except FileNotFoundError:
                pass


def _setup_through_actions(n_agents: int) -> dict:
    from inbox.actions.workspace import do_create_channel, do_create_user, do_create_workspace
    from inbox.kinds import ChannelKind, Provider
    from inbox.models import Role
    from inbox.sandbox.twilio import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN

    workspace = do_create_workspace("Bench", slug=WORKSPACE_SLUG)
    admin = do_create_user(workspace, email=ADMIN_EMAIL, name="Admin Bench", password=PASSWORD, role=Role.ADMIN,
                           hourly_cost=Decimal("55.00"))
    agent = do_create_user(workspace, email=AGENT_EMAIL, name="Agent 1", password=PASSWORD,
                           hourly_cost=Decimal("40.00"))
    channels = {}
    for kind, provider, address in CHANNELS:
        credentials = ({"account_sid": DEMO_ACCOUNT_SID, "auth_token": DEMO_AUTH_TOKEN}
                       if provider == "twilio" else {"webhook_secret": "bench", "bot_token": "bench"})
        channels[kind] = do_create_channel(workspace, kind=ChannelKind(kind), provider=Provider(provider),
                                           name=kind.upper(), address=address, credentials=credentials).id
    return {"workspace": workspace.id, "admin": admin.id, "agent": agent.id, "password_hash": agent.password_hash,
            "channels": channels, "n_agents": n_agents}


class Loader:
    """Bulk writes in one transaction: Core executemany on SQLite, COPY on PostgreSQL."""

    def __init__(self, app):
        from inbox.extensions import db

        self.db = db
        self.conn = db.engine.connect()
        self.tx = self.conn.begin()
        self.postgres = db.engine.dialect.name == "postgresql"
        self.insert_s = 0.0
        # Index the text once at the end: faster than a trigger (SQLite) or index update (PostgreSQL) per row.
        if self.postgres:
            from inbox.search import PG_INDEX
            self.conn.exec_driver_sql(f"DROP INDEX IF EXISTS {PG_INDEX}")
            try:  # rows are generated consistent; skip the per-row foreign-key triggers (superuser only)
                with self.conn.begin_nested():
                    self.conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            except Exception:  # noqa: BLE001  (not a superuser: keep the checks, slower)
                print("note: not a superuser, foreign keys checked row by row")
        else:
            for suffix in ("ai", "ad", "au"):
                self.conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS message_fts_{suffix}")

    def next_id(self, table) -> int:
        import sqlalchemy as sa
        return (self.conn.execute(sa.select(sa.func.max(table.c.id))).scalar() or 0) + 1

    def write(self, table, rows: list[dict]) -> None:
        if not rows:
            return
        started = time.perf_counter()
        rows = [_complete(table, row) for row in rows]
        if self.postgres:
            columns = list(rows[0])
            cursor = self.conn.connection.driver_connection.cursor()
            with cursor.copy(f'COPY "{table.name}" ({", ".join(columns)}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row([_plain(row[c]) for c in columns])
        else:  # Core's per-value type processing costs more than SQLite itself: values go in as stored
            columns = list(rows[0])
            sql = f'INSERT INTO "{table.name}" ({", ".join(columns)}) VALUES ({", ".join("?" * len(columns))})'
            self.conn.exec_driver_sql(sql, [tuple(_sqlite_value(row[c]) for c in columns) for row in rows])
        self.insert_s += time.perf_counter() - started

    def finish(self) -> float:
        """Commit; then index the text (SQLite) and realign sequences (PostgreSQL)."""
        from inbox import search

        started = time.perf_counter()
        if self.postgres:
            search.install(self.conn)  # the GIN index, built once
            search.rebuild(self.conn, "ticket")  # ticket_search: its trigger did not fire (replica role)
            for table in ("contact", "contact_identity", "conversation", "message", "ticket", "ticket_event",
                          "rating", "user"):
                self.conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 1) FROM \"{table}\"))")
        else:
            search.rebuild(self.conn)
            search.install(self.conn)  # the triggers again
        self.tx.commit()
        self.conn.exec_driver_sql("ANALYZE")  # planner statistics, as a long-lived database has them
        self.conn.commit()
        self.conn.close()
        return time.perf_counter() - started


def _complete(table, row: dict) -> dict:
    """Every column present (same keys in a batch), Python-side defaults applied."""
    full = {}
    for key, default in _column_plan(table):
        if key in row:
            full[key] = row[key]
        elif default is not _SKIP:
            full[key] = default() if callable(default) else default
    return full


_SKIP = object()
_PLANS: dict = {}


def _column_plan(table) -> list:
    """(key, default) per column, computed once per table; _SKIP leaves it to the database."""
    if table.name not in _PLANS:
        plan = []
        for column in table.columns:
            default = None
            if column.default is not None and column.default.is_scalar:
                default = column.default.arg
            elif column.default is not None and column.default.is_callable:
                default = (lambda fn: lambda: fn(None))(column.default.arg)
            elif column.server_default is not None or column.primary_key:
                default = _SKIP
            plan.append((column.key, default))
        _PLANS[table.name] = plan
    return _PLANS[table.name]


def _sqlite_value(value):
    """As SQLAlchemy stores it on SQLite: UTC datetimes without offset, enums as values, JSON as text."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, Decimal):
        return str(value)
    return _plain(value)


def _plain(value):
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


class Generator:
    def __init__(self, sizes: dict, ids: dict, rng: random.Random):
        self.sizes, self.ids, self.rng = sizes, ids, rng
        self.now = datetime.now(UTC)
        self.start = self.now - timedelta(days=365 * YEARS)
        self.counts: dict[str, int] = {}

    def run(self, loader: Loader) -> dict:
        from inbox.models import (
            Contact, ContactIdentity, Conversation, Message, Rating, Ticket, TicketConversation, TicketEvent, User,
        )

        self.tables = {"user": User.__table__, "contact": Contact.__table__,
                       "contact_identity": ContactIdentity.__table__, "conversation": Conversation.__table__,
                       "message": Message.__table__, "ticket": Ticket.__table__,
                       "ticket_conversation": TicketConversation.__table__, "ticket_event": TicketEvent.__table__,
                       "rating": Rating.__table__}
        self.loader = loader
        self.agents = [self.ids["agent"]] + self._agents()
        first_contact = loader.next_id(self.tables["contact"])
        self._contacts(first_contact)
        self._conversations(first_contact)
        return self.counts

    def _put(self, name: str, rows: list[dict]) -> None:
        self.loader.write(self.tables[name], rows)
        self.counts[name] = self.counts.get(name, 0) + len(rows)

    def _agents(self) -> list[int]:
        first = self.loader.next_id(self.tables["user"])
        rows = [{"id": first + i, "workspace_id": self.ids["workspace"], "email": f"agent{i + 2}@bench.test",
                 "name": f"Agent {i + 2}", "password_hash": self.ids["password_hash"], "role": "agent",
                 "hourly_cost": Decimal("40.00"), "created_at": self.start}
                for i in range(self.sizes["agents"] - 1)]
        self._put("user", rows)
        return [row["id"] for row in rows]

    def _contacts(self, first_id: int) -> None:
        rng, ws = self.rng, self.ids["workspace"]
        contacts, identities = [], []
        for i in range(self.sizes["contacts"]):
            cid = first_id + i
            name = BIG_THREAD_CONTACT if i == 0 else f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            phone = f"+336{i:08d}"
            contacts.append({"id": cid, "workspace_id": ws, "name": name, "company": rng.choice(COMPANIES),
                             "email": f"client{i}@exemple.test", "phone": phone, "preferred_channel": "sms",
                             "locale": "fr", "created_at": self.start})
            identities.append({"workspace_id": ws, "contact_id": cid, "kind": "sms", "address": phone,
                               "verified": True, "created_at": self.start})
            if len(contacts) >= BATCH:
                self._put("contact", contacts)
                self._put("contact_identity", identities)
                contacts, identities = [], []
        self._put("contact", contacts)
        self._put("contact_identity", identities)

    def _message_counts(self) -> list[int]:
        n_conv, rest = self.sizes["conversations"], self.sizes["messages"] - BIG_THREAD
        base, extra = divmod(rest, n_conv - 1) if n_conv > 1 else (0, 0)
        counts = [BIG_THREAD] + [base + (1 if i < extra else 0) for i in range(n_conv - 1)]
        for i in range(1, n_conv - 1, 2):  # some variance, same total
            shift = self.rng.randint(0, max(0, min(counts[i], counts[i + 1]) - 1))
            counts[i] -= shift
            counts[i + 1] += shift
        return counts

    def _conversations(self, first_contact: int) -> None:
        rng, ws, sizes = self.rng, self.ids["workspace"], self.sizes
        n_conv, n_contacts = sizes["conversations"], sizes["contacts"]
        span = (self.now - self.start).total_seconds()
        ticketed = set(rng.sample(range(1, n_conv), min(sizes["tickets"], n_conv - 1)))
        counts = self._message_counts()
        conv_id = self.loader.next_id(self.tables["conversation"])
        msg_id = self.loader.next_id(self.tables["message"])
        ticket_id = self.loader.next_id(self.tables["ticket"])
        channel_ids = list(self.ids["channels"].values())
        batch: dict[str, list] = {k: [] for k in ("conversation", "message", "ticket", "ticket_conversation",
                                                  "ticket_event", "rating")}
        for i in range(n_conv):
            created = self.start + timedelta(seconds=span * i / n_conv + rng.random() * 3600)
            contact = first_contact + (i % n_contacts)
            # A contact's later conversation may still be active (at most one, as the unique index wants).
            recent = (self.now - created).days < 60
            status = ("open" if rng.random() < 0.6 else "pending") if recent and i >= n_contacts else "resolved"
            if i == 0:
                status = "open"
            assignee = rng.choice(self.agents) if rng.random() < 0.7 else None
            channel = rng.choice(channel_ids)
            at = created
            last = {"last_message_preview": "", "last_message_direction": None, "last_message_sender_kind": None,
                    "last_message_sender_id": None}
            waiting: list[dict] = []  # received messages of this conversation not answered yet
            for k in range(counts[i]):
                inbound = k % 2 == 0
                body = " ".join(rng.choices(WORDS, k=rng.randint(4, 16)))
                row = {
                    "id": msg_id, "workspace_id": ws, "conversation_id": conv_id, "contact_id": contact,
                    "channel_id": channel, "direction": "inbound" if inbound else "outbound",
                    "sender_kind": "customer" if inbound else "agent",
                    "sender_user_id": None if inbound else (assignee or self.agents[0]), "body": body,
                    "delivery_status": "received" if inbound else "delivered", "internal": False, "attempts": 0,
                    "created_at": at, "sent_at": None if inbound else at, "routed_at": at if inbound else None,
                    "answered_at": None}
                # What the request path keeps (Message.answered_at): an agent's reply answers every
                # received message before it still waiting, the reports add these times up.
                if inbound:
                    waiting.append(row)
                else:
                    for received in waiting:
                        received["answered_at"] = at
                    waiting = []
                batch["message"].append(row)
                msg_id += 1
                last = {"last_message_preview": body[:140], "last_message_direction": row["direction"],
                        "last_message_sender_kind": row["sender_kind"], "last_message_sender_id": row["sender_user_id"]}
                at += timedelta(seconds=rng.randint(60, 6 * 3600))
            at = min(at, self.now)
            batch["conversation"].append({
                "id": conv_id, "workspace_id": ws, "contact_id": contact, "channel_id": channel, "status": status,
                "priority": rng.choices(["low", "medium", "high", "critical"], [30, 50, 15, 5])[0],
                "assignee_id": assignee, "last_activity_at": at, **last, "unread_count": 1 if status == "open" else 0,
                "resolved_at": at if status == "resolved" else None, "created_at": created})
            if i in ticketed:
                self._ticket(batch, ticket_id, conv_id, contact, assignee, created, at, status, msg_id - 1)
                ticket_id += 1
            conv_id += 1
            if len(batch["message"]) >= BATCH or i == n_conv - 1:
                for name in ("conversation", "message", "ticket", "ticket_conversation", "ticket_event", "rating"):
                    self._put(name, batch[name])
                    batch[name] = []
                print(f"  … {i + 1:,}/{n_conv:,} conversations", end="\r", flush=True)
        print()

    def _ticket(self, batch, ticket_id, conv_id, contact, assignee, created, last, conv_status, last_msg) -> None:
        rng, ws = self.rng, self.ids["workspace"]
        active = conv_status != "resolved"
        status = rng.choice(["open", "in_progress", "waiting_on_customer"]) if active else \
            rng.choice(["resolved", "closed", "closed"])
        subject = rng.choice(SUBJECTS)
        batch["ticket"].append({
            "id": ticket_id, "workspace_id": ws, "number": ticket_id, "contact_id": contact, "subject": subject,
            "description": " ".join(rng.choices(WORDS, k=20)), "category": rng.choice(
                ["general", "billing", "technical", "bug_report", "account", "suggestion"]),
            "priority": rng.choices(["low", "medium", "high", "critical"], [30, 50, 15, 5])[0], "status": status,
            "source": rng.choice(["agent", "conversation", "api", "portal", "ai"]), "tags": [],
            "assignee_id": assignee, "created_by_id": assignee, "created_at": created, "updated_at": last,
            "status_changed_at": last, "first_response_due_at": created + timedelta(hours=4),
            "resolution_due_at": created + timedelta(days=2), "first_responded_at": created + timedelta(minutes=45),
            "last_agent_reply_at": last, "resolved_at": None if active else last,
            "closed_at": last if status == "closed" else None})
        batch["ticket_conversation"].append({"ticket_id": ticket_id, "conversation_id": conv_id, "created_at": created})
        for k, kind in enumerate(("created", "internal_note", "public_reply")):
            batch["ticket_event"].append({
                "workspace_id": ws, "ticket_id": ticket_id, "kind": kind, "actor_id": assignee,
                "internal": kind != "public_reply", "body": "" if kind == "created" else subject + " — suivi",
                "message_id": last_msg if kind == "public_reply" else None, "data": {},
                "created_at": created + timedelta(minutes=10 * k)})
        if not active and rng.random() < 0.3:
            batch["rating"].append({"workspace_id": ws, "ticket_id": ticket_id, "score": rng.choice([3, 4, 5, 5, 5]),
                                    "source": "sms", "agent_id": assignee, "created_at": last})


if __name__ == "__main__":
    raise SystemExit(main())
