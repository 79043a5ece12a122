"""The agent workspace: server-rendered pages and htmx fragments; every change goes through the REST API.

Pages (`/login`, `/inbox`, `/admin/...`) and fragments (`/ui/...`) only read. The browser
writes through the same REST endpoints any client uses (plus one multipart reply
endpoint here, for attachments, which calls the same reply action), sending the
session's CSRF token in `X-CSRF-Token`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from hilo.agents.access import Principal
from hilo.agents.invitations import invitation_for
from hilo.channels.models import ChannelAccount
from hilo.channels.registry import TEMPLATE_KINDS
from hilo.contacts.access import access_contact
from hilo.contacts.models import Contact
from hilo.conversations.access import access_conversation, visible_clause
from hilo.conversations.models import Conversation, Message
from hilo.conversations.queries import Filters
from hilo.conversations.search import contact_page
from hilo.errors import ActionError, NotFound
from hilo.http.deps import RuntimeDep, load_principal, new_csrf, session_token
from hilo.http.schemas import ContactOut, conversation_list, serialize_conversations
from hilo.i18n import N_, negotiate, normalize_locale
from hilo.runtime import Runtime
from hilo.web import api
from hilo.web.inbox import (
    Directory,
    View,
    label_names,
    load_directory,
    resolve_view,
    saved_views,
    sidebar_views,
    unread_counts,
    unread_ids,
)
from hilo.web.models import SORTS, Notification
from hilo.web.rendering import STATIC, js_plurals, js_strings, render
from hilo.web.workspace import sla_summaries, workspace_strings

router = APIRouter(include_in_schema=False)

PAGE = 25
# A conversation opens on its latest messages; "Load earlier" pages back through the contact's history.
TIMELINE_PAGE = 50
EARLIER_PAGE = 50
PICKER_LIMIT = 8
# Each language in its own name: whoever cannot read the current one still finds theirs.
LOCALE_NAMES = {"en": "English", "es": "Español"}
CONVERSATION_REF = re.compile(r"^#?(\d{1,18})$")
# Attachment kinds the timeline previews; any other file is a "document".


class SignInRequired(Exception):
    """Raised by pages when nobody is signed in: browsers go to the sign-in page."""


class TwoFactorSetupRequired(Exception):
    """Raised by pages when the organisation requires two-factor sign-in and the agent has not set it up."""


TWO_FACTOR_PAGE = "/account/two-factor"


def page_principal(request: Request) -> Principal:
    """The agent signed in with the session cookie (the UI never uses tokens)."""
    runtime: Runtime = request.app.state.runtime
    principal = load_principal(runtime, {}, session_token(request))
    if principal is None:
        raise SignInRequired
    if principal.must_enrol and request.url.path != TWO_FACTOR_PAGE:
        raise TwoFactorSetupRequired
    # The API's error handler answers in this agent's language.
    request.state.principal = principal
    return principal


UiAgent = Annotated[Principal, Depends(page_principal)]


# One `/` then a path. Browsers drop tabs and newlines from a URL and read `\\` as `/`, so
# "/\t/evil.example" or "/\\evil.example" would leave the site: no whitespace, control
# character or backslash anywhere.
LOCAL_PATH = re.compile(r"/(?![/\\])[^\s\x00-\x1f\x7f-\x9f\\]*")


def local_path(value: str | None) -> str:
    """Only same-site paths are followed after sign-in (no open redirect)."""
    if value and LOCAL_PATH.fullmatch(value):
        return value
    return "/inbox"


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    return str(token) if token else new_csrf(request)


def base_context(request: Request, principal: Principal, **extra: Any) -> dict[str, Any]:
    """What every signed-in page needs: who, the CSRF token, and the strings app.js shows."""
    csrf = csrf_token(request)
    return {
        "me": principal,
        "csrf": csrf,
        "config": {
            "me": {"id": principal.id, "name": principal.name, "role": principal.role, "locale": principal.locale},
            "csrf": csrf,
            "strings": js_strings(principal.locale),
            "plurals": js_plurals(principal.locale),
            **extra.pop("config", {}),
        },
        **extra,
    }


# -- sign-in -------------------------------------------------------------------------------


@router.get("/")
def home(request: Request) -> RedirectResponse:
    signed_in = session_token(request) is not None
    return RedirectResponse("/inbox" if signed_in else "/login", status_code=303)


def visitor_locale(request: Request, lang: str | None) -> str:
    """The language of a page shown before sign-in: the one chosen on it, else the browser's."""
    if lang:
        request.session["lang"] = normalize_locale(lang)
    return str(request.session.get("lang") or negotiate(request.headers.get("accept-language")))


