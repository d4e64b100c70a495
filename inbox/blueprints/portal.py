"""The customer portal: a customer signs in (magic link by email, code by SMS) and sees only
their own tickets: list, detail with public replies, reply with files, new ticket, rating.

The portal session is its own: session["portal_contact_id"] (and its workspace and sign-in
time), never Flask-Login's agent user; an agent signed in in the same browser gains nothing
here, and a customer signed in here gains nothing in the inbox.
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from flask import (
    Blueprint, abort, current_app, g, make_response, redirect, render_template, request, send_file, session,
    url_for,
)
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from .. import storage
from ..actions.portal import (
    access_customer_attachment, access_customer_ticket, check_login_identifier, do_check_code, do_customer_create_ticket,
    do_customer_reply, do_request_login, do_use_login, login_from_token, public_events, tickets_of_customer,
)
from ..actions.ratings import do_record_rating, ticket_from_token
from ..actions.tickets import FieldErrors
from ..errors import NotAllowed, ValidationError
from ..extensions import db
from ..models import (
    Contact, PortalLogin, PortalLoginMethod, Priority, Ticket, TicketAttachment, TicketCategory, TicketStatus,
    Workspace, utcnow,
)

bp = Blueprint("portal", __name__, url_prefix="/portal")

SESSION_DAYS = 7
SESSION_REQUESTS_PER_MINUTE = 5  # sign-in requests from one browser (each contact is limited too)
PAGE_SIZE = 50
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})  # never SVG inline


# -- the portal's own session and language ------------------------------------------------------
@bp.before_request
def _load_session():
    g.portal_contact = _signed_in_contact()
    g.portal_workspace = (db.session.get(Workspace, g.portal_contact.workspace_id) if g.portal_contact
                          else _workspace_from_args())
    g.portal_locale_cm = force_locale(_locale())  # the customer's language, whoever else is signed in
    g.portal_locale_cm.__enter__()


@bp.teardown_request
def _unload_session(_exc):
    manager = g.pop("portal_locale_cm", None)
    if manager is not None:
        manager.__exit__(None, None, None)


@bp.after_request
def _headers(response):
    if g.get("portal_contact") is not None:
        response.headers["Cache-Control"] = "private, no-store"
    return response


def _signed_in_contact() -> Contact | None:
    contact_id, workspace_id = session.get("portal_contact_id"), session.get("portal_workspace_id")
    if not contact_id:
        return None
    since = session.get("portal_since") or 0
    if utcnow().timestamp() - since > SESSION_DAYS * 86400:
        _forget()
        return None
    contact = db.session.get(Contact, contact_id)
    if contact is None or contact.workspace_id != workspace_id:
        _forget()
        return None
    return contact


def _forget() -> None:
    for key in ("portal_contact_id", "portal_workspace_id", "portal_since", "portal_pending"):
        session.pop(key, None)


def _workspace_from_args() -> Workspace | None:
    slug = request.values.get("w")
    return db.session.scalar(select(Workspace).where(Workspace.slug == slug)) if slug else None


def _locale() -> str:
    supported = current_app.config["SUPPORTED_LOCALES"]
    for candidate in (session.get("portal_locale"), getattr(g.portal_contact, "locale", None)):
        if candidate in supported:
            return candidate
    return request.accept_languages.best_match(supported) or current_app.config["BABEL_DEFAULT_LOCALE"]


def customer_required(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if g.portal_contact is None:
            return redirect(url_for("portal.login", next=request.path))
        return view(*args, **kwargs)

    return wrapper


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/portal/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("portal.tickets")


@bp.errorhandler(404)
def _not_found(_exc):
    return _message(_("This page does not exist, or it is not yours."), status=404)


@bp.errorhandler(403)
def _forbidden(_exc):
    return _message(_("You are not allowed to do this."), status=403)


def _message(text: str, *, status: int = 200, title: str | None = None):
    return make_response(render_template("portal/message.html", title=title or text, text=text), status)


# -- signing in ------------------------------------------------------------------------------------
@bp.get("/")
def index():
    return redirect(url_for("portal.tickets" if g.portal_contact else "portal.login"))


@bp.get("/lang/<code>")
def language(code: str):
    if code in current_app.config["SUPPORTED_LOCALES"]:
        session["portal_locale"] = code
    return redirect(_safe_next(request.args.get("next")))


@bp.route("/login", methods=["GET", "POST"])
def login():
    if g.portal_contact is not None:
        return redirect(url_for("portal.tickets"))
    workspace_slug = request.values.get("w") or ""
    if request.method == "GET":
        return render_template("portal/login.html", identifier="", w=workspace_slug, error=None)
    identifier = request.form.get("identifier", "")
    if _browser_throttled():
        return make_response(render_template(
            "portal/login.html", identifier=identifier, w=workspace_slug,
            error=_("Too many requests: wait a minute before asking again.")), 429)
    try:
        checked = check_login_identifier(identifier)
    except ValidationError as exc:
        return make_response(render_template("portal/login.html", identifier=identifier, w=workspace_slug,
                                             error=exc.message), 422)
    workspace_id = (g.portal_workspace.id if g.portal_workspace else -1) if workspace_slug else None
    logins = do_request_login(checked, workspace_id=workspace_id)
    if checked.method == PortalLoginMethod.EMAIL:
        return render_template("portal/check_email.html", address=checked.value)
    session["portal_pending"] = [login.id for login in logins]
    session["portal_phone"] = _masked(checked.value)
    return redirect(url_for("portal.code", next=request.args.get("next") or None), 303)


def _browser_throttled() -> bool:
    now = utcnow().timestamp()
    recent = [t for t in session.get("portal_requests", []) if now - t < 60]
    throttled = len(recent) >= SESSION_REQUESTS_PER_MINUTE
    if not throttled:
        recent.append(now)
    session["portal_requests"] = recent
    return throttled


def _masked(phone: str) -> str:
    return phone[:3] + "•" * max(0, len(phone) - 5) + phone[-2:] if len(phone) > 5 else phone


@bp.route("/code", methods=["GET", "POST"])
def code():
    if g.portal_contact is not None:
        return redirect(url_for("portal.tickets"))
    if "portal_pending" not in session:
        return redirect(url_for("portal.login"))
    if request.method == "POST":
        try:
            used = do_check_code(session["portal_pending"], request.form.get("code"))
        except ValidationError as exc:
            return make_response(render_template("portal/code.html", phone=session.get("portal_phone"),
                                                 error=exc.message), 422)
        _sign_in(used)
        return redirect(_safe_next(request.args.get("next")), 303)
    return render_template("portal/code.html", phone=session.get("portal_phone"), error=None)


@bp.route("/login/<token>", methods=["GET", "POST"])
def magic_link(token: str):
    """GET only asks for a click (mail scanners follow links); the POST spends the link."""
    used = login_from_token(token)
    if used is None:
        return _message(_("This sign-in link has expired or has already been used. Ask for a new one."),
                        status=410, title=_("Link expired"))
    if request.method == "POST":
        if not do_use_login(used):
            return _message(_("This sign-in link has expired or has already been used. Ask for a new one."),
                            status=410, title=_("Link expired"))
        _sign_in(used)
        return redirect(url_for("portal.tickets"), 303)
    return render_template("portal/magic_link.html", login=used,
                           workspace=db.session.get(Workspace, used.workspace_id))


def _sign_in(used: PortalLogin) -> None:
    _forget()
    session.pop("portal_phone", None)
    session["portal_contact_id"] = used.contact_id
    session["portal_workspace_id"] = used.workspace_id
    session["portal_since"] = utcnow().timestamp()


@bp.post("/logout")
def logout():
    _forget()
    return redirect(url_for("portal.login"), 303)


# -- tickets ---------------------------------------------------------------------------------------
@bp.get("/tickets")
@customer_required
def tickets():
    before = request.args.get("before", type=int)
    rows = tickets_of_customer(g.portal_contact, before_id=before, limit=PAGE_SIZE + 1)
    return render_template("portal/tickets.html", tickets=rows[:PAGE_SIZE],
                           more=rows[PAGE_SIZE - 1].id if len(rows) > PAGE_SIZE else None)


@bp.route("/tickets/new", methods=["GET", "POST"])
@customer_required
def new_ticket():
    form = request.form
    if request.method == "GET":
        return _new_form({"category": "general", "priority": "medium"}, {})
    try:
        ticket = do_customer_create_ticket(
            g.portal_contact, subject=form.get("subject", ""), description=form.get("description", ""),
            category=form.get("category"), priority=form.get("priority"), files=request.files.getlist("files"))
    except FieldErrors as exc:
        return _new_form(form, exc.errors, status=422)
    except ValidationError as exc:
        return _new_form(form, {exc.field or "form": exc.message}, status=422)
    return redirect(url_for("portal.ticket", ticket_id=ticket.id, created=1), 303)


def _new_form(form, errors: dict, status: int = 200):
    return make_response(render_template("portal/new.html", form=form, errors=errors,
                                          categories=list(TicketCategory), priorities=list(Priority)), status)


@bp.get("/tickets/<int:ticket_id>")
@customer_required
def ticket(ticket_id: int):
    return _ticket_page(access_customer_ticket(ticket_id, g.portal_contact))


def _ticket_page(item: Ticket, *, error: str | None = None, rating_error: str | None = None, body: str = "",
                 status: int = 200):
    files: dict[int | None, list[TicketAttachment]] = {}
    for attachment in TicketAttachment.of_ticket(item.id, public_only=True):
        files.setdefault(attachment.event_id, []).append(attachment)
    html = render_template(
        "portal/ticket.html", ticket=item, events=public_events(item), files=files, error=error,
        rating_error=rating_error, body=body, rating=item.rating, created=request.args.get("created"),
        can_reply=item.status != TicketStatus.CLOSED,
        can_rate=item.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED) and item.rating is None)
    return make_response(html, status)


@bp.post("/tickets/<int:ticket_id>/reply")
@customer_required
def reply(ticket_id: int):
    item = access_customer_ticket(ticket_id, g.portal_contact)
    try:
        do_customer_reply(item, g.portal_contact, request.form.get("body"), request.files.getlist("files"))
    except ValidationError as exc:
        return _ticket_page(item, error=exc.message, body=request.form.get("body", ""), status=422)
    except NotAllowed as exc:
        return _ticket_page(item, error=str(exc), body=request.form.get("body", ""), status=409)
    return redirect(url_for("portal.ticket", ticket_id=item.id) + "#reply", 303)


@bp.post("/tickets/<int:ticket_id>/rate")
@customer_required
def rate(ticket_id: int):
    item = access_customer_ticket(ticket_id, g.portal_contact)
    try:
        do_record_rating(item, request.form.get("score"), request.form.get("comment"), source="portal")
    except (ValidationError, NotAllowed) as exc:
        db.session.rollback()
        return _ticket_page(db.session.get(Ticket, item.id), rating_error=getattr(exc, "message", str(exc)),
                            status=422)
    return redirect(url_for("portal.ticket", ticket_id=item.id) + "#rating", 303)


@bp.get("/tickets/<int:ticket_id>/files/<int:attachment_id>")
@customer_required
def attachment(ticket_id: int, attachment_id: int):
    return send_ticket_attachment(
        access_customer_attachment(access_customer_ticket(ticket_id, g.portal_contact), attachment_id))


def send_ticket_attachment(item: TicketAttachment):
    """The file's bytes, once the caller checked who may read it (the customer here, an agent
    of the workspace on the ticket page). Images inline, anything else as a download."""
    try:
        path = storage.path_of(item.storage_key)
    except FileNotFoundError:
        abort(404)
    if not path.exists():
        abort(404)
    content_type, filename = item.content_type, item.filename
    # The bytes stream after the view returns: end the transaction now, so a slow download
    # never holds the database (SQLite's write lock is taken at the request's first query).
    db.session.close()
    response = send_file(path, mimetype=content_type, download_name=filename,
                         as_attachment=content_type not in INLINE_TYPES, max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


# -- the signed rating link (email): no sign-in needed, the link is the key ------------------------
@bp.route("/rate/<token>", methods=["GET", "POST"])
def rate_link(token: str):
    item = ticket_from_token(token)
    if item is None:
        abort(404)
    workspace = db.session.get(Workspace, item.workspace_id)
    if g.portal_contact is None:
        g.portal_workspace = workspace  # the page header names the team being rated
    # Nobody needs to be signed in here: the page speaks the language the customer chose, else
    # the one on their record, else their browser's, else the workspace's.
    supported = current_app.config["SUPPORTED_LOCALES"]
    locale = (session.get("portal_locale") or item.contact.locale
              or request.accept_languages.best_match(supported) or workspace.default_locale)
    with force_locale(locale):
        return _rate_page(item, workspace)


def _rate_page(item: Ticket, workspace: Workspace):
    error, done = None, item.rating is not None
    score = request.values.get("score", type=int)
    if request.method == "POST" and not done:
        try:
            do_record_rating(item, request.form.get("score"), request.form.get("comment"), source="link")
            done = True
        except (ValidationError, NotAllowed) as exc:
            db.session.rollback()
            error = getattr(exc, "message", str(exc))
            done = db.session.get(Ticket, item.id).rating is not None
    html = render_template("portal/rate.html", ticket=item, score=score, error=error, done=done, workspace=workspace)
    return make_response(html, 422 if error and not done else 200)


# -- template helpers ------------------------------------------------------------------------------
@bp.app_template_global()
def portal_other_locale() -> str:
    from flask_babel import get_locale

    return "en" if str(get_locale()) == "fr" else "fr"
