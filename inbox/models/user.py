from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import JSON, ForeignKey, Numeric, String, select
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from .base import StrEnumType, Timestamped, UTCDateTime


class Role(StrEnum):
    ADMIN = "admin"
    AGENT = "agent"


class Availability(StrEnum):
    ONLINE = "online"
    BUSY = "busy"
    OFFLINE = "offline"


class User(UserMixin, Timestamped, db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[Role] = mapped_column(StrEnumType(Role, 16), default=Role.AGENT)
    # Money is Decimal, never float: euros per hour with cents.
    hourly_cost: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("0"))
    availability: Mapped[Availability] = mapped_column(StrEnumType(Availability, 16), default=Availability.OFFLINE)
    locale: Mapped[str | None] = mapped_column(String(8))
    is_active_member: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Auto-assignment: at most `capacity` active tickets, only within working hours (same
    # JSON shape as the workspace's business hours; null → the workspace's), round robin.
    capacity: Mapped[int] = mapped_column(default=10, server_default="10")
    working_hours: Mapped[list | None] = mapped_column(JSON)
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    workspace = relationship("Workspace")

    @property
    def is_active(self) -> bool:  # Flask-Login refuses deactivated members
        return self.is_active_member

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def initials(self) -> str:
        parts = [p for p in self.name.split() if p]
        return "".join(p[0] for p in parts[:2]).upper() or "?"

    @property
    def first_name(self) -> str:
        return (self.name.split() or [self.name])[0]

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @classmethod
    def agent_choices(cls, workspace_id: int) -> list:
        """The active members as (id, name) rows, by name: what an "assign to" menu shows, without
        building 50 full users (password hash, working hours…) for it."""
        return list(db.session.execute(cls._members(select(cls.id, cls.name), workspace_id)))

    @classmethod
    def agents_of(cls, workspace_id: int) -> list[User]:
        return list(db.session.scalars(cls._members(select(cls), workspace_id)))

    @classmethod
    def _members(cls, stmt, workspace_id: int):
        return stmt.where(cls.workspace_id == workspace_id, cls.is_active_member.is_(True)).order_by(cls.name)
