"""Real mail servers on loopback for the e-mail channel tests: Dovecot IMAP and aiosmtpd SMTP."""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aioimaplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from hilo.channels.base import ChannelAccountView
from tests.fakes.server import free_port

IMAP_PASSWORD = "s3cret-imap"  # noqa: S105 - a throwaway test account
NOBODY = 65534
USERS_PER_SERVER = 100


def _require(binary: str | None, name: str) -> str:
    """Skip when a server binary is missing on a developer machine; fail loudly on CI."""
    if binary is not None:
        return binary
    message = f"{name} is not installed; run .ci/setup-email.sh to install it"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass(frozen=True)
class TlsFiles:
    """A self-signed certificate for 127.0.0.1 and its key."""

    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.cert), str(self.key))
        return context


@pytest.fixture(name="tls_files", scope="session")
def tls_files_fixture() -> Iterator[TlsFiles]:
    openssl = _require(shutil.which("openssl"), "openssl")
    folder = Path(tempfile.mkdtemp(prefix="hilo-tls-"))
    folder.chmod(0o755)  # Dovecot reads the files after dropping privileges
    files = TlsFiles(folder / "cert.pem", folder / "key.pem")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        + ["-keyout", str(files.key), "-out", str(files.cert), "-days", "2", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    files.key.chmod(0o644)
    yield files
    shutil.rmtree(folder, ignore_errors=True)


def dovecot_binary() -> str | None:
    # /usr/sbin is not on every non-root user's PATH.
    return shutil.which("dovecot") or next(
        (p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.access(p, os.X_OK)),
        None,
    )


def _dovecot_version(binary: str) -> tuple[int, int]:
    output = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    match = re.match(r"(\d+)\.(\d+)", output.stdout.strip())
    return (int(match.group(1)), int(match.group(2))) if match else (2, 3)


def _config(root: Path, port: int, version: tuple[int, int], tls: TlsFiles | None, tls_port: int) -> str:
    """A self-contained Dovecot config: loopback only, passwd-file users, TLS only if given."""
    passwd = root / "passwd"
    if os.geteuid() == 0:
        users = ""
    else:
        # Unprivileged: every Dovecot process runs as the current user, without chroot.
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        users = (
            f"default_internal_user = {user}\ndefault_internal_group = {group}\n"
            f"default_login_user = {user}\n"
            "service imap-login {\n  chroot =\n}\nservice anvil {\n  chroot =\n}\n"
        )
    common = (
        f"base_dir = {root}/run\nstate_dir = {root}/state\ninstance_name = hilo-test-{port}\n"
        f"listen = 127.0.0.1\nprotocols = imap\nssl = {'yes' if tls else 'no'}\nauth_mechanisms = plain login\n"
        f"log_path = {root}/dovecot.log\nfirst_valid_uid = 1\n{users}"
    )
    if version >= (2, 4):
        return (
            "dovecot_config_version = 2.4.0\ndovecot_storage_version = 2.4.0\n"
            f"{common}auth_allow_cleartext = yes\n"
            + (f"ssl_server_cert_file = {tls.cert}\nssl_server_key_file = {tls.key}\n" if tls else "")
            + "mail_driver = maildir\nmail_path = ~/Maildir\n"
            f"passdb passwd-file {{\n  passwd_file_path = {passwd}\n}}\n"
            f"userdb passwd-file {{\n  passwd_file_path = {passwd}\n}}\n"
            "service imap-login {\n  inet_listener imap {\n"
            f"    listen = 127.0.0.1\n    port = {port}\n  }}\n"
            f"  inet_listener imaps {{\n    listen = 127.0.0.1\n    port = {tls_port}\n  }}\n}}\n"
        )
    return (
        f"{common}disable_plaintext_auth = no\nmail_location = maildir:~/Maildir\n"
        + (f"ssl_cert = <{tls.cert}\nssl_key = <{tls.key}\n" if tls else "")
        + f"passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {passwd}\n}}\n"
        f"userdb {{\n  driver = passwd-file\n  args = username_format=%u {passwd}\n}}\n"
        "service imap-login {\n  inet_listener imap {\n"
        f"    address = 127.0.0.1\n    port = {port}\n  }}\n"
        f"  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {tls_port}\n  }}\n}}\n"
    )


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    log = log_path.read_text(errors="replace") if log_path.exists() else "(no log)"
    process.kill()
    pytest.fail(f"dovecot did not start listening on {port}:\n{log}")


@dataclass
class DovecotServer:
    """A running Dovecot with one user; helpers talk to it as a second IMAP client."""

    host: str
    port: int
    username: str
    password: str
    log_path: Path
    config_path: Path
    tls_port: int | None = None

    def account(self, **config: Any) -> ChannelAccountView:
        values = {
            "address": self.username,
            "imap_host": self.host,
            "imap_port": self.port,
            "imap_tls": "none",
            "imap_username": self.username,
            "poll_interval": 30,
            **config,
        }
        return ChannelAccountView(
            id=1, kind="email", name="Support", config=values, secrets={"imap_password": self.password}
        )

    async def _client(self) -> aioimaplib.IMAP4:
        client = aioimaplib.IMAP4(self.host, self.port, timeout=10)
        await client.wait_hello_from_server()
        assert (await client.login(self.username, self.password)).result == "OK"
        assert (await client.select("INBOX")).result == "OK"
        return client

    async def append(self, raw: bytes, flags: str | None = None) -> None:
        client = await self._client()
        try:
            assert (await client.append(raw, mailbox="INBOX", flags=flags)).result == "OK"
        finally:
            await client.logout()

    def kick(self) -> None:
        """Drop every connection of this user, as a server restart or network cut would."""
        doveadm = shutil.which("doveadm") or "/usr/bin/doveadm"
        subprocess.run([doveadm, "-c", str(self.config_path), "kick", self.username], check=True, capture_output=True)

    async def mark_seen(self, uid: int) -> None:
        """Flag a message as read, as an agent's own mail client would."""
        client = await self._client()
        try:
            assert (await client.uid("store", str(uid), "+FLAGS", "(\\Seen)")).result == "OK"
        finally:
            await client.logout()

    async def flags(self) -> dict[int, set[str]]:
        """UID -> flags of every message in INBOX."""
        client = await self._client()
        try:
            response = await client.uid("fetch", "1:*", "(UID FLAGS)")
        finally:
            await client.logout()
        found: dict[int, set[str]] = {}
        for line in response.lines:
            match = re.search(rb"UID (\d+) FLAGS \(([^)]*)\)", bytes(line))
            if match:
                found[int(match.group(1))] = set(match.group(2).decode().split())
        return found


@dataclass
class DovecotInstance:
    """A running Dovecot; each test gets its own user and so its own empty mailbox."""

    root: Path
    port: int
    tls_port: int | None
    log_path: Path
    uid: int
    gid: int
    users: int = 0

    def new_user(self) -> DovecotServer:
        if self.users >= USERS_PER_SERVER:
            raise RuntimeError("raise USERS_PER_SERVER: every test takes one mailbox")
        self.users += 1
        home = self.root / "mail" / f"agent{self.users}"
        home.mkdir()
        os.chown(home, self.uid, self.gid)
        return DovecotServer(
            "127.0.0.1",
            self.port,
            f"agent{self.users}@example.com",
            IMAP_PASSWORD,
            self.log_path,
            self.root / "dovecot.conf",
            self.tls_port,
        )


@contextmanager
def run_dovecot(tls: TlsFiles | None = None) -> Iterator[DovecotInstance]:
    """Start a private Dovecot IMAP server on free loopback ports (plain, and IMAPS with `tls`)."""
    binary = _require(dovecot_binary(), "dovecot")
    # mkdtemp rather than tmp_path: the mail user (nobody, when we are root) must be able
    # to reach the mail folders, and pytest's base temp dir is private to us.
    root = Path(tempfile.mkdtemp(prefix="hilo-dovecot-"))
    root.chmod(0o755)
    uid, gid = (NOBODY, NOBODY) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    (root / "mail").mkdir()
    os.chown(root / "mail", uid, gid)
    (root / "state").mkdir()
    # All users up front: Dovecot re-reads a changed passwd-file at most once a second.
    (root / "passwd").write_text(
        "".join(
            f"agent{n}@example.com:{{PLAIN}}{IMAP_PASSWORD}:{uid}:{gid}::{root}/mail/agent{n}::\n"
            for n in range(1, USERS_PER_SERVER + 1)
        )
    )
    port = free_port()
    tls_port = free_port() if tls else 0
    config = root / "dovecot.conf"
    config.write_text(_config(root, port, _dovecot_version(binary), tls, tls_port))
    log_path = root / "dovecot.log"
    with (root / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen([binary, "-F", "-c", str(config)], stdout=stderr, stderr=stderr)
    try:
        _wait_for_port(port, process, log_path)
        yield DovecotInstance(root, port, tls_port or None, log_path, uid, gid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(name="dovecot_instance", scope="session")
def dovecot_instance_fixture() -> Iterator[DovecotInstance]:
    with run_dovecot() as instance:
        yield instance


@pytest.fixture(name="dovecot_tls_instance", scope="session")
def dovecot_tls_instance_fixture(tls_files: TlsFiles) -> Iterator[DovecotInstance]:
    with run_dovecot(tls_files) as instance:
        yield instance


@pytest.fixture(name="dovecot")
def dovecot_fixture(dovecot_instance: DovecotInstance) -> DovecotServer:
    """A fresh mailbox on a private Dovecot without TLS."""
    return dovecot_instance.new_user()


@pytest.fixture(name="dovecot_tls")
def dovecot_tls_fixture(dovecot_tls_instance: DovecotInstance) -> DovecotServer:
    """A fresh mailbox on a Dovecot offering STARTTLS on `port` and implicit TLS on `tls_port`."""
    return dovecot_tls_instance.new_user()


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes


@dataclass
class RecordingHandler:
    """An aiosmtpd handler that keeps every message and can refuse the next ones."""

    messages: list[ReceivedMail] = field(default_factory=list)
    _refusals: list[tuple[str, str]] = field(default_factory=list)

    def refuse_next(self, reply: str, *, at: str = "data", count: int = 1) -> None:
        """Answer the next `count` RCPT or DATA commands with `reply` ("550 5.1.1 ...")."""
        self._refusals.extend([(at, reply)] * count)

    def _refusal(self, stage: str) -> str | None:
        if self._refusals and self._refusals[0][0] == stage:
            return self._refusals.pop(0)[1]
        return None

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        refusal = self._refusal("rcpt")
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        refusal = self._refusal("data")
        if refusal:
            return refusal
        content = envelope.original_content or b""
        self.messages.append(ReceivedMail(str(envelope.mail_from), list(envelope.rcpt_tos), content))
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: RecordingHandler
    tls: str = "none"

    def account(self, **config: Any) -> ChannelAccountView:
        values = {
            "address": "support@hilo.example",
            "smtp_host": self.host,
            "smtp_port": self.port,
            "smtp_tls": self.tls,
            **config,
        }
        return ChannelAccountView(id=2, kind="email", name="Support", config=values, secrets={})


@contextmanager
def run_smtp(**controller_options: Any) -> Iterator[tuple[int, RecordingHandler]]:
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **controller_options)
    controller.start()
    try:
        yield port, handler
    finally:
        controller.stop()


@pytest.fixture(name="smtp_server")
def smtp_server_fixture() -> Iterator[SmtpServer]:
    """An aiosmtpd server on a free loopback port that records what it receives."""
    with run_smtp() as (port, handler):
        yield SmtpServer("127.0.0.1", port, handler)


@pytest.fixture(name="smtp_tls_server", params=["starttls", "ssl"])
def smtp_tls_server_fixture(request: pytest.FixtureRequest, tls_files: TlsFiles) -> Iterator[SmtpServer]:
    """The recording server behind STARTTLS (required) or implicit TLS."""
    if request.param == "starttls":
        options: dict[str, Any] = {"tls_context": tls_files.server_context(), "require_starttls": True}
    else:
        options = {"ssl_context": tls_files.server_context()}
    with run_smtp(**options) as (port, handler):
        yield SmtpServer("127.0.0.1", port, handler, tls=request.param)
