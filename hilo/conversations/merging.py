"""Merging and splitting contacts, and merging their conversations: identities, threads and messages move
together, and nothing is lost."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from hilo.contacts.actions import contact_realtime, verified_conflict
from hilo.contacts.models import Contact, Identity
from hilo.conversations.actions import merge_conversation_rows, unmerge_conversation_rows
from hilo.conversations.models import Conversation, Message
from hilo.errors import ActionError
from hilo.events.models import Event
from hilo.i18n import N_
from hilo.runtime import Tx


def merge_conversations(tx: Tx, source: Conversation, target: Conversation) -> None:
    if source.id == target.id:
        raise ActionError("merge_same_conversation", N_("A conversation cannot be merged into itself."), 422)
    if source.merged_into_id is not None or target.merged_into_id is not None:
        raise ActionError("conversation_merged", N_("This conversation was merged into another one."), 409)
    if source.contact_id != target.contact_id:
        # One thread per person: conversations of two contacts merge only as one contact.
        if verified_conflict(tx.session, source.contact_id, target.contact_id):
            raise ActionError(
                "verified_identity_conflict",
                N_("Both contacts have different verified identities of the same kind; they are different people."),
                409,
            )
        merge_contacts(tx, source_id=source.contact_id, target_id=target.contact_id)
        tx.session.refresh(source)
        if source.merged_into_id is not None:
            return
    merge_conversation_rows(tx, source_id=source.id, target_id=target.id)


def merge_contacts(tx: Tx, *, source_id: int, target_id: int, automatic: bool = False) -> None:
    """Move everything of `source` into `target`; `source` stays as a tombstone.

    Identities, conversations and messages move. If both have an unresolved
    conversation they become one thread: the source's is merged into the target's.
    """
    if source_id == target_id:
        raise ActionError("merge_same_contact", N_("A contact cannot be merged into itself."), 422)
    session = tx.session
    if not automatic and verified_conflict(session, source_id, target_id):
        raise ActionError(
            "verified_identity_conflict",
            N_("Both contacts have different verified identities of the same kind; they are different people."),
            409,
        )
    moved = (
        session.execute(
            update(Identity)
            .where(Identity.contact_id == source_id)
            .values(contact_id=target_id, merged_from_contact_id=source_id)
            .returning(Identity.id)
        )
        .scalars()
        .all()
    )
    open_rows = session.execute(
        select(Conversation.id, Conversation.contact_id)
        .where(
            Conversation.contact_id.in_((source_id, target_id)),
            Conversation.status != "resolved",
            Conversation.merged_into_id.is_(None),
        )
        .order_by(Conversation.id)
    ).all()
    source_open = [r.id for r in open_rows if r.contact_id == source_id]
    target_open = [r.id for r in open_rows if r.contact_id == target_id]
    if source_open and target_open:
        merge_conversation_rows(tx, source_id=source_open[0], target_id=target_open[0])
    conversations = (
        session.execute(
            update(Conversation)
            .where(Conversation.contact_id == source_id)
            .values(contact_id=target_id)
            .returning(Conversation.id)
        )
        .scalars()
        .all()
    )
    session.execute(update(Message).where(Message.contact_id == source_id).values(contact_id=target_id))
    source = session.get(Contact, source_id)
    target = session.get(Contact, target_id)
    if source is None or target is None:
        raise ActionError("contact_not_found", N_("Contact not found."), 404)
    if not target.name and source.name:
        target.name = source.name
    target.custom_attributes = {**(source.custom_attributes or {}), **(target.custom_attributes or {})}
    source.merged_into_id = target_id
    session.flush()
    data = {
        "source_id": source_id,
        "identity_ids": list(moved),
        "conversation_ids": list(conversations),
        "automatic": automatic,
    }
    # The open pages of either contact re-render: the source's now show the target.
    tx.record(
        "contact.merged", contact_id=target_id, data=data, realtime={**contact_realtime(), "source_id": source_id}
    )


def split_contact(tx: Tx, contact: Contact, identity_ids: list[int], name: str | None = None) -> Contact:
    """Move the given identities to a contact of their own, with the conversations only they took part in.

    When the identities are exactly those one merge brought in, they go back to the contact
    they came from, which comes back from its tombstone with its name and attributes; so do
    its conversations, and the
    thread the merge joined with this contact's is taken apart again
    (`unmerge_conversation_rows`): its messages, and the later ones from or to the moved
    identities, go back to it with the state it had. What both contacts took part in after
    the merge (a conversation where both wrote) stays here; its messages keep their senders.
    """
    identities = [i for i in contact.identities if i.id in set(identity_ids)]
    if not identities or len(identities) != len(set(identity_ids)):
        raise ActionError("identity_not_on_contact", N_("Choose identities that belong to this contact."), 422)
    if len(identities) == len(contact.identities):
        raise ActionError("split_all_identities", N_("Leave at least one identity on the original contact."), 422)
    session = tx.session
    new = _merged_source(tx, contact, identities)
    restored = new is not None
    if new is not None:
        new.merged_into_id = None
        new.updated_at = tx.now
        if name:
            new.name = name
        merged = _merge_record(tx, target_id=contact.id, source_id=new.id)
    else:
        new = Contact(
            name=name or contact.name, locale=contact.locale, custom_attributes={}, created_at=tx.now, updated_at=tx.now
        )
        session.add(new)
        merged = {}
    session.flush()
    moved_ids = [i.id for i in identities]
    for identity in identities:
        identity.contact_id = new.id
        identity.merged_from_contact_id = None
    # A conversation moves when every identity-bearing message in it came through the
    # moved identities; conversations that mix both stay, their messages keep their senders.
    rows = session.execute(
        select(Message.conversation_id, Message.identity_id).where(
            Message.contact_id == contact.id, Message.identity_id.is_not(None)
        )
    ).all()
    per_conversation: dict[int, set[int]] = {}
    for row in rows:
        per_conversation.setdefault(row.conversation_id, set()).add(row.identity_id)
    moving = [cid for cid, ids in per_conversation.items() if ids <= set(moved_ids)]
    brought = [int(cid) for cid in merged.get("conversation_ids") or []]
    joined: list[Conversation] = []
    if brought:
        for conversation in session.execute(
            select(Conversation).where(Conversation.id.in_(brought), Conversation.contact_id == contact.id)
        ).scalars():
            if conversation.merged_into_id is not None:
                joined.append(conversation)
            elif conversation.id not in per_conversation:
                # Notes and activity only: it was the other contact's all the same.
                moving.append(conversation.id)
    if moving:
        session.execute(update(Conversation).where(Conversation.id.in_(moving)).values(contact_id=new.id))
        session.execute(update(Message).where(Message.conversation_id.in_(moving)).values(contact_id=new.id))
    session.flush()
    unmerged = []
    for conversation in joined:
        conversation.contact_id = new.id
        session.flush()
        unmerge_conversation_rows(tx, conversation, identity_ids=moved_ids)
        unmerged.append(conversation.id)
    session.execute(
        update(Message)
        .where(Message.contact_id == contact.id, Message.identity_id.in_(moved_ids))
        .values(contact_id=new.id)
    )
    session.flush()
    tx.record(
        "contact.split",
        contact_id=contact.id,
        data={
            "new_contact_id": new.id,
            "restored": restored,
            "identity_ids": moved_ids,
            "conversation_ids": moving,
            "unmerged_conversation_ids": unmerged,
        },
        realtime={**contact_realtime(), "new_contact_id": new.id},
    )
    tx.record("contact.created", contact_id=new.id, data={"split_from": contact.id, "restored": restored})
    return new


def _merged_source(tx: Tx, contact: Contact, identities: list[Identity]) -> Contact | None:
    """The contact merged into `contact` whose identities are exactly `identities`, if there is one.

    Splitting off only some of what a merge brought in is a new separation, not an undo."""
    sources = {identity.merged_from_contact_id for identity in identities}
    if len(sources) != 1 or None in sources:
        return None
    source_id = sources.pop()
    brought = {identity.id for identity in contact.identities if identity.merged_from_contact_id == source_id}
    if brought != {identity.id for identity in identities}:
        return None
    source = tx.session.get(Contact, source_id)
    return source if source is not None and source.merged_into_id == contact.id else None


def _merge_record(tx: Tx, *, target_id: int, source_id: int) -> dict[str, Any]:
    """The data of the latest merge of contact `source_id` into `target_id` (its event)."""
    rows = tx.session.execute(
        select(Event.data)
        .where(Event.contact_id == target_id, Event.kind == "contact.merged")
        .order_by(Event.id.desc())
    ).scalars()
    return next((data for data in rows if isinstance(data, dict) and data.get("source_id") == source_id), {})
