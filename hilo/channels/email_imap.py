"""Poll an IMAP mailbox for new mail, waiting with IDLE when the server offers it."""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aioimaplib

from hilo.channels.base import ChannelAccountView
from hilo.channels.email import EmailSettings, TlsMode

log = logging.getLogger(__name__)

# RFC 2177: re-issue IDLE at least every 29 minutes or servers drop the connection.
IDLE_TIMEOUT = 25 * 60.0
COMMAND_TIMEOUT = 60.0
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_UIDNEXT = re.compile(rb"\[UIDNEXT (\d+)\]")

OnMessage = Callable[[bytes], Awaitable[None]]


class ImapError(Exception):
    """The server refused a step (login, select, STARTTLS); the poller retries later."""


@dataclass
class ImapState:
    """Where the poller is in a mailbox; UIDs only mean something under one UIDVALIDITY."""

    uidvalidity: int | None = None
    last_uid: int = 0


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _search_uids(response: aioimaplib.Response) -> list[int]:
    # The last line is the tagged completion text ("Search completed (0.001 secs)").
    lines = response.lines[:-1]
    return sorted({int(token) for line in lines for token in bytes(line).split() if token.isdigit()})


async def start_tls(client: aioimaplib.IMAP4, host: str, context: ssl.SSLContext) -> None:
    """Upgrade a plain connection with STARTTLS (RFC 3501 §6.2.1); aioimaplib lacks it."""
    protocol = client.protocol
    if "STARTTLS" not in protocol.capabilities:
        raise ImapError("the server does not offer STARTTLS")
    response = await asyncio.wait_for(
        protocol.execute(aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)),
        COMMAND_TIMEOUT,
    )
    if response.result != "OK":
        raise ImapError(f"STARTTLS refused: {response.lines}")
    loop = asyncio.get_running_loop()
    protocol.transport = await loop.start_tls(protocol.transport, protocol, context, server_hostname=host)
    # Capabilities announced before TLS must be discarded.
    await asyncio.wait_for(protocol.capability(), COMMAND_TIMEOUT)


