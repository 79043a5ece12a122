"""Channel adapters benchmark: parse-and-verify cost per webhook, and ingest through the
WhatsApp and Twilio SMS adapters over HTTP.

1. Parse and verify: each adapter's `parse_webhook` (signature check on the raw body,
   then normalisation) timed with timeit over the shared captured fixtures, in
   microseconds per webhook (best of five repeats, so other load on the machine counts
   as little as possible).
2. Ingest: a real `hilo serve` (uvicorn, outbox worker off) on SQLite and on PostgreSQL
   takes signed WhatsApp Cloud API webhooks and signed Twilio SMS webhooks, and, as the
   reference measured under the same conditions, the generic API channel's. Two runs per
   adapter: a moderate fixed rate, open loop (each request leaves at its scheduled time,
   latency from that time to the answer, which Hilo gives only after the commit), and a
   saturation run, closed loop (a fixed number of clients posting back to back), whose
   rate is what the server sustains. The core ingest benchmark's API-channel figures
   from results/ingest.json are copied beside them when that file exists.

    .venv/bin/python bench/channels_bench.py [--quick] [--databases sqlite,postgresql]

Writes bench/results/channels.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import random
import subprocess
import tempfile
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
from common import (
    HILO,
    RESULTS,
    ROOT,
    HiloServer,
    create_database,
    drop_database,
    free_port,
    hilo_cli,
    hilo_env,
    latency_summary,
    status,
    write_result,
)

from hilo.channels import signing
from hilo.channels.base import ChannelAccountView, WebhookRequest
from hilo.channels.email import EmailAdapter
from hilo.channels.registry import get_adapter

FIXTURES = ROOT.parent / "shared" / "fixtures"
APP_SECRET = "bench-app-secret"
TWILIO_TOKEN = "bench-auth-token"
TELEGRAM_SECRET = "bench-telegram-secret"
MAILGUN_KEY = "TEST_WEBHOOK_SIGNING_KEY"  # the key of the fixture's own signature
CONTACTS = 500
MODERATE_RATE = 50  # messages per second
MODERATE_SECONDS = 10.0
SATURATION_CLIENTS = 32
SATURATION_COUNT = 1500
REQUEST_TIMEOUT = 60.0


# ---------------------------------------------------------------- parse and verify


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _meta_request(body: bytes) -> WebhookRequest:
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return WebhookRequest("POST", "https://hilo.example/webhooks/meta/1", {"x-hub-signature-256": signature}, {}, body)


def _twilio_signature(url: str, params: list[tuple[str, str]]) -> str:
    data = url + "".join(name + value for name, value in sorted(params))
    return base64.b64encode(hmac.new(TWILIO_TOKEN.encode(), data.encode(), hashlib.sha1).digest()).decode()


def _twilio_request(body: bytes) -> WebhookRequest:
    url = "https://hilo.example/webhooks/sms/1"
    signature = _twilio_signature(url, parse_qsl(body.decode(), keep_blank_values=True))
    headers = {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature}
    return WebhookRequest("POST", url, headers, {}, body)


def _telegram_request(body: bytes) -> WebhookRequest:
    headers = {"x-telegram-bot-api-secret-token": TELEGRAM_SECRET}
    return WebhookRequest("POST", "https://hilo.example/webhooks/telegram/1", headers, {}, body)


def _view(kind: str, secrets: dict[str, str]) -> ChannelAccountView:
    return ChannelAccountView(id=1, kind=kind, name=kind, config={}, secrets=secrets)


@dataclass
class ParseCase:
    kind: str
    fixture: str
    account: ChannelAccountView
    request: WebhookRequest
    parse: Callable[[ChannelAccountView, WebhookRequest], Any]


def parse_cases() -> list[ParseCase]:
    meta = {"app_secret": APP_SECRET}
    cases = []
    for kind, names in {
        "whatsapp": ["whatsapp_text.json", "whatsapp_image.json", "whatsapp_status_read.json"],
        "messenger": [
            "messenger_text_courier.json",
            "messenger_attachment_courier.json",
            "messenger_delivery_courier.json",
        ],
        "instagram": ["instagram_text_courier.json", "instagram_attachment_courier.json"],
    }.items():
        for name in names:
            cases.append(
                ParseCase(kind, name, _view(kind, meta), _meta_request(_fixture(name)), get_adapter(kind).parse_webhook)
            )
    for kind, names in {
        "sms": [
            "twilio_sms_inbound_text_courier.form",
            "twilio_sms_inbound_media_courier.form",
            "twilio_sms_status_delivered_courier.form",
        ],
        "twilio_whatsapp": ["twilio_whatsapp_inbound_courier.form"],
    }.items():
        for name in names:
            view = _view(kind, {"auth_token": TWILIO_TOKEN})
            cases.append(ParseCase(kind, name, view, _twilio_request(_fixture(name)), get_adapter(kind).parse_webhook))
    for name in ["telegram_text.json", "telegram_photo_courier.json", "telegram_callback_query.json"]:
        view = _view("telegram", {"secret_token": TELEGRAM_SECRET})
        cases.append(
            ParseCase("telegram", name, view, _telegram_request(_fixture(name)), get_adapter("telegram").parse_webhook)
        )
    mail = "email_mailgun_route_forward_anymail.json"
    timestamp = float(json.loads(_fixture(mail))["timestamp"])
    email = EmailAdapter(clock=lambda: timestamp + 30)
    request = WebhookRequest(
        "POST", "https://hilo.example/webhooks/email/1", {"content-type": "application/json"}, {}, _fixture(mail)
    )
    cases.append(
        ParseCase("email", mail, _view("email", {"mailgun_signing_key": MAILGUN_KEY}), request, email.parse_webhook)
    )
    # The generic API channel: Hilo's own signature scheme, the reference point.
    secret = "bench-api-secret"
    body = json.dumps({"id": "m-1", "contact": {"external_id": "c-1", "name": "Ana"}, "text": "Hola"}).encode()
    api_request = WebhookRequest(
        "POST",
        "https://hilo.example/webhooks/api/1",
        {"content-type": "application/json", "x-hilo-signature": signing.sign(secret, body)},
        {},
        body,
    )
    cases.append(
        ParseCase("api", "(generated)", _view("api", {"secret": secret}), api_request, get_adapter("api").parse_webhook)
    )
    return cases


def run_parse(quick: bool) -> dict[str, Any]:
    number = 100 if quick else 1000
    rows: list[dict[str, Any]] = []
    for case in parse_cases():
        result = case.parse(case.account, case.request)
        assert result is not None
        timer = timeit.Timer(lambda case=case: case.parse(case.account, case.request))  # type: ignore[misc]
        best = min(timer.repeat(repeat=5, number=number)) / number
        rows.append(
            {
                "adapter": case.kind,
                "fixture": case.fixture,
                "bytes": len(case.request.body),
                "us_per_webhook": round(best * 1e6, 1),
            }
        )
    by_adapter: dict[str, list[float]] = {}
    for row in rows:
        by_adapter.setdefault(row["adapter"], []).append(row["us_per_webhook"])
    summary = {kind: round(sum(values) / len(values), 1) for kind, values in by_adapter.items()}
    return {"timeit_number": number, "repeats": 5, "per_fixture": rows, "mean_us_by_adapter": summary}


# ---------------------------------------------------------------- ingest over HTTP


@dataclass
class Prepared:
    body: bytes
    headers: dict[str, str]


@dataclass
class Channel:
    kind: str
    path: str
    make: Callable[[int, int], Prepared]
    ok: Callable[[httpx.Response], bool]


def whatsapp_maker(number_id: str) -> Callable[[int, int], Prepared]:
    template = json.loads(_fixture("whatsapp_text.json"))

    def make(seq: int, contact: int) -> Prepared:
        value = template["entry"][0]["changes"][0]["value"]
        wa_id = f"3460{contact:07d}"
        value["metadata"]["phone_number_id"] = number_id
        value["contacts"][0].update({"wa_id": wa_id, "profile": {"name": f"Cliente {contact}"}})
        value["messages"][0].update({"from": wa_id, "id": f"wamid.BENCH{seq:09d}", "text": {"body": f"pedido {seq}"}})
        body = json.dumps(template).encode()
        signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        return Prepared(body, {"content-type": "application/json", "x-hub-signature-256": signature})

    return make


def sms_maker(url: str) -> Callable[[int, int], Prepared]:
    template = parse_qsl(_fixture("twilio_sms_inbound_text_courier.form").decode(), keep_blank_values=True)

    def make(seq: int, contact: int) -> Prepared:
        sid = f"SM{seq:032d}"
        replaced = {
            "From": f"+3461{contact:07d}",
            "Body": f"pedido {seq}",
            "MessageSid": sid,
            "SmsMessageSid": sid,
            "SmsSid": sid,
        }
        params = [(name, replaced.get(name, value)) for name, value in template]
        return Prepared(
            urlencode(params).encode(),
            {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": _twilio_signature(url, params)},
        )

    return make


@dataclass
class Shot:
    scheduled: float
    answered: float = 0.0
    ok: bool = False
    error: str = ""


@dataclass
class RunResult:
    shots: list[Shot] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    def summary(self) -> dict[str, Any]:
        accepted = [s for s in self.shots if s.ok]
        errors: dict[str, int] = {}
        for shot in self.shots:
            if not shot.ok:
                errors[shot.error] = errors.get(shot.error, 0) + 1
        elapsed = max(self.finished - self.started, 1e-9)
        return {
            "sent": len(self.shots),
            "accepted": len(accepted),
            "accepted_per_s": round(len(accepted) / elapsed, 1),
            "errors": errors,
            "post_to_response": latency_summary([s.answered - s.scheduled for s in accepted]),
        }


async def _post(client: httpx.AsyncClient, channel: Channel, prepared: Prepared, shot: Shot) -> None:
    try:
        response = await client.post(channel.path, content=prepared.body, headers=prepared.headers)
        shot.ok = channel.ok(response)
        shot.error = "" if shot.ok else f"http_{response.status_code}"
    except httpx.HTTPError as exc:
        shot.error = type(exc).__name__
    shot.answered = time.monotonic()


async def open_loop(base_url: str, channel: Channel, prepared: list[Prepared], rate: float) -> RunResult:
    """Send at a fixed rate whatever the answers; latency from each scheduled time."""
    result = RunResult()
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT, limits=limits) as client:
        result.started = time.monotonic() + 0.2
        tasks = []
        for index, item in enumerate(prepared):
            shot = Shot(scheduled=result.started + index / rate)
            result.shots.append(shot)
            delay = shot.scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_post(client, channel, item, shot)))
        await asyncio.gather(*tasks)
    result.finished = max(s.answered for s in result.shots)
    return result


async def closed_loop(base_url: str, channel: Channel, prepared: list[Prepared], clients: int) -> RunResult:
    """`clients` connections posting back to back: the rate the server sustains."""
    result = RunResult()
    queue = list(reversed(prepared))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT, limits=limits) as client:

        async def worker() -> None:
            while queue:
                item = queue.pop()
                shot = Shot(scheduled=time.monotonic())
                result.shots.append(shot)
                await _post(client, channel, item, shot)

        result.started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(clients)))
    result.finished = time.monotonic()
    return result


def api_maker(secret: str) -> Callable[[int, int], Prepared]:
    """The generic API channel, measured in the same run as the reference."""

    def make(seq: int, contact: int) -> Prepared:
        body = json.dumps(
            {
                "id": f"bench-{seq}",
                "contact": {"external_id": f"c-{contact}", "name": f"Cliente {contact}"},
                "text": f"pedido {seq}",
            }
        ).encode()
        return Prepared(body, {"content-type": "application/json", "x-hilo-signature": signing.sign(secret, body)})

    return make


def _stored_one(response: httpx.Response) -> bool:
    return response.status_code == 200 and response.json().get("messages") == 1


def _sms_ok(response: httpx.Response) -> bool:
    return response.status_code == 200 and b"<Response/>" in response.content


def run_database(kind: str, quick: bool, work: Path) -> dict[str, Any]:
    database = None if kind == "sqlite" else f"hilo_bench_channels_{int(time.time())}"
    url = create_database(database) if database else f"sqlite:///{work / 'hilo.db'}"
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = hilo_env(url, work / "data", HILO_BASE_URL=base_url, HILO_RUN_WORKER="0")
    moderate_count = int(MODERATE_RATE * (MODERATE_SECONDS / 2 if quick else MODERATE_SECONDS))
    saturation_count = SATURATION_COUNT // 3 if quick else SATURATION_COUNT
    try:
        subprocess.run([HILO, "migrate"], env=env, check=True, capture_output=True)
        number_id = "106540352242922"
        whatsapp = hilo_cli(
            env,
            "channels", "add", "whatsapp", "--name", "Bench WhatsApp", "--json",
            "--set", f"phone_number_id={number_id}", "--set", "access_token=bench",
            "--set", f"app_secret={APP_SECRET}", "--set", "verify_token=bench",
        )  # fmt: skip
        sms = hilo_cli(
            env,
            "channels", "add", "sms", "--name", "Bench SMS", "--json",
            "--set", "account_sid=AC" + "0" * 32, "--set", f"auth_token={TWILIO_TOKEN}",
            "--set", "from_number=+12028831111",
        )  # fmt: skip
        api = hilo_cli(env, "channels", "add", "api", "--name", "Bench API", "--json")
        sms_path = f"/webhooks/sms/{sms['id']}"
        channels = [
            Channel("whatsapp", f"/webhooks/whatsapp/{whatsapp['id']}", whatsapp_maker(number_id), _stored_one),
            Channel("sms", sms_path, sms_maker(base_url + sms_path), _sms_ok),
            Channel("api", f"/webhooks/api/{api['id']}", api_maker(api["secret"]), _stored_one),
        ]
        server = HiloServer(env, work / "server.log", port=port)
        server.start()
        results: dict[str, Any] = {}
        rng = random.Random(7)
        seq = 0
        try:
            for channel in channels:
                prepared = []
                for _ in range(moderate_count + saturation_count):
                    seq += 1
                    prepared.append(channel.make(seq, rng.randrange(CONTACTS)))
                status(f"{kind}/{channel.kind}: {moderate_count} webhooks at {MODERATE_RATE}/s")
                moderate = asyncio.run(open_loop(base_url, channel, prepared[:moderate_count], MODERATE_RATE))
                status(f"{kind}/{channel.kind}: {saturation_count} webhooks from {SATURATION_CLIENTS} clients")
                saturated = asyncio.run(closed_loop(base_url, channel, prepared[moderate_count:], SATURATION_CLIENTS))
                results[channel.kind] = {
                    "moderate": {"offered_per_s": MODERATE_RATE, **moderate.summary()},
                    "saturation": {"clients": SATURATION_CLIENTS, **saturated.summary()},
                }
        finally:
            server.stop()
        return {"database": kind, "adapters": results}
    finally:
        if database:
            drop_database(database)


def api_channel_reference() -> dict[str, Any] | None:
    """The generic API channel's figures from the core ingest benchmark, when it has run."""
    path = RESULTS / "ingest.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    reference: dict[str, Any] = {"source": "results/ingest.json", "date": data.get("date")}
    for entry in data.get("databases", []):
        steps = entry.get("steps", [])
        if not steps:
            continue
        nearest = min(steps, key=lambda s: abs(s.get("offered_per_s", 0) - MODERATE_RATE))
        best = max(steps, key=lambda s: s.get("accepted_per_s", 0))
        reference[entry["database"]] = {
            "lowest_rate_step": {
                "offered_per_s": nearest.get("offered_per_s"),
                "accepted_per_s": nearest.get("accepted_per_s"),
                "p99_ms": (nearest.get("post_to_response") or {}).get("p99_ms"),
            },
            "best_accepted_per_s": best.get("accepted_per_s"),
            "best_step_p99_ms": (best.get("post_to_response") or {}).get("p99_ms"),
        }
    return reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer iterations and messages")
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    status("parse-and-verify per adapter")
    parse = run_parse(args.quick)
    ingest = []
    for kind in [d.strip() for d in args.databases.split(",") if d.strip()]:
        with tempfile.TemporaryDirectory(prefix=f"hilo-channels-{kind}-") as work:
            ingest.append(run_database(kind, args.quick, Path(work)))
    path = write_result(
        "channels",
        {
            "quick": args.quick,
            "parse_and_verify": parse,
            "ingest": {
                "moderate_rate_per_s": MODERATE_RATE,
                "moderate_seconds": MODERATE_SECONDS / 2 if args.quick else MODERATE_SECONDS,
                "saturation_clients": SATURATION_CLIENTS,
                "databases": ingest,
                "api_channel_reference": api_channel_reference(),
            },
        },
    )
    status(f"wrote {path}")


if __name__ == "__main__":
    main()
