"""The pieces `make run` relies on: migrations, the demo seed, `flask simulate inbound`."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import func, select

from inbox.extensions import db
from inbox.models import Channel, Contact, Conversation, Message, User, Workspace
from inbox.search import include_name

from ..conftest import run_ingest


def test_migrations_build_exactly_the_models_schema(app):
    db.drop_all()
    with db.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    upgrade()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"include_name": include_name}), db.metadata)
    assert diff == []


def test_seed_builds_a_believable_demo_once(app):
    from seed import DEMO_LOGINS, seed_demo

    assert "created" in seed_demo()
    assert "already present" in seed_demo()
    assert db.session.scalar(select(func.count(Workspace.id))) == 1
    users = db.session.scalars(select(User)).all()
    assert {u.email for u in users} == {email for _, email, _ in DEMO_LOGINS}
    assert all(u.hourly_cost > 0 for u in users)
    assert all(u.check_password(DEMO_LOGINS[0][2]) for u in users[:1])
    kinds = {c.kind for c in db.session.scalars(select(Channel))}
    assert kinds == {"sms", "email", "whatsapp", "telegram", "voice"}
    message_kinds = set(db.session.scalars(
        select(Channel.kind).join(Message, Message.channel_id == Channel.id).distinct()))
    assert message_kinds == kinds  # every channel kind has conversation history
    statuses = set(db.session.scalars(select(Conversation.status).distinct()))
    assert statuses == {"open", "pending", "resolved"}
    assert db.session.scalar(select(func.count(Contact.id))) >= 10
    # The past is settled: the first auto-close sweep after `make run` closes nothing and tells nobody.
    from inbox.jobs.tickets import auto_close_sweep
    sent_before = db.session.scalar(select(func.count(Message.id)))
    assert auto_close_sweep() == 0
    assert db.session.scalar(select(func.count(Message.id))) == sent_before
    assert db.session.scalar(select(func.count()).where(Message.internal.is_(True), Message.sender_kind == "agent"))


def test_simulate_inbound_posts_a_signed_webhook_to_the_running_app(app, live_server, sms_channel):
    result = app.test_cli_runner().invoke(args=[
        "simulate", "inbound", "--channel", "sms", "--from", "+33612345678", "--text", "Bonjour",
        "--url", live_server.url])

    assert result.exit_code == 0, result.output
    assert "→ 200" in result.output
    run_ingest()  # what the worker does with it
    db.session.rollback()
    db.session.expire_all()
    message = db.session.scalar(select(Message))
    assert message.body == "Bonjour" and message.sender_kind == "customer"


@pytest.mark.parametrize("kind, fixture_name", [
    ("sms", "sms_channel"), ("whatsapp", "whatsapp"), ("telegram", "telegram"), ("email", "email"),
    ("voice", "vapi"),
])
def test_simulate_inbound_speaks_every_providers_format(app, live_server, request, kind, fixture_name):
    request.getfixturevalue(fixture_name)
    db.session.rollback()
    result = app.test_cli_runner().invoke(args=[
        "simulate", "inbound", "--channel", kind, "--name", "Léa Petit", "--text", "Bonjour 👋", "--url", live_server.url])
    assert result.exit_code == 0, result.output
    run_ingest()
    db.session.rollback()
    db.session.expire_all()
    message = db.session.scalar(select(Message))
    assert "Bonjour 👋" in message.body and message.channel.kind == kind


def test_each_web_process_keeps_enough_postgresql_connections_for_its_threads(app_config):
    """SQLAlchemy's default pool (5 kept) made a busy gthread worker open and close a connection per
    request (bench/RESULTS.md §19): on PostgreSQL, 20 are kept and 10 more may open for a burst."""
    from inbox import create_app

    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://coccinelle@127.0.0.1:9/none"})
    with app.app_context():
        assert (db.engine.pool.size(), db.engine.pool._max_overflow) == (20, 10)
        db.engine.dispose()
