"""Finding a domain's POP3 settings: presets, SRV records, autoconfig XML, behind the address guard."""

from __future__ import annotations

import http.server
import ssl
import threading

import pytest
from django.urls import reverse

from accounts import autoconfig
from tests.dnsserver import DnsServer
from tests.tlsutil import make_pki

AUTOCONFIG_XML = b"""<?xml version="1.0"?>
<clientConfig version="1.1">
  <emailProvider id="example.test">
    <domain>example.test</domain>
    <displayName>Example Mail</displayName>
    <incomingServer type="imap"><hostname>imap.example.test</hostname><port>993</port>
      <socketType>SSL</socketType><username>%EMAILADDRESS%</username></incomingServer>
    <incomingServer type="pop3"><hostname>pop.example.test</hostname><port>995</port>
      <socketType>SSL</socketType><username>%EMAILLOCALPART%</username></incomingServer>
    <incomingServer type="pop3"><hostname>plain.example.test</hostname><port>110</port>
      <socketType>plain</socketType><username>%EMAILADDRESS%</username></incomingServer>
  </emailProvider>
</clientConfig>"""


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.paths.append(self.path)
        if self.path.startswith("/mail/config-v1.1.xml"):
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.end_headers()
            self.wfile.write(self.server.body)
        else:
            self.send_error(404)

    def log_message(self, *args):
        pass


@pytest.fixture
def https_server(tmp_path, settings, monkeypatch):
    ca, cert, key = make_pki(tmp_path / "pki", ["autoconfig.example.test", "example.test"])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.paths, server.body = [], AUTOCONFIG_XML
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.WEBPOP_POP3_CA_FILE = str(ca)
    monkeypatch.setattr(autoconfig, "HTTPS_PORT", server.server_address[1])
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def dns(settings):
    records = {
        ("autoconfig.example.test", "A"): ["127.0.0.1"],
        ("example.test", "A"): ["127.0.0.1"],
        ("_pop3s._tcp.srv.test", "SRV"): ["10 0 995 pop3s.srv.test.", "5 0 9995 backup.srv.test."],
        ("_pop3._tcp.srv.test", "SRV"): ["0 0 110 pop.srv.test."],
        ("_pop3s._tcp.none.test", "SRV"): ["0 0 0 ."],
        ("evil.test", "A"): ["10.0.0.8"],
        ("autoconfig.evil.test", "A"): ["192.168.1.1"],
    }
    with DnsServer(records) as server:
        settings.WEBPOP_DNS_NAMESERVERS = [server.address]
        yield server


def test_known_provider_comes_from_the_presets(settings):
    settings.WEBPOP_DNS_NAMESERVERS = ["127.0.0.1:9"]  # no lookups happen
    (best,) = autoconfig.suggest("someone@gmail.com")
    assert (best.host, best.port, best.security, best.username, best.source) == (
        "pop.gmail.com", 995, "ssl", "someone@gmail.com", "preset",
    )  # fmt: skip
    assert "app password" in best.notes


def test_srv_records_prefer_implicit_tls_then_priority(dns):
    suggestions = autoconfig.suggest("me@srv.test")
    assert [(s.host, s.port, s.security, s.source) for s in suggestions] == [
        ("backup.srv.test", 9995, "ssl", "srv"),
        ("pop3s.srv.test", 995, "ssl", "srv"),
        ("pop.srv.test", 110, "starttls", "srv"),
    ]


def test_autoconfig_xml_is_fetched_over_verified_https(dns, https_server, settings):
    settings.WEBPOP_POP3_ALLOW_PRIVATE = True  # the test server is on loopback
    suggestions = autoconfig.suggest("jane@example.test")
    assert [(s.host, s.port, s.security, s.username, s.source) for s in suggestions] == [
        ("pop.example.test", 995, "ssl", "jane", "autoconfig")
    ]  # the clear-text entry is never suggested
    assert https_server.paths == ["/mail/config-v1.1.xml?emailaddress=jane%40example.test"]


def test_autoconfig_on_private_addresses_is_not_contacted(dns, https_server, settings):
    settings.WEBPOP_POP3_ALLOW_PRIVATE = False
    suggestions = autoconfig.suggest("jane@example.test")
    assert [s.source for s in suggestions] == ["guess"]
    assert https_server.paths == []


def test_untrusted_certificate_is_not_believed(dns, https_server, settings):
    settings.WEBPOP_POP3_ALLOW_PRIVATE = True
    settings.WEBPOP_POP3_CA_FILE = None
    assert [s.source for s in autoconfig.suggest("jane@example.test")] == ["guess"]


def test_entities_in_autoconfig_are_refused():
    evil = b'<!DOCTYPE x [<!ENTITY a "aaaa">]><clientConfig>&a;</clientConfig>'
    assert autoconfig.parse_autoconfig(evil, "a@b.test") == []


def test_unknown_domain_gets_a_labelled_guess(dns):
    (guess,) = autoconfig.suggest("x@nowhere.test")
    assert (guess.host, guess.source) == ("pop.nowhere.test", "guess")


@pytest.mark.parametrize("address", ["", "no-at-sign", "a@", "a@-bad-.test", "a@exa mple.test"])
def test_malformed_addresses_get_nothing(address):
    assert autoconfig.suggest(address) == []


@pytest.mark.django_db
def test_suggest_endpoint_needs_login_and_returns_json(alice_client, client, settings):
    settings.WEBPOP_DNS_NAMESERVERS = ["127.0.0.1:9"]
    url = reverse("accounts:suggest") + "?address=me@fastmail.com"
    assert client.get(url).status_code == 302
    data = alice_client.get(url).json()
    assert data["suggestions"][0]["host"] == "pop.fastmail.com"
