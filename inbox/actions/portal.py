"""The customer portal's actions: sign in by magic link (email) or 6-digit code (SMS), see
only one's own tickets, reply with files, create a ticket.

Sign-in requests never say whether an address is known (same answer either way); they are
rate-limited per contact. Links and codes are derived from SECRET_KEY and a per-row salt (see
models/portal_login.py); the job sends them, the request checks them, neither stores them.
The SMS code goes straight through the channel adapter, not through a conversation: a code
in the thread would let anyone reading the inbox sign in as the customer.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import mimetypes
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PurePath

from flask import abort, current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, func, or_, select, update

from .. import outbox, storage
from ..errors import PermanentDeliveryError, ValidationError
from ..extensions import db
from ..kinds import ChannelKind
from ..mailer import Email, get_mailer
from ..models import (
    Channel, Contact, ContactIdentity, PortalLogin, PortalLoginMethod, Ticket, TicketAttachment, TicketEvent,
    TicketEventKind, TicketSource, User, Workspace, utcnow,
)
from .tickets import do_add_customer_reply, do_create_ticket

log = logging.getLogger(__name__)

LINK_TTL = timedelta(minutes=15)
CODE_TTL = timedelta(minutes=10)
MAX_CODE_ATTEMPTS = 5
REQUESTS_PER_MINUTE = 3  # sign-in requests per contact (config: PORTAL_REQUESTS_PER_MINUTE)
MAX_MATCHES = 5  # an address known in several workspaces gets one link per workspace, up to this
MAX_FILES = 5
SEND_JOB = "inbox.jobs.portal.send_portal_login"
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE_RE = re.compile(r"^\+?\d{6,15}$")


# -- access ------------------------------------------------------------------------------------
def access_customer_ticket(ticket_id: int, contact: Contact) -> Ticket:
    """The ticket if it is this customer's own; 404 otherwise (another customer's, another
    workspace's, or none: the answer is the same)."""
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None or ticket.workspace_id != contact.workspace_id or ticket.contact_id != contact.id:
        abort(404)
    return ticket


def access_customer_attachment(ticket: Ticket, attachment_id: int) -> TicketAttachment:
    attachment = db.session.get(TicketAttachment, attachment_id)
    if attachment is None or attachment.ticket_id != ticket.id or attachment.internal:
        abort(404)
    return attachment


def public_events(ticket: Ticket) -> list[TicketEvent]:
    """What the customer may read on their ticket, by date: never an internal line."""
    return TicketEvent.public_of(ticket.id)


def tickets_of_customer(contact: Contact, *, before_id: int | None = None, limit: int = 50) -> list[Ticket]:
    stmt = select(Ticket).where(Ticket.workspace_id == contact.workspace_id, Ticket.contact_id == contact.id)
    if before_id:
        stmt = stmt.where(Ticket.id < before_id)
    return list(db.session.scalars(stmt.order_by(Ticket.id.desc()).limit(limit)))


# -- sign-in: check ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LoginIdentifier:
    method: PortalLoginMethod
    value: str  # a lower-cased email, or a phone number in E.164 when it was written so


def normalize_phone(raw: str) -> str:
    value = re.sub(r"[\s().\-/]", "", raw or "")
    return "+" + value[2:] if value.startswith("00") else value


def check_login_identifier(raw: str | None) -> LoginIdentifier:
    raw = (raw or "").strip()
    if EMAIL_RE.match(raw):
        return LoginIdentifier(PortalLoginMethod.EMAIL, raw.lower())
    phone = normalize_phone(raw)
    if PHONE_RE.match(phone):
        return LoginIdentifier(PortalLoginMethod.SMS, phone)
    raise ValidationError(_("Enter your email address or your mobile number."), field="identifier")


