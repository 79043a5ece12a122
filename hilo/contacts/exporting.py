"""Contact export as CSV, streamed: one short read per batch of contacts, never the whole table in memory.

The columns are the ones an import maps back by default (`hilo.contacts.importing.suggested_mapping`):
id, name, locale, emails, phones, created_at, then one `attr.<key>` column per custom attribute.
Several addresses share a cell, separated by "; ".
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from hilo.contacts.directory import MAX_ATTRIBUTES
from hilo.contacts.identity import IdentityKind
from hilo.contacts.models import Contact, Identity
from hilo.runtime import Runtime

BATCH = 500
FIXED_COLUMNS = ("id", "name", "locale", "emails", "phones", "created_at")
# Spreadsheets run a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """A cell a spreadsheet shows as text: a leading formula character gets a quote before it.

    Phone numbers start with "+", so a cell that is a phone number keeps it: the import strips
    the quote anyway, and a number is no formula.
    """
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START) and not _is_phone_list(text):
        return "'" + text
    return text


def _is_phone_list(text: str) -> bool:
    return all(part.strip().startswith("+") and part.strip()[1:].isdigit() for part in text.split(";"))


def attribute_keys(runtime: Runtime) -> list[str]:
    """Every custom attribute key in use, sorted (at most a few hundred: each contact holds at most 50)."""
    keys: set[str] = set()
    after = 0
    while True:
        with runtime.db.read() as session:
            rows = session.execute(
                select(Contact.id, Contact.custom_attributes)
                .where(Contact.merged_into_id.is_(None), Contact.id > after)
                .order_by(Contact.id)
                .limit(BATCH)
            ).all()
        for row in rows:
            keys.update((row.custom_attributes or {}).keys())
        if len(rows) < BATCH or len(keys) > MAX_ATTRIBUTES * 10:
            return sorted(keys)
        after = rows[-1].id


def _line(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue()


def export_lines(runtime: Runtime) -> Iterator[str]:
    """Yield the CSV file: the header, then the lines of each batch of contacts, oldest first."""
    keys = attribute_keys(runtime)
    yield "\ufeff" + _line([*FIXED_COLUMNS, *(f"attr.{key}" for key in keys)])
    after = 0
    while True:
        with runtime.db.read() as session:
            contacts = session.execute(
                select(Contact.id, Contact.name, Contact.locale, Contact.custom_attributes, Contact.created_at)
                .where(Contact.merged_into_id.is_(None), Contact.id > after)
                .order_by(Contact.id)
                .limit(BATCH)
            ).all()
            addresses: dict[int, dict[str, list[str]]] = {}
            if contacts:
                found = session.execute(
                    select(Identity.contact_id, Identity.kind, Identity.value)
                    .where(
                        Identity.contact_id.in_([c.id for c in contacts]),
                        Identity.kind.in_((IdentityKind.EMAIL, IdentityKind.PHONE)),
                    )
                    .order_by(Identity.id)
                )
                for contact_id, kind, value in found:
                    addresses.setdefault(contact_id, {}).setdefault(kind, []).append(value)
        lines = []
        for contact in contacts:
            owned = addresses.get(contact.id, {})
            attributes = contact.custom_attributes or {}
            lines.append(
                _line(
                    [
                        contact.id,
                        safe_cell(contact.name),
                        safe_cell(contact.locale),
                        safe_cell("; ".join(owned.get(IdentityKind.EMAIL, []))),
                        safe_cell("; ".join(owned.get(IdentityKind.PHONE, []))),
                        contact.created_at.isoformat(),
                        *(safe_cell(attributes.get(key)) for key in keys),
                    ]
                )
            )
        # One piece per batch: the server hands each piece to the socket from a worker thread.
        if lines:
            yield "".join(lines)
        if len(contacts) < BATCH:
            return
        after = contacts[-1].id
