"""Password hashing (argon2id) and personal API tokens (stored as SHA-256)."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verifying against this keeps a failed log-in for an unknown e-mail as slow as a real one.
_DUMMY = _hasher.hash("hilo-timing-equaliser")
TOKEN_PREFIX = "hilo_"  # noqa: S105 (a public prefix that makes leaked tokens recognisable)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> tuple[str, str, str]:
    """Return (token shown once, its hash for storage, a short prefix for display)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, token_hash(token), token[: len(TOKEN_PREFIX) + 6]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
