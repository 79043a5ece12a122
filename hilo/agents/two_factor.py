"""Two-factor sign-in with an authenticator app (TOTP) and single-use recovery codes.

Setting it up: `start_setup` keeps a new secret (encrypted) that the agent scans as a QR
code, `confirm_setup` turns it on once they type a code from the app and returns ten
recovery codes, shown once and kept as hashes. Signing in then takes the password and a
code (`check_code`); a code is accepted once, and guesses are throttled by the caller.
"""

from __future__ import annotations

import hashlib
import io
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
import segno
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hilo import constant_time
from hilo.agents.models import AccountSettings, Agent, RecoveryCode, TwoFactor
from hilo.agents.passwords import verify_password
from hilo.errors import ActionError
from hilo.i18n import N_
from hilo.runtime import Tx

ISSUER = "Hilo"
STEP_SECONDS = 30
RECOVERY_CODES = 10
# Codes of the step before and after count too: the phone's clock may be a little off.
DRIFT_STEPS = 1


def recovery_hash(code: str) -> str:
    return hashlib.sha256(normalize_recovery(code).encode()).hexdigest()


def normalize_recovery(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def new_recovery_code() -> str:
    raw = secrets.token_hex(5)
    return f"{raw[:5]}-{raw[5:]}"


@dataclass(frozen=True)
class Status:
    enabled: bool
    pending_secret: str | None
    recovery_left: int


def status(session: Session, agent_id: int) -> Status:
    """Whether the agent signs in with a second step, the secret being set up, the codes left."""
    row = session.get(TwoFactor, agent_id)
    if row is None:
        return Status(False, None, 0)
    left = len(
        session.execute(
            select(RecoveryCode.id).where(RecoveryCode.agent_id == agent_id, RecoveryCode.used_at.is_(None))
        ).all()
    )
    if row.confirmed_at is None:
        return Status(False, row.secret["secret"], left)
    return Status(True, None, left)


def enabled(session: Session, agent_id: int) -> bool:
    found = session.execute(
        select(TwoFactor.confirmed_at).where(TwoFactor.agent_id == agent_id, TwoFactor.confirmed_at.is_not(None))
    ).first()
    return found is not None


def required(session: Session) -> bool:
    """Whether the organisation requires two-factor sign-in of every agent."""
    row = session.get(AccountSettings, 1)
    return bool(row and row.require_two_factor)


def must_enrol(session: Session, agent_id: int) -> bool:
    """True when the organisation requires two-factor sign-in and the agent has not set it up."""
    return required(session) and not enabled(session, agent_id)


def setup_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The otpauth:// URI as an SVG QR code, drawn here so the secret never leaves the server."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", xmldecl=False, svgns=True, scale=5, border=2, svgclass="qr")
    return out.getvalue().decode()


def start_setup(tx: Tx, agent: Agent) -> str:
    """Keep a new secret for the agent to scan; replaces one being set up. Refused while it is on."""
    row = tx.session.get(TwoFactor, agent.id)
    if row is not None and row.confirmed_at is not None:
        raise ActionError("two_factor_enabled", N_("Two-factor sign-in is already on."), 409)
    secret = pyotp.random_base32()
    if row is None:
        tx.session.add(TwoFactor(agent_id=agent.id, secret={"secret": secret}, created_at=tx.now, updated_at=tx.now))
    else:
        row.secret = {"secret": secret}
        row.updated_at = tx.now
    tx.session.flush()
    return secret


def _matching_step(secret: str, code: str, now: datetime, after: int | None) -> int | None:
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // STEP_SECONDS
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if after is not None and step <= after:
            continue
        if constant_time.equal(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def confirm_setup(tx: Tx, agent: Agent, code: str) -> list[str]:
    """Turn two-factor sign-in on with a code from the app; returns the recovery codes (shown once)."""
    row = tx.session.get(TwoFactor, agent.id)
    if row is None or row.confirmed_at is not None:
        raise ActionError("two_factor_not_started", N_("Start setting up two-factor sign-in first."), 409)
    step = _matching_step(row.secret["secret"], code, tx.now, None)
    if step is None:
        raise ActionError("two_factor_code_wrong", N_("That code is not right; type the one your app shows now."), 422)
    row.confirmed_at = tx.now
    row.last_step = step
    row.updated_at = tx.now
    codes = _new_recovery_codes(tx, agent.id)
    tx.record("auth.two_factor_enabled", data={"agent_id": agent.id})
    tx.deferred.append(tx.runtime.forget_principals)
    return codes


def _new_recovery_codes(tx: Tx, agent_id: int) -> list[str]:
    tx.session.execute(delete(RecoveryCode).where(RecoveryCode.agent_id == agent_id))
    codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
    tx.session.add_all(
        RecoveryCode(agent_id=agent_id, code_hash=recovery_hash(code), created_at=tx.now) for code in codes
    )
    return codes


def disable(tx: Tx, agent: Agent, password: str) -> None:
    """Turn two-factor sign-in off; the password is asked for so a borrowed browser cannot."""
    if not verify_password(agent.password_hash, password):
        raise ActionError("password_wrong", N_("Your current password is not right."), 403)
    row = tx.session.get(TwoFactor, agent.id)
    if row is None:
        raise ActionError("two_factor_off", N_("Two-factor sign-in is not on."), 409)
    was_on = row.confirmed_at is not None
    tx.session.delete(row)
    tx.session.execute(delete(RecoveryCode).where(RecoveryCode.agent_id == agent.id))
    if was_on:
        tx.record("auth.two_factor_disabled", data={"agent_id": agent.id})
        tx.deferred.append(tx.runtime.forget_principals)


def check_code(tx: Tx, agent_id: int, code: str) -> bool:
    """Accept a code from the app or an unused recovery code, once; False for anything else."""
    row = tx.session.get(TwoFactor, agent_id, with_for_update=True)
    if row is None or row.confirmed_at is None:
        return False
    step = _matching_step(row.secret["secret"], code, tx.now, row.last_step)
    if step is not None:
        row.last_step = step
        return True
    recovery = tx.session.execute(
        select(RecoveryCode)
        .where(
            RecoveryCode.agent_id == agent_id,
            RecoveryCode.code_hash == recovery_hash(code),
            RecoveryCode.used_at.is_(None),
        )
        .with_for_update()
    ).scalar_one_or_none()
    if recovery is None:
        return False
    recovery.used_at = tx.now
    left = len(
        tx.session.execute(
            select(RecoveryCode.id).where(RecoveryCode.agent_id == agent_id, RecoveryCode.used_at.is_(None))
        ).all()
    )
    tx.record("auth.recovery_code_used", data={"agent_id": agent_id, "left": left})
    return True


def set_required(tx: Tx, require: bool) -> AccountSettings:
    """Require (or stop requiring) two-factor sign-in of every agent."""
    row = tx.session.get(AccountSettings, 1)
    if row is None:
        row = AccountSettings(id=1, require_two_factor=False, updated_at=tx.now)
        tx.session.add(row)
    if row.require_two_factor != require:
        row.require_two_factor = require
        row.updated_at = tx.now
        tx.record("auth.two_factor_required", data={"required": require})
        tx.deferred.append(tx.runtime.forget_principals)
    tx.session.flush()
    return row
