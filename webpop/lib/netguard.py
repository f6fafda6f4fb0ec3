"""One guard for every outbound connection to a host named by a user or by mail.

POP3 servers, autoconfig lookups, remote images in mail and outgoing SMTP all
connect to hosts that untrusted input names. Without a guard they would let any
user probe and talk to the machine's own services (Redis, PostgreSQL, the cloud
metadata endpoint at 169.254.169.254, the admin interface of the router). So:

* the host is resolved once, here, and every address it has is checked: one
  non-public address refuses the host (a name with a public and a private
  address is an attack, not a misconfiguration);
* the connection goes to exactly the checked addresses, never to the name, so a
  DNS answer that changes between the check and the connect (DNS rebinding)
  cannot redirect it;
* IPv6 forms that embed an IPv4 address (IPv4-mapped, IPv4-compatible, 6to4,
  Teredo, NAT64) are judged by the IPv4 address they reach.

``allow_private`` switches the address check off (a POP3 server on the LAN, and
the tests, which run their servers on loopback); resolution and the pinned
connection stay the same.

Plain standard library, no Django: ``mailbox.pop3`` uses it outside Django too.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable

Lookup = Callable[[str, int], list[str]]

# NAT64 (RFC 6052): the well-known prefix carries an IPv4 address in its last 32 bits.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Local-use NAT64 prefix (RFC 8215): whatever it reaches is inside some network.
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
# Ranges some Python versions do not yet count as non-global.
_EXTRA_BLOCKED = (
    ipaddress.IPv4Network("100.64.0.0/10"),  # shared address space (carrier-grade NAT)
    ipaddress.IPv4Network("192.0.0.0/24"),  # IETF protocol assignments
    ipaddress.IPv4Network("198.18.0.0/15"),  # benchmarking
    ipaddress.IPv4Network("240.0.0.0/4"),  # reserved, and 255.255.255.255
    ipaddress.IPv6Network("2001:db8::/32"),  # documentation
    ipaddress.IPv6Network("3fff::/20"),  # documentation (RFC 9637)
    ipaddress.IPv6Network("5f00::/16"),  # segment routing SIDs (RFC 9602)
)


class AddressNotAllowed(OSError):
    """The host resolves to an address outbound connections may not reach."""

    def __init__(self, host: str, address: str):
        super().__init__(
            f"{host} resolves to {address}, a private, loopback or reserved address; "
            "connections there are not allowed on this server."
        )
        self.host = host
        self.address = address


class UnresolvableHost(OSError):
    """The host name does not resolve (or is not a valid host name)."""

    def __init__(self, host: str, reason: str):
        super().__init__(f"Host name {host!r} could not be resolved ({reason}).")
        self.host = host
        self.reason = reason


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address; the server part is a relay
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip))  # deprecated IPv4-compatible ::a.b.c.d
    return None


def is_public_address(address: str) -> bool:
    """True when ``address`` (IPv4 or IPv6 text, zone id allowed) is a public unicast address.

    Anything that is not a valid address is not public.
    """
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL:
            return False
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            ip = embedded
        elif ip.is_site_local:
            return False
    if any(ip in network for network in _EXTRA_BLOCKED if network.version == ip.version):
        return False
    return ip.is_global and not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


def system_lookup(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for ``host`` (IPv6 and IPv4, in its order)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise UnresolvableHost(host, exc.strerror or str(exc)) from None
    except (UnicodeError, ValueError):
        raise UnresolvableHost(host, "not a valid host name") from None
    return [info[4][0] for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)]


def resolve(host: str, port: int, *, allow_private: bool, lookup: Lookup | None = None) -> list[str]:
    """Every address of ``host``, each checked; raises if any is not allowed or there is none.

    ``lookup`` replaces the system resolver (autoconfig asks configured name
    servers through dnspython); it returns address strings or raises
    ``UnresolvableHost``.
    """
    addresses = _unique((lookup or system_lookup)(host, port))
    if not addresses:
        raise UnresolvableHost(host, "no addresses")
    if not allow_private:
        for address in addresses:
            if not is_public_address(address):
                raise AddressNotAllowed(host, address)
    return addresses


def connect_first(
    addresses: Iterable[str], port: int, *, timeout: float, source_address: tuple[str, int] | None = None
) -> socket.socket:
    """Connect to the first of ``addresses`` (already checked) that answers; raises the last error."""
    last_error: OSError | None = None
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.settimeout(timeout)
            if source_address is not None:
                sock.bind(source_address)
            sock.connect((address, port))
        except OSError as exc:
            sock.close()
            last_error = exc
            continue
        return sock
    if last_error is None:
        raise OSError("no address to connect to")
    raise last_error


def create_connection(
    host: str,
    port: int,
    *,
    timeout: float,
    allow_private: bool,
    source_address: tuple[str, int] | None = None,
    lookup: Lookup | None = None,
) -> socket.socket:
    """A TCP connection to ``host``, through the address check, pinned to the checked addresses.

    Raises ``UnresolvableHost``, ``AddressNotAllowed`` (nothing was sent) or the
    ``OSError`` of the last address tried (refused, timed out, unreachable).
    """
    addresses = resolve(host, port, allow_private=allow_private, lookup=lookup)
    return connect_first(addresses, port, timeout=timeout, source_address=source_address)


def _unique(addresses: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    result = []
    for address in addresses:
        if address not in seen:
            seen.add(address)
            result.append(address)
    return result
