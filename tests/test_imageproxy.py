"""mailbox/imageproxy.py and the proxy URL: no cookies or Referer, no private targets, limits, signed URLs."""

from __future__ import annotations

import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse

from mailbox import imageproxy
from mailbox.imageproxy import ProxyError
from tests.factories import make_account, store_message
from webpop.lib import netguard

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)
GIF = bytes.fromhex("47494638396101000100800000ffffff00000021f90401000000002c00000000010001000002024401003b")


class ImageServer:
    """A tiny HTTP server on loopback: ``routes[path] = (status, headers, body, delay)``; records requests."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict, bytes, float]] = {}
        self.requests: list[tuple[str, dict]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                status, headers, body, delay = server.routes.get(self.path, (404, {}, b"", 0))
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if "Content-Length" not in headers and "Transfer-Encoding" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    if headers.get("Transfer-Encoding") == "chunked":
                        for start in range(0, len(body), 8192):
                            chunk = body[start : start + 8192]
                            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                        self.wfile.write(b"0\r\n\r\n")
                    else:
                        self.wfile.write(body)
                except OSError:  # the proxy hung up (limits): expected
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = ImageServer()
    srv.routes["/a.png"] = (200, {"Content-Type": "image/png"}, PNG, 0)
    yield srv
    srv.close()


def test_fetches_an_image_without_cookie_referer_or_client_details(server):
    image = imageproxy.fetch(server.url("/a.png"), allow_private=True)
    assert (image.content_type, image.data) == ("image/png", PNG)
    [(path, headers)] = server.requests
    assert path == "/a.png"
    assert "cookie" not in headers and "referer" not in headers and "x-forwarded-for" not in headers
    assert headers["user-agent"] == imageproxy.USER_AGENT


def test_the_type_comes_from_the_bytes(server):
    server.routes["/gif"] = (200, {"Content-Type": "text/plain"}, GIF, 0)
    assert imageproxy.fetch(server.url("/gif"), allow_private=True).content_type == "image/gif"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("image/png", b"<html><script>alert(1)</script></html>"),
        ("image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
        ("text/html", b"<p>hi</p>"),
        ("image/png", b""),
    ],
)
def test_only_raster_images_pass(server, content_type, body):
    server.routes["/x"] = (200, {"Content-Type": content_type}, body, 0)
    with pytest.raises(ProxyError):
        imageproxy.fetch(server.url("/x"), allow_private=True)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_is_refused_after_resolution_and_nothing_is_sent(server, host):
    with pytest.raises(ProxyError, match="non-public"):
        imageproxy.fetch(server.url("/a.png", host), allow_private=False)
    assert server.requests == []


@pytest.mark.parametrize(
    "address",
    ["10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1",
     "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::"],
)  # fmt: skip
def test_names_resolving_to_private_addresses_are_refused(monkeypatch, address):
    family = socket.AF_INET6 if ":" in address else socket.AF_INET

    def fake_getaddrinfo(host, port, *args, **kwargs):
        assert host == "images.example"
        sockaddr = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
        return [(family, socket.SOCK_STREAM, 6, "", sockaddr)]

    def no_connect(*args, **kwargs):
        raise AssertionError("connected to a refused address")

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    monkeypatch.setattr(netguard, "connect_first", no_connect)
    with pytest.raises(ProxyError, match="non-public"):
        imageproxy.fetch("https://images.example/a.png", allow_private=False)


def test_a_name_with_any_private_address_is_refused(monkeypatch):
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *a, **k: [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
        ],
    )
    with pytest.raises(ProxyError):
        imageproxy.fetch("http://mixed.example/a.png", allow_private=False)


def test_public_addresses_are_public():
    for address in ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "8.8.8.8"]:
        assert netguard.is_public_address(address)


def test_redirects_are_checked_hop_by_hop(server, monkeypatch):
    # 127.0.0.1 plays a public host here; 127.0.0.2 stays what it is.
    monkeypatch.setattr(netguard, "is_public_address", lambda address: address == "127.0.0.1")
    server.routes["/to-private"] = (302, {"Location": f"http://127.0.0.2:{server.port}/a.png"}, b"", 0)
    server.routes["/to-public"] = (301, {"Location": "/a.png"}, b"", 0)
    with pytest.raises(ProxyError, match="non-public"):
        imageproxy.fetch(server.url("/to-private"), allow_private=False)
    assert imageproxy.fetch(server.url("/to-public"), allow_private=False).data == PNG
    assert [path for path, _ in server.requests] == ["/to-private", "/to-public", "/a.png"]


def test_redirect_loops_end(server):
    server.routes["/loop"] = (302, {"Location": "/loop"}, b"", 0)
    with pytest.raises(ProxyError, match="redirects"):
        imageproxy.fetch(server.url("/loop"), allow_private=True)
    assert len(server.requests) == imageproxy.MAX_REDIRECTS + 1


def test_size_limit_by_header_and_by_stream(server):
    big = PNG + b"\0" * 5000
    server.routes["/big"] = (200, {"Content-Type": "image/png"}, big, 0)
    server.routes["/big-chunked"] = (200, {"Content-Type": "image/png", "Transfer-Encoding": "chunked"}, big * 4, 0)
    with pytest.raises(ProxyError, match="limit"):
        imageproxy.fetch(server.url("/big"), allow_private=True, max_bytes=4096)
    with pytest.raises(ProxyError, match="over"):
        imageproxy.fetch(server.url("/big-chunked"), allow_private=True, max_bytes=4096)


def test_slow_servers_time_out(server):
    server.routes["/slow"] = (200, {"Content-Type": "image/png"}, PNG, 3)
    start = time.monotonic()
    with pytest.raises(ProxyError):
        imageproxy.fetch(server.url("/slow"), allow_private=True, timeout=1)
    assert time.monotonic() - start < 2.5


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/a.png", "file:///etc/passwd", "http://user:pw@example.com/a.png", "http:///a.png",
     "http://example.com:99999/a.png", "javascript:alert(1)"],
)  # fmt: skip
def test_bad_urls_are_refused(url):
    with pytest.raises(ProxyError):
        imageproxy.fetch(url, allow_private=True)


def test_http_errors_are_errors(server):
    with pytest.raises(ProxyError, match="404"):
        imageproxy.fetch(server.url("/missing.png"), allow_private=True)


# --- The proxy URL ---------------------------------------------------------------------------


def _newsletter(image_url: str) -> bytes:
    return (
        "From: News <news@shop.example>\r\nTo: alice@example.org\r\nSubject: Deals\r\n"
        "Date: Thu, 26 Nov 2026 09:00:00 +0000\r\nMessage-ID: <p1@shop.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n"
        f'<p>Sale</p><img src="{image_url}" alt="Shoes" width="300" height="200">\r\n'
    ).encode()


@pytest.fixture
def proxied(db, alice, alice_client, server, settings):
    settings.WEBPOP_IMAGE_PROXY_ALLOW_PRIVATE = True
    message = store_message(make_account(alice), _newsletter(server.url("/a.png")), "n1")
    body = alice_client.get(reverse("mailbox:message_body", args=[message.id]), {"images": "1"}).content.decode()
    [url] = re.findall(r'src="(/message/\d+/asset/[^"]+/remote/0/)"', body)
    return message, url


def test_the_proxy_url_works_without_a_session(proxied, server):
    _message, url = proxied
    response = Client().get(url)  # the sandboxed frame sends no cookie
    assert response.status_code == 200
    assert response.content == PNG
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response["Content-Disposition"] == "inline"
    assert "cookie" not in server.requests[-1][1]


def test_blocked_views_get_no_proxy_url(db, alice, alice_client, server):
    message = store_message(make_account(alice), _newsletter(server.url("/a.png")), "n1")
    body = alice_client.get(reverse("mailbox:message_body", args=[message.id])).content.decode()
    assert "/remote/" not in body and "127.0.0.1" not in body
    assert "data-webpop-blocked" in body
    assert server.requests == []


def test_proxy_urls_must_be_signed_fresh_and_for_this_message(proxied, settings, monkeypatch, alice, bob):
    message, url = proxied
    token = url.split("/")[4]
    other = store_message(make_account(bob), _newsletter("https://cdn.example/x.png"), "n2")
    anonymous = Client()
    tampered = url.replace(token, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
    assert anonymous.get(tampered).status_code == 403
    assert anonymous.get(url.replace(f"/message/{message.id}/", f"/message/{other.id}/")).status_code == 403
    not_remote = signing.dumps([alice.id, message.id, 0], salt="webpop.mailbox.html-asset")
    assert anonymous.get(url.replace(token, not_remote)).status_code == 403
    bobs_claim = signing.dumps([bob.id, message.id, 1], salt="webpop.mailbox.html-asset")
    assert anonymous.get(url.replace(token, bobs_claim)).status_code == 404
    assert anonymous.get(url.replace("/remote/0/", "/remote/9/")).status_code == 404
    later = time.time() + settings.WEBPOP_HTML_ASSET_MAX_AGE + 5
    monkeypatch.setattr(signing.time, "time", lambda: later)
    assert anonymous.get(url).status_code == 403


def test_a_refused_target_is_a_502_not_a_fetch(proxied, settings, server):
    _message, url = proxied
    settings.WEBPOP_IMAGE_PROXY_ALLOW_PRIVATE = False
    before = len(server.requests)
    assert Client().get(url).status_code == 502
    assert len(server.requests) == before
