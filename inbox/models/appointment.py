from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import StrEnumType, Timestamped, UTCDateTime


class AppointmentStatus(StrEnum):
    SCHEDULED = "scheduled"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    DONE = "done"
    NO_SHOW = "no_show"


class Appointment(Timestamped, db.Model):
    """A rendez-vous with a client: reminded the day before on their channel, confirmed or
    cancelled by their answer (OUI / NON / ANNULER)."""

    __table_args__ = (
        Index("ix_appointment_ws_starts", "workspace_id", "starts_at"),
        Index("ix_appointment_contact_starts", "contact_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_minutes: Mapped[int] = mapped_column(default=30)
    location: Mapped[str] = mapped_column(String(200), default="")
    subject: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[AppointmentStatus] = mapped_column(StrEnumType(AppointmentStatus, 12),
                                                      default=AppointmentStatus.SCHEDULED)
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    contact = relationship("Contact")
    agent = relationship("User")

    @property
    def is_upcoming(self) -> bool:
        return self.status in (AppointmentStatus.SCHEDULED, AppointmentStatus.CONFIRMED)

    @classmethod
    def awaiting_answer(cls, contact_id: int, now: datetime) -> Appointment | None:
        """The appointment whose reminder is waiting for the customer's OUI / NON."""
        stmt = (select(cls).where(cls.contact_id == contact_id, cls.status == AppointmentStatus.SCHEDULED,
                                  cls.reminder_sent_at.is_not(None), cls.starts_at > now)
                .order_by(cls.starts_at).limit(1))
        return db.session.scalar(stmt)

    @classmethod
    def upcoming_for(cls, contact_id: int, now: datetime, limit: int = 5) -> list[Appointment]:
        stmt = (select(cls).where(cls.contact_id == contact_id, cls.starts_at > now - timedelta(hours=1),
                                  cls.status.in_([AppointmentStatus.SCHEDULED, AppointmentStatus.CONFIRMED]))
                .order_by(cls.starts_at).limit(limit))
        return list(db.session.scalars(stmt))

    @classmethod
    def for_client_page(cls, contact_id: int, now: datetime, *, since: timedelta = timedelta(days=30),
                        limit: int = 20) -> list[Appointment]:
        """The client page's list, soonest first: from a month ago on, whatever their status, so a
        cancelled, done or missed appointment stays visible after the agent changes it."""
        stmt = (select(cls).where(cls.contact_id == contact_id, cls.starts_at > now - since)
                .order_by(cls.starts_at, cls.id).limit(limit))
        return list(db.session.scalars(stmt))

    @classmethod
    def due_for_reminder(cls, now: datetime, *, ahead: timedelta) -> list[Appointment]:
        stmt = select(cls).where(cls.status == AppointmentStatus.SCHEDULED, cls.reminder_sent_at.is_(None),
                                 cls.starts_at > now, cls.starts_at <= now + ahead)
        return list(db.session.scalars(stmt))
