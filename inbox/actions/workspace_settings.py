"""The workspace's own settings, for admins: name, time zone, default language, currency."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from zoneinfo import available_timezones

from flask_babel import gettext as _

from .. import outbox
from ..extensions import db
from ..models import TicketSettings, User, Workspace
from .audit import record
from .crm import LOCALES
from .tickets import FieldErrors

# Offered first in the currency list; any ISO 4217 code of three letters is accepted.
COMMON_CURRENCIES = ("EUR", "USD", "GBP", "CHF", "CAD", "XOF", "MAD", "TND")


@cache
def time_zones() -> tuple[str, ...]:
    return tuple(sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))) + ("UTC",)


@dataclass(frozen=True, slots=True)
class WorkspaceInput:
    name: str
    timezone: str
    default_locale: str
    currency: str


def workspace_state(workspace: Workspace) -> dict:
    return {"name": workspace.name, "timezone": workspace.timezone, "default_locale": workspace.default_locale,
            "currency": TicketSettings.of(workspace.id).currency}


def check_workspace_form(form: Mapping) -> WorkspaceInput:
    errors: dict[str, str] = {}
    name = " ".join((form.get("name") or "").split())
    if not name:
        errors["name"] = _("Give the workspace a name.")
    elif len(name) > 120:
        errors["name"] = _("The name is limited to %(n)d characters.", n=120)
    timezone = (form.get("timezone") or "").strip()
    if timezone not in time_zones():
        errors["timezone"] = _("Choose a time zone from the list, such as Europe/Paris.")
    locale = form.get("default_locale") or ""
    if locale not in LOCALES:
        errors["default_locale"] = _("Choose a language.")
    currency = (form.get("currency") or "").strip().upper()
    if len(currency) != 3 or not currency.isalpha() or not currency.isascii():
        errors["currency"] = _("Enter a three-letter currency code such as EUR.")
    if errors:
        raise FieldErrors(errors)
    return WorkspaceInput(name=name, timezone=timezone, default_locale=locale, currency=currency)


def do_update_workspace(workspace: Workspace, data: WorkspaceInput, *, actor: User) -> Workspace:
    """Times keep being stored in UTC: a new time zone changes how they are shown and how
    business hours are read, not the stored instants."""
    before = workspace_state(workspace)
    workspace.name, workspace.timezone, workspace.default_locale = data.name, data.timezone, data.default_locale
    settings = TicketSettings.ensure(workspace.id)
    settings.currency = data.currency
    db.session.flush()
    record(actor, "workspace.update", workspace, before, workspace_state(workspace), workspace_id=workspace.id)
    outbox.commit()
    return workspace
