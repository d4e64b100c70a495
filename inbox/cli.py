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
@click.option("--channel", "kind", type=click.Choice([ChannelKind.SMS.value]), default=ChannelKind.SMS.value,
              help="Channel kind (more arrive with their adapters).")
@click.option("--from", "sender", required=True, help="The customer's address, e.g. +33612345678.")
@click.option("--text", required=True, help="The message body.")
@click.option("--url", default=None, help="Base URL of the running app (default: PUBLIC_BASE_URL).")
@click.option("--workspace", default=None, help="Workspace slug, when there are several.")
def simulate_inbound(kind: str, sender: str, text: str, url: str | None, workspace: str | None):
    """Send a message as a customer would, through the provider's signed webhook."""
    from .orchestrator.delivery import webhook_url
    from .sandbox import twilio as fake

    channel = _channel(kind, workspace)
    if channel.provider != Provider.TWILIO:
        raise click.ClickException(f"simulation of {channel.provider} arrives with its adapter")
    creds = channel.credentials
    params = fake.inbound_sms_payload(account_sid=creds["account_sid"], sender=sender,
                                      to=channel.address, body=text)
    public_url = webhook_url(channel)
    target = public_url.replace(current_app.config["PUBLIC_BASE_URL"], url.rstrip("/")) if url else public_url
    try:
        response = fake.post_signed(target, params, auth_token=creds["auth_token"], signed_url=public_url)
    except requests.RequestException as exc:
        raise click.ClickException(f"could not reach {target}: {exc}") from exc
    click.echo(f"POST {target} → {response.status_code} (MessageSid {params['MessageSid']})")
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


def register_cli(app: Flask) -> None:
    app.cli.add_command(simulate)
    app.cli.add_command(outbox_cli)
    app.cli.add_command(seed_command)
