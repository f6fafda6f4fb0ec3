"""Outbound connections to hosts users name (mail servers): resolve, check, connect to the checked address.

A user-supplied host must not reach the machine's own network (SSRF): every
address a name resolves to is checked, and the socket connects to exactly the
checked address, so a DNS answer that changes between check and connect
cannot redirect it.
"""

from __future__ import annotations

import socket

from mailbox.pop3 import is_public_address


class AddressNotAllowed(OSError):
    """The host resolves to a private, loopback, link-local, multicast or reserved address."""


class UnresolvableHost(OSError):
    """The host name has no addresses (or is not a valid name)."""


def resolve(host: str, port: int, *, allow_private: bool) -> list[tuple]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise UnresolvableHost(f"Host name {host!r} could not be resolved ({exc.strerror}).") from None
    except UnicodeError:
        raise UnresolvableHost(f"Host name {host!r} is not a valid host name.") from None
    if not infos:
        raise UnresolvableHost(f"Host name {host!r} has no addresses.")
    if not allow_private:
        for info in infos:
            address = info[4][0]
            if not is_public_address(address):
                raise AddressNotAllowed(
                    f"{host} resolves to {address}, a private, loopback or reserved address; "
                    "connections there are not allowed on this server."
                )
    return infos


def create_connection(host: str, port: int, *, timeout: float, allow_private: bool) -> socket.socket:
    """A connected TCP socket to ``host``, whose every address was checked first."""
    last_error: OSError | None = None
    for family, socktype, proto, _canon, sockaddr in resolve(host, port, allow_private=allow_private):
        sock = socket.socket(family, socktype, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            last_error = exc
            sock.close()
    assert last_error is not None
    raise last_error
