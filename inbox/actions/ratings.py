"""Satisfaction ratings: 1–5 and an optional comment, once per ticket.

SMS / WhatsApp / Telegram customers answer the rating request with a digit (the routing step
calls `do_record_rating`); email and portal customers follow a signed link to the portal's
rating page (/portal/rate/<token>; the older /rate/<token> links redirect there).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import outbox
from ..errors import NotAllowed, ValidationError
from ..extensions import db
from ..models import Rating, Ticket, TicketEventKind, TicketStatus, utcnow

log = logging.getLogger(__name__)
TOKEN_MAX_AGE = timedelta(days=60)
COMMENT_MAX = 2000
_REPLY = re.compile(r"^\s*([1-5])\s*(?:/\s*5|★+|\*+|étoiles?|stars?)?\s*(?:[.,!:;\-–—]\s*(.*))?$",
                    re.IGNORECASE | re.DOTALL)


def parse_rating_reply(text: str | None) -> tuple[int, str | None] | None:
    """ "5", "4/5", "3 !", "5 - super rapide" → (score, comment or None); anything else → None."""
    match = _REPLY.match(text or "")
    if not match:
        return None
    comment = (match.group(2) or "").strip() or None
    return int(match.group(1)), comment


def is_rating_reply(text: str | None) -> bool:
    return parse_rating_reply(text) is not None


def ticket_awaiting_rating(workspace_id: int, contact_id: int, *, now: datetime | None = None,
                           within: timedelta = timedelta(days=14)) -> Ticket | None:
    """The contact's most recent resolved/closed ticket whose rating was asked for and not given."""
    now = now or utcnow()
    stmt = (select(Ticket).outerjoin(Rating, Rating.ticket_id == Ticket.id)
            .where(Ticket.workspace_id == workspace_id, Ticket.contact_id == contact_id,
                   Ticket.status.in_([TicketStatus.RESOLVED, TicketStatus.CLOSED]),
                   Ticket.rating_requested_at.is_not(None), Ticket.rating_requested_at >= now - within,
                   Rating.id.is_(None))
            .order_by(Ticket.rating_requested_at.desc()).limit(1))
    return db.session.scalars(stmt).first()


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="coccinelle-ticket-rating")


def rating_token(ticket: Ticket) -> str:
    return _serializer().dumps({"t": ticket.id, "w": ticket.workspace_id})


def rating_url(ticket: Ticket) -> str:
    """The signed link to the portal's rating page (no sign-in: the link is the key)."""
    return f"{current_app.config['PUBLIC_BASE_URL']}/portal/rate/{rating_token(ticket)}"


def ticket_from_token(token: str) -> Ticket | None:
    """The ticket a rating link names, or None for a forged, altered or expired link."""
    try:
        data = _serializer().loads(token, max_age=int(TOKEN_MAX_AGE.total_seconds()))
    except BadSignature:
        return None
    ticket = db.session.get(Ticket, data.get("t")) if isinstance(data, dict) else None
    if ticket is None or ticket.workspace_id != data.get("w"):
        return None
    return ticket


def check_rating(score, comment: str | None) -> tuple[int, str | None]:
    try:
        value = int(str(score).strip())
    except (TypeError, ValueError):
        value = 0
    if not 1 <= value <= 5:
        raise ValidationError(_("Choose a rating from 1 to 5."), field="score")
    comment = (comment or "").strip() or None
    if comment and len(comment) > COMMENT_MAX:
        raise ValidationError(_("The comment is limited to %(n)d characters.", n=COMMENT_MAX), field="comment")
    return value, comment


def do_record_rating(ticket: Ticket, score: int, comment: str | None = None, source: str = "link", *,
                     now: datetime | None = None) -> Rating:
    """Record the customer's rating, once (NotAllowed when already rated or not yet resolved)."""
    from .tickets import _changed, _event

    score, comment = check_rating(score, comment)
    if ticket.status not in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        raise NotAllowed(_("This ticket can be rated once it is resolved."))
    if db.session.scalar(select(Rating.id).where(Rating.ticket_id == ticket.id)):
        raise NotAllowed(_("This ticket has already been rated. Thank you!"))
    now = now or utcnow()
    rating = Rating(workspace_id=ticket.workspace_id, ticket_id=ticket.id, score=score, comment=comment,
                    source=str(source)[:16], agent_id=ticket.assignee_id, created_at=now)
    try:
        with db.session.begin_nested():
            db.session.add(rating)
            db.session.flush()
    except IntegrityError:
        raise NotAllowed(_("This ticket has already been rated. Thank you!")) from None
    _event(ticket, TicketEventKind.RATED, internal=False, body=comment or "", now=now,
           data={"score": score, "source": str(source)})
    _changed(ticket)
    outbox.commit()
    log.info("ticket rated ticket_id=%s score=%s source=%s", ticket.id, score, source)
    return rating
