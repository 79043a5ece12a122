"""Contacts: details, edit, identities, merge, split and the timeline (the directory: hilo.api.directory)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from hilo.api.conversations import Timeline, messages_out
from hilo.channels.base import IdentityKind, IdentityRef
from hilo.contacts import actions as contact_actions
from hilo.contacts.access import access_contact
from hilo.conversations import merging
from hilo.conversations.access import visible_clause
from hilo.conversations.models import Conversation, Message
from hilo.http.deps import CurrentAgent, RuntimeDep
from hilo.http.schemas import ERRORS, ContactOut, IdentityOut

router = APIRouter(prefix="/api/v1/contacts", tags=["contacts"], responses=ERRORS)


class ContactPatch(BaseModel):
    name: str | None = Field(default=None, max_length=255)
    locale: str | None = Field(default=None, max_length=16)
    custom_attributes: dict[str, Any] | None = None


class IdentityIn(BaseModel):
    kind: IdentityKind
    value: str = Field(min_length=1, max_length=320)


class MergeIn(BaseModel):
    source_id: int


class SplitIn(BaseModel):
    identity_ids: list[int] = Field(min_length=1, max_length=100)
    name: str | None = Field(default=None, max_length=255)


@router.get("/{contact_id}", response_model=ContactOut)
def get_contact(contact_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> ContactOut:
    with runtime.db.read() as session:
        return ContactOut.model_validate(access_contact(session, principal, contact_id))


@router.patch("/{contact_id}", response_model=ContactOut)
def update_contact(contact_id: int, body: ContactPatch, principal: CurrentAgent, runtime: RuntimeDep) -> ContactOut:
    """Edit the name, language or custom attributes (a null attribute value removes it)."""
    with runtime.transaction(principal.id) as tx:
        contact = access_contact(tx.session, principal, contact_id)
        contact_actions.update_contact(
            tx, contact, name=body.name, locale=body.locale, custom_attributes=body.custom_attributes
        )
        tx.session.refresh(contact)
        return ContactOut.model_validate(contact)


@router.post("/{contact_id}/identities", response_model=IdentityOut, status_code=201)
def add_identity(contact_id: int, body: IdentityIn, principal: CurrentAgent, runtime: RuntimeDep) -> IdentityOut:
    """Link an e-mail address, phone number or channel id to this contact."""
    with runtime.transaction(principal.id) as tx:
        contact = access_contact(tx.session, principal, contact_id)
        identity = contact_actions.add_identity(tx, contact, IdentityRef(body.kind, body.value))
        return IdentityOut.model_validate(identity)


@router.post("/{contact_id}/merge", response_model=ContactOut)
def merge(contact_id: int, body: MergeIn, principal: CurrentAgent, runtime: RuntimeDep) -> ContactOut:
    """Merge contact `source_id` into this one: identities, conversations and history move here."""
    with runtime.transaction(principal.id) as tx:
        target = access_contact(tx.session, principal, contact_id)
        source = access_contact(tx.session, principal, body.source_id)
        merging.merge_contacts(tx, source_id=source.id, target_id=target.id)
        tx.session.expire_all()
        return ContactOut.model_validate(access_contact(tx.session, principal, target.id))


@router.post("/{contact_id}/split", response_model=ContactOut, status_code=201)
def split(contact_id: int, body: SplitIn, principal: CurrentAgent, runtime: RuntimeDep) -> ContactOut:
    """Move identities (and the conversations only they took part in) to a new contact."""
    with runtime.transaction(principal.id) as tx:
        contact = access_contact(tx.session, principal, contact_id)
        new = merging.split_contact(tx, contact, body.identity_ids, body.name)
        tx.session.expire_all()
        return ContactOut.model_validate(access_contact(tx.session, principal, new.id))


@router.get("/{contact_id}/timeline", response_model=Timeline)
def timeline(
    contact_id: int,
    principal: CurrentAgent,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[int | None, Query(description="message id: page back from here")] = None,
) -> Timeline:
    """Every message of the contact across all their conversations and channels, as one timeline."""
    with runtime.db.read() as session:
        contact = access_contact(session, principal, contact_id)
        query = (
            select(Message)
            .options(selectinload(Message.attachments))
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.contact_id == contact.id, visible_clause(principal))
            .order_by(Message.id.desc())
            .limit(limit + 1)
        )
        if before is not None:
            query = query.where(Message.id < before)
        rows = list(session.execute(query).scalars().all())
        more = len(rows) > limit
        rows = rows[:limit]
        rows.reverse()
        return Timeline(items=messages_out(session, rows), next_cursor=str(rows[0].id) if more and rows else None)
