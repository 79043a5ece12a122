"""The agent's own pages: password and language, two-factor sign-in, API tokens, sessions."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy import select

from hilo.agents import two_factor
from hilo.agents.models import ApiToken
from hilo.http.deps import RuntimeDep, active_sessions
from hilo.web.rendering import js_strings, render
from hilo.web.views import LOCALE_NAMES, TWO_FACTOR_PAGE, UiAgent, base_context, csrf_token

router = APIRouter(include_in_schema=False)


@router.get("/account")
def account(request: Request, principal: UiAgent) -> Response:
    """The agent's own password and language."""
    return render(
        "account.html",
        principal.locale,
        **base_context(request, principal),
        locales=LOCALE_NAMES,
        section="account",
        page="account",
    )


@router.get(TWO_FACTOR_PAGE)
def account_two_factor(request: Request, principal: UiAgent, runtime: RuntimeDep) -> Response:
    """Set up, or turn off, two-factor sign-in with an authenticator app."""
    with runtime.db.read() as session:
        state = two_factor.status(session, principal.id)
    qr = (
        two_factor.qr_svg(two_factor.setup_uri(state.pending_secret, principal.email)) if state.pending_secret else None
    )
    csrf = csrf_token(request)
    return render(
        "account_two_factor.html",
        principal.locale,
        me=principal,
        state=state,
        qr=Markup(qr) if qr else None,  # noqa: S704 (SVG drawn here by segno, from our own URI)
        path=TWO_FACTOR_PAGE,
        config={"locale": principal.locale, "csrf": csrf, "strings": js_strings(principal.locale)},
    )


@router.get("/account/tokens")
def account_tokens(request: Request, principal: UiAgent, runtime: RuntimeDep) -> Response:
    """The agent's personal API tokens: create one (shown once), see when each was used, revoke."""
    with runtime.db.read() as session:
        tokens = list(
            session.execute(
                select(ApiToken)
                .where(ApiToken.agent_id == principal.id)
                .order_by(ApiToken.revoked_at.is_not(None), ApiToken.id.desc())
            ).scalars()
        )
    return render(
        "account_tokens.html",
        principal.locale,
        **base_context(request, principal),
        tokens=tokens,
        section="account",
        page="tokens",
    )


@router.get("/account/sessions")
def account_sessions(request: Request, principal: UiAgent, runtime: RuntimeDep) -> Response:
    """Where the agent is signed in: each browser session, with a button to sign it out."""
    return render(
        "account_sessions.html",
        principal.locale,
        **base_context(request, principal),
        sessions=active_sessions(runtime, principal.id),
        section="account",
        page="sessions",
    )


def install(app: FastAPI) -> None:
    """Add the account pages to the app."""
    app.include_router(router)
