"""Parse raw RFC 5322 e-mail into InboundMessages and build our outbound MIME messages."""

from __future__ import annotations

import codecs
import hashlib
import html as html_lib
import logging
import re
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.headerregistry import AddressHeader
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import format_datetime, formataddr, getaddresses, parsedate_to_datetime
from typing import Any

import nh3

from hilo.channels.base import (
    IdentityKind,
    IdentityRef,
    InboundAttachment,
    InboundMessage,
    MessageKind,
    OutboundAttachment,
    WebhookError,
)
from hilo.i18n import N_

log = logging.getLogger(__name__)

# Headers copied into InboundMessage.data["headers"]: enough to debug threading and
# auto-replies, nothing that carries tracking tokens or authentication results.
SAFE_HEADERS = (
    "Message-ID",
    "In-Reply-To",
    "References",
    "Date",
    "From",
    "Sender",
    "To",
    "Cc",
    "Reply-To",
    "Subject",
    "Auto-Submitted",
    "Precedence",
    "List-Id",
    "X-Mailer",
    "User-Agent",
    "Content-Language",
)

SUBJECT_TOKEN = re.compile(r"\[#(\d{1,18})\]")
_MSG_ID = re.compile(r"<([^<>\s]+)>")
_MAX_DEPTH = 30
_MAX_REFERENCES = 20


# --- strings -----------------------------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")


def scrub(value: str) -> str:
    """Return `value` safe to store: no lone surrogates (undecodable bytes), no NUL."""
    if _SURROGATE.search(value):
        try:
            raw = value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = value.encode("utf-8", "replace")
        value = raw.decode("utf-8", "replace")
    return value.replace("\x00", "")


def decode_text(data: bytes, charset: str | None) -> str:
    """Decode a body part, never failing: unknown or lying charsets decode with replacement."""
    name: str | None = None
    if charset:
        try:
            name = codecs.lookup(charset.strip().strip('"')).name
        except (LookupError, ValueError):
            name = None
    if name is None or name == "ascii":
        # Unlabelled or "us-ascii" 8-bit text is nearly always UTF-8 in practice.
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("utf-8" if name is None else "cp1252", "replace")
    if name == "iso8859-1":
        # As browsers do (WHATWG): mail labelled Latin-1 is written in Windows-1252.
        return data.decode("cp1252", "replace")
    try:
        return data.decode(name, "replace")
    except LookupError:  # a bytes-to-bytes codec such as "base64" named as a charset
        return data.decode("utf-8", "replace")


# --- headers -----------------------------------------------------------------------------


@dataclass
class Headers:
    """Raw header (name, value) pairs, in order, with tolerant decoders on top."""

    pairs: list[tuple[str, str]]

    def raw_all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.pairs if key.lower() == wanted]

    def raw(self, name: str) -> str | None:
        values = self.raw_all(name)
        return values[0] if values else None

    def text(self, name: str) -> str | None:
        """The header decoded (RFC 2047 words, any charset), unfolded."""
        value = self.raw(name)
        if value is None:
            return None
        unfolded = "".join(value.splitlines())
        try:
            decoded = str(policy.default.header_factory("X-Unstructured", unfolded))
        except Exception:  # the header parser can raise on hostile input; keep the raw text
            log.debug("undecodable header %s", name, exc_info=True)
            decoded = unfolded
        return scrub(decoded).strip()

    def addresses(self, name: str) -> list[tuple[str, str]]:
        """(display name, lower-cased address) pairs of an address header."""
        found: list[tuple[str, str]] = []
        for value in self.raw_all(name):
            unfolded = "".join(value.splitlines())
            try:
                header = policy.default.header_factory(name, unfolded)
                if not isinstance(header, AddressHeader):
                    raise TypeError(name)
                pairs = _usable([(a.display_name, a.addr_spec) for a in header.addresses])
            except Exception:  # the strict parser can raise on hostile input
                pairs = []
            # The strict parser stops at an unquoted "<...>" in a display name
            # ("Bob <boss> Smith <bob@example.com>"); the lenient legacy one finds the address.
            found.extend(pairs or _usable(getaddresses([unfolded])))
        return found

    def message_ids(self, name: str) -> list[str]:
        ids: list[str] = []
        for value in self.raw_all(name):
            matches = _MSG_ID.findall(value)
            if not matches:
                # Some clients omit the angle brackets.
                matches = [token.strip("<>,") for token in value.split() if "@" in token]
            ids.extend(f"<{scrub(m)}>" for m in matches)
        return ids

    def date(self) -> datetime | None:
        value = self.raw("Date")
        if not value:
            return None
        try:
            parsed = parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)

    def safe_subset(self) -> dict[str, str]:
        subset: dict[str, str] = {}
        for name in SAFE_HEADERS:
            value = self.text(name)
            if value is not None:
                subset[name] = value
        return subset


