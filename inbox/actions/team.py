"""The team, for admins: invitations, roles, hourly costs, capacity, availability, working
hours, deactivation. Every change is audit-logged in its own transaction.

Invitation links carry a token signed with the app's secret over (invitation id, nonce): it
works once, for 7 days, and sending the invitation again draws a new nonce (older links die).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal

from babel.dates import format_datetime
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import func, select, update

from . import get_in_workspace
from .. import outbox
from ..business_time import parse_day_openings, week_to_json
from ..errors import NotAllowed, ValidationError
from ..extensions import db
from ..mailer import Email, get_mailer
from ..models import (
    Availability, Conversation, ConversationStatus, Invitation, Role, Ticket, TicketStatus, User, Workspace,
    utcnow,
)
from ..models.invitation import INVITATION_TTL, new_nonce
from .assignment import do_set_availability
from .audit import record
from .crm import LOCALES
from .ticket_settings import do_set_capacity
from .timetracking import check_hourly_cost, do_set_user_rate, rate_on
from .workspace import EMAIL, check_new_user

log = logging.getLogger(__name__)
INVITATION_JOB = "inbox.jobs.team.send_invitation"
INVITATION_RETRY_INTERVALS = [30, 120, 600, 1800]
_SALT = "coccinelle-invitation"


# -- access ------------------------------------------------------------------------------------
def access_member(user_id: int | None, admin: User) -> User:
    """A member (active or not) of the admin's workspace; 404 otherwise."""
    return get_in_workspace(User, user_id, admin.workspace_id)


def access_invitation(invitation_id: int, admin: User) -> Invitation:
    return get_in_workspace(Invitation, invitation_id, admin.workspace_id)


def team_of(workspace_id: int) -> list[User]:
    """Everyone, deactivated members last."""
    stmt = (select(User).where(User.workspace_id == workspace_id)
            .order_by(User.is_active_member.desc(), User.name, User.id))
    return list(db.session.scalars(stmt))


# -- check -------------------------------------------------------------------------------------
def check_role(value: str | None) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ValidationError(_("Choose a role: admin or agent."), field="role") from None


def check_invite_email(value: str | None) -> str:
    email = (value or "").strip().lower()
    if not EMAIL.match(email) or len(email) > 254:
        raise ValidationError(_("Enter a valid email address."), field="email")
    if db.session.scalar(select(User.id).where(func.lower(User.email) == email)):
        raise ValidationError(_("A user with this email already exists."), field="email")
    return email


def check_member_name(value: str | None) -> str:
    name = " ".join((value or "").split())
    if not name:
        raise ValidationError(_("Enter your name."), field="name")
    if len(name) > 120:
        raise ValidationError(_("The name is limited to %(n)d characters.", n=120), field="name")
    return name


def check_working_hours(days: Sequence[str] | None) -> list | None:
    """Seven texts (Monday first) such as "09:00-12:30, 13:30-18:00"; None: the workspace's hours."""
    if days is None:
        return None
    if len(days) != 7:
        raise ValidationError(_("Give the opening hours of the seven days."), field="working_hours")
    try:
        week = tuple(parse_day_openings(text) for text in days)
    except ValueError:
        raise ValidationError(_("Write opening hours as 09:00-12:30, 13:30-18:00."), field="working_hours") from None
    if not any(week):
        raise ValidationError(_("Give at least one working day, or use the workspace's business hours."),
                              field="working_hours")
    return week_to_json(week)


def _other_active_admins(user: User) -> int:
    return db.session.scalar(select(func.count(User.id)).where(
        User.workspace_id == user.workspace_id, User.role == Role.ADMIN, User.is_active_member.is_(True),
        User.id != user.id)) or 0


def _check_keeps_an_admin(user: User) -> None:
    if user.role == Role.ADMIN and user.is_active_member and not _other_active_admins(user):
        raise NotAllowed(_("The workspace needs at least one active admin: make someone else admin first."))


# -- invitations -------------------------------------------------------------------------------
def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def invitation_token(invitation: Invitation) -> str:
    return _serializer().dumps({"i": invitation.id, "n": invitation.nonce})


def invitation_url(invitation: Invitation) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL']}/invite/{invitation_token(invitation)}"


def invitation_from_token(token: str, *, now: datetime | None = None) -> tuple[Invitation | None, str | None]:
    """(invitation, None) when the link may be used; (None or the invitation, why not) otherwise:
    "invalid", "expired", "used" or "revoked"."""
    try:
        data = _serializer().loads(token, max_age=int(INVITATION_TTL.total_seconds()) + 60)
    except BadSignature:  # forged, altered, or older than the TTL (SignatureExpired)
        return None, "invalid"
    invitation = db.session.get(Invitation, data.get("i")) if isinstance(data, dict) else None
    if invitation is None or not hmac.compare_digest(str(data.get("n", "")), invitation.nonce):
        return None, "invalid"
    if invitation.accepted_at is not None:
        return invitation, "used"
    if invitation.revoked_at is not None:
        return invitation, "revoked"
    if (now or utcnow()) >= invitation.expires_at:
        return invitation, "expired"
    return invitation, None


