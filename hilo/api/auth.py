"""Sign-in, sign-out and the current agent; sign-in sessions and personal API tokens.

Sign-in throttling: each address gets `HILO_LOGIN_RATE_LIMIT` x 3 attempts a minute and
x 10 failures an hour. Failures on an account slow down further guesses (after as many
free failures as the limit, each next guess waits twice as long, up to 15 minutes), but
only from browsers and addresses that have never signed in to that account: whoever
guesses wrong from elsewhere cannot keep the account's owner out.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from itsdangerous import BadSignature, TimestampSigner
from pydantic import BaseModel, Field
from sqlalchemy import select

from hilo.agents import two_factor
from hilo.agents.access import Principal
from hilo.agents.actions import (
    change_own_password,
    create_token,
    end_session,
    revoke_token,
    start_session,
    update_agent,
)
from hilo.agents.invitations import accept_invitation
from hilo.agents.models import Agent, AgentSession, ApiToken
from hilo.agents.passwords import verify_password
from hilo.agents.recovery import confirm_password_reset, request_password_reset
from hilo.errors import ActionError, TooManyAttempts
from hilo.http.deps import SESSION_KEY, CurrentAgent, RuntimeDep, active_sessions, client_ip, new_csrf
from hilo.http.schemas import ERRORS
from hilo.i18n import N_
from hilo.runtime import Runtime

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], responses=ERRORS)

ACCOUNT_BACKOFF_MAX = 15 * 60
ACCOUNT_FAILURES_FORGOTTEN = 3600
# The browser remembers which accounts signed in from it, signed so that it cannot be forged.
DEVICE_COOKIE = "hilo_device"
DEVICE_MAX_AGE = 365 * 24 * 3600
DEVICE_ACCOUNTS = 10
TOO_MANY = N_("Too many sign-in attempts; wait {seconds} seconds and try again.")
# Between the password and the code: how long, and how many codes may be tried.
PENDING_KEY = "pending_2fa"
PENDING_SECONDS = 300
CODE_TRIES = 5
# Reset links asked for one e-mail address an hour (from anywhere); each client address may
# ask for HILO_LOGIN_RATE_LIMIT an hour.
RESETS_PER_ADDRESS = 3
TOO_MANY_RESETS = N_("Too many password reset requests; wait {seconds} seconds and try again.")


class LoginIn(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class CodeIn(BaseModel):
    code: str = Field(max_length=32)


class PasswordIn(BaseModel):
    password: str = Field(max_length=1024)


class MeIn(BaseModel):
    name: str | None = Field(default=None, max_length=255)
    locale: str | None = Field(default=None, max_length=8)
    password: str | None = Field(default=None, max_length=1024)
    current_password: str | None = Field(default=None, max_length=1024)


class PasswordResetIn(BaseModel):
    email: str = Field(max_length=320)


class PasswordResetConfirmIn(BaseModel):
    token: str = Field(max_length=128)
    password: str = Field(max_length=1024)


class AcceptInvitationIn(BaseModel):
    token: str = Field(max_length=128)
    password: str = Field(max_length=1024)
    name: str | None = Field(default=None, max_length=255)


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


def _device_signer(runtime: Runtime) -> TimestampSigner:
    return TimestampSigner(runtime.settings.secret_key, salt="hilo-device")


def device_accounts(request: Request, runtime: Runtime) -> list[int]:
    """The agents who signed in from this browser before (newest last)."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return []
    try:
        value = _device_signer(runtime).unsign(raw, max_age=DEVICE_MAX_AGE).decode()
    except BadSignature:
        return []
    return [int(part) for part in value.split(".") if part.isdigit()]


def remember_device(request: Request, response: Response, runtime: Runtime, agent_id: int) -> None:
    known = [a for a in device_accounts(request, runtime) if a != agent_id][-(DEVICE_ACCOUNTS - 1) :] + [agent_id]
    value = _device_signer(runtime).sign(".".join(map(str, known))).decode()
    response.set_cookie(
        DEVICE_COOKIE,
        value,
        max_age=DEVICE_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=runtime.settings.secure_cookies,
    )


def known_client(session: Any, agent: Agent, ip: str, device: list[int]) -> bool:
    """True when this browser or this address has signed in to the account before."""
    if agent.id in device:
        return True
    seen = select(AgentSession.id).where(AgentSession.agent_id == agent.id, AgentSession.ip == ip).limit(1)
    return session.execute(seen).first() is not None


