from __future__ import annotations

from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import StrEnumType, Timestamped


class OutboxKind(StrEnum):
    JOB = "job"
    EVENT = "event"


class OutboxEntry(Timestamped, db.Model):
    """Work promised in the same transaction as the data it concerns.

    Rows are written with the data, relayed to Redis right after the commit and deleted
    once Redis has them; if Redis is down they wait here and the relay picks them up later.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int | None] = mapped_column(ForeignKey("workspace.id"))
    kind: Mapped[OutboxKind] = mapped_column(StrEnumType(OutboxKind, 8))
    name: Mapped[str] = mapped_column(String(120))  # job function path or event type
    job_id: Mapped[str | None] = mapped_column(String(120))
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    attempts: Mapped[int] = mapped_column(default=0)