def conversation_token(subject: str | None) -> int | None:
    """The conversation id a subject names with our "[#123]" token."""
    if not subject:
        return None
    match = SUBJECT_TOKEN.search(subject)
    return int(match.group(1)) if match else None


def subject_with_token(subject: str | None, conversation_id: int) -> str:
    """`subject` ending in the "[#id]" token, added once."""
    token = f"[#{conversation_id}]"
    subject = (subject or "").strip()
    if token in subject:
        return subject
    return f"{subject} {token}" if subject else token


# --- quoting -----------------------------------------------------------------------------

_ATTRIBUTION = re.compile(r"^\s*(?:On\s.{1,300}?\swrote|El\s.{1,300}?\sescribi[óo])\s*:\s*$", re.DOTALL)
_ATTRIBUTION_START = re.compile(r"^\s*(?:On|El)\s")
_ORIGINAL_MESSAGE = re.compile(r"^\s*-{2,}\s*(?:Original Message|Mensaje original)\s*-{2,}\s*$", re.IGNORECASE)
_OUTLOOK_FROM = re.compile(r"^\s*\*?(?:From|De)\s*:\*?\s*\S", re.IGNORECASE)
_OUTLOOK_FIELD = re.compile(
    r"^\s*\*?(?:Sent|Date|To|Subject|Cc|Enviado(?: el)?|Fecha|Para|Asunto|CC)\s*:", re.IGNORECASE
)
_SEPARATOR = re.compile(r"^\s*(?:_{8,}|-{8,})\s*$")
_MOBILE_SIGNATURE = re.compile(
    r"^\s*(?:Sent from my|Enviado desde mi|Sent from Outlook|Enviado desde Outlook|"
    r"Get Outlook for|Obtener Outlook para)\b.{0,60}$",
    re.IGNORECASE,
)


def _attribution_at(lines: list[str], index: int) -> bool:
    if not _ATTRIBUTION_START.match(lines[index]):
        return False
    # Clients wrap long attribution lines ("... <\nname@example.com> wrote:").
    for length in (1, 2, 3):
        chunk = lines[index : index + length]
        if len(chunk) < length or any(line.lstrip().startswith(">") for line in chunk):
            return False
        joined = " ".join(line.strip() for line in chunk)
        if _ATTRIBUTION.match(joined) and any(ch.isdigit() or ch == "@" for ch in joined):
            return True
    return False


def _outlook_block_at(lines: list[str], index: int) -> bool:
    if not _OUTLOOK_FROM.match(lines[index]):
        return False
    following = [line for line in lines[index + 1 : index + 6] if line.strip()][:4]
    return sum(1 for line in following if _OUTLOOK_FIELD.match(line)) >= 2


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def fold_quoted(text: str) -> tuple[str, str]:
    """Split a plain-text body into (new reply, folded quote + signature).

    Cuts at the earliest of: an "On ... wrote:" / "El ... escribió:" attribution, an
    Outlook "From:/Sent:" or "De:/Enviado:" block, "-----Original Message-----", the
    "-- " signature delimiter, a "Sent from my iPhone" line, or a trailing block of
    ">" lines. Interleaved ">" quotes are kept: the answers sit between them.
    """
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = normalised.split("\n")
    cut: int | None = None
    for index, line in enumerate(lines):
        if _is_quoted(line):
            continue
        if (
            _attribution_at(lines, index)
            or _ORIGINAL_MESSAGE.match(line)
            or _MOBILE_SIGNATURE.match(line)
            or line.rstrip() == "--"
        ):
            cut = index
            break
        if _outlook_block_at(lines, index):
            previous = index - 1
            while previous >= 0 and not lines[previous].strip():
                previous -= 1
            cut = previous if previous >= 0 and _SEPARATOR.match(lines[previous]) else index
            break
    # A block of ">" lines running to the end (or to the cut) is history too.
    end = len(lines) if cut is None else cut
    start = end
    while start > 0 and (not lines[start - 1].strip() or _is_quoted(lines[start - 1])):
        start -= 1
    while start < end and not lines[start].strip():
        start += 1
    if start < end and any(_is_quoted(line) for line in lines[start:end]):
        cut = start
    if cut is None:
        return normalised.strip(), ""
    reply = "\n".join(lines[:cut]).strip()
    if not reply:
        # Nothing new above the marker (a forward, a bare quote): keep it all visible.
        return normalised.strip(), ""
    return reply, "\n".join(lines[cut:]).strip()


