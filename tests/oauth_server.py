"""A small OAuth2 / OpenID Connect authorization server for tests, over HTTPS on 127.0.0.1.

Standard library HTTP server in a background thread, no Django:

    with AuthServer(email="alice@example.net") as auth:
        auth.authorize_url, auth.token_url  # point a provider at these
        auth.access_tokens                  # {email: the newest valid access token}, for the fault POP3 server

/authorize approves at once (as if the user had clicked "Allow") or, with
``deny=True``, answers access_denied. /token implements the authorization_code
grant with a mandatory PKCE S256 check and one-time codes, and the
refresh_token grant with rotation: a refresh token works once, and presenting
a used one revokes the whole grant, as Microsoft and Google do on reuse.
``revoke(email)`` makes every refresh token of a user answer invalid_grant, as
does a refresh token given back at /revoke (RFC 7009).
Each id_token is an HS256 JWT signed with the client secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.fault_server import tls_materials

HOST = "127.0.0.1"


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    scope: str
    email: str


@dataclass
class _Refresh:
    email: str
    family: str
    used: bool = False


@dataclass
class Stats:
    authorize_requests: list[dict] = field(default_factory=list)
    token_requests: list[dict] = field(default_factory=list)  # form bodies (secrets included: a test server)
    refreshes: int = 0  # successful refresh_token grants
    revocations: int = 0  # refresh tokens given back at /revoke


class AuthServer:
    def __init__(
        self,
        *,
        client_id: str = "webpop-test-client",
        client_secret: str = "webpop-test-secret",
        email: str = "alice@example.net",
        subject: str = "user-0001",
        access_lifetime: int = 3600,
        issuer: str = "https://auth.test",
    ):
        self.client_id = client_id
        self.client_secret = client_secret
        self.email = email  # who signs in at /authorize
        self.subject = subject
        self.access_lifetime = access_lifetime
        self.issuer = issuer
        self.deny = False  # /authorize answers error=access_denied
        self.token_status: int | None = None  # /token answers this HTTP status with an HTML page
        self.token_delay = 0.0  # seconds /token waits before answering (to overlap concurrent refreshes)
        self.access_tokens: dict[str, str] = {}  # email -> newest access token (what the POP3 server accepts)
        self.stats = Stats()
        self._codes: dict[str, _Code] = {}
        self._refresh: dict[str, _Refresh] = {}
        self._revoked_families: set[str] = set()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle -------------------------------------------------------------

    def __enter__(self) -> AuthServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> AuthServer:
        handler = type("Handler", (_Handler,), {"auth": self})
        self._httpd = ThreadingHTTPServer((HOST, 0), handler)
        self._httpd.daemon_threads = True
        context = tls_materials().server_context
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="oauth-test-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(5)
            self._httpd = None

    @property
    def base_url(self) -> str:
        return f"https://{HOST}:{self._httpd.server_address[1]}"

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    @property
    def revocation_url(self) -> str:
        return f"{self.base_url}/revoke"

    @staticmethod
    def ca_pem() -> str:
        return tls_materials().ca_pem

    # Test controls -------------------------------------------------------------

    def revoke(self, email: str) -> None:
        """The user removed the app's access (or changed their password): every grant of theirs is dead."""
        with self._lock:
            for token in self._refresh.values():
                if token.email == email:
                    self._revoked_families.add(token.family)
            self.access_tokens.pop(email, None)

    # Endpoints ----------------------------------------------------------------

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str]]:
        self.stats.authorize_requests.append(query)
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id or not redirect_uri:
            return 400, {}
        back = {"state": query.get("state", "")}
        if query.get("response_type") != "code":
            back["error"] = "unsupported_response_type"
        elif query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            back |= {"error": "invalid_request", "error_description": "PKCE with S256 is required"}
        elif self.deny:
            back |= {"error": "access_denied", "error_description": "The user declined."}
        else:
            code = secrets.token_urlsafe(24)
            with self._lock:
                self._codes[code] = _Code(
                    self.client_id,
                    redirect_uri,
                    query["code_challenge"],
                    query.get("nonce", ""),
                    query.get("scope", ""),
                    self.email,
                )
            back["code"] = code
        separator = "&" if "?" in redirect_uri else "?"
        return 302, {"Location": f"{redirect_uri}{separator}{urlencode(back)}"}

    def token(self, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, dict]:
        self.stats.token_requests.append(form)
        if self.token_delay:
            time.sleep(self.token_delay)
        if self.token_status is not None:
            return self.token_status, {}
        client_id, secret = basic or (form.get("client_id"), form.get("client_secret"))
        if client_id != self.client_id or not hmac.compare_digest(secret or "", self.client_secret):
            return 401, {"error": "invalid_client"}
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._code_grant(form)
        if grant_type == "refresh_token":
            return self._refresh_grant(form)
        return 400, {"error": "unsupported_grant_type"}

    def revoke_endpoint(self, form: dict[str, str]) -> tuple[int, dict]:
        if self.token_status is not None:
            return self.token_status, {}
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client"}
        with self._lock:
            token = self._refresh.get(form.get("token", ""))
            if token is not None:  # unknown tokens get 200 too (RFC 7009 2.2)
                self._revoked_families.add(token.family)
                self.access_tokens.pop(token.email, None)
                self.stats.revocations += 1
        return 200, {}

    def _code_grant(self, form: dict[str, str]) -> tuple[int, dict]:
        with self._lock:
            code = self._codes.pop(form.get("code", ""), None)  # one use only
        if code is None or code.redirect_uri != form.get("redirect_uri"):
            return 400, {"error": "invalid_grant", "error_description": "unknown or used code"}
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if not hmac.compare_digest(challenge, code.challenge):
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        tokens = self._issue(code.email, secrets.token_hex(8), code.scope)
        tokens["id_token"] = self._id_token(code.email, code.nonce)
        return 200, tokens

    def _refresh_grant(self, form: dict[str, str]) -> tuple[int, dict]:
        with self._lock:
            current = self._refresh.get(form.get("refresh_token", ""))
            if current is None or current.family in self._revoked_families:
                return 400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
            if current.used:  # reuse of a rotated refresh token: treat the grant as stolen
                self._revoked_families.add(current.family)
                self.access_tokens.pop(current.email, None)
                return 400, {"error": "invalid_grant", "error_description": "Refresh token reused."}
            current.used = True
            self.stats.refreshes += 1
        return 200, self._issue(current.email, current.family, form.get("scope", ""))

    def _issue(self, email: str, family: str, scope: str) -> dict:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._lock:
            self._refresh[refresh] = _Refresh(email, family)
            self.access_tokens[email] = access
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_lifetime,
            "refresh_token": refresh,
            "scope": scope,
        }

    def _id_token(self, email: str, nonce: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": self.subject,
            "email": email,
            "email_verified": True,
            "nonce": nonce,
            "iat": now,
            "exp": now + 3600,
        }

        def part(data: dict) -> str:
            return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

        signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}"
        signature = hmac.new(self.client_secret.encode(), signing_input.encode(), "sha256").digest()
        return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


class _Handler(BaseHTTPRequestHandler):
    auth: AuthServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != "/authorize":
            self._send(404, {}, b"")
            return
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        status, headers = self.auth.authorize(query)
        self._send(status, headers, b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        form = {key: values[0] for key, values in parse_qs(body).items()}
        if urlsplit(self.path).path == "/revoke":
            status, data = self.auth.revoke_endpoint(form)
            self._send(status, {"Content-Type": "application/json"}, json.dumps(data).encode())
            return
        if urlsplit(self.path).path != "/token":
            self._send(404, {}, b"")
            return
        basic = None
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            basic = (user, password)
        status, data = self.auth.token(form, basic)
        if status >= 500:
            self._send(status, {"Content-Type": "text/html"}, b"<h1>Service unavailable</h1>")
        else:
            self._send(status, {"Content-Type": "application/json"}, json.dumps(data).encode())

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)
