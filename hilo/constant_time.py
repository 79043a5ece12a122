"""Constant-time comparison of secrets (signatures, tokens) however hostile the given value."""

from __future__ import annotations

import hmac


def _as_bytes(value: str | bytes) -> bytes:
    # "surrogatepass" so that no str, whatever a client put in a header or a path, fails to encode.
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")


def equal(expected: str | bytes, given: str | bytes) -> bool:
    """True when `given` is `expected`, compared in constant time.

    `hmac.compare_digest` refuses str holding non-ASCII characters (a TypeError, so a 500):
    both sides are compared as UTF-8 bytes instead, and a non-ASCII value simply differs.
    """
    return hmac.compare_digest(_as_bytes(expected), _as_bytes(given))
