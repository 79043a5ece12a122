"""Response and request models shared by the API routers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from hilo.agents.access import Principal
from hilo.conversations.models import Conversation
from hilo.conversations.queries import Filters, conversation_page, conversation_rows
from hilo.runtime import Runtime


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class IdentityOut(Out):
    id: int
    kind: str
    value: str
    verified: bool
    opted_out: bool


class ContactOut(Out):
    id: int
    name: str | None
    locale: str | None
    custom_attributes: dict[str, Any]
    identities: list[IdentityOut]
    created_at: datetime
    updated_at: datetime


class AttachmentOut(Out):
    id: int
    kind: str
    filename: str | None
    content_type: str | None
    size: int | None
    url: str | None = None
    # stored, pending (the worker is fetching it) or unavailable (never will be: see the code).
    status: str = "stored"
    status_code: str | None = None
    status_reason: str | None = None


class MessageOut(Out):
    id: int
    conversation_id: int
    contact_id: int
    channel_account_id: int | None
    identity_id: int | None
    direction: str
    kind: str
    author_agent_id: int | None
    body: str | None
    html: str | None = None
    subject: str | None
    data: dict[str, Any]
    provider_message_id: str | None
    status: str
    status_code: str | None
    status_reason: str | None
    auto_generated: bool
    created_at: datetime
    sent_at: datetime | None
    edited_at: datetime | None
    deleted_at: datetime | None
    # The earlier message of the conversation this one quotes (a reply to it on the customer's app).
    reply_to_message_id: int | None = None
    attachments: list[AttachmentOut] = Field(default_factory=list)


class LabelOut(Out):
    name: str
    color: str


class ConversationOut(Out):
    id: int
    contact_id: int
    contact_name: str | None = None
    status: str
    priority: str
    assignee_id: int | None
    team_id: int | None
    subject: str | None
    last_channel_account_id: int | None
    message_count: int
    created_at: datetime
    updated_at: datetime
    last_message_at: datetime
    last_inbound_at: datetime | None
    waiting_since: datetime | None
    first_response_at: datetime | None
    resolved_at: datetime | None
    snoozed_until: datetime | None
    merged_into_id: int | None
    labels: list[str] = Field(default_factory=list)


class Page(BaseModel):
    next_cursor: str | None = None


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut},
    401: {"model": ErrorOut},
    403: {"model": ErrorOut},
    404: {"model": ErrorOut},
    409: {"model": ErrorOut},
    422: {"model": ErrorOut},
}


def serialize_conversations(session: Session, rows: list[Conversation]) -> list[ConversationOut]:
    """A page of conversations as the API shows them (two extra queries in all)."""
    return [ConversationOut.model_validate(row) for row in conversation_rows(session, rows)]


class ConversationList(BaseModel):
    items: list[ConversationOut]
    next_cursor: str | None


def conversation_list(
    runtime: Runtime,
    principal: Principal,
    filters: Filters,
    *,
    q: str | None = None,
    sort: str = "last_activity",
    limit: int = 25,
    cursor: str | None = None,
) -> ConversationList:
    """One page of the conversations `principal` may see, as the API and the agent pages show it."""
    with runtime.db.read() as session:
        page = conversation_page(
            session,
            principal,
            filters,
            q=q,
            sort=sort,
            limit=limit,
            cursor=cursor,
            region=runtime.settings.default_region,
        )
        return ConversationList(items=serialize_conversations(session, page.rows), next_cursor=page.next_cursor)
