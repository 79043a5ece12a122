"""Channel tools for admins and the composer: the connection test and health of a channel,
WhatsApp templates (sync, list), the SMS segment preview, and the public media links
providers fetch outbound files from."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from hilo.agents.access import Principal, require_admin
from hilo.channels import actions as channel_actions
from hilo.channels import setup
from hilo.channels.access import access_channel
from hilo.channels.base import ChannelAccountView, SendError
from hilo.channels.health import ChannelHealth, channel_health
from hilo.channels.registry import TEMPLATE_KINDS
from hilo.channels.sms import TWILIO_MAX_BODY_CHARACTERS, max_segments, segment_info
from hilo.conversations.files import file_response
from hilo.conversations.models import Attachment
from hilo.errors import ActionError, NotFound
from hilo.http.deps import CurrentAgent, RuntimeDep
from hilo.http.schemas import ERRORS
from hilo.i18n import N_, gettext
from hilo.messaging.links import read_media_link
from hilo.runtime import Runtime

router = APIRouter(prefix="/api/v1/channels", tags=["channels"], responses=ERRORS)
public = APIRouter(tags=["media"])


class PreviewIn(BaseModel):
    body: str = Field(default="", max_length=65536)


def _channel_view(runtime: Runtime, principal: Principal, account_id: int) -> ChannelAccountView:
    with runtime.db.read() as session:
        return access_channel(session, principal, account_id).view()


def _require_templates(account: ChannelAccountView) -> None:
    if account.kind not in TEMPLATE_KINDS:
        raise ActionError("templates_not_supported", N_("This kind of channel has no message templates to sync."), 422)


@router.post("/{account_id}/check")
async def check_connection(account_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> dict[str, Any]:
    """Call the provider with the channel's saved credentials and say what works or what failed.

    The test ran either way, so the answer is 200 with `ok`; `code` is stable (`connected`,
    `token_invalid`, `account_not_found`, `provider_unreachable`...), `message` is in the
    caller's language and `setting` names the setting to fix, when one is to blame."""
    require_admin(principal)
    account = await asyncio.to_thread(_channel_view, runtime, principal, account_id)
    if not setup.can_check(account.kind):
        raise ActionError(
            "connection_check_not_supported",
            N_("This kind of channel calls no provider, so there is no connection to test."),
            422,
        )
    result = await setup.check_connection(account)
    assert result is not None  # can_check said the adapter has the hook
    return {
        "ok": result.ok,
        "code": result.code,
        "message": gettext(result.reason, principal.locale, **result.values),
        "setting": result.setting,
        "checked_at": runtime.clock.now(),
    }


def health_payload(health: ChannelHealth, locale: str) -> dict[str, Any]:
    return {
        "channel_account_id": health.channel_account_id,
        "last_inbound_at": health.last_inbound_at,
        "last_sent_at": health.last_sent_at,
        "failures_count": health.failures_count,
        "failures": [
            {
                "message_id": f.message_id,
                "conversation_id": f.conversation_id,
                "at": f.at,
                "code": f.code,
                "reason": gettext(f.reason, locale) if f.reason else None,
            }
            for f in health.failures
        ],
    }


@router.get("/{account_id}/health")
def health(account_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> dict[str, Any]:
    """The channel's last inbound message, last successful send and its failed sends of the last 7 days."""
    require_admin(principal)
    with runtime.db.read() as session:
        access_channel(session, principal, account_id)
        found = channel_health(session, runtime.clock.now(), [account_id])
    return health_payload(found[account_id], principal.locale)


@router.get("/{account_id}/templates")
def list_templates(account_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> dict[str, Any]:
    """The WhatsApp message templates agents can send outside the 24-hour window."""
    account = _channel_view(runtime, principal, account_id)
    _require_templates(account)
    templates = account.config.get("templates")
    return {"items": templates if isinstance(templates, list) else []}


@router.post("/{account_id}/templates/sync")
async def sync_templates(
    account_id: int, request: Request, principal: CurrentAgent, runtime: RuntimeDep
) -> dict[str, Any]:
    """Fetch the approved templates from WhatsApp Manager and keep them on the channel."""
    from hilo.channels import whatsapp

    require_admin(principal)
    account = await asyncio.to_thread(_channel_view, runtime, principal, account_id)
    _require_templates(account)
    try:
        templates = await whatsapp.sync_templates(account)
    except SendError as exc:
        raise ActionError("template_sync_failed", exc.reason, 502) from exc

    def store() -> None:
        with runtime.transaction(principal.id) as tx:
            row = access_channel(tx.session, principal, account_id)
            channel_actions.configure_channel_account(tx, row, values={"templates": templates})

    await asyncio.to_thread(store)
    request.app.state.channel_cache.clear()
    return {"items": templates}


@router.post("/{account_id}/preview")
def preview(account_id: int, body: PreviewIn, principal: CurrentAgent, runtime: RuntimeDep) -> dict[str, Any]:
    """How a draft goes out on this channel: for SMS the encoding and segment count."""
    account = _channel_view(runtime, principal, account_id)
    sms: dict[str, Any] | None = None
    if account.kind == "sms":
        info = segment_info(body.body)
        limit = max_segments(account.config)
        sms = {
            **info,
            "max_segments": limit,
            "too_long": info["segments"] > limit or len(body.body) > TWILIO_MAX_BODY_CHARACTERS,
        }
    return {"channel_account_id": account.id, "kind": account.kind, "characters": len(body.body), "sms": sms}


@public.api_route("/media/{token}", methods=["GET", "HEAD"], include_in_schema=False)
def public_media(token: str, runtime: RuntimeDep) -> Response:
    """Serve an outbound attachment to the provider that was given its signed link."""
    attachment_id = read_media_link(runtime.settings, runtime.clock.now(), token)
    with runtime.db.read() as session:
        attachment = session.get(Attachment, attachment_id)
        if attachment is None or not attachment.storage_key:
            raise NotFound("media_link_invalid", N_("This media link is not valid."))
        return file_response(
            runtime.storage.path(attachment.storage_key),
            attachment.content_type,
            attachment.filename or "attachment",
            {"Cache-Control": "private, max-age=300"},
        )


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.include_router(public)
