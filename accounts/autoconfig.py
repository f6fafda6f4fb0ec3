"""Find a mail domain's POP3 (and SMTP) settings: presets, RFC 6186 SRV records, autoconfig XML.

Everything here talks to hosts named by untrusted input (the part after "@"),
so every connection goes through the same guard as POP3 (``webpop.lib.netguard``):
resolve, refuse private and reserved addresses unless allowed, connect to the
checked address, verify TLS, bound the time and the size of what is read.
"""

from __future__ import annotations

import http.client
import logging
import re
import ssl
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from urllib.parse import quote

import dns.exception
import dns.resolver
from django.conf import settings
from django.utils.translation import gettext

from webpop.lib import netguard
from webpop.lib.tls import make_tls_context

from . import presets

log = logging.getLogger(__name__)

MAX_XML_BYTES = 64 * 1024
TIMEOUT = 5.0
HTTPS_PORT = 443  # a module constant so tests can serve autoconfig on a free port
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$")


@dataclass(frozen=True)
class Suggestion:
    host: str
    port: int
    security: str
    username: str
    source: str  # "preset", "srv", "autoconfig", "guess"
    notes: str = ""
    name: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def domain_of(address: str) -> str | None:
    domain = address.rpartition("@")[2].strip().lower().rstrip(".")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    return domain if _DOMAIN.match(domain) else None


def suggest(address: str) -> list[Suggestion]:
    """Best first. Always returns at least a guess for a well-formed address."""
    address = address.strip()
    domain = domain_of(address)
    if "@" not in address or domain is None:
        return []
    preset = presets.for_address(address)
    if preset is not None:
        return [
            Suggestion(
                preset.host,
                preset.port,
                preset.security,
                preset.username_for(address),
                "preset",
                gettext(preset.notes) if preset.notes else "",
                preset.name,
            )
        ]
    found = srv_records(domain, address) + autoconfig_xml(domain, address)
    seen = set()
    unique = []
    for suggestion in found:
        key = (suggestion.host, suggestion.port, suggestion.security)
        if key not in seen:
            seen.add(key)
            unique.append(suggestion)
    if not unique:
        unique.append(
            Suggestion(f"pop.{domain}", 995, "ssl", address, "guess", "A guess: check it with your provider.")
        )
    return unique


# --- DNS ------------------------------------------------------------------------------


def _resolver() -> dns.resolver.Resolver:
    servers = settings.WEBPOP_DNS_NAMESERVERS
    resolver = dns.resolver.Resolver(configure=not servers)
    if servers:
        resolver.nameservers = [s.rsplit(":", 1)[0] if s.count(":") == 1 else s for s in servers]
        ports = {s.rsplit(":", 1)[1] for s in servers if s.count(":") == 1}
        if ports:
            resolver.port = int(ports.pop())
    resolver.lifetime = TIMEOUT
    resolver.timeout = TIMEOUT
    return resolver


POP3_SERVICES = (("_pop3s._tcp", "ssl"), ("_pop3._tcp", "starttls"))
# RFC 8314 names implicit TLS submission (465) "submissions"; RFC 6186 the STARTTLS one (587).
SMTP_SERVICES = (("_submissions._tcp", "ssl"), ("_submission._tcp", "starttls"))


def srv_records(domain: str, address: str, services: tuple = POP3_SERVICES) -> list[Suggestion]:
    """RFC 6186: implicit TLS (``_pop3s._tcp``) before STARTTLS (``_pop3._tcp``), then by priority."""
    found: list[tuple[int, int, Suggestion]] = []
    resolver = _resolver()
    for service, security in services:
        try:
            answer = resolver.resolve(f"{service}.{domain}", "SRV")
        except (dns.exception.DNSException, OSError):
            continue
        for record in answer:
            target = str(record.target).rstrip(".").lower()
            if target in {"", "."}:  # "service not available here" (RFC 2782)
                continue
            suggestion = Suggestion(target, int(record.port), security, address, "srv", name=domain)
            found.append((0 if security == "ssl" else 1, record.priority, suggestion))
    found.sort(key=lambda item: (item[0], item[1]))
    return [suggestion for _, _, suggestion in found]


def _nameserver_lookup(host: str, port: int) -> list[str]:
    """A and AAAA records from the configured name servers (WEBPOP_DNS_NAMESERVERS)."""
    addresses = []
    resolver = _resolver()
    for rdtype in ("A", "AAAA"):
        try:
            addresses += [str(r) for r in resolver.resolve(host, rdtype)]
        except (dns.exception.DNSException, OSError):
            continue
    return addresses


