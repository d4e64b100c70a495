"""Models hold invariants and queries; no Redis, no HTTP."""

from .appointment import Appointment, AppointmentStatus
from .base import utcnow
from .sara import KnowledgeArticle, SaraDecision, SaraIntent, SaraSettings, TrainingExample
from .channel import Channel, ChannelKind, Provider
from .contact import Contact, ContactIdentity
from .conversation import Conversation, ConversationStatus, Priority
from .message import Attachment, DeliveryStatus, Direction, Message, SenderKind, WebhookReplay
from .outbox import OutboxEntry, OutboxKind
from .inbound import InboundDelivery
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
from .api_token import ApiToken  # REST API, customer portal (issue 4)
from .portal_login import PortalLogin, PortalLoginMethod
from .ticket_attachment import TicketAttachment
from .label import ContactLabel, ConversationLabel, Label
from .consent import Consent, ConsentSource, ConsentStatus
from .segment import Segment, SegmentRules
from .outbound import (
    Campaign, CampaignRecipient, CampaignStatus, FollowUpOutcome, FollowUpRule, FollowUpSent, FollowUpTrigger,
    OutboundTemplate, RecipientState, ScheduledMessage, ScheduledStatus,
)
from .audit import AuditEntry  # settings, team, CRM (issue 6)
from .invitation import Invitation
from .gdpr import ContactErasure
from .team_alert import TeamAlert, TeamAlertKind  # Telegram team group (issue 3)

__all__ = [
    "KnowledgeArticle", "SaraDecision", "SaraIntent", "SaraSettings", "TrainingExample",
    "Appointment", "AppointmentStatus",
    "Attachment", "Availability", "Channel", "ChannelKind", "Contact", "ContactIdentity",
    "Conversation", "ConversationStatus", "DeliveryStatus", "Direction", "Message",
    "InboundDelivery", "OutboxEntry", "OutboxKind", "Priority", "Provider", "Role", "SenderKind", "User",
    "WebhookReplay", "Workspace", "utcnow",
    # tickets
    "Budget", "BudgetAlert", "BudgetPeriod", "BudgetUse", "Holiday", "Notification",
    "NotificationKind", "Rating", "SlaPolicy", "SlaScope", "SlaTargets", "Spend", "Ticket",
    "TicketCategory", "TicketConversation", "TicketEvent", "TicketEventKind", "TicketSettings",
    "TicketSource", "TicketStatus", "TimeEntry", "TimeSource", "UserRate",
    # REST API, customer portal
    "ApiToken", "PortalLogin", "PortalLoginMethod", "TicketAttachment",
    # settings, team, CRM
    "AuditEntry", "ContactErasure", "Invitation",
]
