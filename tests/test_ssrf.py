"""webpop/lib/netguard.py: no outbound connection (POP3, image proxy, autoconfig, SMTP) reaches a private address."""

from __future__ import annotations

import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import Client
from django.urls import reverse

from accounts import autoconfig
from mailbox import imageproxy
from mailbox.pop3 import Pop3Client, Pop3ConnectError, Pop3PrivateAddressError
from tests.dnsserver import DnsServer
from tests.factories import make_account, store_message
from webpop.lib import netguard

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)

NOT_PUBLIC = [
    "127.0.0.1", "127.255.255.254", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "239.255.255.250", "255.255.255.255", "240.0.0.1", "192.0.2.1", "198.18.0.1",
    "::1", "::", "fe80::1", "fe80::1%lo", "fc00::1", "fd12:3456::1", "fec0::1", "ff02::1", "ff0e::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1",
    "2002:7f00:1::1", "2002:a00:1::1", "2001:0:4136:e378:8000:63bf:80ff:fffe", "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe", "64:ff9b:1::1", "2001:db8::1", "not-an-address", "",
]  # fmt: skip
PUBLIC = ["93.184.215.14", "8.8.8.8", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "::ffff:8.8.8.8",
          "2002:808:808::1", "64:ff9b::808:808"]  # fmt: skip


