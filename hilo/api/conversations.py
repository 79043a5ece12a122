"""Conversations: the inbox list with filters and search, details, changes, merge, split,
the timeline, replies, notes and retries."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from hilo.agents.access import Principal
from hilo.conversations import actions as conv_actions
from hilo.conversations import merging, queries
from hilo.conversations.access import access_conversation
from hilo.conversations.models import Message
from hilo.errors import ActionError, NotFound
from hilo.http.deps import CurrentAgent, RuntimeDep
from hilo.http.schemas import (
    ERRORS,
    ConversationList,
    ConversationOut,
    MessageOut,
    conversation_list,
    serialize_conversations,
)
from hilo.i18n import N_, gettext
from hilo.messaging.media import media_problems
from hilo.outbox import reply as reply_actions

router = APIRouter(prefix="/api/v1/conversations", tags=["conversations"], responses=ERRORS)

# Uploaded files of these major MIME types are shown inline; anything else is a document.
MEDIA_KINDS = ("image", "audio", "video")


class ConversationPatch(BaseModel):
    status: Literal["open", "pending", "snoozed", "resolved"] | None = None
    snoozed_until: datetime | None = None
    priority: Literal["none", "low", "medium", "high", "urgent"] | None = None
    assignee_id: int | None = Field(default=None)
    team_id: int | None = Field(default=None)
    labels: list[Annotated[str, Field(max_length=64)]] | None = Field(default=None, max_length=50)


class MergeIn(BaseModel):
    source_id: int


class SplitIn(BaseModel):
    from_message_id: int


class ReplyIn(BaseModel):
    body: str | None = Field(default=None, max_length=65536)
    channel_account_id: int | None = None
    template: dict[str, Any] | None = None
    cc: list[Annotated[str, Field(max_length=320)]] | None = Field(default=None, max_length=20)
    # E-mail: another of the contact's addresses to send to than the one they last wrote from.
    to: str | None = Field(default=None, max_length=320)
    # The id of the newest message the agent saw; a newer outbound reply means a collision.
    seen_message_id: int | None = None
    confirm_collision: bool = False


class NoteIn(BaseModel):
    body: str = Field(min_length=1, max_length=65536)
    mentions: list[int] = Field(default_factory=list, max_length=50)


class Timeline(BaseModel):
    items: list[MessageOut]
    next_cursor: str | None


@router.get("", response_model=ConversationList)
def list_conversations(
    principal: CurrentAgent,
    runtime: RuntimeDep,
    status: Annotated[list[Literal["open", "pending", "snoozed", "resolved"]] | None, Query()] = None,
    assignee: Annotated[str | None, Query(description="an agent id, 'me' or 'none'")] = None,
    team: Annotated[str | None, Query(description="a team id or 'none'")] = None,
    channel: Annotated[int | None, Query(description="channel account id of the last inbound message")] = None,
    label: str | None = None,
    contact_id: int | None = None,
    q: Annotated[str | None, Query(max_length=200, description='words, "a phrase", an e-mail or a phone')] = None,
    sort: Literal["last_activity", "waiting", "priority", "created", "sla_due"] = "last_activity",
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: str | None = None,
) -> ConversationList:
    """List conversations the caller may see, newest activity first by default."""
    filters = queries.Filters(
        status=list(status or []), assignee=assignee, team=team, channel=channel, label=label, contact_id=contact_id
    )
    return conversation_list(runtime, principal, filters, q=q, sort=sort, limit=limit, cursor=cursor)


@router.get("/{conversation_id}", response_model=ConversationOut)
def get_conversation(conversation_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> ConversationOut:
    with runtime.db.read() as session:
        conversation = access_conversation(session, principal, conversation_id)
        return serialize_conversations(session, [conversation])[0]


@router.patch("/{conversation_id}", response_model=ConversationOut)
def update_conversation(
    conversation_id: int, body: ConversationPatch, principal: CurrentAgent, runtime: RuntimeDep
) -> ConversationOut:
    """Change status (snooze with `snoozed_until`), priority, assignee, team or labels."""
    fields = body.model_fields_set
    with runtime.transaction(principal.id) as tx:
        conversation = access_conversation(tx.session, principal, conversation_id)
        if "assignee_id" in fields or "team_id" in fields:
            conv_actions.assign(
                tx,
                conversation,
                agent_id=body.assignee_id if "assignee_id" in fields else ...,
                team_id=body.team_id if "team_id" in fields else ...,
            )
        if body.status is not None:
            conv_actions.set_status(tx, conversation, body.status, body.snoozed_until)
        if body.priority is not None:
            conv_actions.set_priority(tx, conversation, body.priority)
        if body.labels is not None:
            conv_actions.set_labels(tx, conversation, body.labels)
        return serialize_conversations(tx.session, [conversation])[0]


@router.post("/{conversation_id}/merge", response_model=ConversationOut)
def merge(conversation_id: int, body: MergeIn, principal: CurrentAgent, runtime: RuntimeDep) -> ConversationOut:
    """Merge conversation `source_id` into this one; its messages move here."""
    with runtime.transaction(principal.id) as tx:
        target = access_conversation(tx.session, principal, conversation_id)
        source = access_conversation(tx.session, principal, body.source_id)
        merging.merge_conversations(tx, source, target)
        tx.session.refresh(target)
        return serialize_conversations(tx.session, [target])[0]


@router.post("/{conversation_id}/split", response_model=ConversationOut, status_code=201)
def split(conversation_id: int, body: SplitIn, principal: CurrentAgent, runtime: RuntimeDep) -> ConversationOut:
    """Move a message and everything after it into a new conversation; returns the new one."""
    with runtime.transaction(principal.id) as tx:
        conversation = access_conversation(tx.session, principal, conversation_id)
        new = conv_actions.split_conversation(tx, conversation, body.from_message_id)
        return serialize_conversations(tx.session, [new])[0]


def messages_out(session: Session, rows: list[Message]) -> list[MessageOut]:
    problems = media_problems(rows)
    out = []
    for m in rows:
        item = MessageOut.model_validate(m, from_attributes=True)
        for attachment in item.attachments:
            attachment.url = f"/api/v1/attachments/{attachment.id}"
            problem = problems.get(attachment.id)
            if problem is not None:
                attachment.status = "unavailable" if problem.final else "pending"
                attachment.status_code = problem.code
                attachment.status_reason = problem.reason
        out.append(item)
    return out


@router.get("/{conversation_id}/messages", response_model=Timeline)
def timeline(
    conversation_id: int,
    principal: CurrentAgent,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[int | None, Query(description="message id: page back from here")] = None,
) -> Timeline:
    """The conversation's messages, notes and activity, oldest first, newest page first."""
    with runtime.db.read() as session:
        access_conversation(session, principal, conversation_id)
        query = (
            select(Message)
            .options(selectinload(Message.attachments))
            .where(Message.conversation_id == conversation_id)
            .order_by(Message.id.desc())
            .limit(limit + 1)
        )
        if before is not None:
            query = query.where(Message.id < before)
        rows = list(session.execute(query).scalars().all())
        more = len(rows) > limit
        rows = rows[:limit]
        rows.reverse()
        return Timeline(items=messages_out(session, rows), next_cursor=str(rows[0].id) if more and rows else None)