def contacts_for(identifier: LoginIdentifier, *, workspace_id: int | None = None) -> list[Contact]:
    """The customers this address belongs to (one per workspace at most, the oldest)."""
    if identifier.method == PortalLoginMethod.EMAIL:
        kinds, column, value = [ChannelKind.EMAIL], func.lower(Contact.email), identifier.value
        address = func.lower(ContactIdentity.address)
    else:
        kinds, column, value = [ChannelKind.SMS, ChannelKind.VOICE], Contact.phone, identifier.value
        address = ContactIdentity.address
    by_identity = select(ContactIdentity.contact_id).where(ContactIdentity.kind.in_(kinds), address == value)
    stmt = select(Contact).where(or_(column == value, Contact.id.in_(by_identity)))
    if workspace_id is not None:
        stmt = stmt.where(Contact.workspace_id == workspace_id)
    found: dict[int, Contact] = {}
    for contact in db.session.scalars(stmt.order_by(Contact.id).limit(50)):
        found.setdefault(contact.workspace_id, contact)
    return list(found.values())[:MAX_MATCHES]


def sms_channel_for(contact: Contact) -> tuple[Channel, str] | None:
    """The workspace's SMS channel and the contact's number on it (None: no way to text them)."""
    identity = ContactIdentity.find_for_contact(contact.id, ChannelKind.SMS)
    number = identity.address if identity else contact.phone
    if not number:
        return None
    channel = db.session.scalars(
        select(Channel).where(Channel.workspace_id == contact.workspace_id, Channel.kind == ChannelKind.SMS,
                              Channel.enabled.is_(True)).order_by(Channel.id)).first()
    return (channel, number) if channel is not None else None


# -- sign-in: do ---------------------------------------------------------------------------------
def do_request_login(identifier: LoginIdentifier, *, workspace_id: int | None = None,
                     now: datetime | None = None) -> list[PortalLogin]:
    """Promise a magic link (email) or a code (SMS) to every customer this address belongs to.
    Unknown addresses, customers without an SMS channel and customers who asked too often in
    the last minute get nothing, silently: the page says the same thing in every case."""
    now = now or utcnow()
    limit = int(current_app.config.get("PORTAL_REQUESTS_PER_MINUTE", REQUESTS_PER_MINUTE))
    logins = []
    for contact in contacts_for(identifier, workspace_id=workspace_id):
        if PortalLogin.recent_count(contact.id, now - timedelta(minutes=1)) >= limit:
            log.warning("portal sign-in rate-limited contact_id=%s", contact.id)
            continue
        channel_id, address = None, identifier.value
        if identifier.method == PortalLoginMethod.SMS:
            found = sms_channel_for(contact)
            if found is None:
                log.info("portal code not sent contact_id=%s: no SMS channel", contact.id)
                continue
            channel_id, address = found[0].id, found[1]
        ttl = LINK_TTL if identifier.method == PortalLoginMethod.EMAIL else CODE_TTL
        login = PortalLogin(workspace_id=contact.workspace_id, contact_id=contact.id, method=identifier.method,
                            salt=secrets.token_hex(16), address=address, channel_id=channel_id,
                            created_at=now, expires_at=now + ttl)
        db.session.add(login)
        db.session.flush()
        outbox.enqueue_job(SEND_JOB, login.id, job_id=f"portal-login-{login.id}", workspace_id=contact.workspace_id,
                           retry_intervals=current_app.config["DELIVERY_RETRY_INTERVALS"])
        logins.append(login)
    outbox.commit()
    return logins


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="coccinelle-portal-login")


def login_token(login: PortalLogin) -> str:
    return _serializer().dumps({"l": login.id, "s": login.salt})


def login_url(login: PortalLogin) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL']}/portal/login/{login_token(login)}"


def login_code(login: PortalLogin) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, f"portal-code:{login.id}:{login.salt}".encode(), hashlib.sha256).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 1_000_000:06d}"


def login_from_token(token: str, *, now: datetime | None = None) -> PortalLogin | None:
    """The sign-in a magic link names, if still usable (not used, not expired, not forged)."""
    try:
        data = _serializer().loads(token, max_age=int(LINK_TTL.total_seconds()))
    except BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    login = db.session.get(PortalLogin, data.get("l"))
    if login is None or login.method != PortalLoginMethod.EMAIL:
        return None
    if not hmac.compare_digest(login.salt, str(data.get("s", ""))):
        return None
    return login if login.usable(now or utcnow(), max_attempts=MAX_CODE_ATTEMPTS) else None


