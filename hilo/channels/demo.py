"""The demo provider: the transport of the channels `hilo demo` seeds, inside Hilo itself.

A demo channel account (WhatsApp, SMS, e-mail, Telegram, the generic API) is a real
account of its kind: its webhooks, identities, channel rules (WhatsApp's 24-hour window,
SMS opt-outs) and composer behave as the kind does. Only the last step differs: its
replies are handed to this transport instead of the provider's API, which takes them and
reports them delivered, so an agent trying the demo sees replies go out and arrive.

Nothing else ever uses it. An account is a demo account when its config holds
`transport: "demo"`, which only `create_channel_account(..., demo=True)` writes and only
`hilo.demo` calls that with: `transport` is none of any adapter's settings, so the admin
page, the API and the command line refuse it ("setting_unknown"). The admin page marks
such accounts as demo channels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hilo.channels.base import ChannelAccountView, DeliveryStatus, OutboundMessage, SendResult

TRANSPORT_KEY = "transport"
DEMO_TRANSPORT = "demo"
# Kinds whose sends never leave Hilo (the widget's replies reach the visitor's browser
# through Hilo's own socket; a web form cannot carry a reply): their demo accounts keep
# their own adapter.
IN_PROCESS_KINDS = frozenset({"widget", "webform"})


def is_demo(config: Mapping[str, Any] | None) -> bool:
    """Whether a channel account's config marks it as seeded by the demo."""
    return (config or {}).get(TRANSPORT_KEY) == DEMO_TRANSPORT


class DemoTransport:
    """Takes every send at once and reports it delivered, as a provider's callback would."""

    async def send(self, account: ChannelAccountView, message: OutboundMessage) -> SendResult:
        """Accept the message; its provider id names the demo and the send's idempotency key."""
        return SendResult(provider_message_id=f"demo:{message.idempotency_key}", status=DeliveryStatus.DELIVERED)


TRANSPORT = DemoTransport()
