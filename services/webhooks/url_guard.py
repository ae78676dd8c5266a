"""Which URLs the server may send webhooks to (an SSRF guard).

A webhook makes this server open a connection that a client chose, so a
subscriber URL must not reach the machine itself, the local network or a
cloud metadata service. The guard:

- accepts only ``http``/``https`` URLs without credentials or odd characters;
- reads the host the way a resolver would, so every spelling of an address
  (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``,
  ``[::ffff:127.0.0.1]``, ``localhost.``) is the address it means;
- resolves the host and refuses it unless *every* address is public, since a
  resolver may hand out any of them;
- returns the addresses it checked, so the caller connects to exactly those
  (a DNS answer that changes between check and connect cannot slip through).

An allow-list from the configuration names hosts, addresses or networks that
are permitted anyway (a receiver on the local network; tests on loopback).
Cloud metadata addresses are refused even then.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 2048

# Instance metadata services (AWS, GCP, Azure, OpenStack; AWS over IPv6;
# Alibaba Cloud). They hand out credentials, so no allow-list entry opens them.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)

# Shared address space for carrier-grade NAT: not global, yet Python's
# ``is_private`` says False for it, so it is named here.
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x20\x7f\\]")


class UrlRefusedError(Exception):
    """The URL may not be used as a webhook target; the message says why."""


@dataclass(frozen=True)
class WebhookTarget:
    """A checked URL and the addresses its host may be reached at."""

    url: str
    scheme: str
    host: str  # normalized: lowercase, no trailing dot, IPv6 without brackets
    port: int
    path: str  # path plus query, never empty
    addresses: tuple[IPAddress, ...]

    @property
    def host_header(self) -> str:
        """The ``Host`` header the receiver expects (port only when not the default)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse_ipv4_loose(host: str) -> ipaddress.IPv4Address | None:
    """Read ``host`` as IPv4 the way ``inet_aton`` does, or None if it is a name.

    One to four dot-separated numbers in decimal, octal (leading 0) or hex
    (``0x``); the last number fills the remaining bytes. Raises
    :class:`UrlRefusedError` for numeric hosts that are not valid addresses
    (``1.2.3.4.5``, ``256.1``), which resolvers treat inconsistently.
    """
    labels = host.split(".")
    if not labels or not all(_NUMERIC_LABEL.match(label) for label in labels):
        return None
    if len(labels) > 4:
        raise UrlRefusedError("the host looks like an IP address but is not a valid one")
    numbers: list[int] = []
    for label in labels:
        lowered = label.lower()
        try:
            if lowered.startswith("0x"):
                numbers.append(int(lowered[2:] or "0", 16))
            elif len(lowered) > 1 and lowered.startswith("0"):
                numbers.append(int(lowered, 8))
            else:
                numbers.append(int(lowered, 10))
        except ValueError:
            raise UrlRefusedError(
                "the host looks like an IP address but is not a valid one"
            ) from None
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (4 - len(leading)):
        raise UrlRefusedError("the host looks like an IP address but is not a valid one")
    value = 0
    for n in leading:
        value = value * 256 + n
    value = value * 256 ** (4 - len(leading)) + last
    return ipaddress.IPv4Address(value)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses that an IPv6 address carries (6to4, Teredo, NAT64)."""
    found: list[ipaddress.IPv4Address] = []
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if any(address in net for net in _NAT64):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def address_refusal(address: IPAddress) -> str | None:
    """Why ``address`` is not a public unicast address, or None if it is."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address"
        if int(address) >> 32 == 0 and int(address) > 1:
            return "an IPv4-compatible IPv6 address"
        for inner in _embedded_ipv4(address):
            reason = address_refusal(inner)
            if reason is not None:
                return f"an IPv6 address embedding {reason}"
    checks = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT, "a CGNAT address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "not a global address"),
    )
    for refused, reason in checks:
        if refused:
            return reason
    return None


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return parse_ipv4_loose(host)


class UrlGuard:
    """Checks webhook URLs against the address rules and the configured allow-list."""

    def __init__(self, allow_hosts: Iterable[str] = (), resolve_timeout: float = 5.0) -> None:
        self._hosts: set[str] = set()
        self._networks: list[IPNetwork] = []
        self._resolve_timeout = resolve_timeout
        for entry in allow_hosts:
            text = entry.strip().lower().rstrip(".")
            if not text:
                continue
            try:
                self._networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
            except ValueError:
                self._hosts.add(text)

    def parse(self, url: str) -> SplitResult:
        """Check the URL's form (scheme, host, port, characters); no network access."""
        if len(url) > MAX_URL_LENGTH:
            raise UrlRefusedError(f"the URL is longer than {MAX_URL_LENGTH} characters")
        if _FORBIDDEN_CHARS.search(url):
            raise UrlRefusedError("the URL contains whitespace, control characters or backslashes")
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018  (raises ValueError for a port out of range)
        except ValueError as exc:
            raise UrlRefusedError(f"the URL is not valid: {exc}") from None
        if parts.scheme not in ("http", "https"):
            raise UrlRefusedError("only http and https URLs are allowed")
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            raise UrlRefusedError("credentials in the URL are not allowed; use the secret")
        if not parts.hostname:
            raise UrlRefusedError("the URL has no host")
        return parts

    def _normalized_host(self, parts: SplitResult) -> str:
        host = (parts.hostname or "").lower()
        if host.endswith("."):
            host = host[:-1]
        if not host or host.endswith("."):
            raise UrlRefusedError("the URL's host is not valid")
        try:
            host.encode("ascii")
        except UnicodeEncodeError:
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                raise UrlRefusedError("the URL's host is not a valid domain name") from None
        return host

    def _allowed_by_list(self, address: IPAddress) -> bool:
        return any(address in net for net in self._networks)

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._resolve_timeout):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError:
            raise UrlRefusedError("the URL's host did not resolve in time") from None
        except OSError:
            raise UrlRefusedError("the URL's host does not resolve") from None
        except UnicodeError:
            # The IDNA codec refuses the name (an empty or 64-character label,
            # a character that maps to a dot): no DNS name can be made of it.
            raise UrlRefusedError("the URL's host is not a valid host name") from None
        addresses: list[IPAddress] = []
        for info in infos:
            # Scope ids (fe80::1%eth0) are dropped: such addresses are refused anyway.
            text = str(info[4][0]).split("%", 1)[0]
            address = ipaddress.ip_address(text)
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise UrlRefusedError("the URL's host does not resolve")
        return addresses

    async def check(self, url: str) -> WebhookTarget:
        """Parse, resolve and check ``url``; raises :class:`UrlRefusedError` with the reason.

        Called at registration and again before every delivery attempt,
        because what a name resolves to can change.
        """
        parts = self.parse(url)
        host = self._normalized_host(parts)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        literal = _ip_literal(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
            host = str(literal)
        else:
            addresses = await self._resolve(host, port)
        named = literal is None and host in self._hosts
        for address in addresses:
            reason = address_refusal(address)
            if reason is None:
                continue
            if address in METADATA_ADDRESSES:
                raise UrlRefusedError(f"the URL's host is {reason}")
            if named or self._allowed_by_list(address):
                continue
            shown = "" if literal is not None else f" ({address})"
            raise UrlRefusedError(
                f"the URL's host is {reason}{shown}; "
                "add it to webhooks.allow_hosts in the server configuration to permit it"
            )
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        return WebhookTarget(
            url=url,
            scheme=parts.scheme,
            host=host,
            port=port,
            path=path,
            addresses=tuple(addresses),
        )
