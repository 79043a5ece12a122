"""The contacts directory pages: the list with search and filters, a contact's profile, and the CSV import.

Pages only read; the browser writes through the REST API (`hilo.api.directory`): creating a
contact, starting a conversation, importing. The list is the same query as the API's
(`hilo.conversations.directory.directory_page`), in a constant number of statements per page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from hilo.agents.access import Principal
from hilo.channels.models import ChannelAccount
from hilo.channels.registry import TEMPLATE_KINDS
from hilo.contacts.directory import TRANSFER_ROLES
from hilo.contacts.importing import ATTRIBUTE_PREFIX, MAX_CSV_BYTES, MAX_ROWS
from hilo.conversations.directory import DirectoryFilters, contact_profile, directory_page
from hilo.conversations.models import Label
from hilo.cursors import id_cursor
from hilo.errors import ActionError, NotFound
from hilo.http.deps import RuntimeDep
from hilo.i18n import N_, gettext
from hilo.outbox import outreach
from hilo.runtime import Runtime
from hilo.web.rendering import render
from hilo.web.views import UiAgent, base_context

router = APIRouter(include_in_schema=False)

PAGE = 25
# What a CSV column can become, as the import page offers it (msgids).
IMPORT_TARGETS = {
    "ignore": N_("Do not import"),
    "name": N_("Name"),
    "email": N_("E-mail"),
    "phone": N_("Phone"),
    "locale": N_("Language"),
    ATTRIBUTE_PREFIX: N_("Custom attribute"),
}


def _channels(session: Session) -> list[Any]:
    return list(
        session.execute(select(ChannelAccount.id, ChannelAccount.name, ChannelAccount.kind).order_by(ChannelAccount.id))
    )


def _labels(session: Session) -> list[str]:
    return list(session.execute(select(Label.name).order_by(Label.name)).scalars())


def _number(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) < 19 else None


@dataclass(frozen=True)
class Asked:
    """What the directory's address asks for: the search, the filters and the page."""

    q: str
    channel: str
    label: str
    attribute: str
    value: str
    cursor: str | None


def _asked(
    q: Annotated[str, Query(max_length=200)] = "",
    channel: Annotated[str, Query(max_length=20)] = "",
    label: Annotated[str, Query(max_length=64)] = "",
    attribute: Annotated[str, Query(max_length=64)] = "",
    value: Annotated[str, Query(max_length=1000)] = "",
    cursor: Annotated[str | None, Query(max_length=40)] = None,
) -> Asked:
    """Read the directory's search, filters and page from the query string."""
    return Asked(q=q, channel=channel, label=label, attribute=attribute, value=value, cursor=cursor)


AskedDep = Annotated[Asked, Depends(_asked)]


def _page(principal: Principal, runtime: Runtime, asked: Asked, *, choices: bool) -> dict[str, Any]:
    """The directory's rows, and the filters' choices (channels, labels) when the whole page is drawn."""
    filters_given = {
        "q": asked.q,
        "channel": asked.channel,
        "label": asked.label,
        "attribute": asked.attribute,
        "value": asked.value,
    }
    problem = None
    with runtime.db.read() as session:
        try:
            after = id_cursor(asked.cursor) if asked.cursor else None
            channel_id = _number(asked.channel)
            reach = outreach.reach_of(session, channel_id) if channel_id is not None else None
            filters = DirectoryFilters(
                q=asked.q.strip() or None,
                reach=reach,
                label=asked.label or None,
                attribute_key=asked.attribute.strip() or None,
                attribute_value=asked.value if asked.attribute.strip() else None,
            )
            page = directory_page(
                session, principal, filters, region=runtime.settings.default_region, limit=PAGE, after=after
            )
        except ActionError as exc:
            problem = gettext(exc.reason, principal.locale, **exc.values)
            page = None
        kept = {k: v for k, v in filters_given.items() if v}
        more = None
        if page is not None and page.next_cursor:
            more = "?" + urlencode({**kept, "cursor": page.next_cursor})
        return {
            "contacts": page.items if page else [],
            "activity": page.activity if page else {},
            "more": more,
            "problem": problem,
            "filters": filters_given,
            "channels": _channels(session) if choices else [],
            "labels": _labels(session) if choices else [],
            "can_transfer": principal.role in TRANSFER_ROLES,
        }


@router.get("/contacts")
def directory(request: Request, principal: UiAgent, runtime: RuntimeDep, asked: AskedDep) -> Response:
    """The contacts directory: search, filters, and a page of contacts."""
    found = _page(principal, runtime, asked, choices=True)
    return render(
        "contacts/directory.html", principal.locale, **base_context(request, principal), section="contacts", **found
    )


@router.get("/ui/contacts/rows")
def directory_rows(request: Request, principal: UiAgent, runtime: RuntimeDep, asked: AskedDep) -> Response:
    """The directory's rows (htmx swaps them in as the agent types or filters)."""
    found = _page(principal, runtime, asked, choices=False)
    response = render("contacts/rows.html", principal.locale, **found)
    # The address bar shows the page these rows belong to, so reload and back keep the filters.
    kept = {k: v for k, v in found["filters"].items() if v}
    response.headers["HX-Push-Url"] = "/contacts" + (
        "?" + urlencode({**kept, **({"cursor": asked.cursor} if asked.cursor else {})}) if kept or asked.cursor else ""
    )
    return response


@router.get("/contacts/import")
def import_page(request: Request, principal: UiAgent) -> Response:
    """Import contacts from CSV: map the columns, check the file, then import (administrators, supervisors)."""
    context = base_context(request, principal)
    if principal.role not in TRANSFER_ROLES:
        return render(
            "contacts/notice.html",
            principal.locale,
            status_code=403,
            **context,
            section="contacts",
            message=N_("Only administrators and supervisors can import or export contacts."),
        )
    return render(
        "contacts/import.html",
        principal.locale,
        **context,
        section="contacts",
        targets=IMPORT_TARGETS,
        max_rows=MAX_ROWS,
        max_mb=MAX_CSV_BYTES // (1024 * 1024),
    )


@router.get("/contacts/{contact_id}")
def profile_page(request: Request, contact_id: int, principal: UiAgent, runtime: RuntimeDep) -> Response:
    """A contact's profile: identities, attributes, conversations, and starting a conversation."""
    with runtime.transaction(principal.id) as tx:
        try:
            found = contact_profile(tx.session, principal, contact_id)
        except NotFound as missing:
            return render(
                "contacts/notice.html",
                principal.locale,
                status_code=404,
                **base_context(request, principal),
                section="contacts",
                message=missing.reason,
            )
        options = outreach.contact_channels(tx, found.contact)
        channels = [
            {
                "id": o.channel_account_id,
                "kind": o.kind,
                "name": o.name,
                "identity": o.identity_value,
                "available": o.available,
                "code": o.code,
                "reason": gettext(o.reason, principal.locale) if o.reason else "",
                "templates": o.kind in TEMPLATE_KINDS,
            }
            for o in options
        ]
        return render(
            "contacts/profile.html",
            principal.locale,
            **base_context(request, principal),
            section="contacts",
            contact=found.contact,
            conversations=found.conversations,
            channels=channels,
        )


def install(app: FastAPI) -> None:
    """Add the directory pages to the app."""
    app.include_router(router)
