"""Where a channel account is reached from outside: the provider's webhook URL, or what a
site embeds (the chat widget's script) or posts to (a web form)."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote


def channel_urls(base_url: str, kind: str, account_id: int, config: dict[str, Any] | None) -> dict[str, str]:
    """`webhook_url` for provider channels; `script_url` and `embed_snippet` for the widget;
    `form_url` (the hosted page, and where a site's own form posts) for a web form."""
    token = quote(str((config or {}).get("public_token") or ""), safe="")
    if kind == "widget":
        script = f"{base_url}/widget/{token}/widget.js"
        snippet = f'<script async src="{html.escape(script)}" data-token="{html.escape(token)}"></script>'
        return {"script_url": script, "embed_snippet": snippet}
    if kind == "webform":
        return {"form_url": f"{base_url}/forms/{token}"}
    return {"webhook_url": f"{base_url}/webhooks/{kind}/{account_id}"}
