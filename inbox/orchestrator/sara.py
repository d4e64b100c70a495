"""Sara, the routing agent, applied to one stored inbound message.

The engine (inbox/ai) only decides; this module builds what it needs from the database,
stores the decision, and acts on it through the ordinary actions: a bot reply, an appointment
or a rating recorded, a ticket opened (or the open one raised), or nothing when a person
should answer. Model output never chooses the tenant, the recipient or the channel: those
come from the message itself.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import func, select

from .. import outbox
from flask import current_app

from ..ai import agent
from ..ai import types as ai
from ..ai.engine import Engine
from ..channels.registry import can_send_text
from ..errors import InboxError, ValidationError
from ..extensions import db
from ..models import (
    Appointment, Conversation, KnowledgeArticle, Message, SaraDecision, SaraIntent, SaraSettings,
    SenderKind, TrainingExample, Workspace, utcnow,
)
from ..models.sara import HeldReply
from .sending_rules import SendRules, auto_reply_room, format_hours, next_allowed

log = logging.getLogger(__name__)
WHATSAPP_WINDOW_HOURS = 24


def run_sara(message: Message, *, now: datetime | None = None) -> SaraDecision | None:
    """Decide and act, once per message (the unique key on the decision guards re-runs)."""
    now = now or utcnow()
    settings = SaraSettings.of(message.workspace_id)
    if not settings.enabled or SaraDecision.for_message(message.id) is not None:
        return None
    conversation = message.conversation
    context = _context(message, conversation, settings, now=now)
    started = time.perf_counter()
    decision = agent.decide(message.body, context, engine=engine_for(settings))
    latency_ms = (time.perf_counter() - started) * 1000
    if not message.contact.locale and decision.language != context.default_language:
        message.contact.locale = decision.language[:8]  # detected: answered in their language from now on
    decision, hold_until = _channel_rules(decision, message, now=now)
    row = _store(decision, message, latency_ms=latency_ms)
    if hold_until is not None:
        _hold(row, decision.reply, hold_until, now=now)
    else:
        _act(decision, row, message, conversation, now=now)
    _announce(row, conversation)
    outbox.commit()
    log.info("sara message_id=%s kind=%s category=%s confidence=%.2f engine=%s ms=%.1f",
             message.id, row.kind, row.category, row.confidence, row.engine, latency_ms)
    return row


# -- which engine ------------------------------------------------------------------------------------
_ENGINES: dict[tuple, Engine] = {}


def engine_for(settings: SaraSettings) -> Engine:
    """One engine per process and configuration: the offline one trains per playbook and keeps
    what it trained (keyed by the playbook's fingerprint), so only changes cost a retraining."""
    config = current_app.config
    if settings.engine == "openai" and (config.get("OPENAI_API_KEY") or config.get("OPENAI_BASE_URL")):
        key = ("openai", settings.model, config.get("OPENAI_BASE_URL"))
        if key not in _ENGINES:
            from ..ai.openai_engine import OpenAIEngine

            _ENGINES[key] = OpenAIEngine(model=settings.model, api_key=config.get("OPENAI_API_KEY") or "none",
                                         base_url=config.get("OPENAI_BASE_URL"),
                                         timeout=config.get("OPENAI_TIMEOUT", 15.0))
        return _ENGINES[key]
    if ("offline",) not in _ENGINES:
        from ..ai.offline import OfflineEngine

        _ENGINES[("offline",)] = OfflineEngine()
    return _ENGINES[("offline",)]


# -- what Sara knows -----------------------------------------------------------------------------------
def playbook_of(workspace_id: int, settings: SaraSettings) -> ai.Playbook:
    articles = db.session.scalars(select(KnowledgeArticle).where(
        KnowledgeArticle.workspace_id == workspace_id, KnowledgeArticle.enabled.is_(True)))
    intents = list(db.session.scalars(select(SaraIntent).where(SaraIntent.workspace_id == workspace_id)))
    corrections: dict[str, list[str]] = {}
    for example in db.session.scalars(select(TrainingExample).where(
            TrainingExample.workspace_id == workspace_id, TrainingExample.intent.is_not(None))):
        corrections.setdefault(example.intent, []).append(example.text)
    return ai.Playbook(
        articles=tuple(ai.Article(id=str(a.id), title=a.title, body=a.body, language=a.language) for a in articles),
        intents=tuple(ai.Intent(
            name=i.name, examples=tuple(i.examples or ()) + tuple(corrections.get(i.name, ())),
            action=ai.IntentAction(i.action), category=ai.TicketCategory(i.category),
            priority=ai.Priority(i.priority), article_id=str(i.article_id) if i.article_id else None,
            reply_template=i.reply_template, always_escalate=i.always_escalate) for i in intents),
        out_of_scope_examples=tuple(settings.out_of_scope_examples or ()),
    )


def _context(message: Message, conversation: Conversation, settings: SaraSettings, *,
             now: datetime) -> ai.DecisionContext:
    from ..actions.ratings import ticket_awaiting_rating

    workspace = db.session.get(Workspace, message.workspace_id)
    awaiting = None
    if Appointment.awaiting_answer(message.contact_id, now) is not None:
        awaiting = ai.Awaiting.APPOINTMENT_CONFIRMATION
    elif ticket_awaiting_rating(message.workspace_id, message.contact_id, now=now) is not None:
        awaiting = ai.Awaiting.RATING
    channel = message.channel
    return ai.DecisionContext(
        playbook=playbook_of(message.workspace_id, settings),
        awaiting=awaiting,
        bot_replies_since_human=_bot_replies_since_human(conversation),
        has_human_assignee=conversation.assignee_id is not None,
        channel=channel.kind if channel else None,
        auto_reply_enabled=_may_auto_reply(message, settings, now=now),
        confidence_threshold=settings.confidence_threshold,
        default_language=workspace.default_locale,
    )


def _bot_replies_since_human(conversation: Conversation) -> int:
    last_agent = select(func.max(Message.id)).where(
        Message.conversation_id == conversation.id, Message.sender_kind == SenderKind.AGENT).scalar_subquery()
    stmt = select(func.count(Message.id)).where(
        Message.conversation_id == conversation.id, Message.sender_kind == SenderKind.BOT,
        Message.id > func.coalesce(last_agent, 0))
    return db.session.scalar(stmt) or 0


def _may_auto_reply(message: Message, settings: SaraSettings, *, now: datetime) -> bool:
    """Channel rules first: switched off here, a channel that cannot write back, WhatsApp's window."""
    channel = message.channel
    if channel is None or channel.id in (settings.auto_reply_off_channels or []):
        return False
    if not channel.enabled or not can_send_text(channel.kind, channel.provider):
        return False
    if channel.kind == "whatsapp" and (now - message.created_at).total_seconds() > WHATSAPP_WINDOW_HOURS * 3600:
        return False
    return True


def _channel_rules(decision: ai.Decision, message: Message, *,
                   now: datetime) -> tuple[ai.Decision, datetime | None]:
    """The channel's sending rules for an automatic answer (issue: quiet hours, daily limits).

    Quiet hours: the answer is kept and sent at the opening of the allowed hours, rather than
    handed to the team. A support team expects routine questions asked at night to be answered
    first thing in the morning without anyone typing; a ticket per night-time "what are your
    hours?" would fill the morning queue with work the bot already did. A person who takes the
    conversation before the opening cancels it (release_held_reply).
    Daily limit reached: a person answers (a ticket); agents' replies are not limited, and an
    answer postponed to tomorrow would be late.
    Returns the decision to store and, for quiet hours, when to send the answer.
    """
    channel = message.channel
    if decision.kind != ai.DecisionKind.AUTO_REPLY or channel is None:
        return decision, None
    timezone = db.session.get(Workspace, message.workspace_id).timezone
    rules = SendRules.of(channel)
    opening = next_allowed(rules, now, timezone)
    if opening > now:
        local = opening.astimezone(ZoneInfo(timezone))
        why = (f"quiet hours (sending allowed {format_hours(rules.window)}): "
               f"the answer is sent at the opening, {local:%Y-%m-%d %H:%M}")
        return replace(decision, guardrail=ai.Guardrail.QUIET_HOURS,
                       reason=_clip(f"{decision.reason}; {why}")), opening
    if auto_reply_room(channel, now, timezone) == 0:
        return _daily_limit_reached(decision, rules), None
    return decision, None


def _daily_limit_reached(decision: ai.Decision, rules: SendRules) -> ai.Decision:
    topic = (decision.intent or "request").replace("_", " ")
    return replace(decision, kind=ai.DecisionKind.ESCALATE, reply=None, article_id=None,
                   priority=ai.Priority(str(decision.priority)).at_least(ai.Priority.MEDIUM),
                   guardrail=ai.Guardrail.DAILY_LIMIT,
                   reason=f"{topic}: this channel's daily limit of {rules.daily_limit} automated messages "
                          "is reached, a person answers")


def _clip(text: str) -> str:
    return text if len(text) <= 300 else text[:299] + "…"


# -- what Sara does --------------------------------------------------------------------------------------
def _store(decision: ai.Decision, message: Message, *, latency_ms: float) -> SaraDecision:
    usage = decision.usage or ai.TokenUsage()
    row = SaraDecision(
        workspace_id=message.workspace_id, message_id=message.id, conversation_id=message.conversation_id,
        kind=str(decision.kind), category=str(decision.category), priority=str(decision.priority),
        language=decision.language[:8], confidence=round(float(decision.confidence), 4),
        reason=(decision.reason or "")[:300], guardrail=str(decision.guardrail) if decision.guardrail else None,
        engine=decision.engine[:40], model=(decision.model or "")[:80], intent=decision.intent,
        article_id=int(decision.article_id) if (decision.article_id or "").isdigit() else None,
        prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens, latency_ms=latency_ms,
    )
    db.session.add(row)
    db.session.flush()
    return row


def _hold(row: SaraDecision, reply: str | None, at: datetime, *, now: datetime) -> None:
    """Keep the answer and promise the job that sends it at the opening (after commit)."""
    row.held_reply, row.reply_at, row.reply_state = reply, at, HeldReply.HELD
    outbox.enqueue_job("inbox.jobs.route.send_held_reply", row.id, workspace_id=row.workspace_id,
                       # unique per promise: a release that finds it too early promises again
                       job_id=f"sara-held-{row.id}-{int(at.timestamp())}-{int(now.timestamp())}",
                       delay=max(1.0, (at - now).total_seconds()))


def release_held_reply(decision_id: int, *, now: datetime | None = None) -> str | None:
    """Send an answer held over the quiet hours, unless a person took over in the meantime or the
    channel no longer allows it (then the team gets a ticket, so the customer is not forgotten).
    Idempotent: only a HELD answer moves, once. Returns its new state."""
    now = now or utcnow()
    row = db.session.get(SaraDecision, decision_id)
    if row is None or row.reply_state != HeldReply.HELD:
        return None
    message = db.session.get(Message, row.message_id)
    conversation = message.conversation
    if row.reply_at > now or _still_quiet(message, now):
        _hold(row, row.held_reply, max(row.reply_at, _opening(message, now)), now=now)
        outbox.commit()
        return HeldReply.HELD
    person = _person_on_it(message, conversation)
    blocked = None if person else _blocked_now(message, now=now)
    if person or blocked:
        row.reply_state = HeldReply.DROPPED
        if blocked:
            row.ticket_id = _escalate(ai.Decision(
                ai.DecisionKind.ESCALATE, category=ai.TicketCategory(row.category),
                priority=ai.Priority(row.priority)), message, conversation, now=now)
        _release_line(row, conversation, "hand_to_human" if person else "escalate",
                      f"held answer not sent: {person or blocked}")
    else:
        row.reply_state = HeldReply.SENT
        _bot_reply(message, conversation, row.held_reply or "")
        _release_line(row, conversation, "auto_reply", "held answer sent at the opening of the sending hours")
    outbox.commit()
    return row.reply_state


def _opening(message: Message, now: datetime) -> datetime:
    timezone = db.session.get(Workspace, message.workspace_id).timezone
    return next_allowed(SendRules.of(message.channel), now, timezone)


def _still_quiet(message: Message, now: datetime) -> bool:
    return message.channel is not None and _opening(message, now) > now


def _person_on_it(message: Message, conversation: Conversation) -> str | None:
    if conversation.assignee_id is not None:
        return "a team member took the conversation"
    answered = db.session.scalar(select(func.count(Message.id)).where(
        Message.conversation_id == conversation.id, Message.sender_kind == SenderKind.AGENT,
        Message.internal.is_(False), Message.id > message.id))
    return "a team member answered" if answered else None


def _blocked_now(message: Message, *, now: datetime) -> str | None:
    settings = SaraSettings.of(message.workspace_id)
    if not settings.enabled:
        return "Sara was switched off"
    # The WhatsApp window counts from the customer's message, as when Sara decided.
    if not _may_auto_reply(message, settings, now=now):
        return "automatic answers are no longer allowed on this channel"
    timezone = db.session.get(Workspace, message.workspace_id).timezone
    if auto_reply_room(message.channel, now, timezone) == 0:
        return "the channel's daily limit is reached"
    return None


def _release_line(row: SaraDecision, conversation: Conversation, kind: str, reason: str) -> None:
    from ..actions.conversations import system_line

    system_line(conversation, {"kind": "sara", "decision": kind, "category": row.category,
                               "priority": row.priority, "confidence": row.confidence, "reason": reason,
                               "decision_id": row.id},
                f"Sara: {kind} ({row.category}, {row.confidence:.2f}) — {reason}")


def _act(decision: ai.Decision, row: SaraDecision, message: Message, conversation: Conversation, *,
         now: datetime) -> None:
    if decision.kind == ai.DecisionKind.COLLECT:
        _collect(decision, message, conversation, now=now)
    elif decision.kind == ai.DecisionKind.AUTO_REPLY and decision.reply:
        _bot_reply(message, conversation, decision.reply)
    elif decision.kind == ai.DecisionKind.ESCALATE:
        row.ticket_id = _escalate(decision, message, conversation, now=now)


def _collect(decision: ai.Decision, message: Message, conversation: Conversation, *, now: datetime) -> None:
    from ..actions.appointments import do_answer_appointment
    from ..actions.ratings import do_record_rating, ticket_awaiting_rating

    locale = _locale_of(message)
    if decision.collected in (ai.Collected.CONFIRM, ai.Collected.DECLINE, ai.Collected.CANCEL):
        appointment = Appointment.awaiting_answer(message.contact_id, now)
        if appointment is None:
            return
        confirmed = decision.collected == ai.Collected.CONFIRM
        do_answer_appointment(appointment, confirmed=confirmed, now=now, commit=False)
        with force_locale(locale):
            text = (_("Thank you, your appointment is confirmed.") if confirmed
                    else _("Noted: your appointment is cancelled. Write to us to book another one."))
        _bot_reply(message, conversation, text)
    elif decision.collected == ai.Collected.RATING and decision.rating:
        ticket = ticket_awaiting_rating(message.workspace_id, message.contact_id, now=now)
        if ticket is None:
            return
        try:
            do_record_rating(ticket, decision.rating, None, source=str(message.channel.kind), now=now)
        except InboxError:
            return  # already rated: nothing to thank for again
        with force_locale(locale):
            _bot_reply(message, conversation, _("Thank you for your rating!"))


def _escalate(decision: ai.Decision, message: Message, conversation: Conversation, *, now: datetime) -> int | None:
    """A ticket with Sara's category and priority, or the open one raised; the customer is told
    a person will answer within the SLA (do_create_ticket's confirmation)."""
    from ..actions.tickets import do_create_ticket, do_set_ticket_priority, open_tickets_of_contact

    existing = open_tickets_of_contact(message.workspace_id, message.contact_id)
    if existing:
        ticket = existing[0]
        if ai.Priority(str(decision.priority)).rank > ai.Priority(str(ticket.priority)).rank:
            do_set_ticket_priority(ticket, str(decision.priority), actor=None)
        return ticket.id
    summary = " ".join(message.body.split())[:90] or _("Message from %(name)s", name=message.contact.display_name)
    # A channel where Sara's automatic answers are switched off gets no automated note either.
    quiet_channel = message.channel_id in (SaraSettings.of(message.workspace_id).auto_reply_off_channels or [])
    ticket = do_create_ticket(message.contact, subject=summary, description=message.body,
                              category=str(decision.category), priority=str(decision.priority),
                              source="ai", conversation=conversation, notify_customer=not quiet_channel, now=now)
    return ticket.id


def _bot_reply(message: Message, conversation: Conversation, text: str) -> None:
    from ..actions.conversations import do_send_bot_reply

    try:
        do_send_bot_reply(conversation, text, channel=message.channel, commit=False)
    except ValidationError:
        log.info("sara reply not sent message_id=%s: the channel cannot answer", message.id)


def _announce(row: SaraDecision, conversation: Conversation) -> None:
    """The decision as a small line in the thread, for the agents."""
    from ..actions.conversations import system_line

    kind = "auto_reply_held" if row.reply_state == HeldReply.HELD else row.kind
    system_line(conversation, {"kind": "sara", "decision": kind, "category": row.category,
                               "priority": row.priority, "confidence": row.confidence, "reason": row.reason,
                               "decision_id": row.id},
                f"Sara: {kind} ({row.category}, {row.confidence:.2f}) — {row.reason}")


def _locale_of(message: Message) -> str:
    workspace = db.session.get(Workspace, message.workspace_id)
    return message.contact.locale or workspace.default_locale


# -- appointment commands (/rdv, /nouveau_rdv, /annuler) ---------------------------------------------------
APPOINTMENT_COMMANDS = ("rdv", "nouveau_rdv", "annuler")


def handle_appointment_command(message: Message, *, now: datetime | None = None) -> bool:
    """The customer's own appointments, from a bot command: list, book (a request for the team),
    cancel the next one. Answered by the bot on the channel it came from."""
    command = (message.meta or {}).get("command")
    if command not in APPOINTMENT_COMMANDS or message.channel is None:
        return False
    from ..actions.appointments import do_answer_appointment, upcoming_text

    now = now or utcnow()
    workspace = db.session.get(Workspace, message.workspace_id)
    locale = _locale_of(message)
    upcoming = Appointment.upcoming_for(message.contact_id, now)
    with force_locale(locale):
        if command == "rdv":
            text = upcoming_text(upcoming, workspace=workspace, locale=locale)
        elif command == "annuler":
            if upcoming:
                do_answer_appointment(upcoming[0], confirmed=False, now=now, commit=False)
                text = _("Noted: your appointment is cancelled. Write to us to book another one.")
            else:
                text = _("You have no upcoming appointment.")
        else:
            _request_booking(message, now=now)
            text = _("Thank you: a member of the team will propose a time slot shortly.")
    _bot_reply(message, message.conversation, text)
    outbox.commit()
    return True


def _request_booking(message: Message, *, now: datetime) -> None:
    from ..actions.tickets import do_create_ticket

    wish = str((message.meta or {}).get("args") or "").strip()
    do_create_ticket(message.contact, subject=_("Appointment request"), description=wish or message.body,
                     category="general", priority="medium", source="ai", conversation=message.conversation,
                     notify_customer=False, now=now)
