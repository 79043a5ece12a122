"""Channel-account actions: create, configure, enable and disable."""

from __future__ import annotations

import secrets
from typing import Any

from hilo.channels import demo as demo_transport
from hilo.channels.media import MEDIA_CONFIG_KEYS
from hilo.channels.models import ChannelAccount
from hilo.channels.registry import MODULES, get_adapter
from hilo.channels.settings import SettingInvalid, check_structured
from hilo.channels.setup import missing_settings
from hilo.errors import ActionError
from hilo.hours.calendars import check_reference
from hilo.i18n import N_
from hilo.runtime import Tx


def _split(kind: str, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    adapter = get_adapter(kind)
    config: dict[str, Any] = {}
    secret_values: dict[str, str] = {}
    for key, value in values.items():
        if key in adapter.secret_keys:
            secret_values[key] = str(value)
        elif key in adapter.config_keys or key in MEDIA_CONFIG_KEYS:
            config[key] = value
        else:
            raise ActionError("setting_unknown", N_('Unknown setting "{key}" for this kind of channel.'), 422, key=key)
    return config, secret_values


def _checked(tx: Tx, kind: str, values: dict[str, Any] | None) -> dict[str, Any]:
    """Settings as stored: structured ones parsed from JSON text, the calendar a widget
    names checked; a precise 422 for one that does not parse or does not exist."""
    if not values or kind not in MODULES:
        return values or {}
    try:
        parsed = check_structured(getattr(get_adapter(kind), "structured_settings", {}), values)
    except SettingInvalid as exc:
        raise ActionError(
            exc.code, exc.reason, 422, key=exc.key, details=[{"field": f"settings.{exc.key}"}], **exc.values
        ) from exc
    for key in getattr(get_adapter(kind), "calendar_settings", ()):
        if parsed.get(key) not in (None, ""):
            parsed[key] = check_reference(tx.session, key, parsed[key])
    return parsed


def _require_complete(kind: str, config: dict[str, Any], secret_values: dict[str, str]) -> None:
    """Refuse settings that leave a required one empty, naming each in `details` (the page marks those fields)."""
    missing = missing_settings(kind, {**config, **secret_values})
    if missing:
        raise ActionError(
            "settings_required",
            N_("Some required settings are empty: fill in the fields marked as required."),
            422,
            details=[{"field": f"settings.{key}", "code": "required"} for key in missing],
        )


def create_channel_account(
    tx: Tx, kind: str, name: str, values: dict[str, Any] | None = None, *, demo: bool = False
) -> ChannelAccount:
    """Create a channel account; `demo=True` (only `hilo demo` passes it) hands its sends to
    the built-in demo provider instead of the provider's API (see `hilo.channels.demo`)."""
    if kind not in MODULES:
        raise ActionError("channel_kind_unknown", N_("Unknown kind of channel."), 422)
    if not name.strip():
        raise ActionError("name_required", N_("Give the channel a name."), 422)
    config, secret_values = _split(kind, _checked(tx, kind, values))
    if kind == "api" and "secret" not in secret_values:
        secret_values["secret"] = secrets.token_urlsafe(32)
    _require_complete(kind, config, secret_values)
    if kind in ("widget", "webform") and not config.get("public_token"):
        # Sites embed this token in their pages: it names the channel without its numeric id.
        config["public_token"] = secrets.token_urlsafe(18)
    if demo:
        config[demo_transport.TRANSPORT_KEY] = demo_transport.DEMO_TRANSPORT
    account = ChannelAccount(
        kind=kind,
        name=name.strip(),
        enabled=True,
        config=config,
        secrets=secret_values,
        created_at=tx.now,
        updated_at=tx.now,
    )
    tx.session.add(account)
    tx.session.flush()
    # Published like channel.updated, so workers start polling a new mailbox at once.
    tx.record(
        "channel.created",
        data={"channel_account_id": account.id, "kind": kind, **({"demo": True} if demo else {})},
        realtime={"team_id": None, "assignee_id": None},
    )
    return account


def configure_channel_account(
    tx: Tx,
    account: ChannelAccount,
    *,
    name: str | None = None,
    values: dict[str, Any] | None = None,
    enabled: bool | None = None,
) -> ChannelAccount:
    changed: list[str] = []
    if name is not None and name.strip() and name != account.name:
        account.name = name.strip()
        changed.append("name")
    if values:
        config, secret_values = _split(account.kind, _checked(tx, account.kind, values))
        merged_config = {k: v for k, v in {**(account.config or {}), **config}.items() if v not in (None, "")}
        merged_secrets = {k: v for k, v in {**(account.secrets or {}), **secret_values}.items() if v}
        _require_complete(account.kind, merged_config, merged_secrets)
        account.config = merged_config
        account.secrets = merged_secrets
        changed.extend(sorted(values))
        if secret_values:
            # For the audit log: which secrets, never their values.
            tx.record(
                "channel.secret_changed",
                data={"channel_account_id": account.id, "secrets": sorted(secret_values)},
            )
    if enabled is not None and enabled != account.enabled:
        account.enabled = enabled
        changed.append("enabled")
    if changed:
        account.updated_at = tx.now
        tx.session.flush()
        # Only the names of what changed: secrets never reach the event log.
        tx.record(
            "channel.updated",
            data={"channel_account_id": account.id, "changed": changed, "enabled": account.enabled},
            realtime={"team_id": None, "assignee_id": None},
        )
    return account
