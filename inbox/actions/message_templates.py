"""Templates in the agent's hands: the picker that fills the composer, WhatsApp's approved
templates outside the 24-hour window, and the live preview of a template being written.

The templates themselves are `OutboundTemplate` rows (models/outbound.py, edited under
/outbound/templates); a WhatsApp channel may also list approved templates in its settings:

    settings["templates"] = [{"name": "Confirmation RDV",
                              "content_sid": "HX…",                    # Twilio Content API, or
                              "template": "rdv_confirmation", "language": "fr",   # Meta
                              "body": "Bonjour {{1}}, votre rendez-vous du {{2}} est confirmé.",
                              "variables": ["Prénom", "Date"]}]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flask_babel import gettext as _

from ..channels.sms_segments import SmsCount, count_sms
from ..errors import ValidationError
from ..kinds import ChannelKind, Provider
from ..models import Channel, Contact, Conversation, OutboundTemplate, User, utcnow
from ..models.outbound import VARIABLE

NUMBERED = r"\{\{\s*(\d+)\s*\}\}"
SAMPLE_VALUES = {"prospect_name": "Camille Martin", "contact_name": "Camille Martin", "first_name": "Camille",
                 "company": "Boulangerie Martin", "email": "camille@example.fr", "phone": "+33612345678",
                 "agent_name": "Alice", "workspace_name": "Coccinelle", "rdv_time": "12/03 09:30",
                 "rdv_date": "12/03/2026", "unsubscribe_url": "https://example.test/unsubscribe"}


@dataclass(frozen=True, slots=True)
class WindowState:
    open: bool
    last_wrote_at: datetime | None
    closes_at: datetime | None


@dataclass(frozen=True, slots=True)
class ApprovedTemplate:
    key: str  # "s<index>" (channel settings) or "t<id>" (OutboundTemplate)
    name: str
    body: str
    variables: list[str] = field(default_factory=list)  # labels of the inputs, in order
    defaults: list[str] = field(default_factory=list)
    provider: dict = field(default_factory=dict)  # content_sid | {template, language}
    named: list[str] = field(default_factory=list)  # OutboundTemplate: the variable names, in order


# -- the WhatsApp window --------------------------------------------------------------------------
def whatsapp_window(conversation: Conversation, channel: Channel, *, now: datetime | None = None) -> WindowState:
    from ..channels.whatsapp_twilio import window_closes_at, window_open
    from ..orchestrator.delivery import customer_last_wrote_at

    wrote = customer_last_wrote_at(conversation.contact_id, channel.id)
    return WindowState(open=window_open(wrote, now or utcnow()), last_wrote_at=wrote,
                       closes_at=window_closes_at(wrote) if wrote else None)


def approved_templates(channel: Channel, contact: Contact, *, agent: User | None = None) -> list[ApprovedTemplate]:
    """The templates WhatsApp accepts outside the window on this channel, inputs prefilled."""
    values = contact_variables(contact, agent=agent)
    found: list[ApprovedTemplate] = []
    for index, raw in enumerate((channel.settings or {}).get("templates") or []):
        if not isinstance(raw, dict) or not raw.get("body"):
            continue
        provider = ({"content_sid": str(raw["content_sid"])} if raw.get("content_sid") else
                    {"template": str(raw.get("template") or raw.get("template_name") or ""),
                     "language": str(raw.get("language") or "fr")})
        if channel.provider == Provider.TWILIO and "content_sid" not in provider:
            continue
        if channel.provider == Provider.META and not provider.get("template"):
            continue
        labels = [str(v) for v in raw.get("variables") or []]
        count = max([int(n) for n in _numbers(raw["body"])] + [len(labels)], default=0)
        labels += [f"{{{{{i}}}}}" for i in range(len(labels) + 1, count + 1)]
        found.append(ApprovedTemplate(key=f"s{index}", name=str(raw.get("name") or provider.get("template")
                                                                  or provider.get("content_sid")),
                                      body=str(raw["body"]), variables=labels, defaults=[""] * len(labels),
                                      provider=provider))
    from ..models.outbound import OutboundTemplate as Template

    for template in Template.of_workspace(channel.workspace_id):
        pt = template.provider_template or {}
        usable = pt.get("name") if channel.provider == Provider.META else pt.get("content_sid")
        if not template.fits(ChannelKind.WHATSAPP) or not usable:
            continue
        names = list(template.variables or []) or _names(template.body)
        found.append(ApprovedTemplate(key=f"t{template.id}", name=template.name, body=template.body,
                                      variables=names, defaults=[values.get(n, "") for n in names],
                                      provider=dict(pt), named=names))
    return found


def find_approved(channel: Channel, contact: Contact, key: str) -> ApprovedTemplate:
    for template in approved_templates(channel, contact):
        if template.key == key:
            return template
    raise ValidationError(_("Choose one of the approved templates."), field="template")


def check_template_values(template: ApprovedTemplate, form) -> list[str]:
    values = [(form.get(f"var_{i}") or "").strip() for i in range(1, len(template.variables) + 1)]
    if any(not v for v in values):
        raise ValidationError(_("Fill in every variable of the template."), field="template")
    return values


def render_approved(template: ApprovedTemplate, values: list[str]) -> tuple[str, dict]:
    """The text shown in the thread and the OutboundMessage.meta the adapter sends."""
    import re

    if template.named:
        by_name = dict(zip(template.named, values, strict=False))
        body = VARIABLE.sub(lambda m: by_name.get(m.group(1), ""), template.body)
    else:
        body = re.sub(NUMBERED, lambda m: values[int(m.group(1)) - 1] if int(m.group(1)) <= len(values) else "",
                      template.body)
    if "content_sid" in template.provider:
        send = {"content_sid": template.provider["content_sid"],
                "content_variables": {str(i): v for i, v in enumerate(values, start=1)}}
    else:
        send = {"template": {"name": template.provider.get("template") or template.provider.get("name"),
                             "language": template.provider.get("language") or "fr", "parameters": values}}
    return body.strip(), send


# -- the picker -----------------------------------------------------------------------------------
def contact_variables(contact: Contact, *, agent: User | None = None) -> dict[str, str]:
    """{{prospect_name}}, {{company}}… for this contact; {{rdv_time}} is their next appointment."""
    from ..orchestrator.outbound import contact_values

    extra = {"agent_name": agent.name if agent else ""}
    try:
        from flask_babel import format_datetime

        from ..models import Appointment

        upcoming = Appointment.upcoming_for(contact.id, utcnow(), limit=1)
        if upcoming:
            extra["rdv_time"] = format_datetime(upcoming[0].starts_at, "short")
            extra["rdv_date"] = format_datetime(upcoming[0].starts_at, "medium")
    except (ImportError, AttributeError):  # appointments are optional
        pass
    workspace = agent.workspace if agent is not None else None
    return contact_values(contact, workspace_name=getattr(workspace, "name", "") or "", extra=extra)


def templates_for(channel: Channel | None, workspace_id: int, *,
                  templates: list[OutboundTemplate] | None = None) -> list[OutboundTemplate]:
    """The workspace's templates that fit the channel; `templates`: the workspace's, when the
    caller has read them already (the composer lists them in "send later" too)."""
    kind = channel.kind if channel else None
    if templates is None:
        templates = OutboundTemplate.of_workspace(workspace_id)
    return [t for t in templates if kind is None or t.fits(kind)]


def render_for_contact(template: OutboundTemplate, contact: Contact, *, agent: User | None) -> str:
    from ..orchestrator.outbound import render

    return render(template.body, contact_variables(contact, agent=agent)).strip()


# -- the preview ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Preview:
    kind: str | None
    subject: str
    body: str
    html: str | None
    sms: SmsCount | None
    unknown: list[str]


def preview(form) -> Preview:
    """A template as a customer would read it, with sample values; pure apart from sanitizing."""
    from ..channels.email import sanitize_html
    from ..orchestrator.outbound import render

    kind = form.get("kind") or None
    texts = [form.get("subject") or "", form.get("body") or "", form.get("html") or ""]
    unknown = sorted({n for t in texts for n in VARIABLE.findall(t)} - set(SAMPLE_VALUES))
    values = {**SAMPLE_VALUES, **{n: f"[{n}]" for n in unknown}}
    body = render(texts[1], values)
    html = sanitize_html(render(texts[2], values, as_html=True)) if texts[2].strip() else None
    sms = count_sms(body) if kind in (None, "", "sms") and body else None
    return Preview(kind=kind, subject=render(texts[0], values), body=body, html=html, sms=sms, unknown=unknown)


def _numbers(text: str) -> list[str]:
    import re

    return re.findall(NUMBERED, text or "")


def _names(text: str) -> list[str]:
    seen: list[str] = []
    for name in VARIABLE.findall(text or ""):
        if name not in seen:
            seen.append(name)
    return seen
