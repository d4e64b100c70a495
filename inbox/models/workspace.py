from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import Timestamped


class Workspace(Timestamped, db.Model):
    """A tenant: every other row belongs to exactly one workspace."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Paris")
    default_locale: Mapped[str] = mapped_column(String(8), default="fr")
