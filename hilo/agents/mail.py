"""Hilo's own e-mails to agents (password resets, invitations), sent through HILO_SMTP_URL.

An action queues a mail with `queue_mail` in its transaction, so it goes out only once the
change that caused it has committed; the job runner sends it and retries what a server
refuses for now. The body carries a sign-in link, so the job keeps it encrypted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from urllib.parse import unquote, urlsplit

import aiosmtplib

from hilo.db.encryption import keyring
from hilo.jobs import Claimed, Outcome, backoff_seconds, enqueue
from hilo.runtime import Runtime, Tx
from hilo.settings import Settings

log = logging.getLogger(__name__)

JOB_KIND = "system.email"
MAX_ATTEMPTS = 8
SMTP_TIMEOUT = 30.0


class MailNotConfigured(ValueError):
    """HILO_SMTP_URL is empty or not an smtp:// or smtps:// URL."""


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool


def smtp_server(url: str) -> SmtpServer:
    """Read `smtp://user:pass@host:port` (STARTTLS when offered) or `smtps://` (TLS from the start)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise MailNotConfigured("HILO_SMTP_URL must look like smtp://user:pass@host:587 or smtps://host:465")
    implicit_tls = parts.scheme == "smtps"
    return SmtpServer(
        host=parts.hostname,
        port=parts.port or (465 if implicit_tls else 587),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        implicit_tls=implicit_tls,
    )


def sender(settings: Settings) -> str:
    return settings.mail_from or f"hilo@{urlsplit(settings.base_url).hostname or 'localhost'}"


def queue_mail(tx: Tx, *, to: str, subject: str, text: str) -> None:
    """Send `text` to `to` after the caller's transaction commits."""
    enqueue(tx, JOB_KIND, {"to": to, "subject": subject, "sealed_text": keyring().encrypt(text.encode())})


def build_message(settings: Settings, to: str, subject: str, text: str, now_at: datetime) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender(settings)
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(now_at)
    message["Message-ID"] = make_msgid(domain=sender(settings).rpartition("@")[2].strip(">") or None)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    return message


async def deliver(runtime: Runtime, job: Claimed) -> Outcome:
    """Send one queued mail; a refusal for now (4xx, no connection) is tried again later."""
    settings = runtime.settings
    try:
        server = smtp_server(settings.smtp_url)
    except MailNotConfigured:
        return Outcome(done=False, error="mail_not_configured")
    payload = job.payload
    text = keyring().decrypt(str(payload["sealed_text"])).decode()
    message = build_message(settings, str(payload["to"]), str(payload["subject"]), text, runtime.clock.now())
    try:
        await aiosmtplib.send(
            message,
            hostname=server.host,
            port=server.port,
            username=server.username,
            password=server.password,
            use_tls=server.implicit_tls,
            timeout=SMTP_TIMEOUT,
        )
    except aiosmtplib.SMTPResponseException as exc:
        log.info("system e-mail %s refused: %s", job.id, exc)
        if exc.code >= 500 or job.attempts >= MAX_ATTEMPTS:
            return Outcome(done=False, error=f"smtp {exc.code}")
        return Outcome(done=False, retry_in=backoff_seconds(job.attempts, 2.0, 900.0, None), error=f"smtp {exc.code}")
    except (aiosmtplib.SMTPException, OSError) as exc:
        log.info("system e-mail %s not sent: %s", job.id, exc)
        if job.attempts >= MAX_ATTEMPTS:
            return Outcome(done=False, error=type(exc).__name__)
        return Outcome(done=False, retry_in=backoff_seconds(job.attempts, 2.0, 900.0, None), error=type(exc).__name__)
    return Outcome(done=True)
