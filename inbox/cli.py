"""Command-line tools: `flask simulate …`, `flask outbox relay`, `flask seed`."""

from __future__ import annotations

import time

import click
import requests
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from .extensions import db
from .kinds import ChannelKind, Provider

simulate = AppGroup("simulate", help="Post correctly signed provider webhooks to a running app.")
outbox_cli = AppGroup("outbox", help="The transactional outbox (work waiting for Redis).")


def _channel(kind: str, workspace: str | None):
    from .models import Channel, Workspace

    stmt = select(Channel).where(Channel.kind == kind, Channel.enabled.is_(True)).order_by(Channel.id)
    if workspace:
        stmt = stmt.join(Workspace, Workspace.id == Channel.workspace_id).where(Workspace.slug == workspace)
    channel = db.session.scalars(stmt).first()
    if channel is None:
        raise click.ClickException(f"no enabled {kind} channel found")
    return channel


@simulate.command("inbound")
@click.option("--channel", "kind", type=click.Choice([k.value for k in ChannelKind]), default=ChannelKind.SMS.value,
              help="Channel kind; the workspace's first enabled channel of that kind receives it.")
@click.option("--from", "sender", default=None,
              help="The customer's address (+33612345678, an email, a Telegram chat id). Default: a new customer.")
@click.option("--name", "sender_name", default=None, help="The customer's display name, where the channel carries one.")
@click.option("--text", required=True, help="The message body (for voice: what the caller said).")
@click.option("--url", default=None, help="Base URL of the running app (default: PUBLIC_BASE_URL).")
@click.option("--workspace", default=None, help="Workspace slug, when there are several.")
def simulate_inbound(kind: str, sender: str | None, sender_name: str | None, text: str, url: str | None,
                     workspace: str | None):
    """Send a message as a customer would, through the provider's signed webhook."""
    from .orchestrator.delivery import webhook_url
    from .sandbox.simulate import BUILDERS, demo_sender, post_inbound

    channel = _channel(kind, workspace)
    if (channel.kind, channel.provider) not in BUILDERS:
        raise click.ClickException(f"no simulator for {channel.kind}/{channel.provider}")
    public_url = webhook_url(channel)
    target = public_url.replace(current_app.config["PUBLIC_BASE_URL"], url.rstrip("/")) if url else public_url
    try:
        response = post_inbound(kind=channel.kind, provider=channel.provider, credentials=channel.credentials,
                                settings=channel.settings or {}, channel_address=channel.address,
                                sender=sender or demo_sender(channel.kind), text=text, public_url=public_url,
                                target_url=target, sender_name=sender_name)
    except requests.RequestException as exc:
        raise click.ClickException(f"could not reach {target}: {exc}") from exc
    click.echo(f"POST {target} → {response.status_code}")
    if response.status_code >= 400:
        raise SystemExit(1)


@outbox_cli.command("relay")
@click.option("--loop/--once", default=False, help="Keep relaying every few seconds.")
def relay_command(loop: bool):
    """Hand work that waited for Redis over to Redis."""
    from .outbox import relay_pending

    while True:
        count = relay_pending()
        if count or not loop:
            click.echo(f"relayed {count}")
        if not loop:
            return
        time.sleep(2)


@click.command("seed")
def seed_command():
    """Build the demo workspace (only when the database has none)."""
    from seed import seed_demo

    click.echo(seed_demo())


ai_cli = AppGroup("ai", help="Sara: evaluate the offline engine, ask what she would decide.")


def register_cli(app: Flask) -> None:
    from .ai.cli import eval_command

    ai_cli.add_command(eval_command)
    ai_cli.add_command(ai_decide_command)
    app.cli.add_command(ai_cli)
    app.cli.add_command(simulate)
    app.cli.add_command(outbox_cli)
    app.cli.add_command(seed_command)
    from .cli_api import api_token_cli  # REST API tokens (issue 4)
    app.cli.add_command(api_token_cli)


@click.command("decide")
@click.argument("text")
@click.option("--workspace", "slug", default=None, help="Workspace slug (default: the only one).")
@click.option("--awaiting", type=click.Choice(["appointment_confirmation", "rating"]), default=None,
              help="Pretend the last automated message asked for this.")
def ai_decide_command(text: str, slug: str | None, awaiting: str | None):
    """Print, as JSON, what Sara would decide for TEXT in a workspace; nothing is changed."""
    import json as json_

    from .ai import agent
    from .ai import types as ai_types
    from .models import SaraSettings, Workspace
    from .orchestrator.sara import engine_for, playbook_of

    stmt = select(Workspace).where(Workspace.slug == slug) if slug else select(Workspace).order_by(Workspace.id)
    workspace = db.session.scalars(stmt).first()
    if workspace is None:
        raise click.ClickException("no such workspace")
    settings = SaraSettings.of(workspace.id)
    context = ai_types.DecisionContext(
        playbook=playbook_of(workspace.id, settings), awaiting=ai_types.Awaiting(awaiting) if awaiting else None,
        confidence_threshold=settings.confidence_threshold, default_language=workspace.default_locale)
    decision = agent.decide(text, context, engine=engine_for(settings))
    click.echo(json_.dumps({
        "kind": str(decision.kind), "category": str(decision.category), "priority": str(decision.priority),
        "language": decision.language, "confidence": round(decision.confidence, 3), "reason": decision.reason,
        "intent": decision.intent, "article_id": decision.article_id, "engine": decision.engine,
        "model": decision.model}, ensure_ascii=False, indent=2))
