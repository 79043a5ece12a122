"""Access to contacts: every agent of the organisation may see and edit contacts."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from hilo.agents.access import Principal
from hilo.contacts.models import Contact
from hilo.errors import NotFound
from hilo.i18n import N_


def access_contact(session: Session, principal: Principal, contact_id: int) -> Contact:
    """Fetch a contact by id, following merges to the surviving contact."""
    del principal  # contacts are shared by the whole team; kept for one call shape
    for _hop in range(10):
        contact = session.execute(
            select(Contact).options(selectinload(Contact.identities)).where(Contact.id == contact_id)
        ).scalar_one_or_none()
        if contact is None:
            break
        if contact.merged_into_id is None:
            return contact
        contact_id = contact.merged_into_id
    raise NotFound("contact_not_found", N_("Contact not found."))
