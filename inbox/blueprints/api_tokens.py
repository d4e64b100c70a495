"""Settings → API tokens (admins): create one (its secret is shown once), list, revoke."""

from __future__ import annotations

from flask import Blueprint, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from ..actions.api_tokens import (
    access_api_token, check_customer_email, check_token_name, do_create_api_token, do_revoke_api_token,
)
from ..actions.conversations import access_agent
from ..errors import ValidationError
from ..models import ApiToken, User
from .settings import admin_required

bp = Blueprint("api_tokens", __name__, url_prefix="/settings/api-tokens")


@bp.get("")
@admin_required
def index():
    return _page(revoked=request.args.get("revoked"))


@bp.post("")
@admin_required
def create():
    form = request.form
    try:
        name = check_token_name(form.get("name"))
        if form.get("owner") == "customer":
            contact = check_customer_email(current_user.workspace_id, form.get("contact_email"))
            token, secret = do_create_api_token(current_user.workspace_id, name=name, contact=contact,
                                                actor=current_user)
        else:
            raw = form.get("user_id", "")
            user = access_agent(int(raw) if raw.isdigit() else current_user.id, current_user)
            token, secret = do_create_api_token(current_user.workspace_id, name=name, user=user, actor=current_user)
    except ValidationError as exc:
        return _page(error=exc, form=form, status=422)
    response = _page(created=token, secret=secret)
    response.headers["Cache-Control"] = "no-store"  # the secret must not stay in a cache
    return response


@bp.post("/<int:token_id>/revoke")
@admin_required
def revoke(token_id: int):
    token = do_revoke_api_token(access_api_token(token_id, current_user), actor=current_user)
    return redirect(url_for("api_tokens.index", revoked=token.id), 303)


def _page(*, created: ApiToken | None = None, secret: str | None = None, error: ValidationError | None = None,
          form=None, revoked: str | None = None, status: int = 200):
    html = render_template("settings/api_tokens.html", tokens=ApiToken.of_workspace(current_user.workspace_id),
                           members=User.agents_of(current_user.workspace_id), created=created, secret=secret,
                           error=error, form=form or {}, revoked=revoked)
    return make_response(html, status)