@router.get("/{conversation_id}/channels")
def channels(conversation_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> list[dict[str, Any]]:
    """The channels this contact can be reached on, the default, and why others cannot be used."""
    with runtime.transaction(principal.id) as tx:
        conversation = access_conversation(tx.session, principal, conversation_id)
        options = reply_actions.channel_options(tx, conversation)
        return [
            {**option.__dict__, "reason": gettext(option.reason, principal.locale) if option.reason else None}
            for option in options
        ]


def collision_since(session: Session, conversation_id: int, seen: int, principal: Principal) -> dict[str, Any] | None:
    """The newest reply by another agent after message `seen`, or None: "someone answered meanwhile"."""
    newer = session.execute(
        select(Message.id, Message.author_agent_id)
        .where(
            Message.conversation_id == conversation_id,
            Message.id > seen,
            Message.direction == "outbound",
            Message.author_agent_id != principal.id,
        )
        .order_by(Message.id.desc())
        .limit(1)
    ).first()
    return {"message_id": newer.id, "author_agent_id": newer.author_agent_id} if newer else None


@router.post("/{conversation_id}/messages", response_model=MessageOut, status_code=201)
def send_reply(conversation_id: int, body: ReplyIn, principal: CurrentAgent, runtime: RuntimeDep) -> MessageOut:
    """Reply to the customer; the default channel is the one they used last."""
    with runtime.transaction(principal.id) as tx:
        conversation = access_conversation(tx.session, principal, conversation_id)
        if body.seen_message_id is not None and not body.confirm_collision:
            collision = collision_since(tx.session, conversation_id, body.seen_message_id, principal)
            if collision:
                raise ActionError(
                    "collision", N_("Someone else replied since you opened this conversation."), 409, details=collision
                )
        message = reply_actions.reply(
            tx,
            conversation,
            body.body,
            channel_account_id=body.channel_account_id,
            template=body.template,
            cc=body.cc,
            to=body.to,
        )
        return messages_out(tx.session, [message])[0]


@router.post("/{conversation_id}/messages/files", response_model=MessageOut, status_code=201)
async def send_reply_with_files(
    conversation_id: int,
    principal: CurrentAgent,
    runtime: RuntimeDep,
    files: Annotated[list[UploadFile], File()],
    body: Annotated[str, Form(max_length=65536)] = "",
    channel_account_id: Annotated[int | None, Form()] = None,
    seen_message_id: Annotated[int | None, Form()] = None,
    confirm_collision: Annotated[bool, Form()] = False,
    cc: Annotated[list[Annotated[str, Field(max_length=320)]] | None, Form(max_length=20)] = None,
    to: Annotated[str | None, Form(max_length=320)] = None,
) -> MessageOut:
    """Reply with attachments (multipart: `files`, up to 10, plus the fields of a JSON reply).

    The same checks and action as POST /api/v1/conversations/<id>/messages; each file may be
    up to HILO_MAX_UPLOAD_BYTES (413 attachment_too_large above).
    """
    limit = runtime.settings.max_upload_bytes
    files_read: list[tuple[UploadFile, bytes]] = []
    for upload in files[:10]:
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise ActionError(
                "attachment_too_large", N_("Each file can be at most {mb} MB."), 413, mb=limit // (1024 * 1024)
            )
        files_read.append((upload, data))

    def store_and_reply() -> MessageOut:
        # Files and the database are blocking I/O: this runs in a worker thread, off the event loop.
        stored = []
        for upload, data in files_read:
            content_type = upload.content_type or "application/octet-stream"
            major = content_type.split("/")[0]
            stored.append(
                {
                    "kind": major if major in MEDIA_KINDS else "document",
                    "filename": upload.filename or "file",
                    "content_type": content_type,
                    "size": len(data),
                    "storage_key": runtime.store_inline(data, upload.filename),
                }
            )
        with runtime.transaction(principal.id) as tx:
            conversation = access_conversation(tx.session, principal, conversation_id)
            if seen_message_id is not None and not confirm_collision:
                collision = collision_since(tx.session, conversation_id, seen_message_id, principal)
                if collision:
                    raise ActionError(
                        "collision",
                        N_("Someone else replied since you opened this conversation."),
                        409,
                        details=collision,
                    )
            message = reply_actions.reply(
                tx, conversation, body or None, channel_account_id=channel_account_id, attachments=stored, cc=cc, to=to
            )
            return messages_out(tx.session, [message])[0]

    return await asyncio.to_thread(store_and_reply)


@router.post("/{conversation_id}/notes", response_model=MessageOut, status_code=201)
def add_note(conversation_id: int, body: NoteIn, principal: CurrentAgent, runtime: RuntimeDep) -> MessageOut:
    """Add a private note, visible to agents only."""
    with runtime.transaction(principal.id) as tx:
        conversation = access_conversation(tx.session, principal, conversation_id)
        message = reply_actions.add_note(tx, conversation, body.body, body.mentions)
        return messages_out(tx.session, [message])[0]


@router.post("/{conversation_id}/messages/{message_id}/retry", response_model=MessageOut)
def retry(conversation_id: int, message_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> MessageOut:
    """Send a failed message again."""
    with runtime.transaction(principal.id) as tx:
        access_conversation(tx.session, principal, conversation_id)
        message = tx.session.get(Message, message_id)
        if message is None or message.conversation_id != conversation_id:
            raise NotFound("message_not_found", N_("Message not found."))
        reply_actions.retry(tx, message)
        return messages_out(tx.session, [message])[0]