# --- HTML --------------------------------------------------------------------------------

_ALLOWED_ATTRIBUTES: dict[str, set[str]] = {tag: set(values) for tag, values in nh3.ALLOWED_ATTRIBUTES.items()}
_ALLOWED_ATTRIBUTES.setdefault("*", set()).update({"dir", "lang", "title"})
_ALLOWED_ATTRIBUTES["img"].update({"title"})
_ALLOWED_ATTRIBUTES["table"].update({"width", "border", "cellpadding", "cellspacing"})
_ALLOWED_ATTRIBUTES["td"].update({"width", "valign"})
_ALLOWED_ATTRIBUTES["th"].update({"width", "valign"})
_URL_SCHEMES = {"http", "https", "mailto", "tel", "cid", "data"}
# nh3 writes every attribute as name="value" with '"' escaped, so this is exact. `<img src>`
# is the only attribute left that a browser fetches by itself: srcset, style, background,
# poster and SVG <image> are all removed by the allow-lists above.
_IMG_SRC = re.compile(r'(<img\b(?:\s+[^\s=>]+(?:="[^"]*")?)*?)\s+src="([^"]*)"')
_C0_AND_SPACE = "".join(map(chr, range(0x21)))
_URL_TAB_NEWLINE = re.compile(r"[\t\n\r]")
_HTML_BREAK = re.compile(r"<br\s*/?>|</(?:p|div|li|tr|h[1-6]|blockquote|table)\s*>", re.IGNORECASE)


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    lowered = value.strip().lower()
    if lowered.startswith("data:"):
        # Inline data is fine for pictures; elsewhere (links) it is a script vector.
        return value if tag == "img" and lowered.startswith("data:image/") else None
    return value


@dataclass(frozen=True)
class SanitizedHtml:
    html: str
    remote_images: int


