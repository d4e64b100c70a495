"""Token usage of the OpenAI-compatible engine, recorded per decision and shown as tokens and
cost per 1,000 messages on the Sara page: real SMS webhooks, the route job, the real `openai`
client against the fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from inbox.actions.workspace import do_create_user
from inbox.ai.fake_openai import FakeOpenAI
from inbox.demo_sara import seed_sara
from inbox.extensions import db
from inbox.models import Role, SaraDecision, SaraSettings
from inbox.orchestrator import sara as sara_orchestrator

from ..conftest import PASSWORD, login, run_jobs
from ..helpers import inbound, signed_post


@pytest.fixture
def fake_openai(app):
    with FakeOpenAI() as fake:
        app.config.update(OPENAI_BASE_URL=fake.base_url, OPENAI_API_KEY="sk-test", OPENAI_TIMEOUT=3.0)
        yield fake
    app.config.update(OPENAI_BASE_URL=None, OPENAI_API_KEY=None)
    sara_orchestrator._ENGINES.clear()  # the engine is cached per configuration


@pytest.fixture
def admin_client(client, workspace):
    admin = do_create_user(workspace, email="admin@example.test", name="Ada Admin", password=PASSWORD,
                           role=Role.ADMIN, hourly_cost=Decimal("50"))
    login(client, admin)
    return client


def test_tokens_are_recorded_per_decision_and_priced_per_1000_messages(app, workspace, sms_channel, fake_openai,
                                                                       admin_client):
    seed_sara(workspace)
    settings = SaraSettings.of(workspace.id)
    settings.engine, settings.model = "openai", "gpt-fake"
    db.session.add(settings)
    db.session.commit()
    for n, body in enumerate(("Quels sont vos horaires ?", "Combien coûte une révision ?")):
        signed_post(app.test_client(), sms_channel, inbound(sender=f"+3361234567{n}", body=body))
        run_jobs(app)

    db.session.rollback()
    db.session.expire_all()
    decisions = list(db.session.scalars(select(SaraDecision)))
    assert len(decisions) == 2 and {d.engine for d in decisions} == {"openai"}
    assert all(d.prompt_tokens > 0 and d.completion_tokens > 0 for d in decisions)
    assert len(fake_openai.requests) == 2  # one billed call per message

    page = admin_client.get("/settings/sara").get_data(as_text=True)
    assert "Jetons pour 1 000 messages" in page and "indiquez les prix des jetons" in page

    response = admin_client.post("/settings/sara", data={
        "enabled": "1", "engine": "openai", "model": "gpt-fake", "confidence_threshold": "0.55",
        "prompt_price_per_million": "0,15", "completion_price_per_million": "0.60"})
    assert response.status_code == 302
    page = admin_client.get("/settings/sara").get_data(as_text=True)
    prompt = sum(d.prompt_tokens for d in decisions)
    completion = sum(d.completion_tokens for d in decisions)
    expected = ((Decimal(prompt) * Decimal("0.15") + Decimal(completion) * Decimal("0.60")) / 1_000_000
                * 1000 / 2).quantize(Decimal("0.0001"))
    assert f"{(prompt + completion) * 500}" in page  # tokens per 1,000 messages
    assert str(expected) in page

    bad = admin_client.post("/settings/sara", data={"engine": "openai", "confidence_threshold": "0.5",
                                                    "prompt_price_per_million": "cher"})
    assert bad.status_code == 422
    db.session.rollback()
    db.session.expire_all()
    assert db.session.get(SaraSettings, workspace.id).prompt_price_per_million == Decimal("0.1500")
