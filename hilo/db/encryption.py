"""Secrets encrypted at rest: the process's keyring and the `EncryptedJson` column type.

Keys come from HILO_SECRET_KEYS (comma-separated Fernet keys: the first encrypts, every
one decrypts, so keys rotate), then a key derived from the app secret key (HILO_SECRET_KEY),
which decrypts too and encrypts only when HILO_SECRET_KEYS is empty. The settings are not
imported here: whoever opens the database (`hilo.runtime.Runtime`, the migration that
encrypted existing rows) calls `use_keys` first.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import TypeDecorator
from sqlalchemy.engine import Dialect

from hilo.db.base import Json

KEYS_VARIABLE = "HILO_SECRET_KEYS"


class KeyConfigurationError(ValueError):
    """HILO_SECRET_KEYS holds something that is not a Fernet key."""


class SecretsUnreadable(RuntimeError):
    """A stored secret was encrypted with none of the configured keys (or never encrypted)."""

    def __init__(self) -> None:
        super().__init__(
            f"stored secrets cannot be decrypted with the configured keys: add the key they were encrypted "
            f"with to {KEYS_VARIABLE} (see docs/operations.md, 'Secrets at rest')"
        )


def generate_key() -> str:
    return Fernet.generate_key().decode()


def default_key(secret_key: str) -> str:
    """The key derived from the app secret key, so a desk with no configuration has one."""
    digest = hashlib.sha256(b"hilo secrets at rest\0" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def resolve_keys(configured: str, secret_key: str) -> list[str]:
    """HILO_SECRET_KEYS's keys in order, then the default key (to read what it encrypted)."""
    keys = [key.strip() for key in configured.split(",") if key.strip()]
    fallback = default_key(secret_key)
    return keys if fallback in keys else [*keys, fallback]


class Keyring:
    """Fernet keys: the first encrypts, any of them decrypts."""

    def __init__(self, keys: Sequence[str]) -> None:
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key))
            except (ValueError, binascii.Error):
                # The key itself stays out of the message: it may be a real one, mistyped.
                raise KeyConfigurationError(
                    f"{KEYS_VARIABLE}: key {position} is not a Fernet key (32 url-safe base64-encoded bytes); "
                    "make one with `hilo secrets generate-key`"
                ) from None
        if not fernets:
            raise KeyConfigurationError(f"{KEYS_VARIABLE}: no key given")
        self._fernet = MultiFernet(fernets)

    def encrypt(self, data: bytes) -> str:
        return self._fernet.encrypt(data).decode()

    def decrypt(self, token: str) -> bytes:
        try:
            return self._fernet.decrypt(token.encode())
        except InvalidToken:
            raise SecretsUnreadable() from None


_keyring: Keyring | None = None


def use_keys(keys: Sequence[str]) -> Keyring:
    """Encrypt and decrypt this process's secret columns with `keys` from now on."""
    global _keyring
    _keyring = Keyring(keys)
    return _keyring


def keyring() -> Keyring:
    if _keyring is None:
        raise RuntimeError("secret columns used before hilo.db.encryption.use_keys (the Runtime calls it)")
    return _keyring


class EncryptedJson(TypeDecorator[Any]):
    """A JSON value stored encrypted: one JSON string holding a Fernet token.

    The column keeps its JSON type, so encrypting existing rows changed no schema.
    """

    impl = Json
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return keyring().encrypt(orjson.dumps(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            # Plain JSON: a row written before its column was encrypted.
            raise SecretsUnreadable()
        return orjson.loads(keyring().decrypt(value))
