"""Which module implements each channel kind; adapters load on first use."""

from __future__ import annotations

import importlib
from typing import Protocol, cast

from hilo.channels import demo
from hilo.channels.base import ChannelAccountView, ChannelAdapter, OutboundMessage, SendResult

MODULES: dict[str, str] = {
    "api": "hilo.channels.api",
    "email": "hilo.channels.email",
    "whatsapp": "hilo.channels.whatsapp",
    "messenger": "hilo.channels.messenger",
    "instagram": "hilo.channels.instagram",
    "telegram": "hilo.channels.telegram",
    "sms": "hilo.channels.sms",
    "twilio_whatsapp": "hilo.channels.twilio_whatsapp",
    "widget": "hilo.channels.widget",
    "webform": "hilo.channels.webform",
}


def kinds() -> list[str]:
    return sorted(MODULES)


_LOADED: dict[str, ChannelAdapter] = {}


def get_adapter(kind: str) -> ChannelAdapter:
    """Return the adapter of `kind`; KeyError for a kind Hilo does not have."""
    adapter = _LOADED.get(kind)
    if adapter is None:
        # Every webhook asks: a dict look-up is much cheaper than import_module's.
        adapter = _LOADED[kind] = cast(ChannelAdapter, importlib.import_module(MODULES[kind]).ADAPTER)
    return adapter


class Transport(Protocol):
    """What sends a channel account's replies: its kind's adapter, or the demo provider."""

    async def send(self, account: ChannelAccountView, message: OutboundMessage) -> SendResult: ...


def transport_for(account: ChannelAccountView) -> Transport:
    """The transport of this account's sends: the demo provider for the demo's accounts
    (see `hilo.channels.demo`), else the adapter of its kind."""
    if demo.is_demo(account.config) and account.kind not in demo.IN_PROCESS_KINDS:
        return demo.TRANSPORT
    return get_adapter(account.kind)


# Kinds whose approved message templates Hilo syncs from the provider.
TEMPLATE_KINDS = ("whatsapp",)