def do_invite(workspace: Workspace, *, email: str, role: Role | str, actor: User,
              now: datetime | None = None) -> Invitation:
    """Invite someone by email (sent by the worker). Inviting the same address again while an
    invitation is pending sends that one again."""
    email, role, now = check_invite_email(email), check_role(str(role)), now or utcnow()
    pending = db.session.scalar(select(Invitation).where(
        Invitation.workspace_id == workspace.id, Invitation.email == email, Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None), Invitation.expires_at > now))
    if pending is not None:
        pending.role = role
        return do_resend_invitation(pending, actor=actor, now=now)
    invitation = Invitation(workspace_id=workspace.id, email=email, role=role, invited_by_id=actor.id,
                            nonce=new_nonce(), expires_at=now + INVITATION_TTL, created_at=now)
    db.session.add(invitation)
    record(actor, "team.invite", invitation, None, {"email": email, "role": role})
    _send_later(invitation)
    outbox.commit()
    return invitation


def do_resend_invitation(invitation: Invitation, *, actor: User, now: datetime | None = None) -> Invitation:
    if invitation.accepted_at is not None:
        raise NotAllowed(_("This invitation was already accepted."))
    now = now or utcnow()
    invitation.nonce = new_nonce()  # the previous link stops working
    invitation.expires_at = now + INVITATION_TTL
    invitation.revoked_at = None
    invitation.invited_by_id = actor.id
    record(actor, "team.invite_resend", invitation, None, {"email": invitation.email, "role": invitation.role})
    _send_later(invitation)
    outbox.commit()
    return invitation


def do_revoke_invitation(invitation: Invitation, *, actor: User, now: datetime | None = None) -> None:
    if invitation.accepted_at is not None:
        raise NotAllowed(_("This invitation was already accepted."))
    invitation.revoked_at = now or utcnow()
    record(actor, "team.invite_revoke", invitation, None, {"email": invitation.email})
    outbox.commit()


def _send_later(invitation: Invitation) -> None:
    db.session.flush()
    outbox.enqueue_job(INVITATION_JOB, invitation.id, job_id=f"invite-{invitation.id}-{invitation.nonce[:12]}",
                       workspace_id=invitation.workspace_id, retry_intervals=INVITATION_RETRY_INTERVALS)


def send_invitation_email(invitation_id: int, *, now: datetime | None = None) -> bool:
    """Email the invitation link (the worker's job). Nothing for a used, revoked or expired one.
    Transient SMTP errors propagate (RQ retries)."""
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None or not invitation.is_pending(now):
        return False
    workspace = db.session.get(Workspace, invitation.workspace_id)
    inviter = invitation.invited_by.name if invitation.invited_by else workspace.name
    with force_locale(workspace.default_locale):
        role = _("an admin") if invitation.role == Role.ADMIN else _("an agent")
        subject = _("%(inviter)s invites you to %(workspace)s on Coccinelle", inviter=inviter,
                    workspace=workspace.name)
        body = "\n".join([
            _("Hello,"), "",
            _("%(inviter)s invites you to join %(workspace)s on Coccinelle as %(role)s.", inviter=inviter,
              workspace=workspace.name, role=role), "",
            _("Choose your name and password here:"), invitation_url(invitation), "",
            _("The link works once, until %(date)s (UTC).",
              date=format_datetime(invitation.expires_at, "medium", tzinfo=UTC, locale=workspace.default_locale)),
            _("If you did not expect this invitation, you can ignore this email."),
        ])
    get_mailer().send(Email(to=invitation.email, subject=subject, body=body))
    invitation.sent_at = now or utcnow()
    db.session.commit()
    return True


def do_accept_invitation(invitation: Invitation, *, name: str, password: str,
                         now: datetime | None = None) -> User:
    """The invitee becomes a member: once, even if the form is posted twice at the same time."""
    now = now or utcnow()
    name = check_member_name(name)
    email = check_new_user(invitation.email, password)
    claimed = db.session.execute(
        update(Invitation).where(Invitation.id == invitation.id, Invitation.accepted_at.is_(None),
                                 Invitation.revoked_at.is_(None), Invitation.expires_at > now)
        .values(accepted_at=now).execution_options(synchronize_session=False)).rowcount
    if claimed != 1:
        outbox.discard()
        raise NotAllowed(_("This invitation link was already used or has expired."))
    user = User(workspace_id=invitation.workspace_id, email=email, name=name, role=invitation.role,
                hourly_cost=Decimal("0"), created_at=now)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    invitation.accepted_at, invitation.accepted_user_id = now, user.id
    record(user, "team.join", user, None, {"email": email, "name": name, "role": user.role,
                                           "invitation_id": invitation.id})
    outbox.publish_event(invitation.workspace_id, "agents-changed", user_id=user.id)
    outbox.commit()
    log.info("invitation accepted invitation_id=%s user_id=%s", invitation.id, user.id)
    return user


