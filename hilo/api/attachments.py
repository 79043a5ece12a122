"""Attachment downloads, for agents who may see the conversation."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from hilo.conversations.access import access_conversation
from hilo.conversations.files import file_response
from hilo.conversations.models import Attachment, Message
from hilo.errors import ActionError, NotFound
from hilo.http.deps import CurrentAgent, RuntimeDep
from hilo.i18n import N_
from hilo.messaging.media import attachment_problem

router = APIRouter(prefix="/api/v1/attachments", tags=["attachments"])


@router.get("/{attachment_id}")
def download(attachment_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> Response:
    """The stored file; never the provider's copy.

    404 `attachment_not_ready` while the worker is still fetching it; 410 with the reason's
    code (`media_too_large`, `media_type_not_allowed`, `media_refused`, ...) when Hilo
    will never have it. Agents are not sent to provider URLs: those skip the channel's
    limits, and some (Twilio) hand the file to anyone holding the link."""
    with runtime.db.read() as session:
        attachment = session.get(Attachment, attachment_id)
        message = session.get(Message, attachment.message_id) if attachment else None
        if attachment is None or message is None:
            raise NotFound("attachment_not_found", N_("Attachment not found."))
        access_conversation(session, principal, message.conversation_id)
        if attachment.storage_key:
            return file_response(
                runtime.storage.path(attachment.storage_key),
                attachment.content_type,
                attachment.filename or "attachment",
                {"Cross-Origin-Resource-Policy": "same-origin"},
            )
        problem = attachment_problem(session, message, attachment)
        if not problem.final:
            raise NotFound(problem.code, problem.reason)
        raise ActionError(problem.code, problem.reason, 410)
