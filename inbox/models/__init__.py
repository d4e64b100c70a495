"""Models hold invariants and queries; no Redis, no HTTP."""

from .appointment import Appointment, AppointmentStatus
from .base import utcnow
from .sara import KnowledgeArticle, SaraDecision, SaraIntent, SaraSettings, TrainingExample
from .channel import Channel, ChannelKind, Provider
from .contact import Contact, ContactIdentity
from .conversation import Conversation, ConversationStatus, Priority
from .message import Attachment, DeliveryStatus, Direction, Message, SenderKind, WebhookReplay
from .outbox import OutboxEntry, OutboxKind
from .user import Availability, Role, User
from .workspace import Workspace
from .ticket import (
    Rating, Ticket, TicketCategory, TicketConversation, TicketEvent, TicketEventKind, TicketSettings,
    TicketSource, TicketStatus,
)
from .sla import Holiday, SlaPolicy, SlaScope, SlaTargets
from .timeentry import Spend, TimeEntry, TimeSource, UserRate
from .budget import Budget, BudgetAlert, BudgetPeriod, BudgetUse
from .notification import Notification, NotificationKind

__all__ = [
    "KnowledgeArticle", "SaraDecision", "SaraIntent", "SaraSettings", "TrainingExample",
    "Appointment", "AppointmentStatus",
    "Attachment", "Availability", "Channel", "ChannelKind", "Contact", "ContactIdentity",
    "Conversation", "ConversationStatus", "DeliveryStatus", "Direction", "Message",
    "OutboxEntry", "OutboxKind", "Priority", "Provider", "Role", "SenderKind", "User",
    "WebhookReplay", "Workspace", "utcnow",
    # tickets
    "Budget", "BudgetAlert", "BudgetPeriod", "BudgetUse", "Holiday", "Notification",
    "NotificationKind", "Rating", "SlaPolicy", "SlaScope", "SlaTargets", "Spend", "Ticket",
    "TicketCategory", "TicketConversation", "TicketEvent", "TicketEventKind", "TicketSettings",
    "TicketSource", "TicketStatus", "TimeEntry", "TimeSource", "UserRate",
]