def visitor_page(response: Response) -> Response:
    """Mark a page in the visitor's language as depending on it: no cache may hand a page
    in one language to a browser asking for another."""
    response.headers["Vary"] = "Accept-Language, Cookie"
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/login")
def login_page(request: Request, next: str | None = None, lang: str | None = None) -> Response:
    runtime: Runtime = request.app.state.runtime
    if load_principal(runtime, {}, session_token(request)) is not None:
        return RedirectResponse(local_path(next), status_code=303)
    locale = visitor_locale(request, lang)
    return visitor_page(
        render(
            "login.html",
            locale,
            next=local_path(next),
            config={"locale": locale, "strings": js_strings(locale), "next": local_path(next)},
        )
    )


@router.get("/forgot-password")
def forgot_password_page(request: Request, lang: str | None = None) -> Response:
    """Ask for a link to choose a new password; says so when this server cannot send e-mail."""
    runtime: Runtime = request.app.state.runtime
    locale = visitor_locale(request, lang)
    return visitor_page(
        render(
            "forgot_password.html",
            locale,
            mail_configured=runtime.settings.mail_configured,
            path="/forgot-password",
            config={"locale": locale, "strings": js_strings(locale)},
        )
    )


@router.get("/reset-password")
def reset_password_page(request: Request, token: str = "", lang: str | None = None) -> Response:
    """Choose a new password with the token of a reset link (the page's script drops it from the address)."""
    locale = visitor_locale(request, lang)
    return render(
        "reset_password.html",
        locale,
        path="/reset-password",
        query=urlencode({"token": token[:128]}),
        config={"locale": locale, "strings": js_strings(locale), "token": token[:128]},
    )


@router.get("/accept-invitation")
def accept_invitation_page(request: Request, token: str = "", lang: str | None = None) -> Response:
    """Where an invited person chooses their password (the page's script drops the token from the address)."""
    runtime: Runtime = request.app.state.runtime
    problem: str | None = None
    invitation = None
    with runtime.db.read() as session:
        try:
            invitation = invitation_for(session, token[:128], runtime.clock.now())
        except ActionError as exc:
            problem = exc.reason
        locale = (
            normalize_locale(lang) if lang else (invitation.locale if invitation else visitor_locale(request, None))
        )
        return render(
            "accept_invitation.html",
            locale,
            invitation=invitation,
            problem=problem,
            path="/accept-invitation",
            query=urlencode({"token": token[:128]}),
            config={"locale": locale, "strings": js_strings(locale), "token": token[:128]},
        )


# -- inbox ---------------------------------------------------------------------------------


def list_context(
    session: Session,
    runtime: Runtime,
    principal: Principal,
    directory: Directory,
    view: View,
    sort: str,
    q: str | None,
    cursor: str | None,
    limit: int = PAGE,
) -> dict[str, Any]:
    """One page of the conversation list, with previews, channels and unread marks."""
    filters = view.filters
    page = conversation_list(
        runtime,
        principal,
        Filters(
            status=list(filters.status),
            assignee=filters.assignee,
            team=filters.team,
            channel=filters.channel,
            label=filters.label,
        ),
        q=q or None,
        sort=sort,
        limit=limit,
        cursor=cursor,
    )
    ids = [c.id for c in page.items]
    previews: dict[int, Any] = {}
    if ids:
        last_ids = (
            select(func.max(Message.id))
            .where(Message.conversation_id.in_(ids), Message.direction.in_(("inbound", "outbound")))
            .group_by(Message.conversation_id)
        )
        for row in session.execute(
            select(
                Message.conversation_id, Message.direction, Message.body, Message.kind, Message.channel_account_id
            ).where(Message.id.in_(last_ids))
        ):
            previews[row.conversation_id] = row
    return {
        "items": page.items,
        "previews": previews,
        "unread": unread_ids(session, principal.id, page.items),
        "sla": sla_summaries(session, ids),
        "now": runtime.clock.now(),
        "next_cursor": page.next_cursor,
        "directory": directory,
        "view": view,
        "sort": sort,
        "q": q or "",
    }


