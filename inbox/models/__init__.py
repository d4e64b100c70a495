"""Models hold invariants and queries; no Redis, no HTTP."""

from .base import utcnow
from .channel import Channel, ChannelKind, Provider
from .contact import Contact, ContactIdentity
from .conversation import Conversation, ConversationStatus, Priority
from .message import Attachment, DeliveryStatus, Direction, Message, SenderKind
from .outbox import OutboxEntry, OutboxKind
from .user import Availability, Role, User
from .workspace import Workspace

__all__ = [
    "Attachment", "Availability", "Channel", "ChannelKind", "Contact", "ContactIdentity",
    "Conversation", "ConversationStatus", "DeliveryStatus", "Direction", "Message",
    "OutboxEntry", "OutboxKind", "Priority", "Provider", "Role", "SenderKind", "User",
    "Workspace", "utcnow",
]
