"""The administration pages: channels, agents and invitations, teams, roles and the audit log."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from hilo.agents import two_factor
from hilo.agents.access import Principal
from hilo.agents.audit import AUDIT_KINDS, audit_events
from hilo.agents.invitations import pending_invitations
from hilo.agents.models import Team
from hilo.channels import setup
from hilo.channels.addresses import channel_urls
from hilo.channels.health import channel_health
from hilo.channels.models import ChannelAccount
from hilo.channels.registry import MODULES, get_adapter
from hilo.channels.settings import SettingShape
from hilo.http.deps import RuntimeDep
from hilo.i18n import N_
from hilo.runtime import Runtime
from hilo.web.inbox import (
    load_directory,
)
from hilo.web.rendering import render
from hilo.web.views import UiAgent, base_context

router = APIRouter(include_in_schema=False)


def admin_page(request: Request, principal: Principal, runtime: Runtime, template: str, **extra: Any) -> Response:
    if principal.role != "admin":
        return render(
            "forbidden.html", principal.locale, status_code=403, **base_context(request, principal), section="admin"
        )
    with runtime.db.read() as session:
        directory = load_directory(session)
        members = {
            t.id: [m.id for m in t.members]
            for t in session.execute(select(Team).options(selectinload(Team.members))).scalars()
        }
        agent_teams: dict[int, list[int]] = {}
        for team_id, member_ids in members.items():
            for agent_id in member_ids:
                agent_teams.setdefault(agent_id, []).append(team_id)
        return render(
            template,
            principal.locale,
            **base_context(request, principal),
            directory=directory,
            members=members,
            agent_teams=agent_teams,
            section="admin",
            **extra,
        )


@router.get("/admin")
def admin_home(principal: UiAgent) -> RedirectResponse:
    return RedirectResponse("/admin/channels", status_code=303)


# Next to each structured setting's field: how the admin writes it (docs/channels/widget.md).
SHAPE_HINTS = {
    SettingShape.OBJECT: N_("JSON object"),
    SettingShape.LIST: N_("JSON list"),
    SettingShape.TEXT_OR_OBJECT: N_("text or JSON object"),
    SettingShape.TEXT_OR_LIST: N_("text or JSON list"),
}


@dataclass(frozen=True)
class ChannelAddress:
    """Something an admin copies from a channel's card; `label` and `hint` are msgids."""

    label: str
    value: str
    hint: str = ""


def channel_addresses(account: ChannelAccount, base_url: str) -> list[ChannelAddress]:
    """Where a channel is reached: the provider's webhook URL, or what a site embeds or posts to."""
    urls = channel_urls(base_url, account.kind, account.id, account.config)
    if "embed_snippet" in urls:
        return [
            ChannelAddress(
                N_("Embed snippet"),
                urls["embed_snippet"],
                N_("Paste it before </body> on every page where the chat should appear."),
            )
        ]
    if "form_url" in urls:
        return [
            ChannelAddress(N_("Hosted form page"), urls["form_url"], N_("Link to it or embed it in an iframe.")),
            ChannelAddress(
                N_("Endpoint for your own form (POST)"),
                urls["form_url"],
                N_("Your site's HTML form posts here; send Accept: application/json for a JSON answer."),
            ),
        ]
    return [ChannelAddress(N_("Webhook URL"), urls["webhook_url"])]


@dataclass(frozen=True)
class FormField:
    """One setting's field in a channel's form; `label`, `help` and `shape` are msgids."""

    key: str
    label: str
    help: str
    required: bool
    unless: str | None
    secret: bool
    placeholder: str
    shape: str


def channel_form(kind: str) -> dict[str, Any]:
    """What the page needs to draw a kind's form: its name, fields, docs and whether it can be tested."""
    structured = getattr(get_adapter(kind), "structured_settings", {})
    return {
        "label": setup.kind_label(kind),
        "fields": [
            FormField(
                key=f.key,
                label=f.label,
                help=f.help,
                required=f.required,
                unless=f.unless,
                secret=setup.is_secret(kind, f.key),
                placeholder=f.placeholder,
                shape=SHAPE_HINTS[structured[f.key]] if f.key in structured else "",
            )
            for f in setup.setting_fields(kind)
        ],
        "can_check": setup.can_check(kind),
        "docs_url": f"/admin/docs/channels/{kind}",
    }


