"""Jinja2 rendering for the agent UI: the agent's language, dates, channel names, safe text."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from babel.dates import format_date, format_time, get_datetime_format
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from hilo.channels.demo import is_demo
from hilo.conversations.files import served_type
from hilo.i18n import N_, N_plural, gettext, ngettext, plural_forms

HERE = Path(__file__).parent
STATIC = HERE / "static"
TEMPLATES = HERE / "templates"

# Content-Security-Policy of every UI page: no inline script or style, media from Hilo or providers.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: https:; "
    "media-src 'self' blob: https:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'; object-src 'none'"
)

CHANNEL_KINDS = {
    "whatsapp": "WhatsApp",
    "twilio_whatsapp": "WhatsApp",
    "sms": "SMS",
    "email": N_("E-mail"),
    "telegram": "Telegram",
    "messenger": "Messenger",
    "instagram": "Instagram",
    "api": N_("API"),
    "widget": N_("Chat"),
}
IDENTITY_KINDS = {
    "email": N_("E-mail"),
    "phone": N_("Phone"),
    "telegram": "Telegram",
    "messenger": "Messenger",
    "instagram": "Instagram",
    "widget": N_("Chat visitor"),
    "api": N_("External id"),
}
STATUS_LABELS = {
    "open": N_("Open"),
    "pending": N_("Pending"),
    "snoozed": N_("Snoozed"),
    "resolved": N_("Resolved"),
}
PRIORITY_LABELS = {
    "none": N_("No priority"),
    "low": N_("Low"),
    "medium": N_("Medium"),
    "high": N_("High"),
    "urgent": N_("Urgent"),
}
SORT_LABELS = {
    "last_activity": N_("Last activity"),
    "waiting": N_("Longest waiting"),
    "priority": N_("Priority"),
    "created": N_("Newest first"),
    "sla_due": N_("SLA due"),
}
DELIVERY_LABELS = {
    "queued": N_("Queued"),
    "sent": N_("Sent"),
    "delivered": N_("Delivered"),
    "read": N_("Read"),
    "failed": N_("Failed"),
}
ROLE_LABELS = {"admin": N_("Administrator"), "supervisor": N_("Supervisor"), "agent": N_("Agent")}
# What the excerpt of a quoted message without text says instead.
QUOTED_KINDS = {
    "image": N_("Image"),
    "sticker": N_("Image"),
    "audio": N_("Audio"),
    "video": N_("Video"),
    "document": N_("Attachment"),
    "location": N_("Location"),
    "contacts": N_("Contact card"),
}

# Strings app.js shows; the page carries their translation.
JS_STRINGS = (
    N_("Something went wrong; try again."),
    N_("Revoke the token {name}? Anything that uses it stops working at once."),
    N_("Password changed. Every other browser where you were signed in is signed out."),
    N_("Connection lost; reconnecting…"),
    N_("Connected again."),
    N_("{name} is viewing"),
    N_("{name} is typing…"),
    N_("Someone else replied since you opened this conversation."),
    N_("Send anyway"),
    N_("Cancel"),
    N_("Saved."),
    N_("{name} mentioned you"),
    N_("Assigned to you"),
    N_("New reply from {name}"),
    N_("Contact {id}"),
    N_("Choose a time in the future to snooze until."),
    N_("No agent matches."),
    N_("Name of the view"),
    N_("Merge this conversation into #{id}? Its messages move there."),
    N_("Merge {name} into this contact? Identities and conversations move here."),
    N_("Move the selected identities to a new contact?"),
    N_("Move this message and everything after it to a new conversation?"),
    N_("Delete this view?"),
    N_("Copied."),
    N_("default"),
    N_("Unavailable"),
    N_("Merged into another conversation."),
    N_("Open it"),
    # The composer: WhatsApp templates, e-mail To and CC, the SMS segment count, quoted replies.
    N_("templates only"),
    N_("has a media header; send it through the API"),
    N_("Header"),
    N_("Link"),
    N_("Value for {name}"),
    N_("Choose a template first."),
    N_("Fill in every variable of the template."),
    N_("{address} is not a valid e-mail address."),
    N_("Write the address to send to."),
    N_("GSM-7: 160 characters fit in one SMS, 153 in each part of a longer one."),
    N_(
        "UCS-2 (an emoji or a character outside the GSM alphabet): 70 characters fit in one SMS, "
        "67 in each part of a longer one."
    ),
    N_("Longer than one SMS: it goes out in {n} parts, and each part is charged."),
    N_("The quoted message is further back: show earlier messages to see it."),
)

# Counts app.js writes: (singular, plural); the page carries their forms in the agent's language.
JS_PLURALS = (
    N_plural("{n} character", "{n} characters"),
    N_plural("{n} segment", "{n} segments"),
    N_plural("{n} conversation updated.", "{n} conversations updated."),
    N_plural(
        "Too long for SMS on this channel (at most {n} part). Shorten it or reply on another channel.",
        "Too long for SMS on this channel (at most {n} parts). Shorten it or reply on another channel.",
    ),
)

URL = re.compile(r"\bhttps?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")


def _static_version() -> str:
    digest = hashlib.sha256()
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


STATIC_VERSION = _static_version()


def static_url(path: str) -> str:
    """A cache-busted URL of a static file (the version changes with the files' content)."""
    return f"/static/{path}?v={STATIC_VERSION}"


def as_datetime(value: datetime | str) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def iso(value: datetime | str | None) -> str:
    if value is None:
        return ""
    return as_datetime(value).astimezone(UTC).isoformat()


# The regional formats of the UI's languages; app.js and workspace.js format with the same ones.
FORMAT_LOCALES = {"en": "en_GB", "es": "es_ES"}


def datetime_text(value: datetime | str | None, locale: str) -> str:
    """Write a date and time the one way every page does: CLDR's medium date and short time.

    It is what the browser's `Intl.DateTimeFormat(lang, {dateStyle: "medium", timeStyle: "short"})`
    writes ("28 Nov 2026, 02:45", "28 nov 2026, 2:45"), so the text of a `<time>` that app.js
    rewrites in the agent's own time zone keeps its form. The server writes UTC.
    """
    if value is None:
        return ""
    moment = as_datetime(value).astimezone(UTC)
    regional = FORMAT_LOCALES.get(locale, FORMAT_LOCALES["en"])
    pattern = str(get_datetime_format("medium", locale=regional))
    date = format_date(moment.date(), "medium", locale=regional)
    return pattern.replace("{1}", date).replace("{0}", format_time(moment, "short", tzinfo=UTC, locale=regional))


# What agents call a contact without a name (an anonymous chat visitor): the same on every page
# and in app.js's notifications.
UNNAMED_CONTACT = N_("Contact {id}")


def contact_label(name: str | None, contact_id: int | None, locale: str) -> str:
    """The name agents see for a contact: its own, else one made from its id."""
    if name and name.strip():
        return name
    if contact_id is None:
        return gettext("Unknown contact", locale)
    return gettext(UNNAMED_CONTACT, locale, id=contact_id)


def initials(name: str | None) -> str:
    """Up to two initials of a name's words ("Contact 12" is "C"), "?" for none."""
    parts = [p for p in (name or "?").split() if p]
    worded = [p for p in parts if p[0].isalpha()] or parts
    letters = "".join(p[0] for p in worded[:2]).upper()
    return letters or "?"


def hue(key: object) -> int:
    """A stable avatar colour class (0-7) for a name or id."""
    return int(hashlib.md5(str(key).encode(), usedforsecurity=False).hexdigest()[:4], 16) % 8


def rich_text(text: str | None, mention_names: Iterable[str] = ()) -> Markup:
    """Escape text, make links clickable and highlight @mentions of agents."""
    raw = text or ""
    tokens = [str(escape(f"@{name}")) for name in sorted(set(mention_names), key=len, reverse=True)]

    def plain(piece: str) -> str:
        escaped = str(escape(piece))
        for token in tokens:
            escaped = escaped.replace(token, f'<span class="mention">{token}</span>')
        return escaped

    out: list[str] = []
    position = 0
    for match in URL.finditer(raw):
        out.append(plain(raw[position : match.start()]))
        url = str(escape(match.group(0)))
        out.append(f'<a href="{url}" target="_blank" rel="noopener noreferrer nofollow">{url}</a>')
        position = match.end()
    out.append(plain(raw[position:]))
    return Markup("".join(out))  # noqa: S704 - every piece is escaped above


# Why an identity a customer gave was not linked (hilo.contacts.actions.link_refusal).
LINK_REFUSED_TEXTS = {
    "claim_of_verified_contact": N_(
        "{value} was not linked to this contact: it belongs to another contact, who has a verified identity. "
        "Merge the two if they are the same person."
    ),
    "unverified_sender": N_(
        "{value} was not linked to this contact: the sender is not verified and this contact has a verified identity."
    ),
    "verified_conflict": N_(
        "{value} was not linked to this contact: the two contacts have different verified identities of the same kind."
    ),
}


def event_text(message: Any, directory: Any, _: Callable[..., str], when: Callable[[Any], str]) -> str:
    """One line describing a timeline event (assigned, status changed, merged...)."""
    data = message.data or {}
    kind = data.get("event")
    agent = directory.agents.get(message.author_agent_id)
    actor = agent.name if agent else _("Hilo")

    def label(mapping: dict[str, str], value: Any) -> str:
        return _(mapping[value]) if value in mapping else str(value or "")

    if kind == "conversation.status_changed":
        if data.get("to") == "snoozed" and data.get("snoozed_until"):
            # `when` may write a <time> the browser shows in the agent's zone: filled in as markup.
            until = when(data["snoozed_until"])
            return fill(_("{actor} snoozed the conversation until {time}"), actor=actor, time=until)
        if data.get("to") == "resolved":
            return _("{actor} resolved the conversation", actor=actor)
        return _("{actor} changed the status to {status}", actor=actor, status=label(STATUS_LABELS, data.get("to")))
    if kind == "conversation.priority_changed":
        return _("{actor} set the priority to {priority}", actor=actor, priority=label(PRIORITY_LABELS, data.get("to")))
    if kind == "conversation.assigned":
        parts = []
        if "assignee_id" in data:
            target = directory.agents.get(data["assignee_id"][1])
            parts.append(
                _("{actor} assigned the conversation to {agent}", actor=actor, agent=target.name)
                if target
                else _("{actor} unassigned the conversation", actor=actor)
            )
        if "team_id" in data:
            team = directory.teams.get(data["team_id"][1])
            parts.append(
                _("{actor} gave the conversation to the team {team}", actor=actor, team=team.name)
                if team
                else _("{actor} removed the team", actor=actor)
            )
        return " · ".join(parts)
    if kind == "conversation.labels_changed":
        return _("{actor} changed the labels to {labels}", actor=actor, labels=", ".join(data.get("to") or []) or "—")
    if kind == "conversation.merged":
        return _("{actor} merged conversation #{id} into this one", actor=actor, id=data.get("source_id"))
    if kind == "conversation.unmerged":
        if data.get("source_id") == message.conversation_id:
            return _(
                "{actor} split the contacts: this conversation came back out of #{id}",
                actor=actor,
                id=data.get("target_id"),
            )
        return _(
            "{actor} split the contacts: the messages of conversation #{id} went back to it",
            actor=actor,
            id=data.get("source_id"),
        )
    if kind == "conversation.split":
        return _("{actor} moved later messages to conversation #{id}", actor=actor, id=data.get("new_conversation_id"))
    if kind == "conversation.split_from":
        return _("{actor} split this conversation from #{id}", actor=actor, id=data.get("source_id"))
    if kind == "contact.link_refused":
        reason = LINK_REFUSED_TEXTS.get(str(data.get("reason")), LINK_REFUSED_TEXTS["claim_of_verified_contact"])
        return _(reason, value=data.get("value"))
    return str(kind or message.kind)


EVENT_ICONS = {
    "conversation.status_changed": "dot",
    "conversation.priority_changed": "flag",
    "conversation.assigned": "user",
    "conversation.labels_changed": "tag",
    "conversation.merged": "merge",
    "conversation.split": "split",
    "conversation.unmerged": "split",
    "conversation.split_from": "split",
    "contact.link_refused": "shield",
}


def excerpt(text: str | None, limit: int = 120) -> str:
    """The start of a message's text on one line, for the quote above a reply."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def filesize(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def setting_text(value: Any) -> str:
    """A channel setting as the admin page shows and sends it back: text as is, anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def json_text(value: Any) -> str:
    """A value as JSON in plain text, for the autoescaper to escape like any other text.

    Jinja's `tojson` is markup that leaves `"` as is: safe inside `<script type="application/json">`
    only, never in an attribute."""
    return orjson.dumps(value).decode()


def fill(text: str, **values: object) -> Markup:
    """Fill a translated sentence's `{placeholders}` with markup (a `<time>`), escaping the rest."""
    filled = str(escape(text))
    for name, value in values.items():
        filled = filled.replace("{" + name + "}", str(escape(value)))
    return Markup(filled)  # noqa: S704 - the text and every value are escaped above


def translator(locale: str) -> Callable[..., str]:
    def translate(msgid: str, **values: object) -> str:
        return gettext(msgid, locale, **values)

    return translate


env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    # Templates ship with the package: no file check on every include (one per message).
    auto_reload=False,
    # Room for every template, compiled once (`compile_templates`).
    cache_size=1000,
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=StrictUndefined,
)
env.filters.update(
    iso=iso,
    initials=initials,
    hue=hue,
    rich=rich_text,
    filesize=filesize,
    setting_text=setting_text,
    excerpt=excerpt,
    json_text=json_text,
)
env.globals.update(
    static=static_url,
    CHANNEL_KINDS=CHANNEL_KINDS,
    IDENTITY_KINDS=IDENTITY_KINDS,
    STATUS_LABELS=STATUS_LABELS,
    PRIORITY_LABELS=PRIORITY_LABELS,
    SORT_LABELS=SORT_LABELS,
    DELIVERY_LABELS=DELIVERY_LABELS,
    ROLE_LABELS=ROLE_LABELS,
    QUOTED_KINDS=QUOTED_KINDS,
    EVENT_ICONS=EVENT_ICONS,
    event_text=event_text,
    served_type=served_type,
    fill=fill,
    is_demo_channel=is_demo,
)


def compile_templates() -> None:
    """Compile every template of the agent UI now (Jinja keeps them; see `env.cache`)."""
    for name in env.list_templates():
        env.get_template(name)


def render_text(name: str, locale: str, **context: Any) -> str:
    translate = translator(locale)
    return env.get_template(name).render(
        _=translate,
        ngettext=lambda singular, plural, n, **values: ngettext(singular, plural, n, locale, **values),
        contact_label=lambda name, contact_id: contact_label(name, contact_id, locale),
        locale=locale,
        when=lambda value: datetime_text(value, locale),
        **context,
    )


def render(name: str, locale: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a page or fragment in `locale`, with the UI's security headers."""
    return HTMLResponse(
        render_text(name, locale, **context),
        status_code=status_code,
        headers={"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"},
    )


def js_strings(locale: str) -> dict[str, str]:
    return {msgid: gettext(msgid, locale) for msgid in JS_STRINGS}


def js_plurals(locale: str, pairs: Iterable[tuple[str, str]] = JS_PLURALS) -> dict[str, list[str]]:
    """Every form of the counted strings a script writes, by singular msgid (see `tn` in app.js)."""
    return {singular: plural_forms(singular, plural, locale) for singular, plural in pairs}
