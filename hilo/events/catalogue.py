"""The catalogue of event kinds: every event Hilo records, and what the live update of each carries.

An event is a row of `events` (kind, conversation, contact, message, actor, `data` for the
timeline and audit) written by an action with `Tx.record`, and, when the action gives one, a
live update (`payload`): what websockets push and what consumers (`hilo.consumers`) read. The
live update of a conversation's event always carries the conversation's `team_id`,
`assignee_id` and `status` at that moment (websockets filter on them); the TypedDicts below
name the rest, for the kinds consumers react to. A consumer receives the live update with
`type` (the kind), `conversation_id`, `contact_id`, `message_id`, `actor_agent_id` and `at`
added.

`tests/events/test_catalogue.py` fails on a kind recorded anywhere in `hilo/` that is not
listed here, so this module stays the one place to look.
"""

from __future__ import annotations

from typing import TypedDict


class ConversationState(TypedDict):
    """What every live update of a conversation's event carries."""

    team_id: int | None
    assignee_id: int | None
    status: str


class ConversationAssigned(ConversationState, total=False):
    """`conversation.assigned`: the fields that changed, each as [before, after]."""

    changes: dict[str, list[int | None]]


class MessageCreated(ConversationState, total=False):
    """`message.created`: inbound, outbound or a note."""

    direction: str  # inbound | outbound | note
    channel_account_id: int
    channel_kind: str
    preview: str
    mentions: list[int]  # notes: the agents mentioned
    delivery_status: str  # outbound: queued at first


class SlaAlert(ConversationState):
    """`sla.warning` and `sla.breached`: sent to `only_agent_ids` (the assignee and supervisors)."""

    sla_kind: str  # first_response | next_response | resolution
    due_at: str | None
    only_agent_ids: list[int]


class SlaChanged(ConversationState):
    """`sla.changed`: live only (`Tx.publish_live`, no stored event), the summary a page shows."""

    sla_status: str | None  # on_track | warning | breached | paused | met; None: no SLA any more
    sla_kind: str | None
    due_at: str | None


class ContactMerged(TypedDict):
    """`contact.merged`: `source_id`'s identities and history now belong to the event's contact."""

    team_id: None
    assignee_id: None
    source_id: int


class ContactSplit(TypedDict):
    """`contact.split`: identities of the event's contact moved to `new_contact_id`."""

    team_id: None
    assignee_id: None
    new_contact_id: int


class PresenceChanged(TypedDict):
    """`agent.presence_changed`."""

    team_id: None
    assignee_id: None
    agent_id: int
    presence: str  # online | away | offline


class SessionsRevoked(TypedDict):
    """`auth.signed_out`, `auth.session_revoked`: the agent's websockets of those sessions close."""

    only_agent_ids: list[int]
    revoked_session_ids: list[str]


# Every kind, by the package whose actions record it, with the type its live update follows
# where handlers read it (None: nothing beyond the fields every event has, or no live update).
KINDS: dict[str, type | None] = {
    # agents, sign-in and the audit log (hilo.agents)
    "agent.created": None,
    "agent.invited": None,
    "agent.invitation_revoked": None,
    "agent.invitation_accepted": None,
    "agent.updated": None,
    "agent.role_changed": None,
    "agent.password_changed": None,
    "agent.deactivated": None,
    "agent.reactivated": None,
    "auth.signed_in": None,
    "auth.sign_in_failed": None,
    "auth.password_reset_requested": None,
    "auth.password_reset": None,
    "auth.two_factor_enabled": None,
    "auth.two_factor_disabled": None,
    "auth.recovery_code_used": None,
    "auth.two_factor_required": None,
    "auth.signed_out": SessionsRevoked,
    "auth.session_revoked": SessionsRevoked,
    "team.created": None,
    "team.members_changed": None,
    "token.created": None,
    "token.revoked": None,
    # contacts and identities (hilo.contacts, hilo.conversations.merging, hilo.ingest)
    "contact.created": None,
    "contact.updated": None,
    "contact.merged": ContactMerged,
    "contact.split": ContactSplit,
    "contact.link_refused": None,
    "identity.added": None,
    "identity.opted_in": None,
    "identity.opted_out": None,
    # conversations (hilo.conversations, hilo.ingest)
    "conversation.created": ConversationState,
    "conversation.reopened": ConversationState,
    "conversation.assigned": ConversationAssigned,
    "conversation.status_changed": ConversationState,
    "conversation.priority_changed": ConversationState,
    "conversation.labels_changed": ConversationState,
    "conversation.channel_switched": None,
    "conversation.merged": ConversationState,
    "conversation.merged_away": ConversationState,
    "conversation.unmerged": ConversationState,
    "conversation.split": ConversationState,
    "conversation.split_from": ConversationState,
    "conversation.read": None,
    # messages (hilo.ingest, hilo.outbox, hilo.messaging)
    "message.created": MessageCreated,
    "message.edited": None,
    "message.unsent": None,
    "message.status": None,
    "message.retried": None,
    "message.retry_scheduled": None,
    "attachment.stored": None,
    "attachment.fetch_failed": None,
    # channels and mailboxes (hilo.channels, hilo.messaging, hilo.mailbox)
    "channel.created": None,
    "channel.updated": None,
    "channel.secret_changed": None,
    "channel.provider_error": None,
    "mailbox.claimed": None,
    "mailbox.released": None,
    "mailbox.mail_rejected": None,
    # routing and SLAs (hilo.routing, hilo.hours)
    "routing.decision": None,
    "routing.skills_required": None,
    "routing.team_saved": None,
    "routing.agent_saved": None,
    "agent.presence_changed": PresenceChanged,
    "business_hours.saved": None,
    "business_hours.deleted": None,
    "sla.policy_saved": None,
    "sla.policy_deleted": None,
    "sla.applied": None,
    "sla.warning": SlaAlert,
    "sla.breached": SlaAlert,
    "sla.met": None,
    "sla.changed": SlaChanged,
    # automation (hilo.automation)
    "automation.rule_saved": None,
    "automation.rule_deleted": None,
    "automation.settings_saved": None,
    "automation.rule_applied": None,
    "automation.loop_stopped": None,
    "automation.auto_resolved": None,
    "automation.out_of_office": None,
    "automation.out_of_office_failed": None,
    "automation.webhook": None,
    "macro.saved": None,
    "macro.deleted": None,
    "macro.run": None,
    "canned_response.saved": None,
    "canned_response.deleted": None,
    "scheduled_message.created": None,
    "scheduled_message.cancelled": None,
    "scheduled_message.sent": None,
    "scheduled_message.failed": None,
    # the agent workspace and the widget (hilo.web, hilo.widget)
    "notification.created": None,
    "notifications.read": None,
    "view.created": None,
    "view.updated": None,
    "view.deleted": None,
    "widget.email_fallback": None,
}
