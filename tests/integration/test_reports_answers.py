"""Each received message keeps when it was first answered (Message.answered_at), as messages are
written: the reports' response times add these up. The figures must be the ones the reports gave
when they looked for each message's answer (the window query kept below as the reference), for
data written through the app and for data back-filled by the migration."""

from __future__ import annotations

import importlib.util
import secrets
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import and_, case, func, or_, select, update

from inbox.actions.contacts import do_merge_contacts
from inbox.actions.conversations import do_add_note, do_send_reply
from inbox.actions.workspace import do_create_contact
from inbox.channels.base import InboundMessage
from inbox.extensions import db
from inbox.kinds import ChannelKind
from inbox.models import Channel, Conversation, Message, SenderKind, utcnow
from inbox.models.base import seconds_between
from inbox.models.reports import (
    _RECEIVED, _SENT, ReportFilter, Window, _channel_join, _mean, _message_filters,
    _message_scope, message_facts,
)
from inbox.orchestrator.ingest import do_ingest

from .ticket_fixtures import CUSTOMER, contact  # noqa: F401

H = timedelta(hours=1)
D = timedelta(days=1)
MIGRATION = Path(__file__).parents[2] / "migrations" / "versions" / "0010_message_answered_at.py"


def writes(channel, sender, at=None) -> Message:
    result = do_ingest(channel, InboundMessage(provider_message_id=f"a-{secrets.token_hex(6)}", sender=sender,
                                               recipient=channel.address, body="Bonjour", sent_at=at))
    return db.session.get(Message, result.message_id)


def answered_at(message: Message):
    return db.session.scalar(select(Message.answered_at).where(Message.id == message.id))


def backdate(message: Message, at, *, sender_kind: SenderKind | None = None) -> Message:
    """A reply written in the past (as the reports tests set their history)."""
    message.created_at = at
    if sender_kind is not None:
        message.sender_kind, message.sender_user_id = sender_kind, None
    db.session.commit()
    return message


def test_an_agent_reply_gives_the_messages_waiting_before_it_their_answer_time(workspace, agent, sms_channel,
                                                                              contact):
    asked = writes(sms_channel, CUSTOMER, utcnow() - 2 * H)
    again = writes(sms_channel, CUSTOMER, utcnow() - H)
    assert answered_at(asked) is None and answered_at(again) is None

    reply = do_send_reply(asked.conversation, "Nous regardons.", actor=agent, channel=sms_channel)

    assert answered_at(asked) == answered_at(again) == reply.created_at


def test_a_note_is_not_an_answer(workspace, agent, sms_channel, contact):
    asked = writes(sms_channel, CUSTOMER, utcnow() - H)
    do_add_note(asked.conversation, "Je rappelle demain", actor=agent)
    assert answered_at(asked) is None


def test_a_message_after_the_answer_waits_for_the_next_one(workspace, agent, sms_channel, contact):
    asked = writes(sms_channel, CUSTOMER, utcnow() - H)
    first = do_send_reply(asked.conversation, "Nous regardons.", actor=agent, channel=sms_channel)
    thanks = writes(sms_channel, CUSTOMER)  # now, after the reply
    assert answered_at(thanks) is None

    second = do_send_reply(asked.conversation, "Avec plaisir.", actor=agent, channel=sms_channel)

    assert answered_at(thanks) == second.created_at
    assert answered_at(asked) == first.created_at  # its first answer stays


def test_a_message_delivered_late_takes_the_answer_already_written(workspace, agent, sms_channel, contact):
    asked = writes(sms_channel, CUSTOMER, utcnow() - 3 * H)
    reply = do_send_reply(asked.conversation, "Nous regardons.", actor=agent, channel=sms_channel)
    late = writes(sms_channel, CUSTOMER, reply.created_at - H)  # sent before the reply, received after it
    assert late.conversation_id == asked.conversation_id
    assert answered_at(late) == reply.created_at


def test_sara_answers_too_and_a_reply_moved_earlier_answers_earlier(workspace, agent, sms_channel, contact):
    asked = writes(sms_channel, CUSTOMER, utcnow() - 3 * H)
    reply = do_send_reply(asked.conversation, "Voici nos horaires.", actor=agent, channel=sms_channel)
    backdate(reply, asked.created_at + 10 * timedelta(minutes=1), sender_kind=SenderKind.BOT)
    assert answered_at(asked) == asked.created_at + 10 * timedelta(minutes=1)


