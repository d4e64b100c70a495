"""STOP / START texted on SMS or WhatsApp: the contact opts out (or back in) at once, and is told.

Called first by routing.route_message: a consent keyword is answered here and goes no further
(no bot answer, no ticket update). A message is handled once: handling it marks it routed,
and the confirmation carries an idempotency key derived from the message.

Matching is strict on purpose: the whole message must be the keyword, optionally with a polite
word ("STOP SVP", "Stop merci", "STOP PUB"); "stop, my order is wrong" is a support message.
Accents and case are ignored (ARRÊT = arret = Arrêt).
"""

from __future__ import annotations

import logging
import re
import unicodedata

from flask_babel import force_locale
from flask_babel import gettext as _

from .. import outbox
from ..extensions import db
from ..kinds import ChannelKind
from ..models import ConsentSource, ConsentStatus, Direction, Message, SenderKind, Workspace

log = logging.getLogger(__name__)

CONSENT_KINDS = (ChannelKind.SMS, ChannelKind.WHATSAPP)
OPT_OUT = frozenset({
    "STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "ARRET", "ARRETER", "ARRETEZ", "ARRET SMS",
    "DESABONNER", "DESABONNEMENT", "DESINSCRIRE", "DESINSCRIPTION", "SE DESABONNER", "SE DESINSCRIRE",
})
OPT_IN = frozenset({"START", "UNSTOP", "SUBSCRIBE", "REABONNER", "SE REABONNER"})
# Words that may follow the keyword without making it a sentence.
FILLERS = frozenset({"SMS", "PUB", "PUBS", "SVP", "STP", "MERCI", "PLEASE", "NOW", "MESSAGES", "MSG", "MARKETING",
                     "ALL", "TOUT", "DEFINITIVEMENT"})
_NOT_WORD = re.compile(r"[^A-Z0-9 ]+")


def normalize(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text or "")
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).upper()
    return " ".join(_NOT_WORD.sub(" ", bare).split())


def keyword_of(text: str) -> ConsentStatus | None:
    """OPTED_OUT for STOP and its variants, OPTED_IN for START, None for anything else."""
    words = normalize(text).split()
    if not words or len(words) > 4:
        return None
    for size in (3, 2, 1):
        head, rest = " ".join(words[:size]), words[size:]
        if all(w in FILLERS for w in rest):
            if head in OPT_OUT:
                return ConsentStatus.OPTED_OUT
            if head in OPT_IN:
                return ConsentStatus.OPTED_IN
    return None


def handle_consent_keyword(message: Message | None) -> bool:
    """True when the message was a consent keyword (now handled); False to route it as usual.
    Called by route_message once it has claimed the message."""
    if message is None or message.direction != Direction.INBOUND or message.channel is None:
        return False
    if message.channel.kind not in CONSENT_KINDS:
        return False
    status = keyword_of(message.body)
    if status is None:
        return False
    # route_message claimed the message first: a re-run job never gets here twice.
    from ..actions.consent import do_set_consent

    contact = message.contact
    do_set_consent(contact, message.channel.kind, status, source=ConsentSource.KEYWORD,
                   detail=normalize(message.body)[:40], commit=False)
    _confirm(message, status)
    outbox.commit()
    log.info("consent keyword message_id=%s contact_id=%s status=%s", message.id, contact.id, status)
    return True


def _confirm(message: Message, status: ConsentStatus) -> None:
    """The confirmation goes back on the same channel: a transactional answer to the customer's
    own message, which consent rules always allow."""
    from .outbound import Rendered, queue_message

    contact = message.contact
    workspace = db.session.get(Workspace, message.workspace_id)
    with force_locale(contact.locale or workspace.default_locale or "en"):
        if status == ConsentStatus.OPTED_OUT:
            text = _("You are unsubscribed from %(name)s messages and will receive no more. Reply START to "
                     "subscribe again.", name=workspace.name)
        else:
            text = _("You are subscribed again to %(name)s messages. Reply STOP to unsubscribe.",
                     name=workspace.name)
    queue_message(message.conversation, message.channel, Rendered(body=text), sender_kind=SenderKind.BOT,
                  meta={"consent": str(status)}, idempotency_key=f"consent-{message.id}")
