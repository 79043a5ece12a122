"""Sign-in, sign-out and the current agent; personal API tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from hilo.agents.actions import create_token, revoke_token, update_agent
from hilo.agents.models import Agent, ApiToken
from hilo.agents.passwords import verify_password
from hilo.errors import ActionError
from hilo.http.deps import CurrentAgent, RuntimeDep, client_ip, new_csrf
from hilo.http.schemas import ERRORS
from hilo.i18n import N_

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], responses=ERRORS)


class LoginIn(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class MeIn(BaseModel):
    name: str | None = Field(default=None, max_length=255)
    locale: str | None = Field(default=None, max_length=8)
    password: str | None = Field(default=None, max_length=1024)


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=255)


def me_payload(agent: Any, csrf: str | None) -> dict[str, Any]:
    return {
        "id": agent.id,
        "email": agent.email,
        "name": agent.name,
        "role": agent.role,
        "locale": agent.locale,
        "team_ids": sorted(getattr(agent, "team_ids", [])),
        "csrf_token": csrf,
    }


@router.post("/login")
def login(body: LoginIn, request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    """Sign in with e-mail and password; sets the session cookie and returns a CSRF token."""
    limiter = request.app.state.limiter
    email = body.email.strip().lower()
    limit = runtime.settings.login_rate_limit
    if not limiter.hit(f"login-ip:{client_ip(request)}", limit * 3) or not limiter.hit(f"login:{email}", limit):
        raise ActionError("rate_limited", N_("Too many sign-in attempts; wait a minute and try again."), 429)
    with runtime.db.read() as session:
        agent = session.execute(select(Agent).where(Agent.email == email)).scalar_one_or_none()
        valid = verify_password(agent.password_hash if agent else None, body.password)
        if agent is None or not valid or not agent.active:
            raise ActionError("login_failed", N_("Wrong e-mail address or password."), 401)
        request.session.clear()
        request.session["agent_id"] = agent.id
        csrf = new_csrf(request)
        team_ids = [t.id for t in agent.teams]
        payload = me_payload(agent, csrf)
        payload["team_ids"] = team_ids
    limiter.reset(f"login:{email}")
    return payload


@router.post("/logout")
def logout(request: Request, principal: CurrentAgent) -> dict[str, bool]:
    request.session.clear()
    return {"ok": True}


@router.get("/me")
def me(request: Request, principal: CurrentAgent) -> dict[str, Any]:
    csrf = None if principal.via_token else (request.session.get("csrf") or new_csrf(request))
    return me_payload(principal, csrf) | {"team_ids": sorted(principal.team_ids)}


@router.patch("/me")
def update_me(body: MeIn, principal: CurrentAgent, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.transaction(principal.id) as tx:
        agent = tx.session.get(Agent, principal.id)
        assert agent is not None
        update_agent(tx, agent, name=body.name, locale=body.locale, password=body.password)
        return me_payload(agent, None) | {"team_ids": sorted(principal.team_ids)}


@router.get("/tokens")
def list_tokens(principal: CurrentAgent, runtime: RuntimeDep) -> list[dict[str, Any]]:
    with runtime.db.read() as session:
        rows = (
            session.execute(select(ApiToken).where(ApiToken.agent_id == principal.id).order_by(ApiToken.id))
            .scalars()
            .all()
        )
        return [
            {
                "id": t.id,
                "name": t.name,
                "prefix": t.prefix,
                "created_at": t.created_at,
                "last_used_at": t.last_used_at,
                "revoked": t.revoked_at is not None,
            }
            for t in rows
        ]


@router.post("/tokens", status_code=201)
def new_token(body: TokenIn, principal: CurrentAgent, runtime: RuntimeDep) -> dict[str, Any]:
    """Create a personal API token; the token is shown only in this answer."""
    with runtime.transaction(principal.id) as tx:
        agent = tx.session.get(Agent, principal.id)
        assert agent is not None
        row, token = create_token(tx, agent, body.name)
        return {"id": row.id, "name": row.name, "prefix": row.prefix, "token": token}


@router.delete("/tokens/{token_id}", status_code=204)
def delete_token(token_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> None:
    """Revoke one of your API tokens: it stops working at once."""
    with runtime.transaction(principal.id) as tx:
        revoke_token(tx, principal.id, token_id)