def test_the_report_counts_an_answer_written_after_its_range(workspace, agent, sms_channel, contact):
    asked = writes(sms_channel, CUSTOMER, utcnow() - 4 * D)
    f = ReportFilter(start=(utcnow() - 6 * D).date(), end=(utcnow() - 3 * D).date())
    before = message_facts(workspace.id, f, Window.of(f, "Europe/Paris")).channels.total
    assert (before.received, before.answered) == (1, 0)

    reply = do_send_reply(asked.conversation, "Désolé du délai.", actor=agent, channel=sms_channel)

    after = message_facts(workspace.id, f, Window.of(f, "Europe/Paris")).channels.total
    assert (after.received, after.sent, after.answered) == (1, 0, 1)  # the reply itself is after the range
    assert after.response_minutes == _mean((reply.created_at - asked.created_at).total_seconds(), 1)


def test_merged_contacts_messages_are_answered_in_their_one_thread(workspace, agent, sms_channel, email, contact):
    thomas = do_create_contact(workspace, name="Thomas", identities={ChannelKind.EMAIL: "thomas@garage.test"},
                               email="thomas@garage.test")
    by_mail = writes(email, "thomas@garage.test", utcnow() - 3 * H)
    by_sms = writes(sms_channel, CUSTOMER, utcnow() - 2 * H)
    reply = do_send_reply(by_sms.conversation, "Nous regardons.", actor=agent, channel=sms_channel)
    assert answered_at(by_mail) is None

    do_merge_contacts(contact, thomas, actor=agent)

    assert answered_at(by_mail) == reply.created_at


# -- the same figures as the window query the reports used before -----------------------------------
def channel_activity_by_window(workspace_id: int, f: ReportFilter, w: Window) -> list[tuple]:
    """The reports' query before answered_at: each received message's answer found with a window
    function over the range's messages, then after the range per conversation still waiting."""
    filters = _message_filters(workspace_id, f)
    received = and_(_RECEIVED, Channel.id.is_not(None), *filters)
    sent = and_(_SENT, Channel.id.is_not(None), *filters)
    answer_at = case((_SENT, Message.created_at))
    where = [Message.workspace_id == workspace_id, Message.created_at >= w.start, Message.created_at < w.end,
             Message.internal.is_(False), or_(received, _SENT)]
    if filters:
        concerned = _channel_join(select(Message.conversation_id).where(
            *_message_scope(workspace_id, f, w), or_(_RECEIVED, _SENT)), f).correlate(None)
        where.append(Message.conversation_id.in_(concerned))
    rows = (
        select(Message.conversation_id, Channel.kind, Message.created_at.label("at"),
               case((received, 1), else_=0).label("received"), case((sent, 1), else_=0).label("sent"),
               func.min(answer_at).over(partition_by=Message.conversation_id,
                                        order_by=(Message.created_at.desc(), case((_SENT, 0), else_=1)),
                                        rows=(None, 0)).label("reply_at"))
        .outerjoin(Channel, Channel.id == Message.channel_id).where(*where)
    ).cte("activity_rows")
    waiting = select(rows.c.conversation_id).where(rows.c.received == 1, rows.c.reply_at.is_(None))
    later = (select(Message.conversation_id, func.min(Message.created_at).label("reply_at"))
             .where(Message.conversation_id.in_(waiting), Message.created_at >= w.end,
                    Message.internal.is_(False), _SENT)
             .group_by(Message.conversation_id)).subquery()
    reply_at = case((rows.c.received == 1, func.coalesce(rows.c.reply_at, later.c.reply_at)))
    stmt = (select(rows.c.kind, func.sum(rows.c.received), func.sum(rows.c.sent), func.count(reply_at),
                   func.sum(seconds_between(reply_at, rows.c.at)))
            .outerjoin(later, and_(later.c.conversation_id == rows.c.conversation_id, rows.c.received == 1,
                                   rows.c.reply_at.is_(None)))
            .where(rows.c.kind.is_not(None)).group_by(rows.c.kind))
    by_kind = {str(kind): (int(r or 0), int(s or 0), int(n), float(sec) if sec is not None else None)
               for kind, r, s, n, sec in db.session.execute(stmt)}
    result = []
    for kind in ChannelKind:
        received_n, sent_n, answered, seconds = by_kind.get(str(kind), (0, 0, 0, None))
        result.append((str(kind), received_n, sent_n, answered, _mean(seconds, answered)))
    answered = sum(r[3] for r in result)
    seconds = sum(v[3] or 0 for v in by_kind.values())
    return [*result, ("", sum(r[1] for r in result), sum(r[2] for r in result), answered, _mean(seconds, answered))]


