"""The conversion report counts conversations by who answered them from two narrow groupings (the
conversations customers wrote in, each conversation's best answer) and Sara's decisions without
their messages when no filter needs them. The figures must be the ones of the queries it replaced
(kept below as the reference) on a history with every case: people and Sara answering, notes,
conversations without a customer message in the range, two channels, tickets of a category, a
merge that moves messages (not decisions) to another conversation, and every filter."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from sqlalchemy import and_, case, func, select, update

from inbox.actions.contacts import do_merge_contacts
from inbox.actions.conversations import do_add_note, do_send_reply
from inbox.actions.tickets import do_link_conversation
from inbox.actions.workspace import do_create_contact
from inbox.channels.base import InboundMessage
from inbox.extensions import db
from inbox.kinds import ChannelKind
from inbox.models import Conversation, Message, SaraDecision, SenderKind, utcnow
from inbox.models.reports import (
    _RECEIVED, _SENT, DECISION_KINDS, ReportFilter, Window, _channel_join, _count, _message_filters,
    _message_scope, conversion, message_facts,
)
from inbox.orchestrator.ingest import do_ingest

from .ticket_fixtures import CUSTOMER, contact, make_ticket  # noqa: F401

H = timedelta(hours=1)
D = timedelta(days=1)
M = timedelta(minutes=1)


# -- the queries the report used before ------------------------------------------------------------
def conversion_before(workspace_id: int, f: ReportFilter, w: Window) -> tuple:
    """(conversations, by people, by Sara alone, unanswered, decisions) as the report computed them:
    every message of the range grouped per conversation with three flags, decisions joined to
    their messages."""
    scope = _message_scope(workspace_id, f, w)
    per_conversation = (
        select(Message.conversation_id,
               func.max(case((_RECEIVED, 1), else_=0)).label("wrote"),
               func.max(case((and_(_SENT, Message.sender_kind == SenderKind.AGENT), 1), else_=0)).label("person"),
               func.max(case((and_(_SENT, Message.sender_kind == SenderKind.BOT), 1), else_=0)).label("bot"))
        .where(*scope).group_by(Message.conversation_id))
    c = _channel_join(per_conversation, f).subquery().c
    row = db.session.execute(
        select(func.count(), _count(c.person == 1), _count(c.person == 0, c.bot == 1),
               _count(c.person == 0, c.bot == 0)).where(c.wrote == 1)).one()
    decisions_stmt = _channel_join(
        select(SaraDecision.kind, func.count(SaraDecision.id)).join(Message, Message.id == SaraDecision.message_id), f,
    ).where(SaraDecision.workspace_id == workspace_id, SaraDecision.created_at >= w.start,
            SaraDecision.created_at < w.end, *_message_filters(workspace_id, f)).group_by(SaraDecision.kind)
    decisions = dict.fromkeys(DECISION_KINDS, 0) | {str(k): int(n) for k, n in db.session.execute(decisions_stmt)}
    return int(row[0]), int(row[1]), int(row[2]), int(row[3]), decisions


def conversion_now(workspace_id: int, f: ReportFilter, w: Window) -> tuple:
    result = conversion(workspace_id, f, w)
    return result.conversations, result.by_people, result.by_bot, result.unanswered, result.decisions


# -- a history with every case ---------------------------------------------------------------------
def writes(channel, sender, at) -> Message:
    result = do_ingest(channel, InboundMessage(provider_message_id=f"c-{secrets.token_hex(6)}", sender=sender,
                                               recipient=channel.address, body="Bonjour", sent_at=at))
    return db.session.get(Message, result.message_id)


def decided(message: Message, kind: str) -> None:
    db.session.add(SaraDecision(workspace_id=message.workspace_id, message_id=message.id,
                                conversation_id=message.conversation_id, kind=kind, category="general",
                                priority="medium", language="fr", confidence=0.9, reason="test", engine="offline",
                                model="test", created_at=message.created_at))
    db.session.commit()


@pytest.fixture
def history(workspace, agent, sms_channel, email, contact):
    """Three weeks: Élodie by SMS (answered by Alice, then Sara, then waiting), Thomas by email
    (Sara only, a note, a reply before his next message), Nadia by SMS (never answered) who is then
    merged into Élodie, Hugo by email (only our message in the range). Élodie's thread is linked to a
    billing ticket; Thomas's conversation is assigned to Alice."""
    start = utcnow() - 21 * D
    thomas = do_create_contact(workspace, name="Thomas", identities={ChannelKind.EMAIL: "thomas@garage.test"},
                               email="thomas@garage.test", preferred_channel=ChannelKind.EMAIL)
    nadia = do_create_contact(workspace, name="Nadia", identities={ChannelKind.SMS: "+33699887766"},
                              preferred_channel=ChannelKind.WHATSAPP)
    hugo = do_create_contact(workspace, name="Hugo", identities={ChannelKind.EMAIL: "hugo@atelier.test"})
    plans = [  # (channel, sender, [(offset, who)]): who is "in", "agent", "bot" or "note"
        (sms_channel, CUSTOMER, [(0 * M, "in"), (40 * M, "agent"), (2 * H, "in"), (3 * H, "bot"), (D, "in"),
                                 (8 * D, "in"), (8 * D + H, "bot"), (12 * D, "agent"), (15 * D, "in")]),
        (email, "thomas@garage.test", [(2 * D, "in"), (2 * D + H, "note"), (4 * D, "bot"), (6 * D, "agent"),
                                       (9 * D, "in"), (9 * D + 5 * M, "bot")]),
        (sms_channel, "+33699887766", [(3 * D, "in"), (10 * D, "in")]),
        (email, "hugo@atelier.test", [(-5 * D, "in"), (5 * D, "agent")]),
    ]
    conversations = []
    for channel, sender, steps in plans:
        conversation = None
        for offset, who in steps:
            at = start + offset
            if who == "in":
                message = writes(channel, sender, at)
                conversation = message.conversation
                decided(message, DECISION_KINDS[len(conversations) % len(DECISION_KINDS)])
                continue
            reply = (do_add_note(conversation, "Note", actor=agent) if who == "note"
                     else do_send_reply(conversation, "Réponse", actor=agent, channel=channel))
            reply.created_at = at
            if who == "bot":
                reply.sender_kind, reply.sender_user_id = SenderKind.BOT, None
            db.session.commit()
        conversations.append(conversation)
    elodie_thread, thomas_thread = conversations[0], conversations[1]
    do_link_conversation(make_ticket(contact, category="billing"), elodie_thread, actor=agent)
    db.session.execute(update(Conversation).where(Conversation.id == thomas_thread.id).values(assignee_id=agent.id))
    db.session.commit()
    do_merge_contacts(contact, nadia, actor=agent)  # Nadia's messages join Élodie's thread; decisions stay
    return start, thomas, hugo