@router.post("/login")
def login(body: LoginIn, request: Request, response: Response, runtime: RuntimeDep) -> dict[str, Any]:
    """Sign in with e-mail and password; sets the session cookie and returns a CSRF token.

    Too many attempts answer 429 with Retry-After (see the module's docstring).
    """
    limiter = request.app.state.limiter
    email = body.email.strip().lower()
    ip = client_ip(request)
    limit = runtime.settings.login_rate_limit
    if not limiter.hit(f"login-ip:{ip}", limit * 3):
        raise TooManyAttempts(TOO_MANY, limiter.retry_after())
    if limiter.exceeded(f"login-fail-ip:{ip}", limit * 10, 3600):
        raise TooManyAttempts(TOO_MANY, limiter.retry_after(3600))
    account_key = f"login:{email}"
    with runtime.db.read() as session:
        agent = session.execute(select(Agent).where(Agent.email == email)).scalar_one_or_none()
        if agent is None or not known_client(session, agent, ip, device_accounts(request, runtime)):
            wait = limiter.backoff_wait(account_key, limit, ACCOUNT_BACKOFF_MAX)
            if wait > 0:
                raise TooManyAttempts(TOO_MANY, wait)
        valid = verify_password(agent.password_hash if agent else None, body.password)
        agent_id = agent.id if agent is not None and valid and agent.active else None
        target_id = agent.id if agent is not None else None
    if agent_id is None:
        limiter.backoff_fail(account_key, ACCOUNT_FAILURES_FORGOTTEN)
        limiter.hit(f"login-fail-ip:{ip}", limit * 10, 3600)
        with runtime.transaction() as tx:
            tx.record("auth.sign_in_failed", data={"agent_id": target_id, "email": email[:320], "ip": ip})
        raise ActionError("login_failed", N_("Wrong e-mail address or password."), 401)
    limiter.backoff_clear(account_key)
    with runtime.db.read() as session:
        second_step = two_factor.enabled(session, agent_id)
    if second_step:
        # Not a session yet: the cookie only remembers, for a few minutes, whose password was right.
        request.session.clear()
        request.session[PENDING_KEY] = {
            "agent_id": agent_id,
            "until": runtime.clock.now().timestamp() + PENDING_SECONDS,
        }
        return {"two_factor_required": True}
    return sign_in(request, response, runtime, agent_id)


def sign_in(request: Request, response: Response, runtime: Runtime, agent_id: int) -> dict[str, Any]:
    """Open a session for an agent whose sign-in succeeded; sets the cookie, returns `/me` and a CSRF token."""
    with runtime.db.read() as session:
        enrol = two_factor.must_enrol(session, agent_id)
    with runtime.transaction(agent_id) as tx:
        signed_in = tx.session.get(Agent, agent_id)
        assert signed_in is not None
        _row, token = start_session(
            tx, signed_in, user_agent=request.headers.get("user-agent", ""), ip=client_ip(request)
        )
        payload = me_payload(signed_in, None)
        payload["team_ids"] = [t.id for t in signed_in.teams]
        payload["two_factor_setup_required"] = enrol
    request.session.clear()
    request.session[SESSION_KEY] = token
    payload["csrf_token"] = new_csrf(request)
    remember_device(request, response, runtime, agent_id)
    return payload


@router.post("/login/two-factor")
def login_second_step(body: CodeIn, request: Request, response: Response, runtime: RuntimeDep) -> dict[str, Any]:
    """Finish signing in with a code from the authenticator app, or a recovery code.

    Follows a sign-in that answered `two_factor_required` (within 5 minutes: else 401
    `two_factor_expired`). Wrong codes answer 401 `two_factor_code_wrong`; five a
    sign-in attempt, or 10 in 5 minutes for the account, then 429.
    """
    pending = request.session.get(PENDING_KEY) or {}
    agent_id = pending.get("agent_id")
    if not isinstance(agent_id, int) or float(pending.get("until", 0)) < runtime.clock.now().timestamp():
        request.session.pop(PENDING_KEY, None)
        raise ActionError("two_factor_expired", N_("Sign in again: too much time went by."), 401)
    limiter = request.app.state.limiter
    tries = int(pending.get("tries", 0)) + 1
    if tries > CODE_TRIES or not limiter.hit(f"two-factor:{agent_id}", CODE_TRIES * 2, 300):
        request.session.pop(PENDING_KEY, None)
        raise TooManyAttempts(TOO_MANY, limiter.retry_after(300))
    request.session[PENDING_KEY] = {**pending, "tries": tries}
    with runtime.transaction(agent_id) as tx:
        agent = tx.session.get(Agent, agent_id)
        accepted = agent is not None and agent.active and two_factor.check_code(tx, agent_id, body.code)
    if not accepted:
        with runtime.transaction() as tx:
            tx.record(
                "auth.sign_in_failed", data={"agent_id": agent_id, "step": "two_factor", "ip": client_ip(request)}
            )
        raise ActionError("two_factor_code_wrong", N_("That code is not right; type the one your app shows now."), 401)
    return sign_in(request, response, runtime, agent_id)


