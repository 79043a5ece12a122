"""Which addresses Hilo connects to when a URL comes from outside: media, rule webhooks, API channels.

A URL a provider, a customer's system or an administrator gives could name Hilo's own
host or internal network (server-side request forgery). Every such request goes through
the transports here: they resolve the host, refuse loopback, link-local, private,
shared, multicast, reserved and unspecified addresses (IPv4 and IPv6, IPv4-mapped
included) unless `HILO_OUTBOUND_ALLOW_NETWORKS` lists them, and connect to the very
address they checked (the Host header and TLS name stay the original host), so a DNS
answer that changes between check and connect cannot slip through. httpx sends every
redirect back through the transport, so each hop is checked too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable

import httpx

from hilo.i18n import N_

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

REASON_REFUSED = N_(
    "The address is on a private or local network, which Hilo does not connect to. "
    "An administrator can allow that network with HILO_OUTBOUND_ALLOW_NETWORKS."
)
CODE_REFUSED = "address_refused"

# Networks set from the settings when the runtime starts (see `allow`); empty refuses
# every non-public address.
_allowed: tuple[Network, ...] = ()


class AddressRefused(httpx.TransportError):
    """The URL's host is, or resolves to, an address outbound requests may not reach."""

    def __init__(self, host: str, address: str) -> None:
        super().__init__(f"outbound request to {host} refused: {address} is not a public address")
        self.host = host
        self.address = address
        self.reason = REASON_REFUSED


def parse_networks(value: str) -> tuple[Network, ...]:
    """Parse a comma-separated CIDR list, e.g. "10.0.0.0/8, fd00::/8"."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip())


def allow(networks: Iterable[Network]) -> None:
    """Set the networks outbound requests may reach although they are not public."""
    global _allowed
    _allowed = tuple(networks)


def is_allowed(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in _allowed):
        return True
    # is_global is False for loopback, link-local, private, shared (100.64/10), reserved
    # and unspecified addresses; some multicast ranges count as global, so refuse those too.
    return address.is_global and not address.is_multicast


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _choose(host: str, infos: list[tuple[object, ...]]) -> str:
    """The first resolved address, if it is allowed: the one the connection will use."""
    if not infos:
        raise httpx.ConnectError(f"no address for {host}")
    address = str(infos[0][4][0])  # type: ignore[index]
    if not is_allowed(ipaddress.ip_address(address.split("%", 1)[0])):
        raise AddressRefused(host, address)
    return address


def _pinned(request: httpx.Request, address: str) -> None:
    """Send `request` to `address`, keeping its Host header and the TLS server name."""
    host = request.url.host
    if address != host:
        request.extensions = {**request.extensions, "sni_hostname": host}
        request.url = request.url.copy_with(host=address)


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


class Transport(httpx.HTTPTransport):
    """A blocking transport that connects only to allowed addresses."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        literal = _literal(host)
        if literal is not None:
            infos: list[tuple[object, ...]] = [(None, None, None, None, (str(literal), 0))]
        else:
            try:
                infos = list(socket.getaddrinfo(host, _port(request.url), type=socket.SOCK_STREAM))
            except OSError as exc:
                raise httpx.ConnectError(f"could not resolve {host}: {exc}", request=request) from exc
        _pinned(request, _choose(host, infos))
        return super().handle_request(request)


class AsyncTransport(httpx.AsyncHTTPTransport):
    """An asyncio transport that connects only to allowed addresses."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        literal = _literal(host)
        if literal is not None:
            infos: list[tuple[object, ...]] = [(None, None, None, None, (str(literal), 0))]
        else:
            try:
                loop = asyncio.get_running_loop()
                infos = list(await loop.getaddrinfo(host, _port(request.url), type=socket.SOCK_STREAM))
            except OSError as exc:
                raise httpx.ConnectError(f"could not resolve {host}: {exc}", request=request) from exc
        _pinned(request, _choose(host, infos))
        return await super().handle_async_request(request)