def _filters(start, agent, contact, thomas, hugo) -> list[ReportFilter]:
    first, week, today = start.date(), (start + 6 * D).date(), utcnow().date()
    return [ReportFilter(start=first, end=today),
            ReportFilter(start=first, end=week),
            ReportFilter(start=(start + 7 * D).date(), end=(start + 13 * D).date()),
            ReportFilter(start=(start + 16 * D).date(), end=today),  # nothing written
            ReportFilter(start=first, end=today, channel=ChannelKind.SMS),
            ReportFilter(start=first, end=today, channel=ChannelKind.EMAIL),
            ReportFilter(start=first, end=today, agent_id=agent.id),
            ReportFilter(start=first, end=today, category="billing"),
            ReportFilter(start=first, end=week, contact_id=contact.id),
            ReportFilter(start=first, end=today, contact_id=thomas.id),
            ReportFilter(start=first, end=today, contact_id=hugo.id)]


def test_conversion_figures_are_the_former_querys_for_every_filter(history, workspace, agent, contact):
    start, thomas, hugo = history
    for f in _filters(start, agent, contact, thomas, hugo):
        w = Window.of(f, "Europe/Paris")
        assert conversion_now(workspace.id, f, w) == conversion_before(workspace.id, f, w), f


def test_conversion_counts_each_conversation_by_its_best_answer(history, workspace, agent, contact):
    start, thomas, hugo = history
    everything = ReportFilter(start=start.date(), end=utcnow().date())
    conversations, people, bot, unanswered, decisions = conversion_now(
        workspace.id, everything, Window.of(everything, "Europe/Paris"))
    # Élodie's thread (Alice answered; Nadia's messages merged in), Thomas's (Alice once), Nadia's
    # first conversation (resolved by the merge, emptied of its messages): 2 conversations, both by
    # people. Hugo only received our message in the range: not counted.
    assert (conversations, people, bot, unanswered) == (2, 2, 0, 0)
    assert sum(decisions.values()) == 9  # one per received message, the merge moves none

    sms_first_week = ReportFilter(start=start.date(), end=(start + 6 * D).date(), channel=ChannelKind.SMS)
    assert conversion_now(workspace.id, sms_first_week, Window.of(sms_first_week, "Europe/Paris"))[:4] == (1, 1, 0, 0)
    second_week = ReportFilter(start=(start + 7 * D).date(), end=(start + 13 * D).date(), contact_id=thomas.id)
    assert conversion_now(workspace.id, second_week, Window.of(second_week, "Europe/Paris"))[:4] == (1, 0, 1, 0)


def test_preferred_channels_count_each_customer_who_wrote_once(history, workspace, agent, contact):
    start, thomas, hugo = history
    everything = ReportFilter(start=start.date(), end=utcnow().date())
    # Élodie (SMS, Nadia merged into her) and Thomas (email); Hugo wrote before the range.
    assert message_facts(workspace.id, everything, Window.of(everything, "Europe/Paris")).preferred == {
        "voice": 0, "sms": 1, "email": 1, "whatsapp": 0, "telegram": 0, "": 0}
