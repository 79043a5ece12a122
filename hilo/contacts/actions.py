"""Contact actions: update, add identities, and the rules that keep verified identities apart."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hilo.contacts.identity import IdentityRef, InvalidIdentity, normalize
from hilo.contacts.models import Contact, Identity
from hilo.errors import ActionError
from hilo.i18n import N_
from hilo.runtime import Tx

# Why an automatic link was refused: the `reason` of a "contact.link_refused" event.
CLAIM_OF_VERIFIED_CONTACT = "claim_of_verified_contact"
UNVERIFIED_SENDER = "unverified_sender"
VERIFIED_CONFLICT = "verified_conflict"


def _verified_of(session: Session, contact_ids: list[int]) -> dict[int, set[tuple[str, str]]]:
    found: dict[int, set[tuple[str, str]]] = {contact_id: set() for contact_id in contact_ids}
    if contact_ids:
        rows = session.execute(
            select(Identity.contact_id, Identity.kind, Identity.value).where(
                Identity.contact_id.in_(contact_ids), Identity.verified.is_(True)
            )
        ).all()
        for row in rows:
            found[row.contact_id].add((row.kind, row.value))
    return found


def _conflicting(first: set[tuple[str, str]], second: set[tuple[str, str]]) -> bool:
    """True when both sets hold verified identities of one kind with different values."""
    shared = {k for k, _ in first} & {k for k, _ in second}
    return any({v for k, v in first if k == kind} != {v for k, v in second if k == kind} for kind in shared)


def verified_conflict(session: Session, first_id: int, second_id: int) -> bool:
    """True when both contacts hold verified identities of one kind with different values."""
    verified = _verified_of(session, [first_id, second_id])
    return _conflicting(verified[first_id], verified[second_id])


def link_refusal(
    session: Session, claim: IdentityRef, *, sender: IdentityRef, sender_contact_id: int | None, owner_id: int | None
) -> str | None:
    """Why a message may not link `claim` (an identity it carries) with its sender; None if it may.

    The one rule for every automatic link (DESIGN invariant 1), checked before a new sender
    joins the contact that owns `claim` (`sender_contact_id` None), before `claim` is added
    to the sender's contact (`owner_id` None), and before the two contacts are merged.
    Anyone can type an address into a form, so an unverified claim never joins a contact
    that holds a verified identity, unless the sender is that verified identity; and
    different verified identities of one kind are different people.
    """
    verified = _verified_of(session, [c for c in (sender_contact_id, owner_id) if c is not None])
    sender_side = set(verified[sender_contact_id]) if sender_contact_id is not None else set()
    owner_side = verified[owner_id] if owner_id is not None else set()
    if sender.verified:
        sender_side.add((str(sender.kind), sender.value))
    if not claim.verified:
        if owner_side:
            return CLAIM_OF_VERIFIED_CONTACT
        if sender_side and not sender.verified:
            return UNVERIFIED_SENDER
    if _conflicting(sender_side, owner_side):
        return VERIFIED_CONFLICT
    return None


def contact_realtime() -> dict[str, Any]:
    # Contact changes are visible to every agent (contacts are shared by the team).
    return {"team_id": None, "assignee_id": None}


def update_contact(
    tx: Tx,
    contact: Contact,
    *,
    name: str | None = None,
    locale: str | None = None,
    custom_attributes: dict[str, Any] | None = None,
) -> Contact:
    changes: dict[str, Any] = {}
    if name is not None and name != contact.name:
        changes["name"] = [contact.name, name]
        contact.name = name
    if locale is not None and locale != contact.locale:
        changes["locale"] = [contact.locale, locale]
        contact.locale = locale
    if custom_attributes is not None:
        merged = {**(contact.custom_attributes or {}), **custom_attributes}
        merged = {k: v for k, v in merged.items() if v is not None}
        changes["custom_attributes"] = [contact.custom_attributes, merged]
        contact.custom_attributes = merged
    if changes:
        contact.updated_at = tx.now
        tx.session.flush()
        tx.record("contact.updated", contact_id=contact.id, data={"changes": changes}, realtime=contact_realtime())
    return contact


def add_identity(tx: Tx, contact: Contact, ref: IdentityRef) -> Identity:
    """Link an identity to a contact, by an agent. One already on another contact is refused."""
    try:
        ref = normalize(ref, tx.runtime.settings.default_region)
    except InvalidIdentity as exc:
        raise ActionError(exc.code, exc.reason, 422) from exc
    existing = tx.session.execute(
        select(Identity).where(Identity.kind == ref.kind, Identity.value == ref.value)
    ).scalar_one_or_none()
    if existing is not None:
        if existing.contact_id == contact.id:
            return existing
        raise ActionError(
            "identity_taken",
            N_("This identity belongs to another contact. Merge the two contacts instead."),
            409,
            contact_id=existing.contact_id,
        )
    identity = Identity(
        contact_id=contact.id, kind=ref.kind, value=ref.value, verified=False, opted_out=False, created_at=tx.now
    )
    tx.session.add(identity)
    tx.session.flush()
    tx.record(
        "identity.added",
        contact_id=contact.id,
        data={"kind": ref.kind, "value": ref.value},
        realtime=contact_realtime(),
    )
    return identity