def sanitize_html(markup: str, *, block_remote_images: bool = True) -> SanitizedHtml:
    """Return HTML safe to show in the agent UI.

    Scripts, styles, event handlers and forms are removed. Remote images (tracking pixels)
    keep their URL in `data-blocked-src` instead of `src` so the UI can offer "show
    images"; `cid:` images stay referable to the message's inline attachments.
    """
    cleaned = nh3.clean(
        markup,
        attributes=_ALLOWED_ATTRIBUTES,
        attribute_filter=_attribute_filter,
        url_schemes=_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    remote = 0

    def image_source(match: re.Match[str]) -> str:
        nonlocal remote
        before, value = match.group(1), match.group(2)
        where = _image_source(value)
        if where == "inline" or (where == "remote" and not block_remote_images):
            return match.group(0)
        if where == "remote":
            remote += 1
            return f'{before} data-blocked-src="{value}"'
        # A relative path would be fetched from Hilo itself, with the agent's cookies.
        return before

    cleaned = _IMG_SRC.sub(image_source, cleaned)
    return SanitizedHtml(cleaned, remote)


def _image_source(value: str) -> str:
    """Say where an `<img src>` points: "inline" (cid:, data:image/), "remote" or "relative".

    Read the way a browser's URL parser reads it: surrounding spaces and control
    characters dropped, tabs and newlines removed anywhere, a backslash taken as a slash,
    the scheme in any case; so " //host", "\\\\host" and "HTTPS:" are remote."""
    url = _URL_TAB_NEWLINE.sub("", html_lib.unescape(value).strip(_C0_AND_SPACE)).replace("\\", "/").lower()
    if url.startswith(("cid:", "data:image/")):
        return "inline"
    if url.startswith(("http:", "https:", "//")):
        return "remote"
    return "relative"


def html_to_text(markup: str) -> str:
    """Plain text of an HTML body, for messages sent without a text part."""
    marked = _HTML_BREAK.sub("\n", markup)
    text = html_lib.unescape(nh3.clean(marked, tags=set()))
    lines = [line.rstrip() for line in text.replace("\xa0", " ").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# --- MIME bodies -------------------------------------------------------------------------


@dataclass
class ParsedAttachment:
    data: bytes
    content_type: str
    filename: str | None
    inline: bool
    content_id: str | None


@dataclass
class ParsedBody:
    text_parts: list[str] = field(default_factory=list)
    html_parts: list[str] = field(default_factory=list)
    attachments: list[ParsedAttachment] = field(default_factory=list)
    delivery_status: dict[str, str] | None = None
    returned_message_id: str | None = None


def attachment_kind(content_type: str) -> MessageKind:
    major = content_type.split("/", 1)[0]
    return {
        "image": MessageKind.IMAGE,
        "audio": MessageKind.AUDIO,
        "video": MessageKind.VIDEO,
    }.get(major, MessageKind.DOCUMENT)


def _leaves(part: Message, depth: int = 0) -> Iterator[Message]:
    """Yield the leaf parts; attached messages (message/*) count as leaves."""
    if depth > _MAX_DEPTH:
        return
    if part.get_content_maintype() == "message" or not part.is_multipart():
        yield part
        return
    payload = part.get_payload()
    if isinstance(payload, list):
        for sub in payload:
            if isinstance(sub, Message):
                yield from _leaves(sub, depth + 1)


def _part_bytes(part: Message) -> bytes:
    if part.get_content_maintype() == "message":
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            try:
                return inner[0].as_bytes(policy=policy.SMTP)
            except Exception:  # a broken inner message: keep what the outer part holds
                log.debug("unserialisable attached message", exc_info=True)
        inner_text = inner if isinstance(inner, str) else ""
        return inner_text.encode("utf-8", "surrogateescape")
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # damaged base64 or quoted-printable
        payload = None
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


def _safe(getter: Any, default: Any = None) -> Any:
    try:
        return getter()
    except Exception:  # header parameters on hostile input can raise anything
        return default


def _delivery_status(part: Message) -> dict[str, str] | None:
    """The failed (or first) recipient block of a message/delivery-status part."""
    blocks = part.get_payload()
    if not isinstance(blocks, list):
        return None
    recipients = [
        b for b in blocks if isinstance(b, Message) and (b.get("Final-Recipient") or b.get("Original-Recipient"))
    ]
    if not recipients:
        return None
    failed = [b for b in recipients if str(b.get("Action", "")).strip().lower() == "failed"]
    block = (failed or recipients)[0]

    def field_value(name: str) -> str:
        return scrub(" ".join(str(block.get(name, "")).split()))

    recipient = field_value("Final-Recipient") or field_value("Original-Recipient")
    return {
        "recipient": recipient.rpartition(";")[2].strip().lower(),
        "action": field_value("Action").lower(),
        "status": field_value("Status"),
        "diagnostic": field_value("Diagnostic-Code").partition(";")[2].strip() or field_value("Diagnostic-Code"),
    }


def _returned_message_id(part: Message) -> str | None:
    """Message-ID of the original message a bounce returns (whole or headers only)."""
    if part.get_content_type() == "text/rfc822-headers":
        headers_only = BytesParser(policy=policy.compat32).parsebytes(_part_bytes(part), headersonly=True)
        ids = Headers(list(headers_only.items())).message_ids("Message-ID")
    else:
        inner = part.get_payload()
        if not (isinstance(inner, list) and inner and isinstance(inner[0], Message)):
            return None
        ids = Headers([(k, str(v)) for k, v in inner[0].raw_items()]).message_ids("Message-ID")
    return ids[0] if ids else None


def parse_body(message: Message) -> ParsedBody:
    body = ParsedBody()
    is_report = message.get_content_type() == "multipart/report"
    for part in _leaves(message):
        content_type = _safe(part.get_content_type, "application/octet-stream")
        disposition = _safe(part.get_content_disposition)
        filename = _safe(part.get_filename)
        filename = scrub(str(filename)) if filename else None
        if content_type == "message/delivery-status":
            body.delivery_status = _safe(lambda p=part: _delivery_status(p))
            continue
        if is_report and content_type in ("message/rfc822", "text/rfc822-headers"):
            body.returned_message_id = _safe(lambda p=part: _returned_message_id(p))
        if content_type in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            charset = _safe(part.get_content_charset)
            text = scrub(decode_text(_part_bytes(part), charset))
            (body.text_parts if content_type == "text/plain" else body.html_parts).append(text)
            continue
        content_id = _safe(lambda p=part: p.get("Content-ID"))
        content_id = content_id and scrub(str(content_id)).strip().strip("<>")
        body.attachments.append(
            ParsedAttachment(
                data=_part_bytes(part),
                content_type=content_type,
                filename=filename,
                inline=disposition == "inline" or (disposition is None and bool(content_id)),
                content_id=content_id or None,
            )
        )
    return body


# --- assembling the InboundMessage ------------------------------------------------------


def is_auto_generated(headers: Headers, sender: str | None, is_report: bool) -> bool:
    """True for auto-replies, bulk mail and bounces (RFC 3834 and common practice)."""
    auto_submitted = (headers.raw("Auto-Submitted") or "").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return True
    if headers.raw("X-Autoreply") is not None or headers.raw("X-Autorespond") is not None:
        return True
    precedence = (headers.raw("Precedence") or "").strip().lower()
    if precedence in ("bulk", "junk", "auto_reply"):
        return True
    if is_report:
        return True
    local_part = (sender or "").partition("@")[0]
    return local_part in ("mailer-daemon", "mailer_daemon")


def generated_message_id(raw: bytes) -> str:
    """A stable Message-ID for a message that has none, so re-delivery stays idempotent."""
    return f"<{hashlib.sha256(raw).hexdigest()[:40]}@generated.hilo.invalid>"


def reply_ids(headers: Headers) -> list[str]:
    """In-Reply-To, then References newest first, without repeats."""
    ordered = headers.message_ids("In-Reply-To") + list(reversed(headers.message_ids("References")))
    return list(dict.fromkeys(ordered))


def _usable(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (display name, lower-cased address) pairs that hold an address one can write to."""
    usable: list[tuple[str, str]] = []
    for display, address in pairs:
        address = scrub(address).strip().lower()
        if "@" in address and not any(ch.isspace() for ch in address):
            usable.append((scrub(display).strip(), address))
    return usable


@dataclass
class EmailParts:
    """What both the raw-MIME path and the Mailgun field path feed into `assemble`."""

    headers: Headers
    text: str | None
    html: str | None
    attachments: list[ParsedAttachment]
    id_source: bytes
    fallback_sender: str | None = None
    stripped_text: str | None = None
    signature: str | None = None
    is_report: bool = False
    delivery_status: dict[str, str] | None = None
    returned_message_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    raw: Any = None


def assemble(parts: EmailParts) -> InboundMessage:
    headers = parts.headers
    senders = headers.addresses("From") or headers.addresses("Sender")
    if not senders and parts.fallback_sender:
        senders = Headers([("From", parts.fallback_sender)]).addresses("From")
    if not senders:
        senders = headers.addresses("Return-Path")
    if not senders:
        raise WebhookError("payload_malformed", N_("The e-mail has no sender address we can reply to."), 400)
    sender_name, sender_address = senders[0]
    ids = headers.message_ids("Message-ID")
    provider_id = ids[0] if ids else generated_message_id(parts.id_source)
    subject = headers.text("Subject")

    html: str | None = None
    remote_images = 0
    if parts.html:
        sanitized = sanitize_html(parts.html)
        html, remote_images = sanitized.html, sanitized.remote_images
    full_text = parts.text if parts.text is not None else (html_to_text(html) if html else "")
    full_text = full_text.replace("\r\n", "\n").strip()
    reply, quoted = fold_quoted(full_text)
    if parts.stripped_text is not None and parts.stripped_text.strip():
        reply = parts.stripped_text.strip()

    attachments = [
        InboundAttachment(
            kind=attachment_kind(a.content_type),
            content_type=a.content_type,
            filename=a.filename,
            size=len(a.data),
            data=a.data,
        )
        for a in parts.attachments
    ]
    data: dict[str, Any] = {
        "to": [address for _, address in headers.addresses("To")],
        "cc": [address for _, address in headers.addresses("Cc")],
        "reply_to": [address for _, address in headers.addresses("Reply-To")],
        "headers": headers.safe_subset(),
        "full_text": full_text,
        "quoted": quoted,
        "attachments": [
            {"filename": a.filename, "inline": a.inline, "content_id": a.content_id} for a in parts.attachments
        ],
    }
    if parts.signature:
        data["signature"] = parts.signature
    if remote_images:
        data["remote_images_blocked"] = remote_images
    reply_to_ids = reply_ids(headers)
    if parts.delivery_status is not None:
        bounce: dict[str, Any] = dict(parts.delivery_status)
        bounce["permanent"] = bool(bounce.get("action") == "failed" and bounce.get("status", "").startswith("5"))
        bounce["original_message_id"] = parts.returned_message_id
        data["bounce"] = bounce
        if parts.returned_message_id and parts.returned_message_id not in reply_to_ids:
            # Bounces rarely carry In-Reply-To; the returned message threads them.
            reply_to_ids.append(parts.returned_message_id)
    data.update(parts.extra)
    language = (headers.raw("Content-Language") or "").split(",")[0].strip() or None

    kind = MessageKind.TEXT
    if not reply and attachments:
        kind = attachments[0].kind
    return InboundMessage(
        provider_message_id=provider_id,
        sender=IdentityRef(IdentityKind.EMAIL, sender_address),
        sender_name=sender_name or None,
        kind=kind,
        text=reply or None,
        html=html,
        subject=subject,
        attachments=attachments,
        sent_at=headers.date(),
        reply_to_provider_ids=reply_to_ids,
        conversation_token=conversation_token(subject),
        data=data,
        raw=parts.raw,
        auto_generated=is_auto_generated(headers, sender_address, parts.is_report),
        locale=language,
    )


def parse_message(raw: bytes, *, fallback_sender: str | None = None) -> InboundMessage:
    """Parse one raw RFC 5322 message (as fetched by IMAP or posted by Mailgun).

    Never raises anything but `WebhookError`: a message with no usable sender, or one the
    parser cannot read at all, is refused with "payload_malformed".
    """
    try:
        message = BytesParser(policy=policy.default).parsebytes(bytes(raw))
        headers = Headers([(name, str(value)) for name, value in message.raw_items()])
        body = parse_body(message)
        header_end = raw.find(b"\r\n\r\n")
        if header_end < 0:
            header_end = raw.find(b"\n\n")
        raw_headers = scrub(raw[: header_end if header_end >= 0 else len(raw)].decode("utf-8", "replace"))
        return assemble(
            EmailParts(
                headers=headers,
                text="\n".join(body.text_parts) if body.text_parts else None,
                html="\n".join(body.html_parts) if body.html_parts else None,
                attachments=body.attachments,
                id_source=bytes(raw),
                fallback_sender=fallback_sender,
                is_report=message.get_content_type() == "multipart/report",
                delivery_status=body.delivery_status,
                returned_message_id=body.returned_message_id,
                raw=raw_headers,
            )
        )
    except WebhookError:
        raise
    except Exception as exc:  # the stdlib parser on hostile bytes: refuse, never crash
        log.warning("unparseable e-mail (%d bytes)", len(raw), exc_info=True)
        raise WebhookError("payload_malformed", N_("The e-mail could not be read; it may be damaged."), 400) from exc


# --- outbound ----------------------------------------------------------------------------


def _bracketed(message_id: str) -> str:
    message_id = message_id.strip()
    return message_id if message_id.startswith("<") else f"<{message_id}>"


def new_message_id(message_id: int, domain: str) -> str:
    return f"<hilo.{message_id}.{secrets.token_hex(8)}@{domain}>"


def build_outbound_mime(
    *,
    message_id: int,
    conversation_id: int,
    from_address: str,
    to: str,
    subject: str | None,
    text: str | None,
    from_name: str | None = None,
    html: str | None = None,
    cc: Sequence[str] = (),
    attachments: Sequence[OutboundAttachment] = (),
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    now: datetime | None = None,
) -> EmailMessage:
    """Build an outbound e-mail with our own Message-ID and the threading headers.

    References lists the earlier thread then the message answered (RFC 5322 §3.6.4),
    trimmed to the first and the latest ids when the thread grows long.
    """
    domain = from_address.rpartition("@")[2] or "localhost"
    mime = EmailMessage(policy=policy.SMTP)
    mime["Message-ID"] = new_message_id(message_id, domain)
    mime["Date"] = format_datetime(now or datetime.now(UTC))
    mime["From"] = formataddr((from_name, from_address)) if from_name else from_address
    mime["To"] = to
    if cc:
        mime["Cc"] = ", ".join(cc)
    mime["Subject"] = subject_with_token(subject, conversation_id)
    chain = [_bracketed(ref) for ref in references if ref.strip()]
    if in_reply_to:
        mime["In-Reply-To"] = _bracketed(in_reply_to)
        chain.append(_bracketed(in_reply_to))
    chain = list(dict.fromkeys(chain))
    if len(chain) > _MAX_REFERENCES:
        chain = chain[:1] + chain[-(_MAX_REFERENCES - 1) :]
    if chain:
        mime["References"] = " ".join(chain)
    mime["Auto-Submitted"] = "no"
    mime.set_content(text or "")
    if html:
        mime.add_alternative(html, subtype="html")
    for attachment in attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        if not maintype or not subtype:
            maintype, subtype = "application", "octet-stream"
        mime.add_attachment(attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename)
    return mime