def stored(workspace_id: int, f: ReportFilter, w: Window) -> list[tuple]:
    activity = message_facts(workspace_id, f, w).channels
    return [(r.kind, r.received, r.sent, r.answered, r.response_minutes) for r in [*activity.rows, activity.total]]


@pytest.fixture
def exchanges(workspace, agent, sms_channel, email, contact):
    """Three weeks of exchanges by SMS and email: replies by Alice and by Sara, notes, messages
    waiting across answers, a reply after the range, an answer at the very time of a message."""
    thomas = do_create_contact(workspace, name="Thomas", identities={ChannelKind.EMAIL: "thomas@garage.test"},
                               email="thomas@garage.test")
    start = utcnow() - 21 * D
    m = timedelta(minutes=1)
    plans = [  # (channel, sender, [(offset, who)]): who is "in", "agent", "bot" or "note"
        (sms_channel, CUSTOMER, [(0 * m, "in"), (5 * m, "in"), (40 * m, "agent"), (2 * H, "in"), (2 * H, "note"),
                                 (3 * H + 7 * m, "bot"), (D, "in"), (D, "agent"), (3 * D, "in")]),
        (email, "thomas@garage.test", [(2 * D, "in"), (2 * D + 90 * m, "note"), (4 * D, "bot"), (4 * D, "in"),
                                       (9 * D, "in"), (19 * D, "agent")]),
    ]
    for channel, sender, steps in plans:
        conversation = None
        for offset, who in steps:
            at = start + offset
            if who == "in":
                conversation = writes(channel, sender, at).conversation
            elif who == "note":
                backdate(do_add_note(conversation, "Note", actor=agent), at)
            else:
                reply = do_send_reply(conversation, "Réponse", actor=agent, channel=channel)
                backdate(reply, at, sender_kind=SenderKind.BOT if who == "bot" else None)
    db.session.execute(update(Conversation).where(Conversation.contact_id == thomas.id).values(assignee_id=agent.id))
    db.session.commit()
    return start, thomas


def _filters(start, agent, thomas) -> list[ReportFilter]:
    first, late = start.date(), (start + 10 * D).date()
    return [ReportFilter(start=first, end=(start + 6 * D).date()),
            ReportFilter(start=first, end=(start + 6 * D).date(), channel="sms"),
            ReportFilter(start=first, end=(start + 6 * D).date(), agent_id=agent.id),
            ReportFilter(start=first, end=(start + 6 * D).date(), contact_id=thomas.id),
            ReportFilter(start=late, end=(start + 13 * D).date()),
            ReportFilter(start=first, end=utcnow().date())]


def test_figures_written_through_the_app_are_the_window_querys(exchanges, workspace, agent):
    start, thomas = exchanges
    for f in _filters(start, agent, thomas):
        w = Window.of(f, "Europe/Paris")
        assert stored(workspace.id, f, w) == channel_activity_by_window(workspace.id, f, w), f
    whole = _filters(start, agent, thomas)[-1]
    everything = stored(workspace.id, whole, Window.of(whole, "Europe/Paris"))[-1]
    assert everything[1:4] == (8, 5, 7)  # 8 received, 5 replies (notes are not), 7 answered (1 waiting)


def test_the_migration_back_fill_gives_the_window_querys_figures(exchanges, workspace, agent):
    start, thomas = exchanges
    db.session.execute(update(Message).values(answered_at=None))  # as rows written before 0010 are
    spec = importlib.util.spec_from_file_location("migration_0010", MIGRATION)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)

    db.session.execute(migration.backfill_statement())
    db.session.commit()

    assert db.session.scalar(select(func.count()).where(Message.answered_at.is_not(None))) == 7
    for f in _filters(start, agent, thomas):
        w = Window.of(f, "Europe/Paris")
        assert stored(workspace.id, f, w) == channel_activity_by_window(workspace.id, f, w), f