def list_url(view: View, sort: str, q: str | None) -> str:
    params = {"view": view.key, "status": view.status_choice, "sort": sort}
    if q:
        params["q"] = q
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


def sidebar_context(
    session: Session, principal: Principal, directory: Directory, current: View, *, counts: bool = True
) -> dict[str, Any]:
    """The sidebar's views; with `counts=False` the page fetches the unread counts itself."""
    groups = sidebar_views(principal, directory, label_names(session), saved_views(session, principal.id))
    unread = unread_counts(session, principal, [v for views in groups.values() for v in views]) if counts else None
    return {"groups": groups, "counts": unread, "current": current}


def pick_sort(sort: str | None, view: View) -> str:
    return sort if sort in SORTS else view.sort


@router.get("/inbox")
def inbox(
    request: Request,
    principal: UiAgent,
    runtime: RuntimeDep,
    view: str = "mine",
    status: str | None = None,
    sort: str | None = None,
    q: str | None = None,
    c: int | None = None,
) -> Response:
    """The three-pane inbox: views, the conversation list, and the open conversation."""
    with runtime.db.read() as session:
        directory = load_directory(session)
        try:
            current = resolve_view(view, principal, session, directory).with_status(status)
        except ActionError:
            # A deleted saved view or a stale link: back to the default view.
            return RedirectResponse("/inbox", status_code=303)
        chosen = pick_sort(sort, current)
        listing = list_context(session, runtime, principal, directory, current, chosen, q, None)
        # The unread counts come in a moment later (/ui/sidebar), so the page never waits for them.
        sidebar = sidebar_context(session, principal, directory, current, counts=False)
        pane = None
        missing = False
        if c is not None:
            try:
                pane = conversation_context(session, runtime, principal, directory, c)
            except NotFound:
                missing = True
        agents = [{"id": a.id, "name": a.name} for a in directory.agents.values() if a.active]
        context = base_context(
            request,
            principal,
            # Mentions in notes are picked from these names; templates are offered on these kinds of channel.
            config={
                "agents": agents,
                "template_kinds": list(TEMPLATE_KINDS),
                "workspace_strings": workspace_strings(principal.locale),
            },
        )
        return render(
            "inbox.html",
            principal.locale,
            **context,
            **listing,
            **sidebar,
            list_query=list_url(current, chosen, q),
            pane=pane,
            missing=missing,
            labels_all=[label.name for label in sidebar["groups"]["labels"]],
        )


@router.get("/ui/list")
def list_fragment(
    request: Request,
    principal: UiAgent,
    runtime: RuntimeDep,
    view: str = "mine",
    status: str | None = None,
    sort: str | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    cursor: str | None = None,
    live: bool = False,
    size: Annotated[int, Query(ge=1, le=100)] = PAGE,
) -> Response:
    """The list pane; `live` re-renders just the rows (websocket refresh), `cursor` the next page."""
    with runtime.db.read() as session:
        directory = load_directory(session)
        current = resolve_view(view, principal, session, directory).with_status(status)
        chosen = pick_sort(sort, current)
        listing = list_context(session, runtime, principal, directory, current, chosen, q, cursor, size)
        query = list_url(current, chosen, q)
        response = render(
            "list_rows.html" if cursor or live else "list.html",
            principal.locale,
            me=principal,
            **listing,
            list_query=query,
        )
    if not cursor and not live:
        # Filters typed in the list header replace the URL; choosing a view adds a history entry.
        header = "HX-Replace-Url" if request.headers.get("hx-trigger") == "list-form" else "HX-Push-Url"
        response.headers[header] = f"/inbox?{query}"
    return response


@router.get("/ui/sidebar")
def sidebar_fragment(
    principal: UiAgent, runtime: RuntimeDep, view: str = "mine", status: str | None = None
) -> Response:
    with runtime.db.read() as session:
        directory = load_directory(session)
        current = resolve_view(view, principal, session, directory).with_status(status)
        return render(
            "sidebar.html", principal.locale, me=principal, **sidebar_context(session, principal, directory, current)
        )


