"""Configuration read from the environment; tests pass a dict to create_app()."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def _instance_secret(instance_path: Path) -> str:
    """A SECRET_KEY generated once and kept under instance/ so sessions survive restarts."""
    path = instance_path / "secret_key"
    if not path.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:5000"


def load_config(instance_path: Path) -> dict:
    env = os.environ.get
    public_base_url = env("PUBLIC_BASE_URL", DEFAULT_PUBLIC_BASE_URL).rstrip("/")
    database_url = env("DATABASE_URL") or f"sqlite:///{instance_path / 'coccinelle.db'}"
    # Heroku-style URLs name the old driver; we use psycopg 3.
    for prefix in ("postgres://", "postgresql://"):
        if database_url.startswith(prefix):
            database_url = "postgresql+psycopg://" + database_url[len(prefix):]
    return {
        "SECRET_KEY": env("SECRET_KEY") or _instance_secret(instance_path),
        # Extra keys (comma-separated) let you rotate the encryption key: the first encrypts.
        "ENCRYPTION_KEYS": [k for k in env("ENCRYPTION_KEYS", "").split(",") if k],
        "SQLALCHEMY_DATABASE_URI": database_url,
        # PostgreSQL connections each process keeps open, and how many more it may open for a burst.
        "DATABASE_POOL_SIZE": int(env("DATABASE_POOL_SIZE", "20")),
        "DATABASE_MAX_OVERFLOW": int(env("DATABASE_MAX_OVERFLOW", "10")),
        "REDIS_URL": env("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "PUBLIC_BASE_URL": public_base_url,
        "SESSION_COOKIE_SECURE": public_base_url.startswith("https://"),
        # Point a provider's client elsewhere (a local sandbox in demos and tests).
        "TWILIO_API_BASE_URL": env("TWILIO_API_BASE_URL") or None,
        "META_API_BASE_URL": env("META_API_BASE_URL") or None,
        "TELEGRAM_API_BASE_URL": env("TELEGRAM_API_BASE_URL") or None,
        "VAPI_API_BASE_URL": env("VAPI_API_BASE_URL") or None,
        "SMTP_API_BASE_URL": env("SMTP_API_BASE_URL") or None,  # e.g. smtp://127.0.0.1:2525
        # Sara's OpenAI-compatible engine, used when a workspace chooses it in Settings → Sara.
        "OPENAI_API_KEY": env("OPENAI_API_KEY") or None,
        "OPENAI_BASE_URL": env("OPENAI_BASE_URL") or None,
        "OPENAI_TIMEOUT": float(env("OPENAI_TIMEOUT", "15")),
        "BABEL_DEFAULT_LOCALE": env("DEFAULT_LOCALE", "fr"),
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        "DELIVERY_RETRY_INTERVALS": [
            int(s) for s in env("DELIVERY_RETRY_INTERVALS", "10,30,120,600,1800").split(",")
        ],
        # Seconds to wait after a provider's 429 that gave no Retry-After (Twilio never does).
        "DELIVERY_RATE_LIMIT_DELAY": int(env("DELIVERY_RATE_LIMIT_DELAY", "30")),
        "INBOX_PAGE_SIZE": int(env("INBOX_PAGE_SIZE", "25")),
        # Messages of a thread shown at once, the latest; "Earlier messages" loads the page before
        # (Chatwoot loads 20 too). 50 cost half of a 500-message conversation's page (RESULTS §11).
        "THREAD_PAGE_SIZE": int(env("THREAD_PAGE_SIZE", "20")),
        # A ticket opens on its latest entries, the earlier ones on demand (as Zammad folds long tickets).
        "TICKET_TIMELINE_SIZE": int(env("TICKET_TIMELINE_SIZE", "30")),
        "LOG_LEVEL": env("LOG_LEVEL", "INFO"),
    }


DEFAULTS = {
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "REMEMBER_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    "WTF_CSRF_TIME_LIMIT": None,  # tied to the session instead of a clock
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    "SUPPORTED_LOCALES": ["fr", "en"],
    "MAX_CONTENT_LENGTH": 25 * 1024 * 1024,
    # Email webhooks carry the whole message (attachments included) in one form field.
    "MAX_FORM_MEMORY_SIZE": 25 * 1024 * 1024,
}
