from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from . import assistant, auth, inbox, settings, stream, webhooks

    for module in (assistant, auth, inbox, settings, stream, webhooks):
        app.register_blueprint(module.bp)

    from . import live_rows  # the changed row pushed with its event (issue 7)

    live_rows.init_app(app)

    from . import contacts, tickets  # ticket core (issue 4)

    for module in (contacts, tickets):
        app.register_blueprint(module.bp)

    from . import admin_settings, team  # team, workspace settings, audit log (issue 6)

    for module in (admin_settings, team):
        app.register_blueprint(module.bp)

    from . import api, api_tokens, portal  # REST API, API tokens in settings, customer portal (issue 4)

    for module in (api, api_tokens, portal):
        app.register_blueprint(module.bp)

    from . import marketing, outbound  # labels, consent, scheduled messages, campaigns, follow-ups (issue 8)

    for module in (marketing, outbound):
        app.register_blueprint(module.bp)

    from . import channel_tools  # contact merge, message templates, composer helpers (issue 3)

    app.register_blueprint(channel_tools.bp)

    from . import dashboard, reports  # home dashboard and reports (issue 6)

    for module in (dashboard, reports):
        app.register_blueprint(module.bp)
