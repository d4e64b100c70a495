"""Demo data for outbound (issue 8), built through the real actions: labels on a few
conversations and clients, a template, a segment, a campaign draft and a follow-up rule."""

from __future__ import annotations

from sqlalchemy import select

from .actions.campaigns import do_create_campaign, do_save_template
from .actions.followups import do_save_rule
from .actions.labels import do_add_label, do_create_label
from .actions.segments import do_save_segment
from .extensions import db
from .kinds import ChannelKind
from .models import Contact, Conversation, FollowUpTrigger, SegmentRules, User, Workspace


def seed_outbound(workspace: Workspace, *, admin: User) -> str:
    vip = do_create_label(workspace.id, name="VIP", color="#c81d32", actor=admin)
    follow = do_create_label(workspace.id, name="À relancer", color="#9a6700", actor=admin)
    prospect = do_create_label(workspace.id, name="Prospect", color="#2563eb", actor=admin)
    contacts = list(db.session.scalars(select(Contact).where(Contact.workspace_id == workspace.id).order_by(Contact.id)))
    for contact in contacts[::3]:
        do_add_label(contact, prospect, actor=admin)
    conversations = list(db.session.scalars(
        select(Conversation).where(Conversation.workspace_id == workspace.id).order_by(Conversation.id)))
    for conversation in conversations[:2]:
        do_add_label(conversation, vip, actor=admin)
    for conversation in conversations[3:5]:
        do_add_label(conversation, follow, actor=admin)
    offer = do_save_template(workspace.id, {
        "name": "Offre de printemps", "kind": None, "subject": "{{first_name}}, -20 % sur votre abonnement",
        "body": "Bonjour {{first_name}}, profitez de {{offer}} sur votre abonnement jusqu'au 30 avril. "
                "Répondez à ce message pour en profiter.",
        "html": "<html><body><h1>Bonjour {{first_name}}</h1><p>Profitez de <strong>{{offer}}</strong> sur votre "
                "abonnement jusqu'au 30 avril.</p></body></html>",
        "provider_template": None, "variables": None}, actor=admin)
    nudge = do_save_template(workspace.id, {
        "name": "Relance sans réponse", "kind": None, "subject": None,
        "body": "Bonjour {{first_name}}, avez-vous pu regarder notre dernier message ? Nous restons à votre écoute.",
        "html": None, "provider_template": None, "variables": None}, actor=admin)
    segment = do_save_segment(workspace.id, name="Prospects joignables par SMS",
                              rules=SegmentRules(label_ids=(prospect.id,), channel=ChannelKind.SMS), actor=admin)
    do_create_campaign(workspace.id, {"name": "Offre de printemps", "template_id": offer.id, "segment_id": segment.id,
                                      "variables": {"offer": "-20 %"}, "channel_order": ["sms", "email", "whatsapp"],
                                      "require_opt_in": False}, actor=admin)
    do_save_rule(workspace.id, {"name": "Relance à 2 jours", "trigger": FollowUpTrigger.NO_REPLY, "delay_days": 2,
                                "template_id": nudge.id, "max_per_conversation": 1, "enabled": False}, actor=admin)
    return "3 labels, a segment, a campaign draft, a follow-up rule"
