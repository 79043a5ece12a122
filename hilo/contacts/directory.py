"""The contacts directory's own rules: creating a contact by hand, custom-attribute filters, who may
import and export.

Reads that span conversations (labels, the conversations of a profile) live above this layer, in
`hilo.conversations.directory`.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, String, cast, func, select
from sqlalchemy.orm import Session

from hilo.agents.access import Principal
from hilo.contacts.actions import contact_realtime
from hilo.contacts.identity import IdentityRef, InvalidIdentity, normalize
from hilo.contacts.models import Contact, Identity
from hilo.errors import ActionError
from hilo.i18n import N_
from hilo.runtime import Tx

# A custom attribute's key: what a CSV column maps to and a filter names.
ATTRIBUTE_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_ATTRIBUTE_VALUE = 1000
MAX_ATTRIBUTES = 50
MAX_IDENTITIES = 20
# Who may copy the whole directory in or out: the roles that already see every conversation.
TRANSFER_ROLES = ("admin", "supervisor")


def require_transfer(principal: Principal) -> None:
    """Refuse contact import and export to anyone but administrators and supervisors.

    An export hands out every customer's addresses and an import writes hundreds of contacts
    at once; agents keep creating and editing contacts one by one.
    """
    if principal.role not in TRANSFER_ROLES:
        raise ActionError("forbidden", N_("Only administrators and supervisors can import or export contacts."), 403)


def attribute_key(key: str) -> str:
    """Return `key` if it can name a custom attribute, else refuse it."""
    if not ATTRIBUTE_KEY.fullmatch(key):
        raise ActionError(
            "attribute_key_invalid",
            N_("An attribute name is 1 to 64 letters, digits, dots, dashes or underscores."),
            422,
        )
    return key


def attribute_clause(dialect: str, key: str, value: str | None) -> ColumnElement[bool]:
    """Contacts whose custom attribute `key` is set (to `value` when given, compared as text)."""
    attribute_key(key)
    column: ColumnElement[Any]
    if dialect == "postgresql":
        column = Contact.custom_attributes.op("->>")(key)
    else:
        column = func.json_extract(Contact.custom_attributes, f'$."{key}"')
    if value is None:
        return column.is_not(None)
    return cast(column, String) == value


def check_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """Validate custom attributes set by hand or by an import: named keys, short scalar values."""
    if len(attributes) > MAX_ATTRIBUTES:
        raise ActionError("too_many_attributes", N_("A contact holds at most {n} attributes."), 422, n=MAX_ATTRIBUTES)
    for key, value in attributes.items():
        attribute_key(key)
        if value is not None and not isinstance(value, str | int | float | bool):
            raise ActionError("attribute_value_invalid", N_("An attribute value is text, a number or yes/no."), 422)
        if isinstance(value, str) and len(value) > MAX_ATTRIBUTE_VALUE:
            raise ActionError(
                "attribute_value_too_long",
                N_("An attribute value is at most {n} characters."),
                422,
                n=MAX_ATTRIBUTE_VALUE,
            )
    return attributes


def normalized_identities(refs: list[IdentityRef], default_region: str) -> list[IdentityRef]:
    """Put each identity in canonical form, once each; an invalid one is refused with its code."""
    if len(refs) > MAX_IDENTITIES:
        raise ActionError("too_many_identities", N_("A contact holds at most {n} identities."), 422, n=MAX_IDENTITIES)
    found: dict[tuple[str, str], IdentityRef] = {}
    for ref in refs:
        try:
            clean = normalize(ref, default_region)
        except InvalidIdentity as exc:
            raise ActionError(exc.code, exc.reason, 422, value=ref.value[:320]) from exc
        found.setdefault((str(clean.kind), clean.value), clean)
    return list(found.values())


def owners(session: Session, refs: list[IdentityRef]) -> dict[tuple[str, str], int]:
    """The contact that already owns each of `refs` (canonical), by (kind, value)."""
    if not refs:
        return {}
    rows = session.execute(
        select(Identity.kind, Identity.value, Identity.contact_id).where(
            Identity.value.in_([r.value for r in refs]), Identity.kind.in_({str(r.kind) for r in refs})
        )
    ).all()
    wanted = {(str(r.kind), r.value) for r in refs}
    return {(row.kind, row.value): row.contact_id for row in rows if (row.kind, row.value) in wanted}


def create_contact(
    tx: Tx,
    *,
    name: str | None,
    identities: list[IdentityRef],
    locale: str | None = None,
    custom_attributes: dict[str, Any] | None = None,
    via: str = "agent",
) -> Contact:
    """Create a contact by hand with its identities (canonical form, unverified).

    An identity that already belongs to a contact is refused (409 `identity_taken`, naming that
    contact), so the directory never holds the same person twice.
    """
    refs = normalized_identities(identities, tx.runtime.settings.default_region)
    if not refs and not (name and name.strip()):
        raise ActionError("contact_empty", N_("Give the contact a name or an address."), 422)
    taken = owners(tx.session, refs)
    if taken:
        raise ActionError(
            "identity_taken",
            N_("This identity belongs to another contact. Merge the two contacts instead."),
            409,
            details={"contact_id": next(iter(taken.values()))},
        )
    attributes = {k: v for k, v in check_attributes(custom_attributes or {}).items() if v is not None}
    contact = Contact(
        name=(name or "").strip() or None,
        locale=locale,
        custom_attributes=attributes,
        created_at=tx.now,
        updated_at=tx.now,
    )
    tx.session.add(contact)
    tx.session.flush()
    for ref in refs:
        tx.session.add(
            Identity(
                contact_id=contact.id,
                kind=str(ref.kind),
                value=ref.value,
                verified=False,
                opted_out=False,
                created_at=tx.now,
            )
        )
    tx.session.flush()
    tx.record(
        "contact.created",
        contact_id=contact.id,
        data={"via": via, "identities": [[str(r.kind), r.value] for r in refs]},
        realtime=contact_realtime(),
    )
    return contact
