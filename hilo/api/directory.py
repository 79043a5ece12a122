"""The contacts directory over REST: list, search and filter, create, profile, start a conversation,
import from CSV and export as CSV.

Every agent may list, open and create contacts and write to them first; importing and exporting
the directory is for administrators and supervisors (`hilo.contacts.directory.require_transfer`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, FastAPI, File, Form, Query, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from hilo.api.conversations import messages_out
from hilo.channels.base import IdentityKind, IdentityRef
from hilo.contacts import exporting, importing
from hilo.contacts.access import access_contact
from hilo.contacts.directory import create_contact, require_transfer
from hilo.conversations.directory import DirectoryFilters, Reach, contact_profile, directory_page
from hilo.cursors import id_cursor
from hilo.errors import ActionError
from hilo.http.deps import CurrentAgent, RuntimeDep
from hilo.http.schemas import ERRORS, ContactOut, ConversationOut, MessageOut, serialize_conversations
from hilo.i18n import N_, gettext
from hilo.outbox import outreach
from hilo.runtime import Runtime

router = APIRouter(prefix="/api/v1", tags=["contacts"], responses=ERRORS)

ImportMapping = dict[str, str]


class DirectoryContactOut(ContactOut):
    """A directory row: the contact and their conversations the caller may see."""

    conversation_count: int = 0
    last_message_at: datetime | None = None
    open_conversation_id: int | None = None


class DirectoryList(BaseModel):
    items: list[DirectoryContactOut]
    next_cursor: str | None


class NewIdentity(BaseModel):
    kind: IdentityKind
    value: str = Field(min_length=1, max_length=320)


class ContactIn(BaseModel):
    name: str | None = Field(default=None, max_length=255)
    locale: str | None = Field(default=None, max_length=16)
    identities: list[NewIdentity] = Field(default_factory=list, max_length=20)
    custom_attributes: dict[str, Any] = Field(default_factory=dict)


class ChannelOptionOut(BaseModel):
    channel_account_id: int
    kind: str
    name: str
    identity_value: str | None
    available: bool
    code: str | None
    reason: str | None


class ProfileOut(BaseModel):
    contact: ContactOut
    conversations: list[ConversationOut]
    channels: list[ChannelOptionOut]


class StartIn(BaseModel):
    channel_account_id: int
    body: str | None = Field(default=None, max_length=65536)
    template: dict[str, Any] | None = None
    subject: str | None = Field(default=None, max_length=998)


class StartedOut(BaseModel):
    conversation_id: int
    created: bool
    message: MessageOut


class RejectedRowOut(BaseModel):
    line: int
    code: str
    message: str
    column: str | None


class ImportReportOut(BaseModel):
    dry_run: bool
    columns: list[str]
    mapping: dict[str, str]
    rows: int
    created: int
    updated: int
    rejected_count: int
    rejected: list[RejectedRowOut]


def directory_filters(
    runtime: Runtime,
    q: str | None,
    channel_account_id: int | None,
    label: str | None,
    attribute: str | None,
    attribute_value: str | None,
) -> DirectoryFilters:
    reach: Reach | None = None
    if channel_account_id is not None:
        with runtime.db.read() as session:
            reach = outreach.reach_of(session, channel_account_id)
    return DirectoryFilters(
        q=q or None,
        reach=reach,
        label=label or None,
        attribute_key=attribute or None,
        attribute_value=attribute_value if attribute else None,
    )


@router.get("/contacts", response_model=DirectoryList)
def list_contacts(
    principal: CurrentAgent,
    runtime: RuntimeDep,
    q: Annotated[str | None, Query(max_length=200, description="a name, an e-mail or a phone number")] = None,
    channel_account_id: Annotated[int | None, Query(description="only contacts this channel can reach")] = None,
    label: Annotated[str | None, Query(max_length=64, description="with a conversation labelled so")] = None,
    attribute: Annotated[str | None, Query(max_length=64, description="with this custom attribute set")] = None,
    attribute_value: Annotated[str | None, Query(max_length=1000, description="... to this value")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: str | None = None,
) -> DirectoryList:
    """List contacts, newest first; `q` searches names, e-mail addresses and phone numbers."""
    after = id_cursor(cursor) if cursor else None
    filters = directory_filters(runtime, q, channel_account_id, label, attribute, attribute_value)
    with runtime.db.read() as session:
        page = directory_page(
            session, principal, filters, region=runtime.settings.default_region, limit=limit, after=after
        )
        items = []
        for contact in page.items:
            activity = page.activity.get(contact.id)
            item = DirectoryContactOut.model_validate(contact)
            if activity is not None:
                item.conversation_count = activity.conversations
                item.last_message_at = activity.last_message_at
                item.open_conversation_id = activity.open_conversation_id
            items.append(item)
        return DirectoryList(items=items, next_cursor=page.next_cursor)


@router.post("/contacts", response_model=ContactOut, status_code=201)
def new_contact(body: ContactIn, principal: CurrentAgent, runtime: RuntimeDep) -> ContactOut:
    """Create a contact by hand; an address that already belongs to a contact is refused (409)."""
    with runtime.transaction(principal.id) as tx:
        contact = create_contact(
            tx,
            name=body.name,
            locale=body.locale,
            identities=[IdentityRef(i.kind, i.value) for i in body.identities],
            custom_attributes=body.custom_attributes,
        )
        tx.session.refresh(contact, ["identities"])
        return ContactOut.model_validate(contact)


def channel_options_out(options: list[Any], locale: str) -> list[ChannelOptionOut]:
    return [
        ChannelOptionOut(
            channel_account_id=o.channel_account_id,
            kind=o.kind,
            name=o.name,
            identity_value=o.identity_value,
            available=o.available,
            code=o.code,
            reason=gettext(o.reason, locale) if o.reason else None,
        )
        for o in options
    ]


@router.get("/contacts/{contact_id}/profile", response_model=ProfileOut)
def profile(contact_id: int, principal: CurrentAgent, runtime: RuntimeDep) -> ProfileOut:
    """The contact, their conversations the caller may see, and the channels that can reach them now."""
    with runtime.transaction(principal.id) as tx:
        found = contact_profile(tx.session, principal, contact_id)
        options = outreach.contact_channels(tx, found.contact)
        return ProfileOut(
            contact=ContactOut.model_validate(found.contact),
            conversations=serialize_conversations(tx.session, found.conversations),
            channels=channel_options_out(options, principal.locale),
        )


@router.post("/contacts/{contact_id}/conversations", response_model=StartedOut, status_code=201)
def start_conversation(contact_id: int, body: StartIn, principal: CurrentAgent, runtime: RuntimeDep) -> StartedOut:
    """Write to a contact first on one of their channels (the contact's open conversation, else a new one).

    The channel's rules apply as for any reply: on WhatsApp outside the 24-hour window only a
    template goes (409 `whatsapp_window_closed`).
    """
    with runtime.transaction(principal.id) as tx:
        contact = access_contact(tx.session, principal, contact_id)
        started = outreach.start_conversation(
            tx,
            principal,
            contact,
            channel_account_id=body.channel_account_id,
            body=body.body,
            template=body.template,
            subject=body.subject,
        )
        return StartedOut(
            conversation_id=started.conversation.id,
            created=started.created,
            message=messages_out(tx.session, [started.message])[0],
        )


def parse_mapping(raw: str | None) -> ImportMapping | None:
    if raw is None or not raw.strip():
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ActionError(
            "mapping_invalid",
            N_('The mapping is a JSON object from each column\'s name to what it becomes, such as "email".'),
            422,
        )
    return value


def import_report(
    runtime: Runtime, principal_id: int, data: bytes, mapping: ImportMapping | None, dry_run: bool
) -> Any:
    report, rows = importing.parse(data, mapping, runtime.settings.default_region, dry_run=dry_run)
    return importing.import_contacts(runtime, principal_id, report, rows)


@router.post("/imports/contacts", response_model=ImportReportOut)
def import_contacts(
    principal: CurrentAgent,
    runtime: RuntimeDep,
    file: Annotated[UploadFile, File(description="CSV, UTF-8, a header row")],
    mapping: Annotated[str | None, Form(max_length=20000, description="JSON: column -> target")] = None,
    dry_run: Annotated[bool, Form()] = True,
) -> ImportReportOut:
    """Import contacts from CSV (administrators and supervisors).

    `mapping` maps each column to name, email, phone, locale, attribute:<key> or ignore (left out:
    suggested from the header). A dry run (the default) reports what would happen and writes nothing.
    The file is read and checked in a worker thread, never on the event loop.
    """
    require_transfer(principal)
    parsed_mapping = parse_mapping(mapping)
    data = file.file.read(importing.MAX_CSV_BYTES + 1)
    report = import_report(runtime, principal.id, data, parsed_mapping, dry_run)
    return ImportReportOut(
        dry_run=report.dry_run,
        columns=report.columns,
        mapping=report.mapping,
        rows=report.rows,
        created=report.created,
        updated=report.updated,
        rejected_count=report.rejected_count,
        rejected=[
            RejectedRowOut(
                line=p.line, code=p.code, message=gettext(p.reason, principal.locale, **p.values), column=p.column
            )
            for p in report.rejected
        ],
    )


@router.get("/exports/contacts.csv", response_class=StreamingResponse)
def export_contacts(principal: CurrentAgent, runtime: RuntimeDep) -> StreamingResponse:
    """Every contact as CSV, streamed (administrators and supervisors); an import maps it back as is."""
    require_transfer(principal)
    stamp = runtime.clock.now().strftime("%Y%m%d-%H%M")
    return StreamingResponse(
        exporting.export_lines(runtime),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="contacts-{stamp}.csv"'},
    )


def install(app: FastAPI) -> None:
    """Add the contacts directory's REST routes."""
    app.include_router(router)
