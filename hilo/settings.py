"""Configuration from HILO_* environment variables, with embedded defaults."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path


def _env(name: str, default: str) -> str:
    return os.environ.get(f"HILO_{name}", default)


def _secret_key(data_dir: Path) -> str:
    """Use HILO_SECRET_KEY, or a random key kept in the data dir so sessions survive restarts."""
    configured = os.environ.get("HILO_SECRET_KEY")
    if configured:
        return configured
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


# Where `hilo serve` listens ("host:port"), set by it for its own processes: without
# HILO_BASE_URL, the addresses Hilo gives out (webhook URLs, the widget's snippet) use it.
@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    redis_url: str
    secret_key: str
    base_url: str
    default_region: str
    reopen_window_hours: float
    max_body_bytes: int
    max_upload_bytes: int
    run_worker: bool
    outbox_max_attempts: int
    outbox_backoff_base: float
    outbox_backoff_max: float
    send_timeout: float
    login_rate_limit: int
    webhook_rate_limit: int
    webhook_refusal_limit: int
    secure_cookies: bool
    log_level: str
    # Inbound e-mail webhooks (Mailgun) carry the attachments in the body.
    max_email_body_bytes: int = 40 * 1024 * 1024
    # Fields of a urlencoded webhook body, or parts of a multipart one: the parsers are
    # slow per field, so a body of thousands of tiny fields is refused before parsing.
    max_form_fields: int = 1000
    # Non-public networks that media downloads, rule webhooks and API channels may reach
    # (HILO_OUTBOUND_ALLOW_NETWORKS, comma-separated CIDRs; see hilo.outbound).
    outbound_allow_networks: str = ""
    # Fernet keys for secrets at rest (HILO_SECRET_KEYS, comma-separated, the first encrypts);
    # empty: a key derived from secret_key (see hilo.db.encryption).
    secret_keys: str = ""
    # The server that sends Hilo's own e-mails (password resets, invitations):
    # smtp://user:pass@host:port (STARTTLS when offered) or smtps://... (TLS); empty: none.
    smtp_url: str = ""
    # Their sender; empty: hilo@ and the host of base_url.
    mail_from: str = ""
    # Log each event-loop callback slower than this (asyncio debug mode; 0: off). See
    # hilo.loopwatch.
    loop_slow_callback_ms: float = 0
    extra: dict[str, str] = field(default_factory=dict)
    # False when base_url was derived from where the server listens (no HILO_BASE_URL).
    base_url_configured: bool = True

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def mail_configured(self) -> bool:
        return bool(self.smtp_url)


# Where `hilo serve` listens unless told otherwise (`--host`/`--port`, HILO_HOST/HILO_PORT).
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
# Phone numbers written without a country code are read as numbers of this region: Spain,
# where the demo's customers and the examples of the docs write from. Set HILO_DEFAULT_REGION
# (an ISO 3166 code such as MX, AR, US) to the country most of your customers write from.
DEFAULT_REGION = "ES"


def listen_address() -> tuple[str, int]:
    """The host and port `hilo serve` listens on by default: HILO_HOST and HILO_PORT."""
    return _env("HOST", DEFAULT_HOST), int(_env("PORT", str(DEFAULT_PORT)))


def local_url(host: str, port: int) -> str:
    """The address a browser on this machine opens to reach a server listening on host:port."""
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - naming the wildcard, not binding it
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def load_settings() -> Settings:
    data_dir = Path(_env("DATA_DIR", "var")).resolve()
    return Settings(
        data_dir=data_dir,
        database_url=_env("DATABASE_URL", f"sqlite:///{data_dir / 'hilo.db'}"),
        redis_url=_env("REDIS_URL", ""),
        secret_key=_secret_key(data_dir),
        # Unset, the address `hilo serve` listens on: links Hilo prints and hands out work.
        base_url=_env("BASE_URL", local_url(*listen_address())).rstrip("/"),
        base_url_configured=bool(os.environ.get("HILO_BASE_URL")),
        default_region=_env("DEFAULT_REGION", DEFAULT_REGION).upper(),
        reopen_window_hours=float(_env("REOPEN_WINDOW_HOURS", "72")),
        max_body_bytes=int(_env("MAX_BODY_BYTES", str(1024 * 1024))),
        max_upload_bytes=int(_env("MAX_UPLOAD_BYTES", str(20 * 1024 * 1024))),
        max_email_body_bytes=int(_env("MAX_EMAIL_BODY_BYTES", str(40 * 1024 * 1024))),
        max_form_fields=int(_env("MAX_FORM_FIELDS", "1000")),
        run_worker=_env("RUN_WORKER", "1") not in ("0", "false", "no"),
        outbox_max_attempts=int(_env("OUTBOX_MAX_ATTEMPTS", "8")),
        outbox_backoff_base=float(_env("OUTBOX_BACKOFF_BASE", "2")),
        outbox_backoff_max=float(_env("OUTBOX_BACKOFF_MAX", "900")),
        send_timeout=float(_env("SEND_TIMEOUT", "15")),
        login_rate_limit=int(_env("LOGIN_RATE_LIMIT", "10")),
        webhook_rate_limit=int(_env("WEBHOOK_RATE_LIMIT", "0")),
        webhook_refusal_limit=int(_env("WEBHOOK_REFUSAL_LIMIT", "120")),
        secure_cookies=_env("SECURE_COOKIES", "0") in ("1", "true", "yes"),
        log_level=_env("LOG_LEVEL", "INFO"),
        outbound_allow_networks=_env("OUTBOUND_ALLOW_NETWORKS", ""),
        secret_keys=_env("SECRET_KEYS", ""),
        smtp_url=_env("SMTP_URL", ""),
        mail_from=_env("MAIL_FROM", ""),
        loop_slow_callback_ms=float(_env("LOOP_SLOW_CALLBACK_MS", "0")),
    )