# -- conversation --------------------------------------------------------------------------


def context_panel(
    session: Session, runtime: Runtime, principal: Principal, conversation: Conversation, contact: Contact
) -> dict[str, Any]:
    """The contact's identities, channels used, touchpoints and previous conversations."""
    used = session.execute(
        select(Message.channel_account_id, func.count(Message.id), func.max(Message.created_at))
        .where(Message.contact_id == contact.id, Message.direction == "inbound")
        .group_by(Message.channel_account_id)
    ).all()
    conversations = conversation_list(
        runtime,
        principal,
        Filters(contact_id=contact.id),
        sort="created",
        limit=10,
        cursor=None,
    ).items
    return {
        "contact": contact,
        "visit": widget_visit(session, contact),
        "channels_used": sorted(used, key=lambda row: row[2], reverse=True),
        "touchpoints": sum(row[1] for row in used),
        "previous": [c for c in conversations if c.id != conversation.id],
    }


def widget_visit(session: Session, contact: Contact) -> dict[str, str | None] | None:
    """Where a chat visitor last wrote from: the page's address and their browser, as the widget saw them.

    One query, and only for a contact who has chatted through the widget."""
    if not any(identity.kind == "widget" for identity in contact.identities):
        return None
    data = session.execute(
        select(Message.data)
        .join(ChannelAccount, ChannelAccount.id == Message.channel_account_id)
        .where(Message.contact_id == contact.id, Message.direction == "inbound", ChannelAccount.kind == "widget")
        .order_by(Message.id.desc())
        .limit(1)
    ).scalar()
    seen = (data or {}).get("widget") or {}
    page = seen.get("page") if isinstance(seen.get("page"), str) else None
    browser = seen.get("browser") if isinstance(seen.get("browser"), str) else None
    if not page and not browser:
        return None
    # Only a web address is a link; anything else the widget was sent is shown as text.
    link = page if page and page.startswith(("https://", "http://")) else None
    return {"page": page, "link": link, "browser": browser}


def message_page(session: Session, conversation_id: int) -> tuple[list[Message], bool]:
    rows = list(
        session.execute(
            select(Message)
            .options(selectinload(Message.attachments))
            .where(Message.conversation_id == conversation_id)
            .order_by(Message.id.desc())
            .limit(TIMELINE_PAGE + 1)
        ).scalars()
    )
    more = len(rows) > TIMELINE_PAGE
    rows = rows[:TIMELINE_PAGE]
    rows.reverse()
    return rows, more


def quoted_messages(session: Session, principal: Principal, rows: list[Message]) -> dict[int, Message]:
    """The messages `rows` quote (`reply_to_message_id`), for the excerpt above each reply.

    Most are on the same page; the others come in one query, and only when there are some,
    so a timeline costs the same number of queries whatever it shows.
    """
    wanted = {m.reply_to_message_id for m in rows if m.reply_to_message_id}
    found = {m.id: m for m in rows if m.id in wanted}
    missing = wanted - found.keys()
    if missing:
        for message in session.execute(
            select(Message)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.id.in_(missing), visible_clause(principal))
        ).scalars():
            found[message.id] = message
    return found


def conversation_context(
    session: Session, runtime: Runtime, principal: Principal, directory: Directory, conversation_id: int
) -> dict[str, Any]:
    conversation = access_conversation(session, principal, conversation_id)
    contact = access_contact(session, principal, conversation.contact_id)
    messages, more = message_page(session, conversation.id)
    panel = context_panel(session, runtime, principal, conversation, contact)
    return {
        "conversation": conversation,
        "labels": [label.name for label in conversation.labels],
        "messages": messages,
        "quoted": quoted_messages(session, principal, messages),
        "more": more or bool(panel["previous"]),
        "seen_message_id": max((m.id for m in messages), default=0),
        "sla": sla_summaries(session, [conversation.id]).get(conversation.id),
        "now": runtime.clock.now(),
        "directory": directory,
        "mention_names": [a.name for a in directory.agents.values()],
        **panel,
    }


