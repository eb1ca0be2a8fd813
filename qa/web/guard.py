"""Which addresses fetching may reach: public ones, and the networks ``fetch.allowed_networks``
lists (an intranet news site, say).

`qa ingest URL`, `qa watch` and ``POST /api/ingest`` fetch URLs that others choose (a request
body, a feed's links, a redirect's ``Location``). Without this rule such a URL could reach the
machine's own services, the local network or a cloud metadata endpoint (169.254.169.254):
server-side request forgery. A host is refused when *any* of its addresses is not allowed (a
name resolving to a public and a private address is not tried on the public one only).

The check is made when the connection is opened, on the very addresses then connected to
(:class:`GuardedTransport`), so a DNS answer that changes between a check and the connection
(DNS rebinding) cannot slip through, on the first request and on every redirect. The fetcher
also checks each URL before its request (:meth:`AddressRule.addresses`): the error comes
before anything is sent, and a request sent through a proxy (``HTTPS_PROXY``: the proxy, whose
own address is not checked, connects for us) is checked too, as far as the host resolves here.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from qa.core.config import FetchSettings, parse_networks
from qa.core.types import QAError
from qa.web.deadline import DeadlineStream, bounded

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

HOW_TO_ALLOW = "to fetch from it, list its network in fetch.allowed_networks"


class AddressRefused(QAError):
    """A host whose address is not public (nor in ``fetch.allowed_networks``)."""


def address_kind(address: Address) -> str:
    """What keeps ``address`` off the public internet ("loopback", "link-local", "private",
    ...), or "" for a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    kinds = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved),  # before private: 240.0.0.0/4 is both
        ("private", address.is_private),
        ("non-public", not address.is_global),  # 100.64.0.0/10 (carrier-grade NAT), say
    )
    return next((kind for kind, found in kinds if found), "")


def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to (an IP literal is its own); raises ``OSError``."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in found]
    return list(dict.fromkeys(addresses))


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


@dataclass(frozen=True)
class AddressRule:
    """Public addresses are allowed, and those in ``allowed`` networks."""

    allowed: tuple[Network, ...] = ()

    @classmethod
    def of(cls, settings: FetchSettings) -> AddressRule:
        return cls(parse_networks(settings.allowed_networks))

    def refusal(self, address: Address) -> str:
        """Why ``address`` may not be fetched from ("a loopback address"), or "" if it may."""
        kind = address_kind(address)
        plain = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        if not kind or any(a in net for net in self.allowed for a in (address, plain) if a):
            return ""
        return f"a {kind} address"

    def check(self, host: str, addresses: Iterable[Address]) -> None:
        """Raise :class:`AddressRefused` naming the host, the address and its kind when any
        of ``host``'s ``addresses`` is not allowed."""
        for address in addresses:
            if why := self.refusal(address):
                shown = host.strip("[]")
                literal = _literal(shown) == address
                said = f"{shown} is {why}" if literal else f"{shown} resolves to {address}, {why}"
                raise AddressRefused(f"refused: {said}, not a public one ({HOW_TO_ALLOW})")

    def addresses(self, host: str, port: int) -> list[Address]:
        """``host``'s addresses, every one checked (raises :class:`AddressRefused`, or
        ``OSError`` when the name does not resolve)."""
        found = resolve(host.strip("[]"), port)
        self.check(host, found)
        return found


class _GuardedBackend(httpcore.SyncBackend):
    """httpcore's socket backend, resolving the host itself: the addresses connected to are
    the ones checked (no second lookup a rebinding DNS server could answer differently)."""

    def __init__(self, rule: AddressRule) -> None:
        self.rule = rule

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self.rule.addresses(host, port)
        except OSError as exc:  # as httpcore reports a name that does not resolve
            raise httpcore.ConnectError(str(exc)) from None
        failure: Exception = httpcore.ConnectError(f"no address for {host}")
        for address in addresses:  # in the resolver's order, as socket.create_connection
            try:
                # Every operation on the connection obeys the fetch's total deadline.
                return DeadlineStream(
                    super().connect_tcp(
                        str(address), port, bounded(timeout), local_address, socket_options
                    )
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport, whose connections are opened by :class:`_GuardedBackend`."""

    def __init__(self, rule: AddressRule) -> None:
        super().__init__()
        # httpx has no parameter for httpcore's network backend: its pool is rebuilt with the
        # same defaults (httpx.HTTPTransport: verified TLS, 100 connections, 20 kept alive).
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(rule),
        )
