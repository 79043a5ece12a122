"""The audit log: the security-relevant events an administrator reads and filters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from hilo.errors import ActionError
from hilo.events.models import Event
from hilo.i18n import N_

# Every kind the audit log shows, with its label; each is recorded by an action
# (hilo.actions.agents, hilo.actions.channels, hilo.api.auth).
AUDIT_KINDS: dict[str, str] = {
    "auth.signed_in": N_("Signed in"),
    "auth.sign_in_failed": N_("Failed sign-in"),
    "auth.signed_out": N_("Signed out"),
    "auth.session_revoked": N_("Session revoked"),
    "agent.created": N_("Agent added"),
    "agent.invited": N_("Agent invited"),
    "agent.invitation_revoked": N_("Invitation withdrawn"),
    "agent.invitation_accepted": N_("Invitation accepted"),
    "agent.password_changed": N_("Password changed"),
    "auth.password_reset_requested": N_("Password reset requested"),
    "auth.password_reset": N_("Password reset by e-mail link"),
    "auth.two_factor_enabled": N_("Two-factor sign-in turned on"),
    "auth.two_factor_disabled": N_("Two-factor sign-in turned off"),
    "auth.recovery_code_used": N_("Recovery code used"),
    "auth.two_factor_required": N_("Two-factor requirement changed"),
    "agent.role_changed": N_("Role changed"),
    "agent.deactivated": N_("Agent deactivated"),
    "agent.reactivated": N_("Agent reactivated"),
    "token.created": N_("API token created"),
    "token.revoked": N_("API token revoked"),
    "channel.secret_changed": N_("Channel secret changed"),
}
AUDIT_PAGE = 50
AUDIT_PAGE_MAX = 200


@dataclass(frozen=True)
class AuditPage:
    items: list[Event]
    next_cursor: str | None


def audit_events(
    session: Session,
    *,
    kind: str | None = None,
    agent_id: int | None = None,
    since: datetime | None = None,
    cursor: str | None = None,
    limit: int = AUDIT_PAGE,
) -> AuditPage:
    """One page of audit events, newest first; `agent_id` matches who acted or whom it was about."""
    if kind and kind not in AUDIT_KINDS:
        raise ActionError("kind_invalid", N_("Unknown kind of audit event."), 422)
    if cursor is not None and not cursor.isdigit():
        raise ActionError("cursor_invalid", N_("This page link is no longer valid; start again."), 422)
    query = select(Event).where(Event.kind.in_([kind] if kind else list(AUDIT_KINDS)))
    if agent_id is not None:
        query = query.where(or_(Event.actor_agent_id == agent_id, Event.data["agent_id"].as_integer() == agent_id))
    if since is not None:
        query = query.where(Event.created_at >= since)
    if cursor is not None:
        query = query.where(Event.id < int(cursor))
    limit = max(1, min(limit, AUDIT_PAGE_MAX))
    rows = list(session.execute(query.order_by(Event.id.desc()).limit(limit + 1)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(rows, str(rows[-1].id) if more else None)