@router.get("/ui/conversations/{conversation_id}")
def conversation_fragment(conversation_id: int, principal: UiAgent, runtime: RuntimeDep) -> Response:
    with runtime.db.read() as session:
        directory = load_directory(session)
        pane = conversation_context(session, runtime, principal, directory, conversation_id)
        return render(
            "conversation.html",
            principal.locale,
            me=principal,
            pane=pane,
            labels_all=label_names(session),
        )


@router.get("/ui/conversations/{conversation_id}/header")
def header_fragment(conversation_id: int, principal: UiAgent, runtime: RuntimeDep) -> Response:
    with runtime.db.read() as session:
        directory = load_directory(session)
        conversation = access_conversation(session, principal, conversation_id)
        contact = access_contact(session, principal, conversation.contact_id)
        pane = {
            "conversation": conversation,
            "contact": contact,
            "labels": [label.name for label in conversation.labels],
            "sla": sla_summaries(session, [conversation.id]).get(conversation.id),
            "now": runtime.clock.now(),
            "directory": directory,
        }
        return render(
            "conversation_header.html", principal.locale, me=principal, pane=pane, labels_all=label_names(session)
        )


@router.get("/ui/conversations/{conversation_id}/context")
def context_fragment(conversation_id: int, principal: UiAgent, runtime: RuntimeDep) -> Response:
    with runtime.db.read() as session:
        directory = load_directory(session)
        conversation = access_conversation(session, principal, conversation_id)
        contact = access_contact(session, principal, conversation.contact_id)
        pane = {
            "conversation": conversation,
            "directory": directory,
            **context_panel(session, runtime, principal, conversation, contact),
        }
        return render("context_panel.html", principal.locale, me=principal, pane=pane)


def contact_name(session: Session, conversation: Conversation) -> str | None:
    return session.execute(select(Contact.name).where(Contact.id == conversation.contact_id)).scalar()


def render_messages(
    session: Session,
    principal: Principal,
    directory: Directory,
    conversation: Conversation,
    rows: list[Message],
    **extra: Any,
) -> Response:
    """A run of timeline messages (appended live, or loaded from further back)."""
    return render(
        "messages.html",
        principal.locale,
        me=principal,
        messages=rows,
        quoted=quoted_messages(session, principal, rows),
        directory=directory,
        mention_names=[a.name for a in directory.agents.values()],
        conversation=conversation,
        contact_name=contact_name(session, conversation),
        **extra,
    )


@router.get("/ui/conversations/{conversation_id}/messages")
def new_messages(conversation_id: int, principal: UiAgent, runtime: RuntimeDep, after: int = 0) -> Response:
    """Messages newer than `after`: what the page appends when the websocket says something changed."""
    with runtime.db.read() as session:
        directory = load_directory(session)
        conversation = access_conversation(session, principal, conversation_id)
        rows = list(
            session.execute(
                select(Message)
                .options(selectinload(Message.attachments))
                .where(Message.conversation_id == conversation.id, Message.id > after)
                .order_by(Message.id)
                .limit(TIMELINE_PAGE)
            ).scalars()
        )
        # The channel of the message shown just before, so a switch of channel is marked.
        previous_channel = session.execute(
            select(Message.channel_account_id)
            .where(
                Message.conversation_id == conversation.id,
                Message.id <= after,
                Message.direction.in_(("inbound", "outbound")),
            )
            .order_by(Message.id.desc())
            .limit(1)
        ).scalar()
        return render_messages(
            session, principal, directory, conversation, rows, previous_channel=previous_channel, dividers=False
        )


@router.get("/ui/conversations/{conversation_id}/earlier")
def earlier_messages(conversation_id: int, principal: UiAgent, runtime: RuntimeDep, before: int) -> Response:
    """Older messages of the contact, across this and their earlier conversations: one timeline."""
    with runtime.db.read() as session:
        directory = load_directory(session)
        conversation = access_conversation(session, principal, conversation_id)
        rows = list(
            session.execute(
                select(Message)
                .options(selectinload(Message.attachments))
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(
                    Message.contact_id == conversation.contact_id,
                    Message.id < before,
                    Conversation.merged_into_id.is_(None),
                    visible_clause(principal),
                )
                .order_by(Message.id.desc())
                .limit(EARLIER_PAGE + 1)
            ).scalars()
        )
        more = len(rows) > EARLIER_PAGE
        rows = rows[:EARLIER_PAGE]
        rows.reverse()
        return render_messages(
            session,
            principal,
            directory,
            conversation,
            rows,
            dividers=True,
            earlier_before=rows[0].id if more and rows else None,
        )


