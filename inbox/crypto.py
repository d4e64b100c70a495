"""Secrets at rest: channel credentials are stored encrypted with Fernet (AES-128-CBC + HMAC).

Keys come from ENCRYPTION_KEYS (several allow rotation) or, by default, are derived from
SECRET_KEY with HKDF so a fresh install needs no extra setting.
"""

from __future__ import annotations

import base64
import json
from functools import lru_cache

from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app


def _derive(secret: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"coccinelle", info=b"secrets-at-rest")
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode()))


def _box() -> MultiFernet:
    return _box_of(tuple(current_app.config.get("ENCRYPTION_KEYS") or ()), current_app.config["SECRET_KEY"])


@lru_cache(maxsize=8)
def _box_of(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    """Deriving a key (HKDF) costs more than a decryption: done once per configuration."""
    return MultiFernet([Fernet(_derive(k)) for k in keys] or [Fernet(_derive(secret_key))])


def encrypt_json(value: dict) -> str:
    return _box().encrypt(json.dumps(value).encode()).decode()


def decrypt_json(token: str | None) -> dict:
    if not token:
        return {}
    return json.loads(_decrypt(_box(), token))


@lru_cache(maxsize=256)
def _decrypt(box: MultiFernet, token: str) -> str:
    """Every webhook reads its channel's credentials: a token already opened with the same keys is not
    opened again. A rotated secret is a new token; the cache holds what the process held in memory anyway."""
    return box.decrypt(token.encode()).decode()


def mask(secret: str | None) -> str:
    """What a settings page shows of a secret: enough to recognise it, not to use it."""
    if not secret:
        return ""
    return "•" * 6 + secret[-4:] if len(secret) > 8 else "•" * 6
