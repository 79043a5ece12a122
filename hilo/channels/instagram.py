"""Instagram messaging channel: Instagram webhooks in, Graph API messages out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from hilo.channels.base import IdentityKind, OutboundAttachment, OutboundMessage, SendError, SettingField
from hilo.channels.messenger import MessengerAdapter, attachment_type
from hilo.channels.meta_common import (
    API_VERSION_FIELD,
    APP_SECRET_FIELD,
    HUMAN_AGENT_TAG_FIELD,
    VERIFY_TOKEN_FIELD,
    graph_call,
)
from hilo.i18n import N_

# Instagram Login (no Facebook Page needed); Facebook Login accounts set
# api_base_url to https://graph.facebook.com and use the Page token.
INSTAGRAM_BASE_URL = "https://graph.instagram.com"
MAX_TEXT_BYTES = 1000

MSG_TEXT_TOO_LONG = N_(
    "The message is too long for Instagram (at most 1,000 bytes: about 1,000 letters, "
    "fewer with accents or emoji). Shorten it or split it into several messages."
)
MSG_ATTACHMENT_URL_MISSING = N_(
    "Instagram only takes attachments by public link, and this file has none. Ask an "
    "administrator to set up public file links for Hilo."
)


class InstagramAdapter(MessengerAdapter):
    """Instagram DMs: Messenger's event shape and window rules, Instagram's ids and limits."""

    kind: ClassVar[str] = "instagram"
    identity_kind: ClassVar[IdentityKind] = IdentityKind.INSTAGRAM
    config_keys: ClassVar[tuple[str, ...]] = (
        "instagram_account_id",
        "api_base_url",
        "api_version",
        "human_agent_tag",
    )
    secret_keys: ClassVar[tuple[str, ...]] = ("access_token", "app_secret", "verify_token")
    webhook_object: ClassVar[str] = "instagram"
    own_id_key: ClassVar[str] = "instagram_account_id"
    credential_key: ClassVar[str] = "access_token"
    default_base_url: ClassVar[str] = INSTAGRAM_BASE_URL
    label: ClassVar[str] = N_("Instagram")
    product_name: ClassVar[str] = "Instagram"
    setting_fields: ClassVar[tuple[SettingField, ...]] = (
        SettingField(
            "instagram_account_id",
            N_("Instagram account ID"),
            N_("The professional account's Instagram user ID (the app's Instagram settings > API setup)."),
            required=True,
        ),
        SettingField(
            "access_token",
            N_("Access token"),
            N_("The Instagram account's token with the instagram_business_manage_messages permission."),
            required=True,
        ),
        APP_SECRET_FIELD,
        VERIFY_TOKEN_FIELD,
        HUMAN_AGENT_TAG_FIELD,
        SettingField(
            "api_base_url",
            N_("API base URL"),
            N_(
                "Leave empty for Instagram Login (graph.instagram.com); Facebook Login accounts use https://graph.facebook.com."
            ),
            placeholder=INSTAGRAM_BASE_URL,
        ),
        API_VERSION_FIELD,
    )
    text_too_long: ClassVar[str] = MSG_TEXT_TOO_LONG
    # Outbound files go by public link only: the worker gives each a signed Hilo URL.
    media_by_link: ClassVar[bool] = True

    def text_is_too_long(self, text: str) -> bool:
        # Meta counts UTF-8 bytes here, not characters.
        return len(text.encode()) > MAX_TEXT_BYTES

    def messaging_fields(self, message: OutboundMessage) -> dict[str, str]:
        """Instagram sends need no `messaging_type` inside the window; a tag needs one."""
        if message.tag:
            return {"messaging_type": "MESSAGE_TAG", "tag": message.tag}
        return {}

    async def send_attachment(
        self,
        url: str,
        token: str,
        recipient: Mapping[str, str],
        fields: Mapping[str, str],
        attachment: OutboundAttachment,
    ) -> dict[str, Any]:
        if not attachment.url:
            raise SendError("attachment_url_missing", MSG_ATTACHMENT_URL_MISSING, retryable=False)
        body = {
            "recipient": recipient,
            **fields,
            "message": {
                "attachment": {
                    "type": attachment_type(attachment),
                    "payload": {"url": attachment.url},
                }
            },
        }
        return await graph_call("POST", url, token, json_body=body)


ADAPTER = InstagramAdapter()
