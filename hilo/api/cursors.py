"""Page cursors: the opaque strings list endpoints hand out, and their one refusal."""

from __future__ import annotations

from hilo.actions.errors import ActionError
from hilo.api.inputs import fits_int64
from hilo.i18n import N_


def invalid_cursor() -> ActionError:
    return ActionError("invalid_cursor", N_("The page cursor is not valid: start again from the first page."), 400)


def id_cursor(cursor: str) -> int:
    """Decode a cursor that is a row id (the last row of the previous page)."""
    if not cursor.isdigit() or not fits_int64(int(cursor)):
        raise invalid_cursor()
    return int(cursor)
