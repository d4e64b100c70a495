from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from . import auth, inbox, settings, stream, webhooks

    for module in (auth, inbox, settings, stream, webhooks):
        app.register_blueprint(module.bp)

    from . import contacts, tickets  # ticket core (issue 4)

    for module in (contacts, tickets):
        app.register_blueprint(module.bp)
