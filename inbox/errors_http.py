"""How errors reach people: a toast for HTMX requests, a page for browsers, JSON for the API."""

from __future__ import annotations

import json
import logging

from flask import Flask, make_response, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError

from .errors import NotAllowed, ValidationError

log = logging.getLogger(__name__)


def toast_headers(message: str, level: str = "error") -> dict[str, str]:
    """HX-Trigger fires a `toast` event in the browser; static/js/app.js shows it."""
    return {"HX-Trigger": json.dumps({"toast": {"level": level, "message": message}})}


def error_response(status: int, message: str):
    """A refusal as each client needs it: HTMX gets a toast and no swap, so the page keeps what
    the person typed (base.html configures htmx to swap 422 bodies, for the views that answer
    a validation error with their form: this empty body must not replace anything); JSON
    clients and webhooks get {"error": …}; browsers get the error page."""
    if request.htmx:
        return make_response("", status, {**toast_headers(message), "HX-Reswap": "none"})
    if request.accept_mimetypes.best == "application/json" or request.path.startswith("/webhooks/"):
        return make_response({"error": message}, status)
    return make_response(render_template("errors/error.html", status=status, message=message), status)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ValidationError)
    def _validation(exc: ValidationError):
        return error_response(422, exc.message)

    @app.errorhandler(NotAllowed)
    def _not_allowed(exc: NotAllowed):
        return error_response(409, str(exc))

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError):
        return error_response(400, _("Your session expired or the form is stale: reload the page and try again."))

    @app.errorhandler(404)
    def _not_found(exc):
        return error_response(404, _("This page does not exist, or you do not have access to it."))

    @app.errorhandler(403)
    def _forbidden(exc):
        return error_response(403, _("You are not allowed to do this."))

    @app.errorhandler(405)
    def _method(exc):
        return error_response(405, _("This address does not accept that method."))

    @app.errorhandler(413)
    def _too_large(exc):
        return error_response(413, _("The upload is too large."))

    @app.errorhandler(500)
    def _server_error(exc):
        log.exception("unhandled error on %s", request.path)
        return error_response(500, _("Something went wrong on our side. The team has been told."))