class Listener:
    """A TCP port that only queues connections, so a test can tell whether anything connected."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((host, port))
        self.sock.listen(8)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def connections(self) -> int:
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener():
    port = Listener()
    yield port
    port.close()


def fake_dns(monkeypatch, answers: dict[str, list[list[str]]]) -> list[str]:
    """Replace the system resolver: each name answers its lists in turn (the last one repeats)."""
    asked: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        asked.append(host)
        rounds = answers[host]
        addresses = rounds[min(asked.count(host), len(rounds)) - 1]
        infos = []
        for address in addresses:
            if ":" in address:
                infos.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                infos.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return infos

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


# --- The address check ------------------------------------------------------------------------


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_private_loopback_link_local_multicast_and_reserved_addresses_are_not_public(address):
    assert netguard.is_public_address(address) is False


@pytest.mark.parametrize("address", PUBLIC)
def test_public_unicast_addresses_are_public(address):
    assert netguard.is_public_address(address) is True


def test_a_name_resolving_to_loopback_is_refused_and_not_connected(listener):
    # "localhost" comes from the real system resolver (/etc/hosts), not from a stub.
    with pytest.raises(netguard.AddressNotAllowed, match="private, loopback or reserved"):
        netguard.create_connection("localhost", listener.port, timeout=2, allow_private=False)
    assert listener.connections() == 0


def test_allow_private_connects_to_loopback(listener):
    sock = netguard.create_connection("localhost", listener.port, timeout=2, allow_private=True)
    with sock:
        assert sock.getpeername()[:2] in {("127.0.0.1", listener.port), ("::1", listener.port)}
    assert listener.connections() == 1


def test_a_source_address_is_bound_before_connecting(listener):
    # For an SMTP client that must send from one address of a multi-homed host.
    with netguard.create_connection(
        "127.0.0.1", listener.port, timeout=2, allow_private=True, source_address=("127.0.0.3", 0)
    ) as sock:
        assert sock.getsockname()[0] == "127.0.0.3"


def test_one_private_address_among_public_ones_refuses_the_host(monkeypatch):
    fake_dns(monkeypatch, {"mixed.test": [["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "10.0.0.7"]]})
    with pytest.raises(netguard.AddressNotAllowed) as caught:
        netguard.resolve("mixed.test", 443, allow_private=False)
    assert caught.value.address == "10.0.0.7"


@pytest.mark.parametrize("host", ["no-such-host.invalid", "bad host", "a" * 300 + ".test", "nul\0.test"])
def test_names_that_do_not_resolve_are_unresolvable(host):
    with pytest.raises(netguard.UnresolvableHost):
        netguard.resolve(host, 110, allow_private=True)


def test_dns_is_asked_once_and_the_connection_goes_to_the_checked_address(monkeypatch, listener):
    # DNS rebinding: the name answers a "public" address for the check, then an internal one.
    internal = Listener("127.0.0.2", listener.port)
    try:
        monkeypatch.setattr(netguard, "is_public_address", lambda address: address == "127.0.0.1")
        asked = fake_dns(monkeypatch, {"rebind.test": [["127.0.0.1"], ["127.0.0.2"]]})
        sock = netguard.create_connection("rebind.test", listener.port, timeout=2, allow_private=False)
        with sock:
            assert sock.getpeername() == ("127.0.0.1", listener.port)
        assert asked == ["rebind.test"]
        assert (listener.connections(), internal.connections()) == (1, 0)
    finally:
        internal.close()


def test_the_next_checked_address_is_tried_when_the_first_refuses(monkeypatch, listener):
    closed = Listener()
    closed_port = closed.port
    closed.close()  # nothing listens on this port any more
    fake_dns(monkeypatch, {"two.test": [["::1", "127.0.0.1"]]})
    with pytest.raises(ConnectionRefusedError):
        netguard.create_connection("two.test", closed_port, timeout=2, allow_private=True)
    with netguard.create_connection("two.test", listener.port, timeout=2, allow_private=True) as sock:
        assert sock.getpeername() == ("127.0.0.1", listener.port)


# --- POP3 (accounts, syncs, the account form's test connection) ---------------------------------


@pytest.mark.parametrize(
    "host",
    ["localhost", "127.0.0.1", "::1", "::ffff:127.0.0.1", "169.254.169.254", "0.0.0.0", "100.64.0.1", "224.0.0.1"],
)
def test_pop3_refuses_private_hosts_before_connecting(host, listener):
    client = Pop3Client(host, listener.port, "none", timeout=2, allow_private=False)
    with pytest.raises(Pop3PrivateAddressError) as caught:
        client.connect()
    assert caught.value.error_class == "private_address"
    assert listener.connections() == 0


def test_pop3_unresolvable_host_is_a_dns_error():
    with pytest.raises(Pop3ConnectError) as caught:
        Pop3Client("no-such-host.invalid", 995, allow_private=False).connect()
    assert caught.value.error_class == "dns"


def test_pop3_connects_to_the_checked_address_not_a_rebound_one(monkeypatch, fault_server):
    server = fault_server([b"Subject: hi\r\n\r\nhello\r\n"])
    monkeypatch.setattr(netguard, "is_public_address", lambda address: address == "127.0.0.1")
    asked = fake_dns(monkeypatch, {"pop.rebind.test": [["127.0.0.1"], ["10.0.0.9"]]})
    with Pop3Client("pop.rebind.test", server.port, "none", timeout=5, allow_private=False) as pop:
        assert pop.greeting.startswith("+OK")
    assert asked == ["pop.rebind.test"]
    assert server.sessions == 1


# --- Image proxy -------------------------------------------------------------------------------


class RecordingHTTP:
    """An HTTP server on ``host``: ``routes[path] = (status, headers, body)``; records the paths asked."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, tuple[int, dict, bytes]] = {}
        self.paths: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                owner.paths.append(self.path)
                status, headers, body = owner.routes.get(self.path, (404, {}, b""))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def web():
    """A "public" web server on 127.0.0.1 and an internal one on 127.0.0.2 (only 127.0.0.1 counts as public)."""
    public, internal = RecordingHTTP("127.0.0.1"), RecordingHTTP("127.0.0.2")
    internal.routes["/secret.png"] = (200, {"Content-Type": "image/png"}, PNG)
    yield public, internal
    public.close()
    internal.close()


@pytest.mark.parametrize(
    "target",
    ["http://127.0.0.2:{internal}/secret.png", "http://internal.test:{internal}/secret.png",
     "http://169.254.169.254/latest/meta-data/", "http://[::ffff:127.0.0.2]:{internal}/secret.png",
     "http://0x7f000002:{internal}/secret.png"],
)  # fmt: skip
def test_image_proxy_refuses_a_redirect_to_a_private_address(monkeypatch, web, target):
    public, internal = web
    monkeypatch.setattr(netguard, "is_public_address", lambda address: address == "127.0.0.1")
    fake_dns(monkeypatch, {"internal.test": [["127.0.0.2"]]})
    location = target.format(internal=internal.port)
    public.routes["/pixel.png"] = (302, {"Location": location}, b"")
    with pytest.raises(imageproxy.ProxyError, match="non-public"):
        imageproxy.fetch(f"http://127.0.0.1:{public.port}/pixel.png", allow_private=False)
    assert public.paths == ["/pixel.png"]
    assert internal.paths == []


