"""Import every model so the metadata is complete (migrations, tests)."""

from hilo.agents.models import Agent, AgentSession, ApiToken, Team, team_members
from hilo.automation.models import AutomationRule, CannedResponse, Macro, ScheduledMessage  # noqa: F401
from hilo.channels.models import ChannelAccount
from hilo.contacts.models import Contact, Identity
from hilo.conversations.models import Attachment, Conversation, Label, Message, conversation_labels
from hilo.db.base import Base
from hilo.events.models import Event
from hilo.mailbox.models import MailboxState  # noqa: F401
from hilo.messaging.models import ChannelOptOut, MediaFetchJob  # noqa: F401
from hilo.routing.models import BusinessHours, ConversationSla, RoutingAgent, SlaPolicy, SlaTimer  # noqa: F401
from hilo.web.models import ConversationRead, Notification, SavedView  # noqa: F401
from hilo.worker.models import OutboxJob, OutboxPart

__all__ = [
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
    "Label",
    "Message",
    "OutboxJob",
    "OutboxPart",
    "Team",
    "conversation_labels",
    "team_members",
]
