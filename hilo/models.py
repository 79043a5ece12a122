"""Import every model so the metadata is complete (migrations, tests)."""

from hilo.agents.models import (
    AccountSettings,
    Agent,
    AgentSession,
    ApiToken,
    Invitation,
    PasswordReset,
    RecoveryCode,
    Team,
    TwoFactor,
    team_members,
)
from hilo.automation.models import AutomationRule, CannedResponse, Macro, ScheduledMessage  # noqa: F401
from hilo.channels.models import ChannelAccount
from hilo.consumers.models import ConsumerPosition  # noqa: F401
from hilo.contacts.models import Contact, Identity
from hilo.conversations.models import Attachment, Conversation, Label, Message, conversation_labels
from hilo.db.base import Base
from hilo.events.models import Event
from hilo.hours.models import BusinessHours  # noqa: F401
from hilo.jobs import Job  # noqa: F401
from hilo.mailbox.models import MailboxState  # noqa: F401
from hilo.messaging.models import ChannelOptOut, MediaFetchJob  # noqa: F401
from hilo.outbox.models import OutboxJob, OutboxPart
from hilo.routing.models import RoutingAgent, SlaPolicy, SlaTimer  # noqa: F401
from hilo.web.models import ConversationRead, Notification, SavedView  # noqa: F401

__all__ = [
    "AccountSettings",
    "Agent",
    "AgentSession",
    "ApiToken",
    "Attachment",
    "Base",
    "ChannelAccount",
    "Contact",
    "Conversation",
    "Event",
    "Identity",
    "Invitation",
    "Label",
    "Message",
    "OutboxJob",
    "OutboxPart",
    "PasswordReset",
    "RecoveryCode",
    "Team",
    "TwoFactor",
    "conversation_labels",
    "team_members",
]