def resolve_public(host: str, port: int) -> list[str]:
    """Addresses of ``host`` that may be contacted (all must pass, or none are used)."""
    lookup = _nameserver_lookup if settings.WEBPOP_DNS_NAMESERVERS else None
    try:
        return netguard.resolve(host, port, allow_private=settings.WEBPOP_POP3_ALLOW_PRIVATE, lookup=lookup)
    except netguard.AddressNotAllowed:
        log.warning("autoconfig refused host=%s: private address", host)
    except netguard.UnresolvableHost:
        pass
    return []


# --- Autoconfig XML ---------------------------------------------------------------------


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to an address checked beforehand, verifying TLS for the host name."""

    def __init__(self, host: str, address: str, context: ssl.SSLContext):
        super().__init__(host, HTTPS_PORT, timeout=TIMEOUT, context=context)
        self._address = address

    def connect(self) -> None:
        sock = netguard.connect_first([self._address], self.port, timeout=self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def fetch(host: str, path: str) -> bytes | None:
    """GET https://host/path through the address guard; None on any failure or redirect."""
    addresses = resolve_public(host, HTTPS_PORT)
    context = make_tls_context(settings.WEBPOP_POP3_CA_FILE)
    for address in addresses:
        connection = _PinnedHTTPSConnection(host, address, context)
        try:
            connection.request("GET", path, headers={"Accept": "application/xml", "User-Agent": "webpop"})
            response = connection.getresponse()
            if response.status != 200:
                return None
            body = response.read(MAX_XML_BYTES + 1)
            return body if len(body) <= MAX_XML_BYTES else None
        except (OSError, ssl.SSLError, http.client.HTTPException):
            continue
        finally:
            connection.close()
    return None


def autoconfig_xml(domain: str, address: str, protocol: str = "pop3") -> list[Suggestion]:
    """Thunderbird-style autoconfig published by the mail domain itself."""
    query = f"?emailaddress={quote(address)}"
    for host, path in (
        (f"autoconfig.{domain}", f"/mail/config-v1.1.xml{query}"),
        (domain, f"/.well-known/autoconfig/mail/config-v1.1.xml{query}"),
    ):
        body = fetch(host, path)
        if body:
            found = parse_autoconfig(body, address, protocol)
            if found:
                return found
    return []


def parse_autoconfig(body: bytes, address: str, protocol: str = "pop3") -> list[Suggestion]:
    """The servers of ``protocol`` ("pop3": incomingServer, "smtp": outgoingServer) a file names."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        return []  # no DTDs: no entity tricks
    try:
        root = ET.fromstring(body)  # noqa: S314 (DTDs refused above)
    except ET.ParseError:
        return []
    local, _, domain = address.partition("@")
    element = "outgoingServer" if protocol == "smtp" else "incomingServer"
    found = []
    for provider in root.iter("emailProvider"):
        name = (provider.findtext("displayName") or "").strip()
        for server in provider.iter(element):
            if server.get("type") != protocol:
                continue
            host = (server.findtext("hostname") or "").strip().lower()
            socket_type = (server.findtext("socketType") or "").strip().upper()
            security = {"SSL": "ssl", "STARTTLS": "starttls"}.get(socket_type)
            try:
                port = int(server.findtext("port") or 0)
            except ValueError:
                continue
            if not host or security is None or not 0 < port < 65536:
                continue  # never suggest clear text from a file fetched from the network
            username = (server.findtext("username") or "%EMAILADDRESS%").strip()
            username = username.replace("%EMAILADDRESS%", address).replace("%EMAILLOCALPART%", local)
            username = username.replace("%EMAILDOMAIN%", domain)
            found.append(Suggestion(host, port, security, username, "autoconfig", name=name))
    return found


def suggest_smtp(address: str) -> list[Suggestion]:
    """The SMTP servers a domain publishes (SRV, then autoconfig), best first; empty when it publishes none.

    No preset and no guess here: the caller has both (outgoing.presets) and asks only when they are not enough.
    """
    domain = domain_of(address)
    if "@" not in address or domain is None:
        return []
    found = srv_records(domain, address, SMTP_SERVICES) + autoconfig_xml(domain, address, "smtp")
    unique: dict[tuple, Suggestion] = {}
    for suggestion in found:
        unique.setdefault((suggestion.host, suggestion.port, suggestion.security), suggestion)
    return list(unique.values())
