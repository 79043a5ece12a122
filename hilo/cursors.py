"""Page cursors: the opaque strings list endpoints hand out, decoded in one place with one refusal."""

from __future__ import annotations

import base64
from datetime import datetime

from hilo.errors import ActionError
from hilo.i18n import N_

# The widest integer a column or id holds (PostgreSQL BIGINT).
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def fits_int64(value: int) -> bool:
    return INT64_MIN <= value <= INT64_MAX


def invalid_cursor() -> ActionError:
    return ActionError("invalid_cursor", N_("The page cursor is not valid: start again from the first page."), 400)


def id_cursor(cursor: str) -> int:
    """Decode a cursor that is a row id (the last row of the previous page)."""
    if not cursor.isdigit() or not fits_int64(int(cursor)):
        raise invalid_cursor()
    return int(cursor)


def encode(*parts: object) -> str:
    return base64.urlsafe_b64encode("|".join(str(p) for p in parts).encode()).decode()


def time_and_id(cursor: str) -> tuple[datetime, int]:
    """Decode a (time, id) cursor: the sort key of the last row of the previous page."""
    try:
        at, ident = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        when, row = datetime.fromisoformat(at), int(ident)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid_cursor() from exc
    if not fits_int64(row):
        raise invalid_cursor()
    return when, row


def offset(cursor: str) -> int:
    """Decode an offset cursor (sorts without a unique key)."""
    try:
        value = int(base64.urlsafe_b64decode(cursor.encode()).decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid_cursor() from exc
    if value < 0 or not fits_int64(value):
        raise invalid_cursor()
    return value