def test_image_proxy_fetches_from_the_checked_address_only(monkeypatch, web):
    public, internal = web
    public.routes["/a.png"] = (200, {"Content-Type": "image/png"}, PNG)
    monkeypatch.setattr(netguard, "is_public_address", lambda address: address == "127.0.0.1")
    asked = fake_dns(monkeypatch, {"cdn.rebind.test": [["127.0.0.1"], ["127.0.0.2"]]})
    image = imageproxy.fetch(f"http://cdn.rebind.test:{public.port}/a.png", allow_private=False)
    assert image.data == PNG
    assert asked == ["cdn.rebind.test"]
    assert internal.paths == []


@pytest.mark.django_db
def test_proxy_url_answers_502_when_the_image_redirects_inside(monkeypatch, web, alice, alice_client, settings):
    public, internal = web
    settings.WEBPOP_IMAGE_PROXY_ALLOW_PRIVATE = False
    monkeypatch.setattr(netguard, "is_public_address", lambda address: address == "127.0.0.1")
    public.routes["/track.png"] = (302, {"Location": f"http://127.0.0.2:{internal.port}/secret.png"}, b"")
    raw = (
        "From: News <news@shop.example>\r\nTo: alice@example.org\r\nSubject: Deals\r\n"
        "Message-ID: <ssrf@shop.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f'<p>Sale</p><img src="http://127.0.0.1:{public.port}/track.png" alt="">\r\n'
    ).encode()
    message = store_message(make_account(alice), raw, "ssrf-1")
    body = alice_client.get(reverse("mailbox:message_body", args=[message.id]), {"images": "1"}).content.decode()
    [url] = re.findall(r'src="(/message/\d+/asset/[^"]+/remote/0/)"', body)
    assert Client().get(url).status_code == 502
    assert public.paths == ["/track.png"]
    assert internal.paths == []


# --- Autoconfig --------------------------------------------------------------------------------


@pytest.fixture
def dns(settings):
    records = {
        ("loopback.test", "A"): ["127.0.0.1"],
        ("loopback6.test", "AAAA"): ["::1"],
        ("metadata.test", "A"): ["169.254.169.254"],
        ("mixed.test", "A"): ["93.184.215.14", "10.0.0.1"],
        ("public.test", "A"): ["93.184.215.14"],
    }
    with DnsServer(records) as server:
        settings.WEBPOP_DNS_NAMESERVERS = [server.address]
        yield server


@pytest.mark.parametrize("host", ["loopback.test", "loopback6.test", "metadata.test", "mixed.test"])
def test_autoconfig_refuses_names_resolving_to_private_addresses(dns, settings, host):
    settings.WEBPOP_POP3_ALLOW_PRIVATE = False
    assert autoconfig.resolve_public(host, 443) == []
    assert (host + ".", "A") in dns.queries  # the configured name server was asked, not the system's


def test_autoconfig_takes_public_names_from_the_configured_name_server(dns, settings):
    settings.WEBPOP_POP3_ALLOW_PRIVATE = False
    assert autoconfig.resolve_public("public.test", 443) == ["93.184.215.14"]
    settings.WEBPOP_POP3_ALLOW_PRIVATE = True
    assert autoconfig.resolve_public("loopback.test", 443) == ["127.0.0.1"]


def test_autoconfig_fetch_never_connects_to_a_private_address(dns, settings, listener, monkeypatch):
    settings.WEBPOP_POP3_ALLOW_PRIVATE = False
    monkeypatch.setattr(autoconfig, "HTTPS_PORT", listener.port)
    assert autoconfig.fetch("loopback.test", "/mail/config-v1.1.xml") is None
    assert listener.connections() == 0
