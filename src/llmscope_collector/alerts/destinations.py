"""Where alert notifications may be sent: public addresses only, unless the operator allows more.

A project key writes the URL of its webhook or Slack channel. Without this check that key could
point the collector at `http://127.0.0.1:8000/...` or a cloud metadata address and read the
answers back from the dead letters: a port scanner inside the operator's network. So a URL whose
host is (or resolves to) a loopback, private, link-local, multicast, reserved or otherwise
non-global address is refused, unless `LLMSCOPE_ALERTS_ALLOW_DESTINATIONS` lists that host name
or a network holding the address.

The check runs twice: when a rule is saved (a 400 that says what to do) and at each delivery,
where the name is resolved once and the connection goes to the address that passed the check
(`PinnedAddress`), so a DNS answer that changes between check and connect (rebinding) cannot
redirect the request.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
import urllib.parse
from collections.abc import Callable, Sequence

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]
"""host, port → the addresses to try, in order (the system resolver unless a test gives its own)."""

ALLOW_SETTING = "LLMSCOPE_ALERTS_ALLOW_DESTINATIONS"


class DestinationRefused(ValueError):
    """The URL points somewhere notifications may not go; the message is for the operator."""


class UnresolvedDestination(OSError):
    """The host name has no address now (DNS down or a typo): retryable at delivery."""


@dataclasses.dataclass(frozen=True)
class PinnedAddress:
    """A checked destination: connect to `address`, but speak to `host` (Host header, TLS SNI)."""

    scheme: str
    host: str
    port: int
    address: str
    target: str  # path and query, as sent on the request line


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvedDestination(f"cannot resolve {host}: {exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def parse_allow_list(text: str) -> tuple[frozenset[str], tuple[IpNetwork, ...]]:
    """`"hooks.internal, 10.0.0.0/8, 127.0.0.1"` → host names and networks; raises ValueError naming a bad entry."""
    hosts: set[str] = set()
    networks: list[IpNetwork] = []
    for raw in text.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if "/" in entry or _is_ip(entry):
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(f"{entry!r} is not an address or a network (CIDR) in {ALLOW_SETTING}") from None
        elif _looks_like_host(entry):
            hosts.add(entry.rstrip("."))
        else:
            raise ValueError(f"{entry!r} is not a host name, an address or a network (CIDR) in {ALLOW_SETTING}")
    return frozenset(hosts), tuple(networks)


@dataclasses.dataclass(frozen=True)
class DestinationPolicy:
    """Public destinations always; non-global ones only when their host or a network is allowed."""

    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[IpNetwork, ...] = ()
    resolve: Resolver = system_resolver

    @classmethod
    def from_allow_list(cls, text: str, resolve: Resolver = system_resolver) -> DestinationPolicy:
        hosts, networks = parse_allow_list(text)
        return cls(hosts, networks, resolve)

    def check_url(self, url: str) -> None:
        """At rule creation: refuse a URL that is certainly not allowed. A name that does not resolve
        now is accepted (delivery checks again and retries); a name resolving anywhere forbidden is not."""
        try:
            self.pin(url)
        except UnresolvedDestination:
            return

    def pin(self, url: str) -> PinnedAddress:
        """Resolve once and return the first allowed address; `DestinationRefused` when there is none."""
        parts = urllib.parse.urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        if parts.scheme not in ("http", "https") or not host:
            raise DestinationRefused("the URL must be http:// or https:// with a host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise DestinationRefused("the URL's port is not a number from 1 to 65535") from None
        target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        addresses = [host] if _is_ip(host) else list(self.resolve(host, port))
        if not addresses:
            raise UnresolvedDestination(f"{host} has no address")
        for address in addresses:
            if self.allows(host, _ip(address)):
                return PinnedAddress(parts.scheme, host, port, address, target)
        raise DestinationRefused(
            f"{host} is (or resolves to) a loopback, private, link-local or otherwise non-public address; "
            f"the operator can allow it with {ALLOW_SETTING}"
        )

    def allows(self, host: str, address: IpAddress) -> bool:
        if host.lower() in self.allowed_hosts or any(address in net for net in self.allowed_networks):
            return True
        return address.is_global and not address.is_multicast


def _ip(text: str) -> IpAddress:
    address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return address


def _is_ip(text: str) -> bool:
    try:
        _ip(text)
    except ValueError:
        return False
    return True


def _looks_like_host(text: str) -> bool:
    labels = text.rstrip(".").split(".")
    return all(0 < len(label) <= 63 and label.replace("-", "").replace("_", "").isalnum() for label in labels)