def is_local_url(url: str) -> bool:
    """Whether `url` names this machine or a private network: providers on the internet cannot call it."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith((".local", ".localhost", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_private or address.is_loopback or address.is_link_local


@router.get("/admin/channels")
def admin_channels(request: Request, principal: UiAgent, runtime: RuntimeDep) -> Response:
    if principal.role == "admin":
        with runtime.db.read() as session:
            health = channel_health(session, runtime.clock.now())
    else:
        health = {}
    base_url = runtime.settings.base_url
    return admin_page(
        request,
        principal,
        runtime,
        "admin/channels.html",
        page="channels",
        kinds={kind: channel_form(kind) for kind in sorted(MODULES, key=lambda k: setup.kind_label(k).lower())},
        addresses=lambda account: channel_addresses(account, base_url),
        missing=lambda account: setup.missing_settings(
            account.kind, {**(account.config or {}), **(account.secrets or {})}
        ),
        health=health,
        base_url=base_url,
        base_url_configured=runtime.settings.base_url_configured,
        base_url_local=is_local_url(base_url),
    )


# The channel pages of the docs, read from the source tree Hilo runs from (docs/channels/).
DOCS_DIR = Path(__file__).resolve().parents[2] / "docs" / "channels"


@router.get("/admin/docs/channels/{kind}")
def channel_docs(kind: str, request: Request, principal: UiAgent, runtime: RuntimeDep) -> Response:
    """A channel's setup page from docs/channels/<kind>.md, shown as its Markdown text."""
    if kind not in MODULES:
        return RedirectResponse("/admin/channels", status_code=303)
    path = DOCS_DIR / f"{kind}.md"
    text = path.read_text(encoding="utf-8") if path.is_file() else None
    return admin_page(
        request,
        principal,
        runtime,
        "admin/channel_docs.html",
        page="channels",
        kind=kind,
        label=setup.kind_label(kind),
        text=text,
        source=f"docs/channels/{kind}.md",
    )


@router.get("/admin/agents")
def admin_agents(request: Request, principal: UiAgent, runtime: RuntimeDep) -> Response:
    with runtime.db.read() as session:
        invitations = pending_invitations(session, runtime.clock.now())
        require_two_factor = two_factor.required(session)
    return admin_page(
        request,
        principal,
        runtime,
        "admin/agents.html",
        page="agents",
        invitations=invitations,
        mail_configured=runtime.settings.mail_configured,
        require_two_factor=require_two_factor,
    )


@router.get("/admin/teams")
def admin_teams(request: Request, principal: UiAgent, runtime: RuntimeDep) -> Response:
    return admin_page(request, principal, runtime, "admin/teams.html", page="teams")


@router.get("/admin/audit")
def admin_audit(
    request: Request,
    principal: UiAgent,
    runtime: RuntimeDep,
    kind: str = "",
    agent_id: str = "",
    since: str = "",
    cursor: str | None = None,
) -> Response:
    """The audit log, filtered by kind, agent and date, newest first."""
    if principal.role != "admin":
        return admin_page(request, principal, runtime, "admin/audit.html")
    chosen_agent = int(agent_id) if agent_id.isdigit() else None
    try:
        since_at = datetime.fromisoformat(since).replace(tzinfo=UTC) if since else None
    except ValueError:
        since_at = None
    with runtime.db.read() as session:
        page = audit_events(
            session, kind=kind if kind in AUDIT_KINDS else None, agent_id=chosen_agent, since=since_at, cursor=cursor
        )
    filters = {"kind": kind, "agent_id": agent_id, "since": since}
    older = "/admin/audit?" + urlencode({**filters, "cursor": page.next_cursor}) if page.next_cursor else None
    return admin_page(
        request,
        principal,
        runtime,
        "admin/audit.html",
        page="audit",
        events=page.items,
        kinds=AUDIT_KINDS,
        filters=filters,
        older=older,
    )


@router.get("/admin/roles")
def admin_roles(request: Request, principal: UiAgent, runtime: RuntimeDep) -> Response:
    return admin_page(request, principal, runtime, "admin/roles.html", page="roles")


def install(app: FastAPI) -> None:
    """Add the administration pages to the app."""
    app.include_router(router)
