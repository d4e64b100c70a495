"""The demo workspace: a French after-sales team, built through the real actions.

Run by `make run` on first start (or `flask seed`). It does nothing when a workspace
already exists, so restarting keeps what you did in the demo.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select

from inbox.actions.conversations import (
    do_add_note, do_assign, do_send_reply, do_set_priority, do_set_status,
)
from inbox.actions.workspace import (
    do_create_channel, do_create_contact, do_create_user, do_create_workspace,
)
from inbox.channels.base import InboundMessage
from inbox.demo_outbound import seed_outbound
from inbox.demo_reports import seed_report_history
from inbox.demo_sara import seed_sara
from inbox.demo_tickets import seed_tickets
from inbox.extensions import db
from inbox.kinds import ChannelKind, Provider
from inbox.models import Conversation, ConversationStatus, Priority, Workspace, utcnow
from inbox.orchestrator.ingest import do_ingest
from inbox.sandbox import telegram as telegram_sandbox
from inbox.sandbox import vapi as vapi_sandbox
from inbox.sandbox.twilio import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN

DEMO_PASSWORD = "coccinelle-demo"
DEMO_LOGINS = [
    ("admin", "camille@coccinelle.test", DEMO_PASSWORD),
    ("agent", "julien@coccinelle.test", DEMO_PASSWORD),
    ("agent", "sophie@coccinelle.test", DEMO_PASSWORD),
    ("agent", "karim@coccinelle.test", DEMO_PASSWORD),
]
SMS_NUMBER = "+33757000101"
DEMO_SENDGRID_TOKEN = "demo-sendgrid-token-coccinelle-0001"

# (name, company, identities, preferred channel, [(channel kind, minutes ago, text)])
CLIENTS = [
    ("Élodie Fournier", "Boulangerie Fournier", {"sms": "+33612345678"}, "sms", [
        ("sms", 2880, "Bonjour, ma commande n°4471 n'est toujours pas arrivée. Pouvez-vous vérifier ?"),
        ("sms", 35, "Toujours rien reçu… c'est urgent, j'ai un client qui attend."),
    ]),
    ("Thomas Lefèvre", "Garage Lefèvre & Fils", {"sms": "+33698765432", "email": "thomas@garage-lefevre.fr"}, "email", [
        ("email", 1440, "Bonjour,\nJe n'arrive plus à me connecter à mon espace client depuis la mise à jour.\nCordialement,\nThomas"),
        ("sms", 12, "Re-bonjour, avez-vous vu mon mail d'hier ?"),
    ]),
    ("Nadia Benali", "Cabinet Benali", {"whatsapp": "+33645112233"}, "whatsapp", [
        ("whatsapp", 300, "Bonjour 👋 je voudrais décaler mon rendez-vous de jeudi à vendredi matin si possible."),
    ]),
    ("Lucas Girard", None, {"telegram": "527401983"}, "telegram", [
        ("telegram", 90, "Salut, la facture de novembre affiche 2 fois le même abonnement."),
    ]),
    ("Martine Roux", "Pharmacie du Centre", {"voice": "+33170809010", "sms": "+33611223344"}, "voice", [
        ("voice", 200, "[Message vocal] Bonjour, c'est Martine Roux de la pharmacie du Centre. Notre terminal ne "
                       "s'allume plus depuis ce matin, merci de me rappeler au 01 70 80 90 10."),
    ]),
    ("Antoine Mercier", "Mercier Immobilier", {"email": "a.mercier@mercier-immo.fr"}, "email", [
        ("email", 4320, "Bonjour, pouvez-vous m'envoyer le devis pour 5 licences supplémentaires ?"),
    ]),
    ("Chloé Dubois", None, {"sms": "+33677889900"}, "sms", [
        ("sms", 600, "Merci pour votre aide hier, tout fonctionne parfaitement !"),
    ]),
    ("Hugo Lambert", "Lambert Traiteur", {"whatsapp": "+33622334455", "sms": "+33622334455"}, "whatsapp", [
        ("whatsapp", 8000, "Est-ce que vous livrez le samedi ?"),
        ("whatsapp", 45, "Je relance pour la livraison de samedi, merci de me confirmer 🙏"),
    ]),
    ("Sarah Cohen", "Studio Cohen Design", {"email": "sarah@studiocohen.fr", "telegram": "883120457"}, "email", [
        ("email", 20, "Bonjour, le paiement par carte est refusé alors que ma carte est valide. Que faire ?"),
    ]),
    ("Pierre Morel", None, {"sms": "+33633445566"}, "sms", [
        ("sms", 5, "Bonjour, je souhaite résilier mon abonnement."),
    ]),
]


def seed_demo() -> str:
    if db.session.scalar(select(func.count(Workspace.id))):
        return "Demo workspace already present: kept as it is."
    workspace = do_create_workspace("Coccinelle Démo", slug="demo")
    admin, *agents = [
        do_create_user(workspace, email=email, name=name, password=DEMO_PASSWORD, role=role,
                       hourly_cost=Decimal(cost))
        for (role, email, _pw), name, cost in zip(
            DEMO_LOGINS, ["Camille Martin", "Julien Moreau", "Sophie Bernard", "Karim Haddad"],
            ["55.00", "38.50", "42.00", "35.00"])
    ]
    channels = _channels(workspace)
    for index, (name, company, identities, preferred, messages) in enumerate(CLIENTS):
        contact = do_create_contact(
            workspace, name=name, company=company,
            identities={ChannelKind(k): v for k, v in identities.items()},
            preferred_channel=ChannelKind(preferred), email=identities.get("email"),
            phone=identities.get("sms") or identities.get("voice"), whatsapp=identities.get("whatsapp"),
            telegram_id=identities.get("telegram"),
        )
        for kind, minutes_ago, text in messages:
            do_ingest(channels[kind], InboundMessage(
                provider_message_id=f"demo-{secrets.token_hex(8)}", sender=identities[kind],
                recipient=channels[kind].address, body=text,
                sent_at=utcnow() - timedelta(minutes=minutes_ago)))
        _work_on(contact.id, index, admin=admin, agents=agents)
    tickets = seed_tickets(workspace, admin=admin, agents=agents)
    tickets += ", " + seed_report_history(workspace, admin=admin, agents=agents)
    seed_outbound(workspace, admin=admin)
    sara = seed_sara(workspace)
    return f"Demo workspace created: {len(CLIENTS)} clients, {len(channels)} channels, {tickets}, {sara}."


def _channels(workspace: Workspace) -> dict[str, object]:
    """One channel per kind, with the demo credentials of the local sandboxes (see README)."""
    twilio = {"account_sid": DEMO_ACCOUNT_SID, "auth_token": DEMO_AUTH_TOKEN}
    specs = [
        (ChannelKind.SMS, Provider.TWILIO, "SMS service client", SMS_NUMBER, twilio, {}),
        (ChannelKind.WHATSAPP, Provider.TWILIO, "WhatsApp", "whatsapp:" + SMS_NUMBER, twilio, {}),
        (ChannelKind.EMAIL, Provider.SMTP, "support@coccinelle.test", "support@coccinelle.test",
         {"sendgrid_token": DEMO_SENDGRID_TOKEN},
         {"inbound": "sendgrid", "smtp_host": "localhost", "display_name": "Support Coccinelle",
          "signature": "L'équipe support Coccinelle — 01 70 00 01 01"}),
        (ChannelKind.TELEGRAM, Provider.TELEGRAM, "@" + telegram_sandbox.DEMO_BOT_USERNAME,
         "@" + telegram_sandbox.DEMO_BOT_USERNAME,
         {"bot_token": telegram_sandbox.DEMO_BOT_TOKEN, "webhook_secret": telegram_sandbox.DEMO_WEBHOOK_SECRET}, {}),
        (ChannelKind.VOICE, Provider.VAPI, "Standard téléphonique", "+33170000101",
         {"webhook_secret": vapi_sandbox.DEMO_VAPI_WEBHOOK_SECRET, "api_key": vapi_sandbox.DEMO_VAPI_API_KEY},
         {"auth_mode": "bearer"}),
    ]
    return {kind.value: do_create_channel(workspace, kind=kind, provider=provider, name=name,
                                          address=address, credentials=creds, settings=settings)
            for kind, provider, name, address, creds, settings in specs}


def _work_on(contact_id: int, index: int, *, admin, agents) -> None:
    """Give the demo conversations the varied states a real team's inbox has."""
    conversation = Conversation.active_for_contact(contact_id)
    agent = agents[index % len(agents)]
    if index in (0, 1, 4, 8):
        do_assign(conversation, agent, actor=admin)
    if index == 0:
        do_set_priority(conversation, Priority.HIGH, actor=agent)
        do_add_note(conversation, "Colis bloqué au dépôt de Rungis d'après le transporteur — je relance.", actor=agent)
        do_send_reply(conversation, "Bonjour Élodie, nous avons localisé votre colis : il sera livré demain matin. "
                                    "Toutes nos excuses pour le retard.", actor=agent, channel=conversation.channel)
    if index == 4:
        do_set_priority(conversation, Priority.CRITICAL, actor=admin)
    if index == 6:
        do_send_reply(conversation, "Avec plaisir Chloé, bonne journée !", actor=agents[1], channel=conversation.channel)
        do_set_status(conversation, ConversationStatus.RESOLVED, actor=agents[1])
    if index == 5:
        do_set_status(conversation, ConversationStatus.PENDING, actor=admin)
    if index == 8:
        do_set_priority(conversation, Priority.HIGH, actor=agent)
