"""Inbound media: fetch attachments the provider only named (a media id or an authenticated
URL) into Hilo's storage, within each channel's size and type limits; keep files a provider
sent inline (e-mail) within the same limits; say why an attachment has no stored copy.

Ingest queues a `MediaFetchJob` per such attachment in the webhook's own transaction; the
worker's dispatcher loop runs `MediaFetcher.run_once` beside the outbox. Each channel kind
fetches its own way: WhatsApp looks the media id up and downloads with the access token,
Twilio media URLs take the account's Basic auth, Telegram needs `getFile` first, and
Messenger/Instagram give plain CDN links.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from hilo import outbound
from hilo.channels.base import ChannelAccountView, SendError
from hilo.channels.media import (
    MEDIA_REFUSED,
    REASON_TOO_LARGE,
    REASON_TYPE_NOT_ALLOWED,
    effective_type,
    media_limits,
)
from hilo.channels.models import ChannelAccount
from hilo.conversations.models import Attachment, Message
from hilo.i18n import N_
from hilo.jobs import claim_due
from hilo.messaging.actions import record_media_failure, record_media_stored
from hilo.messaging.models import MediaFetchJob
from hilo.runtime import Runtime

log = logging.getLogger(__name__)

FETCH_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
REASON_UNREACHABLE = N_("Hilo could not download the customer's file from the provider. It will try again.")
REASON_REFUSED = N_("The provider refused to hand over the customer's file; it may have expired.")
REASON_NO_SOURCE = N_("The provider gave no way to download this file.")
REASON_PENDING = N_("Hilo is still fetching this file from the provider; try again in a moment.")
REASON_NOT_STORED = N_("Hilo has no copy of this file; ask the customer to send it again.")


@dataclass(frozen=True)
class Fetched:
    data: bytes
    content_type: str | None


async def download(url: str, max_bytes: int, auth: tuple[str, str] | None = None) -> Fetched:
    """GET `url`, stopping as soon as it passes `max_bytes`; raise `SendError` on failure."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise SendError("media_source_missing", REASON_NO_SOURCE, retryable=False)
    try:
        # Twilio answers with a redirect to its media store; httpx drops the credentials
        # when a redirect leaves the original host.
        async with (
            httpx.AsyncClient(
                timeout=FETCH_TIMEOUT, follow_redirects=True, transport=outbound.AsyncTransport()
            ) as client,
            client.stream("GET", url, auth=auth) as response,
        ):
            if response.status_code == 429 or response.status_code >= 500:
                retry_after = response.headers.get("retry-after")
                raise SendError(
                    "media_unreachable",
                    REASON_UNREACHABLE,
                    retryable=True,
                    retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
                )
            if not response.is_success:
                raise SendError("media_refused", REASON_REFUSED, retryable=False)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise SendError("media_too_large", REASON_TOO_LARGE, retryable=False)
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise SendError("media_too_large", REASON_TOO_LARGE, retryable=False)
                chunks.append(chunk)
            return Fetched(b"".join(chunks), response.headers.get("content-type"))
    except outbound.AddressRefused as exc:
        raise SendError(outbound.CODE_REFUSED, outbound.REASON_REFUSED, retryable=False) from exc
    except httpx.HTTPError as exc:
        raise SendError("media_unreachable", REASON_UNREACHABLE, retryable=True) from exc


@dataclass(frozen=True)
class MediaSource:
    """Where one attachment's bytes are, as the webhook named them."""

    account: ChannelAccountView
    media_id: str | None
    url: str | None


async def _whatsapp(source: MediaSource, max_bytes: int) -> Fetched:
    from hilo.channels import whatsapp

    if not source.media_id:
        raise SendError("media_source_missing", REASON_NO_SOURCE, retryable=False)
    data, content_type = await whatsapp.download_media(source.account, source.media_id)
    if len(data) > max_bytes:
        raise SendError("media_too_large", REASON_TOO_LARGE, retryable=False)
    return Fetched(data, content_type)


async def _telegram(source: MediaSource, max_bytes: int) -> Fetched:
    from hilo.channels import telegram

    if not source.media_id:
        raise SendError("media_source_missing", REASON_NO_SOURCE, retryable=False)
    url = await telegram.get_file_url(source.account, source.media_id)
    return await download(url, max_bytes)


async def _twilio(source: MediaSource, max_bytes: int) -> Fetched:
    from hilo.channels.twilio_common import basic_auth

    if not source.url:
        raise SendError("media_source_missing", REASON_NO_SOURCE, retryable=False)
    return await download(source.url, max_bytes, auth=basic_auth(source.account))


async def _plain(source: MediaSource, max_bytes: int) -> Fetched:
    if not source.url:
        raise SendError("media_source_missing", REASON_NO_SOURCE, retryable=False)
    return await download(source.url, max_bytes)


# How each channel kind fetches; any other kind downloads its plain URL (Messenger and
# Instagram CDN links, custom sources).
FETCHERS: dict[str, Callable[[MediaSource, int], Awaitable[Fetched]]] = {
    "whatsapp": _whatsapp,
    "telegram": _telegram,
    "sms": _twilio,
    "twilio_whatsapp": _twilio,
}


def stored_name(filename: str | None, attachment_id: int, content_type: str) -> str:
    if filename:
        return filename
    extension = mimetypes.guess_extension(content_type) or ""
    return f"attachment-{attachment_id}{extension}"


@dataclass(frozen=True)
class MediaProblem:
    """Why an attachment has no stored copy; `final` once no fetch will bring one."""

    code: str
    reason: str
    final: bool