@router.post("/accept-invitation")
def accept(body: AcceptInvitationIn, request: Request, response: Response, runtime: RuntimeDep) -> dict[str, Any]:
    """Accept an invitation: become an agent with the password chosen here, and be signed in.

    A link that is unknown, accepted, withdrawn (or replaced) or expired answers 400
    `invitation_invalid`, `invitation_used`, `invitation_revoked` or `invitation_expired`.
    """
    limiter = request.app.state.limiter
    ip = client_ip(request)
    if not limiter.hit(f"login-ip:{ip}", runtime.settings.login_rate_limit * 3):
        raise TooManyAttempts(TOO_MANY, limiter.retry_after())
    with runtime.transaction() as tx:
        agent = accept_invitation(tx, body.token, password=body.password, name=body.name)
        _row, token = start_session(tx, agent, user_agent=request.headers.get("user-agent", ""), ip=ip)
        payload = me_payload(agent, None)
        agent_id = agent.id
    request.session.clear()
    request.session[SESSION_KEY] = token
    payload["csrf_token"] = new_csrf(request)
    remember_device(request, response, runtime, agent_id)
    return payload


@router.post("/logout")
def logout(request: Request, principal: CurrentAgent, runtime: RuntimeDep) -> dict[str, bool]:
    """Sign out: this session ends on the server too, so a copy of its cookie no longer works."""
    if principal.session_id is not None:
        with runtime.transaction(principal.id) as tx:
            end_session(tx, principal.id, principal.session_id, signing_out=True)
    request.session.clear()
    return {"ok": True}


def mail_not_configured() -> ActionError:
    return ActionError(
        "mail_not_configured",
        N_(
            "This server is not set up to send e-mail, so it cannot send password reset links. "
            "Ask an administrator to set a new password for you."
        ),
        # Not a failure of this request, nor one that retrying fixes: the installation has no
        # mail server until an administrator sets HILO_SMTP_URL.
        409,
    )


@router.post("/password-reset", status_code=202)
def password_reset(body: PasswordResetIn, request: Request, runtime: RuntimeDep) -> dict[str, bool]:
    """E-mail a link to choose a new password (valid for an hour, single use).

    The answer is the same whether or not an agent has the address. Requests are limited per
    e-mail address and per client address (429 with Retry-After).
    """
    if not runtime.settings.mail_configured:
        raise mail_not_configured()
    limiter = request.app.state.limiter
    ip = client_ip(request)
    email = body.email.strip().lower()
    if not limiter.hit(f"reset-ip:{ip}", runtime.settings.login_rate_limit, 3600) or not limiter.hit(
        f"reset-email:{email}", RESETS_PER_ADDRESS, 3600
    ):
        raise TooManyAttempts(TOO_MANY_RESETS, limiter.retry_after(3600))
    with runtime.transaction() as tx:
        request_password_reset(tx, email, ip=ip)
    return {"ok": True}


@router.post("/password-reset/confirm")
def password_reset_confirm(body: PasswordResetConfirmIn, request: Request, runtime: RuntimeDep) -> dict[str, bool]:
    """Choose a new password with the token of a reset link; every session of the agent ends.

    A link that is unknown, used (or replaced by a newer one) or expired answers 400
    `reset_token_invalid`, `reset_token_used` or `reset_token_expired`.
    """
    limiter = request.app.state.limiter
    if not limiter.hit(f"login-ip:{client_ip(request)}", runtime.settings.login_rate_limit * 3):
        raise TooManyAttempts(TOO_MANY, limiter.retry_after())
    with runtime.transaction() as tx:
        agent = confirm_password_reset(tx, body.token, body.password)
        email = agent.email
    # Whoever guessed at the old password no longer slows the owner down.
    limiter.backoff_clear(f"login:{email}")
    return {"ok": True}


