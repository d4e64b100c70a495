"""Copies Coccinelle's bench tickets into django-helpdesk: same ids, titles, descriptions, statuses,
priorities, dates, assignees and submitters; each ticket event becomes a follow-up.

    bench/helpdesk/.venv/bin/python bench/helpdesk/project/load.py --source bench/data/bench.db

Runs in django-helpdesk's virtualenv, so it imports nothing of Coccinelle: it reads Coccinelle's
SQLite file with `sqlite3` (tables `workspace`, `user`, `contact`, `ticket`, `ticket_event`, as in
inbox/models/). One queue, one staff user per Coccinelle member (same e-mail and password), then
tickets and follow-ups with bulk_create. The database must be freshly migrated (bench/helpdesk.py
does both).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchdesk.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.db import transaction  # noqa: E402
from helpdesk.models import FollowUp, Queue, Ticket  # noqa: E402

# Coccinelle status / priority → django-helpdesk's defaults (1 open … 4 closed; 1 critical … 5 very low).
# Open, in progress and waiting on the customer are all "Open": django-helpdesk's default list
# (Open + Reopened) then holds the same tickets as Coccinelle's default list (the active ones).
STATUS = {"open": 1, "in_progress": 1, "waiting_on_customer": 1, "resolved": 3, "closed": 4}
PRIORITY = {"critical": 1, "high": 2, "medium": 3, "low": 4}
BATCH = 5000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="Coccinelle's bench SQLite file")
    parser.add_argument("--workspace", default="bench", help="the workspace's slug")
    parser.add_argument("--password", required=True, help="the bench members' password")
    args = parser.parse_args()
    if Ticket.objects.exists():
        raise SystemExit("django-helpdesk's database already holds tickets: start from a fresh one")
    source = sqlite3.connect(f"file:{args.source}?mode=ro", uri=True)
    row = source.execute("SELECT id FROM workspace WHERE slug = ?", (args.workspace,)).fetchone()
    if row is None:
        raise SystemExit(f"no workspace {args.workspace!r} in {args.source}: run bench/generate.py first")
    workspace_id = row[0]
    started = time.perf_counter()
    queue = Queue.objects.create(title="Support", slug="support", allow_public_submission=True)
    users = _users(source, workspace_id, args.password)
    tickets = _tickets(source, workspace_id, queue, users)
    followups = _followups(source, workspace_id, users)
    elapsed = time.perf_counter() - started
    print(f"django-helpdesk loaded: 1 queue, {len(users)} staff users, {tickets:,} tickets, "
          f"{followups:,} follow-ups in {elapsed:.1f} s")
    return 0


def _users(source, workspace_id: int, password: str) -> dict[int, object]:
    """Staff users named by e-mail; created one by one so django-helpdesk's signal gives each its
    settings row. One password hash for all (hashing 51 times would only slow the load)."""
    model, hashed, users = get_user_model(), make_password(password), {}
    rows = source.execute("SELECT id, email, name, role FROM user WHERE workspace_id = ? ORDER BY id",
                          (workspace_id,))
    for user_id, email, name, role in rows:
        first, _sep, last = name.partition(" ")
        users[user_id] = model.objects.create(username=email, email=email, first_name=first, last_name=last,
                                              password=hashed, is_staff=True, is_superuser=role == "admin")
    return users


def _tickets(source, workspace_id: int, queue, users) -> int:
    created, modified = Ticket._meta.get_field("created"), Ticket._meta.get_field("modified")
    created.auto_now_add = modified.auto_now = False  # keep Coccinelle's dates (this process only)
    rows = source.execute(
        "SELECT t.id, t.subject, t.description, t.status, t.priority, t.resolution, t.assignee_id, "
        "t.created_at, t.updated_at, c.email FROM ticket t JOIN contact c ON c.id = t.contact_id "
        "WHERE t.workspace_id = ? ORDER BY t.id", (workspace_id,))
    count = 0
    with transaction.atomic():
        while batch := rows.fetchmany(BATCH):
            Ticket.objects.bulk_create([
                Ticket(id=tid, title=subject, description=description, status=STATUS[status],
                       priority=PRIORITY[priority], resolution=resolution, queue=queue,
                       assigned_to=users.get(assignee_id), created=_utc(created_at), modified=_utc(updated_at),
                       submitter_email=email)
                for tid, subject, description, status, priority, resolution, assignee_id, created_at, updated_at,
                email in batch])
            count += len(batch)
    return count


def _followups(source, workspace_id: int, users) -> int:
    """Coccinelle's opening event, internal notes and public replies, as django-helpdesk writes them:
    the opening follow-up carries the description, a note is a private follow-up."""
    rows = source.execute(
        "SELECT e.ticket_id, e.kind, e.internal, e.body, e.actor_id, e.created_at, t.description "
        "FROM ticket_event e JOIN ticket t ON t.id = e.ticket_id WHERE e.workspace_id = ? ORDER BY e.id",
        (workspace_id,))
    count = 0
    with transaction.atomic():
        while batch := rows.fetchmany(BATCH):
            FollowUp.objects.bulk_create([
                FollowUp(ticket_id=ticket_id, title="Ticket Opened" if kind == "created" else "Comment",
                         comment=description if kind == "created" else body,
                         public=kind == "created" or not internal,
                         user=users.get(actor_id), date=_utc(created_at))
                for ticket_id, kind, internal, body, actor_id, created_at, description in batch])
            count += len(batch)
    return count


def _utc(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value).replace(tzinfo=UTC) if value else None


if __name__ == "__main__":
    raise SystemExit(main())
