"""Setting up a channel account: each kind's form, its required settings and the connection test.

Everything here reads the adapter's optional members (`label`, `setting_fields`,
`check_connection`, see `hilo.channels.base.ChannelAdapter`), so the admin page, the API
and the command line treat every kind alike and a kind without them still works.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from hilo.channels import demo
from hilo.channels.base import ChannelAccountView, ConnectionCheck, SettingField
from hilo.channels.media import MEDIA_CONFIG_KEYS
from hilo.channels.registry import get_adapter
from hilo.i18n import N_

# A connection test waits less than a send: an admin is looking at the button.
CHECK_TIMEOUT = httpx.Timeout(10.0, connect=5.0)

MSG_DEMO = N_(
    "This is a demo channel: the built-in demo provider answers its messages, so there is no provider to connect to."
)
MSG_SETTINGS_MISSING = N_("Fill in the required settings before testing the connection.")
MSG_UNREACHABLE = N_(
    "Hilo could not connect to {provider} at {url}. Check the API base URL, and that this server "
    "can reach the internet (a firewall or proxy may block it)."
)
MSG_TIMEOUT = N_(
    "{provider} did not answer in time at {url}. Try again in a moment; if it keeps happening, check "
    "this server's network."
)
MSG_UNREADABLE = N_(
    "The server at {url} does not answer like {provider}'s API. Check the API base URL (leave it empty "
    "to use {provider}'s own)."
)
MSG_PROVIDER_ERROR = N_(
    "{provider} answered with an unexpected error (HTTP {status}). Try again later; if it keeps "
    "happening, check the provider's status page."
)


def kind_label(kind: str) -> str:
    """The kind's name for people (a msgid), or the kind itself for an adapter without one."""
    return str(getattr(get_adapter(kind), "label", kind))


def setting_fields(kind: str) -> list[SettingField]:
    """The kind's settings in form order: the adapter's own descriptions, then any key it does not describe."""
    adapter = get_adapter(kind)
    fields = list(getattr(adapter, "setting_fields", ()))
    described = {f.key for f in fields}
    for key in (*adapter.config_keys, *adapter.secret_keys):
        if key not in described:
            fields.append(SettingField(key, key))
    return fields


def is_secret(kind: str, key: str) -> bool:
    return key in get_adapter(kind).secret_keys


def missing_settings(kind: str, values: Mapping[str, Any]) -> list[str]:
    """The required settings that `values` (config and secrets together) leaves empty, in form order."""

    def empty(key: str) -> bool:
        value = values.get(key)
        return value is None or (isinstance(value, str) and not value.strip())

    return [
        f.key for f in setting_fields(kind) if f.required and empty(f.key) and (f.unless is None or empty(f.unless))
    ]


def account_values(account: ChannelAccountView) -> dict[str, Any]:
    return {**account.config, **account.secrets}


def can_check(kind: str) -> bool:
    return getattr(get_adapter(kind), "check_connection", None) is not None


def all_setting_keys(kind: str) -> set[str]:
    adapter = get_adapter(kind)
    return {*adapter.config_keys, *adapter.secret_keys, *MEDIA_CONFIG_KEYS}


async def check_connection(account: ChannelAccountView) -> ConnectionCheck | None:
    """Call the provider with the account's credentials; None for a kind that has no provider to call."""
    hook: Callable[[ChannelAccountView], Awaitable[ConnectionCheck]] | None = getattr(
        get_adapter(account.kind), "check_connection", None
    )
    if hook is None:
        return None
    if demo.is_demo(account.config) and account.kind not in demo.IN_PROCESS_KINDS:
        # Its sends never leave Hilo (see `registry.transport_for`): its settings name no real provider.
        return ConnectionCheck(True, "demo_provider", MSG_DEMO)
    missing = missing_settings(account.kind, account_values(account))
    if missing:
        return ConnectionCheck(False, "settings_missing", MSG_SETTINGS_MISSING, setting=missing[0])
    try:
        return await hook(account)
    except CheckFailed as failed:
        return failed.check


class CheckFailed(Exception):
    """Raised inside a connection test to answer with `check` at once."""

    def __init__(self, check: ConnectionCheck) -> None:
        super().__init__(check.code)
        self.check = check


def origin(url: str) -> str:
    """Scheme, host and port of `url`: what a message may show (paths can carry a bot token)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "?"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}"


async def probe(
    method: str, url: str, *, provider: str, url_setting: str = "api_base_url", **request: Any
) -> httpx.Response:
    """Make one request for a connection test; raise `CheckFailed` when the provider cannot be reached."""
    values = {"provider": provider, "url": origin(url)}
    try:
        async with httpx.AsyncClient(timeout=CHECK_TIMEOUT) as client:
            return await client.request(method, url, **request)
    except httpx.TimeoutException as exc:
        raise CheckFailed(ConnectionCheck(False, "provider_timeout", MSG_TIMEOUT, values, url_setting)) from exc
    except (httpx.TransportError, httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise CheckFailed(ConnectionCheck(False, "provider_unreachable", MSG_UNREACHABLE, values, url_setting)) from exc


def json_object(response: httpx.Response, *, provider: str, url_setting: str = "api_base_url") -> dict[str, Any]:
    """The response's JSON object; `CheckFailed` when the answer is not one (a wrong base URL)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        values = {"provider": provider, "url": origin(str(response.request.url))}
        raise CheckFailed(ConnectionCheck(False, "provider_response_invalid", MSG_UNREADABLE, values, url_setting))
    return body


def provider_error(provider: str, status: int) -> ConnectionCheck:
    return ConnectionCheck(False, "provider_error", MSG_PROVIDER_ERROR, {"provider": provider, "status": str(status)})
