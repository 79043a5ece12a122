"""The one rule for who may see a conversation, used by lists, details and the websocket.

An administrator or supervisor sees every conversation; an agent sees those assigned to
them, those of their teams, and those not yet given to any team.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.orm import Session

from hilo.agents.access import Principal
from hilo.conversations.models import Conversation
from hilo.errors import NotFound
from hilo.i18n import N_


def visible_clause(principal: Principal) -> ColumnElement[bool]:
    if principal.sees_everything:
        return true()
    return or_(
        Conversation.assignee_id == principal.id,
        Conversation.team_id.is_(None),
        Conversation.team_id.in_(principal.team_ids),
    )


def can_see(principal: Principal, team_id: int | None, assignee_id: int | None) -> bool:
    """The same rule as `visible_clause`, for events that carry team and assignee."""
    if principal.sees_everything:
        return True
    if assignee_id == principal.id:
        return True
    if team_id is None:
        return True
    return team_id in principal.team_ids


def access_conversation(session: Session, principal: Principal, conversation_id: int) -> Conversation:
    """Fetch a conversation the caller may see; 404 otherwise (existence is not leaked)."""
    conversation = session.execute(
        select(Conversation).where(Conversation.id == conversation_id, visible_clause(principal))
    ).scalar_one_or_none()
    if conversation is None:
        raise NotFound("conversation_not_found", N_("Conversation not found."))
    return conversation
