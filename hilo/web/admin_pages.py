"""The administration pages: channels, agents and invitations, teams, roles and the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from hilo.agents import two_factor
from hilo.agents.access import Principal
from hilo.agents.audit import AUDIT_KINDS, audit_events
from hilo.agents.invitations import pending_invitations
from hilo.agents.models import Team
from hilo.channels.addresses import channel_urls
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


@router.get("/admin/channels")
def admin_channels(request: Request, principal: UiAgent, runtime: RuntimeDep) -> Response:
    kinds = {kind: get_adapter(kind) for kind in sorted(MODULES)}
    return admin_page(
        request,
        principal,
        runtime,
        "admin/channels.html",
        page="channels",
        kinds={
            k: {
                "config": list(a.config_keys),
                "secrets": list(a.secret_keys),
                "structured": {key: SHAPE_HINTS[shape] for key, shape in getattr(a, "structured_settings", {}).items()},
            }
            for k, a in kinds.items()
        },
        addresses=lambda account: channel_addresses(account, runtime.settings.base_url),
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
