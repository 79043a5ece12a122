"""The demo's shop page (/demo/widget): the chat widget embedded in a page served by Hilo itself.

It exists only when the demo is seeded (`hilo demo`): it shows the widget of the demo's
chat channel, so whoever tries Hilo can write as a customer and answer as an agent
without a site of their own. Any other installation answers 404.
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select

from hilo.channels.demo import is_demo
from hilo.channels.models import ChannelAccount
from hilo.i18n import gettext, negotiate, normalize_locale
from hilo.runtime import Runtime

router = APIRouter(include_in_schema=False)

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)
# The widget draws itself with a <style> element in its shadow root: inline styles are
# allowed here, scripts only from Hilo.
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)


def demo_widget_token(runtime: Runtime) -> str | None:
    """The public token of the demo's chat channel, or None when the demo is not seeded."""
    with runtime.db.read() as session:
        rows = session.execute(
            select(ChannelAccount.config)
            .where(ChannelAccount.kind == "widget", ChannelAccount.enabled.is_(True))
            .order_by(ChannelAccount.id)
        ).scalars()
        for config in rows:
            if is_demo(config) and config.get("public_token"):
                return str(config["public_token"])
    return None


@router.get("/demo/widget")
def demo_widget_page(request: Request, lang: str | None = None) -> Response:
    """The demo shop with its chat, in the visitor's language."""
    token = demo_widget_token(request.app.state.runtime)
    locale = normalize_locale(lang) if lang else negotiate(request.headers.get("accept-language"))
    headers = {"Content-Security-Policy": POLICY, "Cache-Control": "no-store", "Vary": "Accept-Language"}
    if token is None:
        message = html.escape(
            gettext("There is no demo on this server: the demo page exists only after `hilo demo`.", locale)
        )
        page = f'<!doctype html><html lang="{locale}"><meta charset="utf-8"><p>{message}</p>'
        return HTMLResponse(page, 404, headers)
    page = _templates.get_template("demo.html").render(
        _=lambda msgid, **values: gettext(msgid, locale, **values), locale=locale, token=token
    )
    return HTMLResponse(page, headers=headers)


def install(app: FastAPI) -> None:
    """Add the demo page."""
    app.include_router(router)
