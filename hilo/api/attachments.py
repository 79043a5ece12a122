"""Attachment downloads, for agents who may see the conversation."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse, Response

from hilo.actions.errors import NotFound
from hilo.api.deps import CurrentAgent, RuntimeDep
from hilo.conversations.access import access_conversation
from hilo.conversations.models import Attachment, Message
from hilo.i18n import N_

router = APIRouter(prefix="/api/v1/attachments", tags=["attachments"])


@router.get("/{attachment_id}")
def download(attachment_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> Response:
    with runtime.db.read() as session:
        attachment = session.get(Attachment, attachment_id)
        message = session.get(Message, attachment.message_id) if attachment else None
        if attachment is None or message is None:
            raise NotFound("attachment_not_found", N_("Attachment not found."))
        access_conversation(session, principal, message.conversation_id)
        if attachment.storage_key:
            return FileResponse(
                runtime.storage.path(attachment.storage_key),
                media_type=attachment.content_type or "application/octet-stream",
                filename=attachment.filename or "attachment",
                headers={"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"},
            )
        if attachment.provider_url:
            return RedirectResponse(attachment.provider_url)
        raise NotFound("attachment_not_found", N_("Attachment not found."))