PENDING = MediaProblem("attachment_not_ready", REASON_PENDING, final=False)
NOT_STORED = MediaProblem("attachment_not_stored", REASON_NOT_STORED, final=True)


def media_problems(messages: Iterable[Message]) -> dict[int, MediaProblem]:
    """Attachment id -> why it has no stored copy, for the attachments of `messages`.

    No query (listings stay at their query-count baselines): a file refused at ingest or
    given up on by the fetcher is noted in its message's data; one with a provider source
    and no such note is still being fetched."""
    problems: dict[int, MediaProblem] = {}
    for message in messages:
        notes = (message.data or {}).get(MEDIA_REFUSED)
        refused = (
            {note.get("index"): note for note in notes if isinstance(note, dict)} if isinstance(notes, list) else {}
        )
        for index, attachment in enumerate(message.attachments):
            if attachment.storage_key:
                continue
            note = refused.get(index)
            if note is not None:
                problems[attachment.id] = MediaProblem(str(note.get("code")), str(note.get("reason")), final=True)
            elif attachment.provider_url or attachment.provider_media_id:
                problems[attachment.id] = PENDING
            else:
                problems[attachment.id] = NOT_STORED
    return problems


def attachment_problem(session: Session, message: Message, attachment: Attachment) -> MediaProblem:
    """Why this one attachment has no stored copy, checking that a fetch is really under way."""
    problem = media_problems([message]).get(attachment.id, NOT_STORED)
    if problem.final:
        return problem
    fetching = session.execute(
        select(MediaFetchJob.id).where(MediaFetchJob.attachment_id == attachment.id, MediaFetchJob.state == "pending")
    ).first()
    return problem if fetching else NOT_STORED


@dataclass(frozen=True)
class Claimed:
    job_id: int
    attachment_id: int
    filename: str | None
    content_type: str | None
    size: int | None
    source: MediaSource


class MediaFetcher:
    """Claims due media jobs (FOR UPDATE SKIP LOCKED + lease), fetches and stores them."""

    def __init__(self, runtime: Runtime, *, batch: int = 10) -> None:
        self.runtime = runtime
        self.batch = batch

    def claim(self) -> list[Claimed]:
        with self.runtime.transaction() as tx:
            rows = claim_due(
                tx,
                MediaFetchJob,
                (MediaFetchJob.id, MediaFetchJob.attachment_id, MediaFetchJob.channel_account_id),
                limit=self.batch,
            )
            if not rows:
                return []
            attachments = {
                a.id: a
                for a in tx.session.execute(
                    select(Attachment).where(Attachment.id.in_([r.attachment_id for r in rows]))
                ).scalars()
            }
            accounts = {
                a.id: a.view()
                for a in tx.session.execute(
                    select(ChannelAccount).where(ChannelAccount.id.in_({r.channel_account_id for r in rows}))
                ).scalars()
            }
            return [
                Claimed(
                    job_id=row.id,
                    attachment_id=row.attachment_id,
                    filename=attachments[row.attachment_id].filename,
                    content_type=attachments[row.attachment_id].content_type,
                    size=attachments[row.attachment_id].size,
                    source=MediaSource(
                        account=accounts[row.channel_account_id],
                        media_id=attachments[row.attachment_id].provider_media_id,
                        url=attachments[row.attachment_id].provider_url,
                    ),
                )
                for row in rows
            ]

    async def run_job(self, claimed: Claimed) -> None:
        account = claimed.source.account
        limits = media_limits(account.config)
        try:
            if claimed.size is not None and claimed.size > limits.max_bytes:
                raise SendError("media_too_large", REASON_TOO_LARGE, retryable=False)
            declared = effective_type(claimed.content_type, None, claimed.filename)
            if claimed.content_type and not limits.allows(declared):
                # Known before downloading: do not fetch what will not be kept.
                raise SendError("media_type_not_allowed", REASON_TYPE_NOT_ALLOWED, retryable=False)
            fetch = FETCHERS.get(account.kind, _plain)
            fetched = await fetch(claimed.source, limits.max_bytes)
            content_type = effective_type(claimed.content_type, fetched.content_type, claimed.filename)
            if not limits.allows(content_type):
                raise SendError("media_type_not_allowed", REASON_TYPE_NOT_ALLOWED, retryable=False)
        except SendError as exc:
            log.info("media fetch of attachment %s: %s", claimed.attachment_id, exc.code)
            await asyncio.to_thread(self._failed, claimed, exc)
            return
        except Exception as exc:  # a fetcher bug must not stop the worker loop
            log.exception("media fetch of attachment %s failed unexpectedly", claimed.attachment_id)
            error = SendError("media_unreachable", REASON_UNREACHABLE, retryable=True)
            error.__cause__ = exc
            await asyncio.to_thread(self._failed, claimed, error)
            return
        await asyncio.to_thread(self._stored, claimed, fetched.data, content_type)

    def _stored(self, claimed: Claimed, data: bytes, content_type: str) -> None:
        name = stored_name(claimed.filename, claimed.attachment_id, content_type)
        key = self.runtime.storage.save(data, name)
        with self.runtime.transaction() as tx:
            record_media_stored(tx, claimed.job_id, key, len(data), content_type)

    def _failed(self, claimed: Claimed, error: SendError) -> None:
        with self.runtime.transaction() as tx:
            record_media_failure(
                tx, claimed.job_id, error.code, error.reason, retryable=error.retryable, retry_after=error.retry_after
            )

    async def run_once(self) -> int:
        """Claim and run one batch of due media jobs; return how many ran."""
        claimed = await asyncio.to_thread(self.claim)
        if claimed:
            await asyncio.gather(*(self.run_job(c) for c in claimed))
        return len(claimed)
