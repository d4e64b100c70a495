"""`flask api-token create --email EMAIL [--name NAME]`: a REST API token, printed once."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from .errors import ValidationError
from .extensions import db

api_token_cli = AppGroup("api-token", help="REST API tokens (stored hashed; the secret is printed once).")


@api_token_cli.command("create")
@click.option("--email", required=True, help="A member's login email (agent or admin), or a customer's email.")
@click.option("--name", default=None, help="What the token is for (default: “CLI token”).")
@click.option("--workspace", default=None, help="Workspace slug, when the customer's email is known in several.")
def create_token(email: str, name: str | None, workspace: str | None):
    """Create a token for a member, or else for the customer with this email; print it once."""
    from .actions.api_tokens import check_customer_email, do_create_api_token
    from .models import User, Workspace

    email = email.strip().lower()
    user = db.session.scalar(select(User).where(User.email == email))
    try:
        if user is not None:
            if not user.is_active:
                raise click.ClickException(f"{email} is deactivated")
            token, secret = do_create_api_token(user.workspace_id, name=name or "CLI token", user=user)
            owner = f"{user.name} ({user.role})"
        else:
            stmt = select(Workspace).order_by(Workspace.id)
            if workspace:
                stmt = stmt.where(Workspace.slug == workspace)
            found = []
            for ws in db.session.scalars(stmt):
                try:
                    found.append(check_customer_email(ws.id, email))
                except ValidationError:
                    continue
            if not found:
                raise click.ClickException(f"no member and no customer with the email {email}")
            if len(found) > 1:
                raise click.ClickException(f"{email} is a customer of several workspaces: pass --workspace SLUG")
            token, secret = do_create_api_token(found[0].workspace_id, name=name or "CLI token", contact=found[0])
            owner = f"{found[0].display_name} (customer)"
    except ValidationError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"API token “{token.name}” for {owner}, id {token.id}. Shown once, keep it safe:")
    click.echo(secret)