# -- members -----------------------------------------------------------------------------------
def do_change_role(user: User, role: Role | str, *, actor: User) -> User:
    role = check_role(str(role))
    if role == user.role:
        return user
    if role == Role.AGENT:
        _check_keeps_an_admin(user)
    before = user.role
    user.role = role
    record(actor, "team.role", user, {"role": before}, {"role": role})
    outbox.commit()
    return user


def do_set_hourly_cost(user: User, hourly_cost, *, effective_from: date, actor: User,
                       now: datetime | None = None) -> None:
    """A new cost from a date on (earlier work keeps the rate it had): timetracking's
    effective-dated rates, with the change in the audit log of the same transaction."""
    cost = check_hourly_cost(hourly_cost)
    before = rate_on(user, effective_from)
    record(actor, "team.hourly_cost", user, {"hourly_cost": before, "effective_from": effective_from},
           {"hourly_cost": cost, "effective_from": effective_from}, keep=("effective_from",))
    do_set_user_rate(user, cost, effective_from=effective_from, actor=actor, now=now)  # commits


def do_change_capacity(user: User, capacity, *, actor: User) -> User:
    return do_set_capacity(user, capacity, actor=actor)  # audit-logged there


def do_change_availability(user: User, availability: Availability | str, *, actor: User) -> None:
    try:
        availability = Availability(availability)
    except ValueError:
        raise ValidationError(_("Choose online, busy or offline."), field="availability") from None
    if availability == user.availability:
        return
    record(actor, "team.availability", user, {"availability": user.availability}, {"availability": availability})
    do_set_availability(user, availability)  # commits


def do_set_working_hours(user: User, days: Sequence[str] | None, *, actor: User) -> User:
    hours = check_working_hours(days)
    before = user.working_hours
    user.working_hours = hours
    record(actor, "team.working_hours", user, {"working_hours": before}, {"working_hours": hours})
    outbox.commit()
    return user


def do_deactivate(user: User, *, actor: User, now: datetime | None = None) -> dict[str, int]:
    """They can no longer log in; everything they did stays theirs (replies, notes, time,
    ratings). Their active tickets and conversations go back to the unassigned queue."""
    from .tickets import _assign, _changed
    from .timetracking import _stop, running_timer

    if user.id == actor.id:
        raise NotAllowed(_("You cannot deactivate yourself."))
    if not user.is_active_member:
        return {"tickets": 0, "conversations": 0}
    _check_keeps_an_admin(user)
    now = now or utcnow()
    user.is_active_member = False
    user.availability = Availability.OFFLINE
    tickets = list(db.session.scalars(select(Ticket).where(
        Ticket.workspace_id == user.workspace_id, Ticket.assignee_id == user.id,
        Ticket.status.in_(list(TicketStatus.active())))))
    for ticket in tickets:
        _assign(ticket, None, actor=actor, now=now)
        _changed(ticket)
    conversations = list(db.session.scalars(select(Conversation).where(
        Conversation.workspace_id == user.workspace_id, Conversation.assignee_id == user.id,
        Conversation.status.in_(list(ConversationStatus.active())))))
    for conversation in conversations:
        conversation.assignee_id, conversation.assignee = None, None
        outbox.publish_event(user.workspace_id, "conversation-changed", conversation_id=conversation.id)
    timer = running_timer(user.id)
    if timer is not None:
        _stop(timer, now=now)
    moved = {"tickets": len(tickets), "conversations": len(conversations)}
    record(actor, "team.deactivate", user, {"active": True}, {"active": False, "unassigned": moved})
    outbox.publish_event(user.workspace_id, "agents-changed", user_id=user.id)
    outbox.commit()
    log.info("member deactivated user_id=%s unassigned=%s", user.id, moved)
    return moved


def do_reactivate(user: User, *, actor: User) -> User:
    if user.is_active_member:
        return user
    user.is_active_member = True
    record(actor, "team.reactivate", user, {"active": False}, {"active": True})
    outbox.publish_event(user.workspace_id, "agents-changed", user_id=user.id)
    outbox.commit()
    return user


# -- one's own preferences ---------------------------------------------------------------------
def check_user_locale(value: str | None) -> str | None:
    """ "fr" or "en"; empty: follow the workspace's default language."""
    value = (value or "").strip()
    if not value:
        return None
    if value not in LOCALES:
        raise ValidationError(_("Choose a language."), field="locale")
    return value


def do_set_user_locale(user: User, locale: str | None) -> User:
    """The language a member works in (pages, notification emails); None: the workspace's."""
    locale = check_user_locale(locale)
    before = user.locale
    user.locale = locale
    record(user, "team.language", user, {"language": before}, {"language": locale})
    outbox.commit()
    return user