def do_use_login(login: PortalLogin, *, now: datetime | None = None) -> bool:
    """Spend the link or code: only the first request that claims it signs in."""
    now = now or utcnow()
    claimed = db.session.execute(
        update(PortalLogin).where(PortalLogin.id == login.id, PortalLogin.used_at.is_(None),
                                  PortalLogin.expires_at > now, PortalLogin.attempts < MAX_CODE_ATTEMPTS)
        .values(used_at=now).execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    if claimed == 1:
        login.used_at = now
        log.info("portal sign-in login_id=%s contact_id=%s method=%s", login.id, login.contact_id, login.method)
    return claimed == 1


def do_check_code(login_ids: list[int], code: str | None, *, now: datetime | None = None) -> PortalLogin:
    """The pending SMS sign-in this code belongs to, spent; a wrong code counts one attempt on
    each pending sign-in (5 at most). The message never says whether the number was known."""
    now = now or utcnow()
    code = re.sub(r"\D", "", code or "")
    pending = [login for login in db.session.scalars(
        select(PortalLogin).where(PortalLogin.id.in_([int(i) for i in login_ids][:MAX_MATCHES]),
                                  PortalLogin.method == PortalLoginMethod.SMS))
        if login.usable(now, max_attempts=MAX_CODE_ATTEMPTS)]
    if len(code) != 6:
        raise ValidationError(_("Enter the 6 digits of the code we sent you."), field="code")
    for login in pending:
        if hmac.compare_digest(login_code(login), code) and do_use_login(login, now=now):
            return login
    if pending:
        db.session.execute(
            update(PortalLogin).where(PortalLogin.id.in_([p.id for p in pending]))
            .values(attempts=PortalLogin.attempts + 1).execution_options(synchronize_session=False))
        db.session.commit()
    raise ValidationError(_("This code is wrong or has expired. Check the text message, or ask for a new code."),
                          field="code")


def send_login(login_id: int, *, now: datetime | None = None) -> bool:
    """Send the link or the code (the job). Once; a transient failure propagates (RQ retries)."""
    now = now or utcnow()
    login = db.session.get(PortalLogin, login_id)
    if login is None or login.sent_at is not None or not login.usable(now, max_attempts=MAX_CODE_ATTEMPTS):
        return False
    workspace = db.session.get(Workspace, login.workspace_id)
    contact = login.contact
    try:
        with force_locale(contact.locale or workspace.default_locale):
            if login.method == PortalLoginMethod.EMAIL:
                get_mailer().send(Email(
                    to=login.address, subject=_("Your sign-in link for %(workspace)s", workspace=workspace.name),
                    body=_("Hello %(name)s,\n\nUse this link to sign in to your support space. It works once, "
                           "for 15 minutes:\n\n%(url)s\n\nIf you did not ask for it, ignore this email.",
                           name=contact.display_name, url=login_url(login))))
            else:
                from ..channels.base import OutboundMessage
                from ..orchestrator.delivery import adapter_for

                channel = db.session.get(Channel, login.channel_id)
                if channel is None or not channel.enabled:
                    raise PermanentDeliveryError("the SMS channel is gone or disabled", code="no_channel")
                text = _("%(code)s is your sign-in code for %(workspace)s. It expires in 10 minutes.",
                         code=login_code(login), workspace=workspace.name)
                db.session.commit()  # no transaction held while the provider answers
                adapter_for(channel).send(OutboundMessage(to=login.address, body=text))
    except PermanentDeliveryError as exc:
        login.error = (exc.message or "refused")[:255]
        db.session.commit()
        log.warning("portal sign-in not sent login_id=%s: %s", login.id, login.error)
        return False
    login.sent_at = now
    db.session.commit()
    log.info("portal sign-in sent login_id=%s method=%s", login.id, login.method)
    return True


EXPIRED_KEPT = timedelta(hours=1)  # an expired sign-in stays a while (the code page can still say why)
CLEANUP_BATCH = 1000


def do_delete_expired_logins(*, now: datetime | None = None) -> int:
    """Delete sign-ins (links and codes) expired for more than an hour, in small batches so no
    transaction holds the table long. Nothing in them is secret, but nothing in them is useful
    any more either; the per-contact rate limit only counts the last minute's rows."""
    cutoff = (now or utcnow()) - EXPIRED_KEPT
    deleted = 0
    while True:
        ids = list(db.session.scalars(select(PortalLogin.id).where(PortalLogin.expires_at < cutoff)
                                      .order_by(PortalLogin.id).limit(CLEANUP_BATCH)))
        if not ids:
            break
        deleted += db.session.execute(delete(PortalLogin).where(PortalLogin.id.in_(ids))
                                      .execution_options(synchronize_session=False)).rowcount
        db.session.commit()
    if deleted:
        log.info("portal sign-ins deleted: %s expired before %s", deleted, cutoff.isoformat())
    return deleted


# -- tickets -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class UploadedFile:
    filename: str
    content_type: str
    content: bytes


def check_files(files, *, max_bytes: int = storage.MAX_ATTACHMENT_BYTES) -> list[UploadedFile]:
    """Files a customer (or agent) uploads: at most 5, none larger than `max_bytes` or dangerous."""
    kept = []
    for item in files or ():
        if item is None or not getattr(item, "filename", None):
            continue  # an empty file input
        if len(kept) >= MAX_FILES:
            raise ValidationError(_("At most %(n)d files at a time.", n=MAX_FILES), field="files")
        name = PurePath(item.filename.replace("\\", "/")).name.strip()[:255] or "file"
        content = item.read(max_bytes + 1)
        content_type = (item.mimetype or mimetypes.guess_type(name)[0] or "application/octet-stream")[:128]
        reason = storage.refusal_reason(name, content_type, len(content), max_bytes=max_bytes)
        if reason == "too_large":
            raise ValidationError(_("“%(name)s” is too large: %(mb)d MB at most.", name=name,
                                    mb=max_bytes // (1024 * 1024)), field="files")
        if reason:
            raise ValidationError(_("“%(name)s” is a kind of file we do not accept.", name=name), field="files")
        if not content:
            raise ValidationError(_("“%(name)s” is empty.", name=name), field="files")
        kept.append(UploadedFile(name, content_type, content))
    return kept


def do_attach_files(ticket: Ticket, files: list[UploadedFile], *, event: TicketEvent | None = None,
                    contact: Contact | None = None, user: User | None = None,
                    internal: bool = False) -> list[TicketAttachment]:
    rows = []
    for item in files:
        row = TicketAttachment(workspace_id=ticket.workspace_id, ticket_id=ticket.id,
                               event_id=event.id if event else None,
                               uploaded_by_contact_id=contact.id if contact else None,
                               uploaded_by_user_id=user.id if user else None, filename=item.filename,
                               content_type=item.content_type, size=len(item.content),
                               storage_key=storage.save(item.content), internal=internal, created_at=utcnow())
        db.session.add(row)
        rows.append(row)
    if rows:
        outbox.publish_event(ticket.workspace_id, f"ticket-{ticket.id}-changed", ticket_id=ticket.id)
        outbox.commit()
    return rows


def do_customer_create_ticket(contact: Contact, *, subject: str, description: str, category: str | None,
                              priority: str | None, files=(), source: TicketSource = TicketSource.PORTAL) -> Ticket:
    """A customer opens a ticket (portal): fields and files are checked before anything is saved."""
    uploads = check_files(files)
    ticket = do_create_ticket(contact, subject=subject, description=description, category=category,
                              priority=priority, source=source, notify_customer=True)
    if uploads:
        created = db.session.scalar(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                              TicketEvent.kind == TicketEventKind.CREATED))
        do_attach_files(ticket, uploads, event=created, contact=contact)
    return ticket


def do_customer_reply(ticket: Ticket, contact: Contact, text: str | None, files=(), *,
                      source: str = "portal") -> TicketEvent:
    """The customer writes on their ticket, with or without files (files alone are fine)."""
    uploads = check_files(files)
    text = (text or "").strip()
    if not text and uploads:
        text = "📎 " + ", ".join(u.filename for u in uploads)
    event = do_add_customer_reply(ticket, text, source=source)
    if uploads:
        do_attach_files(ticket, uploads, event=event, contact=contact)
    return event