@router.get("/ui/messages/{message_id}")
def message_fragment(message_id: int, principal: UiAgent, runtime: RuntimeDep) -> Response:
    """One message, re-rendered when its delivery status changes."""
    with runtime.db.read() as session:
        message = session.execute(
            select(Message).options(selectinload(Message.attachments)).where(Message.id == message_id)
        ).scalar_one_or_none()
        if message is None:
            raise NotFound("message_not_found", N_("Message not found."))
        conversation = access_conversation(session, principal, message.conversation_id)
        directory = load_directory(session)
        return render(
            "messages.html",
            principal.locale,
            me=principal,
            messages=[message],
            quoted=quoted_messages(session, principal, [message]),
            directory=directory,
            mention_names=[a.name for a in directory.agents.values()],
            conversation=conversation,
            contact_name=contact_name(session, conversation),
            dividers=False,
        )


# -- pickers, notifications ------------------------------------------------------------------


@router.get("/ui/pick/conversations")
def pick_conversation(principal: UiAgent, runtime: RuntimeDep, exclude: int, q: str = "") -> Response:
    """Conversations to merge the open one into: by #number, or by search."""
    with runtime.db.read() as session:
        directory = load_directory(session)
        match = CONVERSATION_REF.match(q.strip())
        items: list[Any]
        if match:
            try:
                found = access_conversation(session, principal, int(match.group(1)))
                items = serialize_conversations(session, [found])
            except NotFound:
                items = []
        else:
            items = conversation_list(
                runtime,
                principal,
                Filters(status=["open", "pending", "snoozed"]),
                q=q.strip()[:200] or None,
                limit=PICKER_LIMIT + 1,
            ).items
        items = [c for c in items if c.id != exclude and c.merged_into_id is None][:PICKER_LIMIT]
        return render("pick_conversations.html", principal.locale, items=items, directory=directory)


@router.get("/ui/pick/contacts")
def pick_contact(principal: UiAgent, runtime: RuntimeDep, exclude: int, q: str = "") -> Response:
    """Contacts to merge into the open one, by name, e-mail address or phone number."""
    items = []
    if q.strip():
        with runtime.db.read() as session:
            found, _ = contact_page(
                session, q.strip()[:200], region=runtime.settings.default_region, limit=PICKER_LIMIT + 1, after=None
            )
            items = [ContactOut.model_validate(c) for c in found if c.id != exclude][:PICKER_LIMIT]
    return render("pick_contacts.html", principal.locale, items=items, q=q)


@router.get("/ui/notifications")
def notifications_fragment(principal: UiAgent, runtime: RuntimeDep) -> Response:
    with runtime.db.read() as session:
        rows = (
            session.execute(
                select(Notification)
                .where(Notification.agent_id == principal.id)
                .order_by(Notification.id.desc())
                .limit(20)
            )
            .scalars()
            .all()
        )
        directory = load_directory(session)
        return render("notifications.html", principal.locale, items=rows, directory=directory)


# -- wiring --------------------------------------------------------------------------------


def _sign_in_required(request: Request, exc: Exception) -> Response:
    if request.headers.get("hx-request"):
        # htmx follows HX-Redirect with a full page load.
        return Response(status_code=401, headers={"HX-Redirect": "/login"})
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def _two_factor_setup_required(request: Request, exc: Exception) -> Response:
    if request.headers.get("hx-request"):
        return Response(status_code=403, headers={"HX-Redirect": TWO_FACTOR_PAGE})
    return RedirectResponse(TWO_FACTOR_PAGE, status_code=303)


def install(app: FastAPI) -> None:
    """Add the agent UI, its REST endpoints and static files to the app."""
    app.include_router(api.router)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(TwoFactorSetupRequired, _two_factor_setup_required)
