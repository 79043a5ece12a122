"""What media a channel account accepts: size and type limits from its settings, and the note a message
keeps for each file that was not stored."""

from __future__ import annotations

import dataclasses
import fnmatch
import logging
import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hilo.channels.base import InboundMessage
from hilo.i18n import N_

log = logging.getLogger(__name__)

# Where a message's data lists the files that were not stored (see `refusal_note`).
MEDIA_REFUSED = "media_refused"
# Channel settings an admin may set on any channel account (see docs/channels/README.md).
MEDIA_CONFIG_KEYS = ("max_media_bytes", "media_types")
DEFAULT_MAX_MEDIA_BYTES = 25 * 1024 * 1024
# What customers send in practice; executables, scripts and HTML are left at the provider.
DEFAULT_MEDIA_TYPES = (
    "image/*",
    "audio/*",
    "video/*",
    "application/pdf",
    "text/plain",
    "text/csv",
    "text/vcard",
    "text/x-vcard",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.*",
    "application/vnd.oasis.opendocument.*",
    "application/zip",
    "application/x-tgsticker",
)
# Mail also carries forwarded messages, returned headers of bounces and invitations.
EMAIL_MEDIA_TYPES = (
    *DEFAULT_MEDIA_TYPES,
    "message/rfc822",
    "text/rfc822-headers",
    "text/calendar",
    "application/ics",
)

REASON_TOO_LARGE = N_(
    "The customer's file is larger than this channel accepts, so Hilo did not store it. "
    "An administrator can raise the channel's media size limit."
)
REASON_TYPE_NOT_ALLOWED = N_(
    "Hilo did not store the customer's file because its type is not allowed on this channel. "
    "An administrator can allow more media types in the channel settings."
)


@dataclass(frozen=True)
class MediaLimits:
    max_bytes: int
    types: tuple[str, ...]

    def allows(self, content_type: str) -> bool:
        return any(fnmatch.fnmatchcase(content_type, pattern) for pattern in self.types)


def media_limits(config: Mapping[str, Any], default_types: tuple[str, ...] = DEFAULT_MEDIA_TYPES) -> MediaLimits:
    """The size and type limits of a channel account (its settings, else the defaults)."""
    try:
        max_bytes = int(config.get("max_media_bytes") or DEFAULT_MAX_MEDIA_BYTES)
    except (TypeError, ValueError):
        max_bytes = DEFAULT_MAX_MEDIA_BYTES
    types = config.get("media_types")
    if isinstance(types, str):
        types = [part for part in types.replace(",", " ").split()]
    patterns = tuple(str(t).strip().lower() for t in types or () if str(t).strip()) or default_types
    return MediaLimits(max_bytes=max(1, max_bytes), types=patterns)


def bare_type(value: str | None) -> str | None:
    """ "image/jpeg; charset=x" -> "image/jpeg"; None for nothing usable."""
    if not value:
        return None
    bare = value.split(";", 1)[0].strip().lower()
    return bare if "/" in bare else None


def effective_type(declared: str | None, received: str | None, filename: str | None) -> str:
    """The webhook's content type first (providers' file servers often say octet-stream)."""
    for candidate in (bare_type(declared), bare_type(received)):
        if candidate and candidate != "application/octet-stream":
            return candidate
    guessed = mimetypes.guess_type(filename or "")[0]
    return guessed or "application/octet-stream"


def refusal_note(index: int, filename: str | None, code: str, reason: str) -> dict[str, Any]:
    """A `MEDIA_REFUSED` entry: the file's position among its message's attachments, the
    stable code and the reason (a catalog msgid)."""
    return {"index": index, "filename": filename, "code": code, "reason": reason}


def keep_inline_media_within(message: InboundMessage, limits: MediaLimits) -> None:
    """Leave out of storage the inline files (e-mail attachments) over the channel's limits.

    The message is stored all the same; a refused file stays listed (name, type, size)
    without its bytes, and the message's data says why (see `refusal_note`)."""
    refused = []
    kept = []
    for index, attachment in enumerate(message.attachments):
        if attachment.data is None:
            kept.append(attachment)
            continue
        size = len(attachment.data)
        content_type = effective_type(attachment.content_type, None, attachment.filename)
        if size > limits.max_bytes:
            code, reason = "media_too_large", REASON_TOO_LARGE
        elif not limits.allows(content_type):
            code, reason = "media_type_not_allowed", REASON_TYPE_NOT_ALLOWED
        else:
            kept.append(attachment)
            continue
        log.info("inbound attachment %s (%s, %d bytes) not stored: %s", index, content_type, size, code)
        kept.append(dataclasses.replace(attachment, data=None, size=size))
        refused.append(refusal_note(index, attachment.filename, code, reason))
    if refused:
        message.attachments = kept
        message.data[MEDIA_REFUSED] = refused