@router.get("/me")
def me(request: Request, principal: CurrentAgent) -> dict[str, Any]:
    csrf = None if principal.via_token else (request.session.get("csrf") or new_csrf(request))
    return me_payload(principal, csrf) | {"team_ids": sorted(principal.team_ids)}


@router.patch("/me")
def update_me(body: MeIn, principal: CurrentAgent, runtime: RuntimeDep) -> dict[str, Any]:
    """Change your name or language; a new password needs the current one and a browser session."""
    if body.password is not None and principal.via_token:
        raise ActionError(
            "password_needs_session", N_("Change your password from a signed-in browser, not with an API token."), 403
        )
    with runtime.transaction(principal.id) as tx:
        agent = tx.session.get(Agent, principal.id)
        assert agent is not None
        if body.password is not None:
            change_own_password(tx, agent, body.current_password or "", body.password, principal.session_id)
        update_agent(tx, agent, name=body.name, locale=body.locale)
        return me_payload(agent, None) | {"team_ids": sorted(principal.team_ids)}


def _needs_session(principal: Principal) -> None:
    if principal.via_token:
        raise ActionError(
            "two_factor_needs_session",
            N_("Set up two-factor sign-in from a signed-in browser, not with an API token."),
            403,
        )


@router.get("/two-factor")
def two_factor_status(principal: CurrentAgent, runtime: RuntimeDep) -> dict[str, Any]:
    """Whether you sign in with a code from an authenticator app, and how many recovery codes are left."""
    with runtime.db.read() as session:
        state = two_factor.status(session, principal.id)
        return {
            "enabled": state.enabled,
            "recovery_codes_left": state.recovery_left,
            "required": two_factor.required(session),
        }


@router.post("/two-factor/setup")
def two_factor_setup(principal: CurrentAgent, runtime: RuntimeDep) -> dict[str, Any]:
    """Start setting up two-factor sign-in: a new secret, as text and as a QR code (SVG) to scan."""
    _needs_session(principal)
    with runtime.transaction(principal.id) as tx:
        agent = tx.session.get(Agent, principal.id)
        assert agent is not None
        secret = two_factor.start_setup(tx, agent)
        uri = two_factor.setup_uri(secret, agent.email)
    return {"secret": secret, "otpauth_uri": uri, "qr_svg": two_factor.qr_svg(uri)}


@router.post("/two-factor/confirm")
def two_factor_confirm(body: CodeIn, principal: CurrentAgent, runtime: RuntimeDep) -> dict[str, Any]:
    """Turn two-factor sign-in on with a code from the app; the 10 recovery codes are shown only here."""
    _needs_session(principal)
    with runtime.transaction(principal.id) as tx:
        agent = tx.session.get(Agent, principal.id)
        assert agent is not None
        return {"recovery_codes": two_factor.confirm_setup(tx, agent, body.code)}


@router.post("/two-factor/disable")
def two_factor_disable(body: PasswordIn, principal: CurrentAgent, runtime: RuntimeDep) -> dict[str, bool]:
    """Turn two-factor sign-in off; needs your password."""
    _needs_session(principal)
    with runtime.transaction(principal.id) as tx:
        agent = tx.session.get(Agent, principal.id)
        assert agent is not None
        two_factor.disable(tx, agent, body.password)
    return {"ok": True}


def session_payload(row: AgentSession, current: str | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "created_at": row.created_at,
        "last_seen_at": row.last_seen_at,
        "user_agent": row.user_agent,
        "ip": row.ip,
        "current": row.id == current,
    }


@router.get("/sessions")
def list_sessions(principal: CurrentAgent, runtime: RuntimeDep) -> list[dict[str, Any]]:
    """Where you are signed in; `current` marks the session making this request."""
    return [session_payload(row, principal.session_id) for row in active_sessions(runtime, principal.id)]


@router.delete("/sessions/{session_id}", status_code=204)
def delete_session(session_id: str, request: Request, principal: CurrentAgent, runtime: RuntimeDep) -> None:
    """Sign one of your sessions out; it stops working at once."""
    with runtime.transaction(principal.id) as tx:
        end_session(tx, principal.id, session_id)
    if session_id == principal.session_id:
        request.session.clear()


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