def _stop_if_cancelled() -> None:
    """Raise CancelledError if this task was cancelled, even where an await swallowed it.

    Python 3.11's asyncio.wait_for (used by aioimaplib for every command) returns the
    result instead of raising when the cancellation and the answer arrive together.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class ImapPoller:
    """Deliver every new message of one mailbox folder to `on_message`, exactly once.

    Messages are fetched with BODY.PEEK[] and flagged \\Seen only after `on_message`
    returned, so a crash never loses mail (ingest is idempotent on Message-ID, so a
    repeat after a crash is harmless). A message whose `on_message` raised stays unseen
    and is offered again on the next poll. Besides unseen messages, every message that
    arrived since the last poll is fetched, even if someone read it in another client.
    """

    def __init__(
        self,
        account: ChannelAccountView,
        on_message: OnMessage,
        *,
        state: ImapState | None = None,
        idle_timeout: float = IDLE_TIMEOUT,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = EmailSettings.from_account(account)
        self.state = state or ImapState()
        self._on_message = on_message
        self._idle_timeout = idle_timeout
        self._tls_context = tls_context
        # Highest UID present when the folder was selected with no history: older mail
        # that is already read is left alone.
        self._baseline = 0
        # Connections (by id) the server closed under us.
        self._lost: set[int] = set()
        # (UIDVALIDITY, UIDNEXT) of the SELECT in `_wait` that showed mail not yet fetched.
        self._selected: tuple[int | None, int] | None = None

    async def run(self) -> None:
        """Poll until cancelled; on errors reconnect after `poll_interval`."""
        while True:
            try:
                await self._session()
            except (OSError, TimeoutError, aioimaplib.AioImapException, ImapError) as exc:
                log.warning("imap %s: %s; retrying", self.settings.imap_host, exc)
            _stop_if_cancelled()
            await asyncio.sleep(self.settings.poll_interval)

    async def poll_once(self) -> int:
        """Connect, deliver what is new, disconnect; return how many were delivered."""
        client = await self._open()
        try:
            return await self._fetch_new(client)
        finally:
            await self._close(client)

    async def _session(self) -> None:
        client = await self._open()
        try:
            while True:
                await self._fetch_new(client)
                _stop_if_cancelled()
                await self._wait(client)
        finally:
            await self._close(client)

    def _context(self) -> ssl.SSLContext:
        return self._tls_context or ssl.create_default_context()

    async def _open(self) -> aioimaplib.IMAP4:
        settings = self.settings
        if not settings.imap_host:
            raise ImapError("no IMAP host configured")
        client: aioimaplib.IMAP4
        if settings.imap_tls is TlsMode.SSL:
            client = aioimaplib.IMAP4_SSL(
                settings.imap_host,
                settings.imap_port,
                timeout=COMMAND_TIMEOUT,
                ssl_context=self._context(),
            )
        else:
            client = aioimaplib.IMAP4(settings.imap_host, settings.imap_port, timeout=COMMAND_TIMEOUT)
        # Without this an IDLE on a dropped connection would only end at the IDLE timeout.
        client.protocol.conn_lost_cb = lambda _exc: self._connection_lost(client)
        try:
            await client.wait_hello_from_server()
            if settings.imap_tls is TlsMode.STARTTLS:
                await start_tls(client, settings.imap_host, self._context())
            response = await client.login(settings.imap_username, settings.imap_password or "")
            if response.result != "OK":
                raise ImapError(f"login refused for {settings.imap_username}")
            response = await client.select(_quoted(settings.imap_folder))
            if response.result != "OK":
                raise ImapError(f"cannot select folder {settings.imap_folder}")
        except BaseException:
            await self._close(client)
            raise
        self._remember_mailbox(response)
        return client

    def _remember_mailbox(self, response: aioimaplib.Response) -> None:
        text = b"\n".join(bytes(line) for line in response.lines)
        validity = _UIDVALIDITY.search(text)
        uidvalidity = int(validity.group(1)) if validity else None
        if uidvalidity != self.state.uidvalidity:
            # A new UIDVALIDITY renumbers the folder: start over from its unseen mail.
            self.state = ImapState(uidvalidity=uidvalidity)
        if self.state.last_uid == 0:
            uidnext = _UIDNEXT.search(text)
            self._baseline = int(uidnext.group(1)) - 1 if uidnext else 0
        else:
            self._baseline = self.state.last_uid

    async def _search(self, client: aioimaplib.IMAP4, *criteria: str) -> list[int]:
        response = await client.uid_search(*criteria, charset=None)
        if response.result != "OK":
            raise ImapError(f"search refused: {response.lines}")
        return _search_uids(response)

    async def _fetch_new(self, client: aioimaplib.IMAP4) -> int:
        uids = set(await self._search(client, "UNSEEN"))
        if self.state.last_uid:
            first = self.state.last_uid + 1
            # "n:*" always includes the highest UID, even below n (RFC 3501 §6.4.8).
            arrived = await self._search(client, "UID", f"{first}:*")
            uids.update(uid for uid in arrived if uid >= first)
        delivered = 0
        for uid in sorted(uids):
            if await self._deliver(client, uid):
                delivered += 1
        self.state.last_uid = max([self.state.last_uid, self._baseline, *uids])
        if self._selected is not None and self._selected[0] == self.state.uidvalidity:
            # This pass searched after that SELECT, so every UID below its UIDNEXT is
            # handled, expunged ones included: never wait for those again.
            self.state.last_uid = max(self.state.last_uid, self._selected[1] - 1)
        self._selected = None
        return delivered

    async def _deliver(self, client: aioimaplib.IMAP4, uid: int) -> bool:
        response = await client.uid("fetch", str(uid), "(BODY.PEEK[])")
        raw = next((bytes(line) for line in response.lines if isinstance(line, bytearray)), None)
        if response.result != "OK" or raw is None:
            log.info("imap uid %s vanished before it could be fetched", uid)
            return False
        try:
            await self._on_message(raw)
        except Exception:  # the message stays unseen and is offered again next poll
            log.exception("imap uid %s: on_message failed; left unseen", uid)
            return False
        response = await client.uid("store", str(uid), "+FLAGS.SILENT", "(\\Seen)")
        if response.result != "OK":
            log.warning("imap uid %s: could not flag \\Seen: %s", uid, response.lines)
        return True

    def _connection_lost(self, client: aioimaplib.IMAP4) -> None:
        self._lost.add(id(client))
        client.protocol.idle_queue.put_nowait(aioimaplib.STOP_WAIT_SERVER_PUSH)

    async def _wait(self, client: aioimaplib.IMAP4) -> None:
        """Wait for new mail: IDLE until the server pushes EXISTS, else sleep.

        aioimaplib drops the EXISTS a server announces with the answer to SEARCH, FETCH or
        STORE (mail that came while the last pass ran), and the server does not announce it
        again, so IDLE would sleep past that mail. SELECT is answered in full: its UIDNEXT
        shows such mail (then no wait at all), and anything newer is announced during IDLE.
        """
        folder = self.settings.imap_folder
        response = await client.select(_quoted(folder))
        # A stop that came with SELECT's answer must not turn into half an hour of IDLE.
        _stop_if_cancelled()
        if response.result != "OK":
            raise ImapError(f"cannot select folder {folder}")
        text = b"\n".join(bytes(line) for line in response.lines)
        validity, uidnext = _UIDVALIDITY.search(text), _UIDNEXT.search(text)
        if validity is not None and int(validity.group(1)) != self.state.uidvalidity:
            raise ImapError("UIDVALIDITY changed; reconnecting to start over")
        if uidnext is not None and int(uidnext.group(1)) - 1 > self.state.last_uid:
            self._selected = (self.state.uidvalidity, int(uidnext.group(1)))
            return
        if not client.has_capability("IDLE"):
            await asyncio.sleep(self.settings.poll_interval)
            return
        idle = await client.idle_start(timeout=self._idle_timeout)
        try:
            while client.has_pending_idle():
                _stop_if_cancelled()
                # Not client.wait_server_push: its asyncio.wait_for, on Python 3.11, drops a
                # cancellation that arrives as a push does, and this loop would then idle on
                # for half an hour in a poller that was told to stop. asyncio.timeout does not.
                async with asyncio.timeout(self._idle_timeout + COMMAND_TIMEOUT):
                    pushed = await client.protocol.idle_queue.get()
                if pushed == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    break
                if any(bytes(line).endswith(b"EXISTS") for line in pushed):
                    break
        finally:
            if id(client) in self._lost:
                idle.cancel()
            else:
                if client.has_pending_idle():
                    client.idle_done()
                await asyncio.wait_for(idle, COMMAND_TIMEOUT)
        if id(client) in self._lost:
            raise ImapError("the server closed the connection")

    async def _close(self, client: aioimaplib.IMAP4) -> None:
        try:
            if id(client) not in self._lost and client.get_state() in ("AUTH", "SELECTED", "NONAUTH"):
                await asyncio.wait_for(client.logout(), 5)
        except (OSError, TimeoutError, aioimaplib.AioImapException):
            log.debug("imap logout failed", exc_info=True)
        finally:
            client.protocol.conn_lost_cb = None
            self._lost.discard(id(client))
            transport = client.protocol.transport
            if transport is not None:
                transport.close()
