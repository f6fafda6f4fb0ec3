"""A private, real Dovecot POP3 server for tests.

Plain Python (no Django) so it can back any test or benchmark:

    with DovecotServer(tmp_path / "dovecot") as server:
        server.add_user("alice", "secret")
        server.deliver("alice", raw_bytes)
        pop = poplib.POP3_SSL(server.host, server.pop3s_port, context=server.ssl_context())

Every instance gets its own configuration, certificates, ports and runtime
directory, so several (say a trusted and an untrusted one) can run at once.
Dovecot must be installed: `apt-get install dovecot-pop3d`.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import datetime
import functools
import grp
import hashlib
import hmac
import ipaddress
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CertKind = Literal["trusted", "untrusted", "wrong-host"]

HOST = "127.0.0.1"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0

# No characters that would break a passwd-file line, a path or Dovecot's %-variables.
_SAFE_USER = re.compile(r"[A-Za-z0-9_@+=-][A-Za-z0-9._@+=-]*")


# --- Test PKI ---------------------------------------------------------------


@dataclass(frozen=True)
class _Issued:
    cert_pem: bytes
    key_pem: bytes


@dataclass(frozen=True)
class _Pki:
    trusted_ca: _Issued
    untrusted_ca: _Issued
    certs: dict[str, _Issued]


PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _new_key() -> PrivateKey:
    # P-256 keys are generated in microseconds, unlike RSA. WEBPOP_TEST_CERT_KEY=rsa gives RSA-2048
    # keys, what most providers' certificates carry (bench/_dovecot_login_cpu.py).
    if os.environ.get("WEBPOP_TEST_CERT_KEY") == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    # Backdated so a slightly skewed clock never makes the cert "not yet valid".
    return builder.not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))


def _make_ca(common_name: str) -> tuple[x509.Certificate, PrivateKey]:
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        _validity(x509.CertificateBuilder())
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return builder.sign(key, hashes.SHA256()), key


def _make_leaf(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    common_name: str,
    alt_names: list[x509.GeneralName],
) -> _Issued:
    key = _new_key()
    # Extensions chosen to also pass OpenSSL's VERIFY_X509_STRICT (default in Python 3.13+).
    builder = (
        _validity(x509.CertificateBuilder())
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    cert = builder.sign(ca_key, hashes.SHA256())
    return _Issued(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


@functools.cache
def _pki() -> _Pki:
    """One PKI per process: every server's ca.pem is the same trusted CA, so a
    client configured once (e.g. WEBPOP_POP3_CA_FILE) trusts all "trusted" servers."""
    localhost = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
    trusted_cert, trusted_key = _make_ca("webpop test CA")
    untrusted_cert, untrusted_key = _make_ca("webpop untrusted test CA")
    return _Pki(
        trusted_ca=_Issued(trusted_cert.public_bytes(serialization.Encoding.PEM), _pem_key(trusted_key)),
        untrusted_ca=_Issued(untrusted_cert.public_bytes(serialization.Encoding.PEM), _pem_key(untrusted_key)),
        certs={
            "trusted": _make_leaf(trusted_cert, trusted_key, "localhost", localhost),
            # Right names, unknown issuer: only chain verification fails.
            "untrusted": _make_leaf(untrusted_cert, untrusted_key, "localhost", localhost),
            # Known issuer, wrong names: only hostname verification fails.
            "wrong-host": _make_leaf(trusted_cert, trusted_key, "wrong.example", [x509.DNSName("wrong.example")]),
        },
    )


# --- Helpers ----------------------------------------------------------------


def _dovecot_binary() -> str:
    # /usr/sbin is often missing from PATH for non-login shells.
    found = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise RuntimeError("Dovecot is not installed; run `apt-get install dovecot-pop3d` to run these tests.")
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """Runs in the child before exec: if the test process is SIGKILLed, the
    kernel sends Dovecot's master SIGTERM, so no server outlives the tests.
    (PR_SET_PDEATHSIG fires when the *thread* that forked exits: start servers
    from a long-lived thread, which pytest's main thread is.)"""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # 1 == PR_SET_PDEATHSIG


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _read_greeting(port: int, use_tls: bool, timeout: float) -> bytes:
    with socket.create_connection((HOST, port), timeout=timeout) as raw:
        if not use_tls:
            return raw.makefile("rb").readline()
        # Readiness only: the certificate may be deliberately bad.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            return tls.makefile("rb").readline()


def _ssha256(password: str) -> str:
    """Dovecot's SSHA256 scheme: base64(SHA-256(password + salt) + salt)."""
    salt = os.urandom(8)
    digest = hashlib.sha256(password.encode() + salt).digest()
    return "{SSHA256}" + base64.b64encode(digest + salt).decode()


def _scram_sha256(password: str, iterations: int = 4096) -> str:
    """Dovecot's SCRAM-SHA-256 scheme: iterations, salt, StoredKey, ServerKey (RFC 5802), base64."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    fields = [str(iterations), *(base64.b64encode(v).decode() for v in (salt, stored_key, server_key))]
    return "{SCRAM-SHA-256}" + ",".join(fields)


def _chown_mail(path: Path, uid: int, gid: int, mode: int) -> None:
    os.chown(path, uid, gid)
    os.chmod(path, mode)


def _live_session_members(sid: int) -> set[int]:
    """Live processes in session `sid` (zombies don't count: they have exited)."""
    members = set()
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            # Fields after "(comm)": state ppid pgrp session ...
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z" and int(fields[3]) == sid:
                members.add(int(entry.name))
    return members


def _stop_process(proc: subprocess.Popen[bytes] | None, graceful: bool) -> None:
    """Stop Dovecot's master and every process it started, and wait for them."""
    if proc is None or proc.poll() is not None:
        return
    # The master is the leader of its own process group (start_new_session),
    # and all Dovecot processes stay in it: signal the group, not just the
    # master, because pop3 processes with a connected client outlive the master.
    if graceful:
        # The master sleeps 1 s before exiting if a child still looks alive.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            graceful = False
    if not graceful:
        # Instant, like a crash.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # Children (the log process last) may exit just after the master.
    deadline = time.monotonic() + STOP_TIMEOUT
    while (members := _live_session_members(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.01)
    for pid in members:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@dataclass
class _Runtime:
    """What the finalizer needs; kept apart from DovecotServer so the finalizer
    holds no reference to the server (which would keep it alive forever)."""

    root: Path
    proc: subprocess.Popen[bytes] | None = None

    def stop(self, graceful: bool) -> None:
        proc, self.proc = self.proc, None
        _stop_process(proc, graceful)
        # A killed master leaves its pid file; were that pid reused, Dovecot
        # would refuse to start again ("already running").
        (self.root / "run" / "master.pid").unlink(missing_ok=True)

    def shutdown(self) -> None:
        self.stop(graceful=False)
        shutil.rmtree(self.root, ignore_errors=True)


# --- The server -------------------------------------------------------------


class DovecotServer:
    """A private Dovecot POP3 server on free loopback ports.

    Files the test reads (config, log, certificates) live in `base`. Files
    Dovecot's unprivileged processes need (passwd-file, mail homes, sockets)
    live in a fresh 0755 directory under /tmp: pytest's own tmp dirs are 0700
    (and pytest resets that on each session start, so they can't be chmodded),
    and unix socket paths must stay under ~108 bytes.
    """

    def __init__(
        self,
        base: Path,
        cert: CertKind = "trusted",
        extra_config: str = "",
        auth_mechanisms: str = "plain login cram-md5 scram-sha-1 scram-sha-256 apop",
    ) -> None:
        if cert not in ("trusted", "untrusted", "wrong-host"):
            raise ValueError(f"unknown cert kind {cert!r}")
        self._binary = _dovecot_binary()
        self.base = Path(base).resolve()
        self.base.mkdir(parents=True, exist_ok=True)
        self.cert = cert
        self.extra_config = extra_config  # appended to dovecot.conf (e.g. process tuning for benchmarks)
        self.auth_mechanisms = auth_mechanisms  # "apop" puts a timestamp in the greeting
        self.host = HOST
        self.pop3_port = _free_port()
        self.pop3s_port = _free_port()
        self._started_once = False
        self._lock = threading.Lock()
        self._delivered = 0
        self._last_us = 0

        self._mail_uid = pwd.getpwnam("mail").pw_uid
        self._mail_gid = grp.getgrnam("mail").gr_gid
        self._dovecot_gid = grp.getgrnam("dovecot").gr_gid

        self._runtime = _Runtime(Path(tempfile.mkdtemp(prefix="webpop-dovecot-", dir="/tmp")))
        # Runs on close(), garbage collection or interpreter exit, whichever comes first.
        self._finalizer = weakref.finalize(self, self._runtime.shutdown)

        root = self._runtime.root
        root.chmod(0o755)
        self._home_root = root / "home"
        self._home_root.mkdir(mode=0o755)
        # One passwd-file per user: Dovecot re-checks a known file at most once
        # per second, but looks up a file it has not seen (a new user) at once.
        self._passwd_dir = root / "passwd.d"
        self._passwd_dir.mkdir(mode=0o755)

        self._write_certs()
        self._write_config()

    # Paths -----------------------------------------------------------------

    @property
    def ca_file(self) -> Path:
        """The CA that signed "trusted" and "wrong-host" certificates."""
        return self.base / "ca.pem"

    @property
    def untrusted_ca_file(self) -> Path:
        """The CA that signed the "untrusted" certificate (trust it explicitly to make that server valid)."""
        return self.base / "untrusted-ca.pem"

    @property
    def config_file(self) -> Path:
        return self.base / "dovecot.conf"

    @property
    def log_file(self) -> Path:
        return self.base / "dovecot.log"

    @property
    def run_dir(self) -> Path:
        return self._runtime.root / "run"

    @property
    def pid(self) -> int | None:
        """The master's pid, the leader of the session of every process it starts (None when stopped)."""
        proc = self._runtime.proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def maildir(self, user: str) -> Path:
        return self._home_root / user / "Maildir"

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only this server's test CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    # Lifecycle -------------------------------------------------------------

    @property
    def running(self) -> bool:
        proc = self._runtime.proc
        return proc is not None and proc.poll() is None

    def start(self) -> None:
        """Start Dovecot and wait until both ports greet with +OK.

        After stop(), start() restarts on the same ports with the same users
        and mail, so tests can simulate a server outage."""
        if self.running:
            return
        attempts = 1 if self._started_once else 3
        for attempt in range(attempts):
            try:
                self._start_once()
            except RuntimeError as exc:
                # Another process grabbed a port between _free_port() and bind().
                if "Address already in use" not in str(exc) or attempt == attempts - 1:
                    raise
                self.pop3_port, self.pop3s_port = _free_port(), _free_port()
                self._write_config()
            else:
                self._started_once = True
                return

    def stop(self, graceful: bool = True) -> None:
        """Stop the master and all its children, returning once they have all
        exited; users, mail and ports are kept for start().

        A graceful stop (SIGTERM: connected clients get "-ERR [SYS/TEMP] Server
        shutting down.") takes 0.2-1.1 s; graceful=False SIGKILLs every
        Dovecot process at once, like a crash."""
        self._runtime.stop(graceful)

    def close(self) -> None:
        """Kill the server and delete its runtime directory (mail, users).

        Also done at interpreter exit or when the object is garbage collected."""
        self._finalizer()

    def __enter__(self) -> DovecotServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<DovecotServer {self.cert} pop3={self.pop3_port} pop3s={self.pop3s_port} {state}>"

    def _start_once(self) -> None:
        stderr_path = self.base / "dovecot.stderr"
        with stderr_path.open("wb") as stderr:
            # -F keeps the master as our child: we can wait() for it, and no
            # stale master.pid/daemon survives a restart on the same base_dir.
            proc = subprocess.Popen(
                [self._binary, "-F", "-c", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,  # Ctrl-C in pytest reaches teardown, not Dovecot
                preexec_fn=_die_with_parent,
            )
        self._runtime.proc = proc
        try:
            self._wait_ready(proc)
        except Exception:
            self.stop()
            details = "\n".join(filter(None, [_tail(stderr_path), _tail(self.log_file)]))
            raise RuntimeError(f"Dovecot did not start ({self.config_file}):\n{details}") from None

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        pending = {self.pop3_port: False, self.pop3s_port: True}
        while pending:
            if proc.poll() is not None:
                raise RuntimeError(f"dovecot exited with status {proc.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError("ports not ready")
            for port, use_tls in list(pending.items()):
                try:
                    greeting = _read_greeting(port, use_tls, timeout=2.0)
                except (OSError, ssl.SSLError):
                    continue
                if greeting.startswith(b"+OK"):
                    del pending[port]
            if pending:
                time.sleep(0.05)

    # Users and mail --------------------------------------------------------

    def add_user(self, name: str, password: str, *, hashed: bool = False, scram: bool = False) -> None:
        """Add a mailbox user; takes effect at once, also while running.

        ``hashed`` stores the password as a salted hash (SSHA256), as most real
        servers do: Dovecot then checks USER/PASS, PLAIN and LOGIN, but refuses
        APOP, CRAM-MD5 and SCRAM for this user while still offering them.
        ``scram`` stores SCRAM-SHA-256 keys with a salt of their own, as servers
        that offer SCRAM do: every SCRAM-SHA-256 login of the user sees the same
        salt (with a clear-text password Dovecot makes up a new one each time).
        """
        if not _SAFE_USER.fullmatch(name):
            raise ValueError(f"unsupported user name {name!r}")
        if any(c in password for c in ":\r\n\0"):
            raise ValueError("passwords cannot contain ':', NUL or line breaks (passwd-file format)")
        home = self._home_root / name
        maildir = home / "Maildir"
        with self._lock:
            if home.exists():
                raise ValueError(f"user {name!r} already exists")
            home.mkdir(mode=0o700)
            _chown_mail(home, self._mail_uid, self._mail_gid, 0o700)
            maildir.mkdir(mode=0o700)
            _chown_mail(maildir, self._mail_uid, self._mail_gid, 0o700)
            for sub in ("new", "cur", "tmp"):
                (maildir / sub).mkdir(mode=0o700)
                _chown_mail(maildir / sub, self._mail_uid, self._mail_gid, 0o700)
            stored = _ssha256(password) if hashed else _scram_sha256(password) if scram else f"{{PLAIN}}{password}"
            line = f"{name}:{stored}:{self._mail_uid}:{self._mail_gid}::{home}\n"
            # Write then rename, so Dovecot never reads a half-written line.
            tmp = self._passwd_dir / f".{name}.tmp"
            tmp.write_text(line)
            # Readable by the auth process, which runs as default_internal_user.
            os.chown(tmp, 0, self._dovecot_gid)
            tmp.chmod(0o640)
            tmp.replace(self._passwd_dir / name)

    def deliver(self, user: str, data: bytes, name: str | None = None) -> Path:
        """Drop a message into the user's Maildir/new (atomically) and return its path.

        Generated names sort in delivery order, which is also the order
        Dovecot numbers the messages in a POP3 session. Dovecot may later move
        the file to cur/ (adding ":2,S" flags) or delete it."""
        maildir = self.maildir(user)
        if not maildir.is_dir():
            raise ValueError(f"no such user {user!r}")
        if name is None:
            name = self._unique_name()
        elif "/" in name or ":" in name or name.startswith("."):
            raise ValueError(f"invalid maildir file name {name!r}")
        tmp = maildir / "tmp" / name
        final = maildir / "new" / name
        if final.exists():
            raise FileExistsError(final)
        with tmp.open("xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _chown_mail(tmp, self._mail_uid, self._mail_gid, 0o600)
        tmp.rename(final)
        return final

    def server_messages(self, user: str) -> list[bytes]:
        """The bytes of every message now in the user's mailbox, in name (delivery) order."""
        maildir = self.maildir(user)
        # Dovecot renames new/ -> cur/ while a session runs; listing new/ before
        # cur/ sees every file at least once, and a rename between listing and
        # reading shows up as FileNotFoundError, so just scan again.
        for _ in range(20):
            found: dict[str, Path] = {}
            for sub in ("new", "cur"):
                for path in (maildir / sub).iterdir():
                    if not path.name.startswith("."):
                        found[path.name.split(":", 1)[0]] = path
            try:
                return [found[key].read_bytes() for key in sorted(found)]
            except FileNotFoundError:
                time.sleep(0.01)
        raise RuntimeError(f"{maildir} kept changing while being read")

    def remove(self, user: str, data: bytes) -> None:
        """Delete the message with these bytes, as another mail client on the server would."""
        maildir = self.maildir(user)
        for sub in ("new", "cur"):
            for path in (maildir / sub).iterdir():
                if not path.name.startswith(".") and path.read_bytes() == data:
                    path.unlink()
                    return
        raise LookupError(f"no such message in {maildir}")

    def server_sha256s(self, user: str) -> set[str]:
        return {hashlib.sha256(data).hexdigest() for data in self.server_messages(user)}

    def _unique_name(self) -> str:
        with self._lock:
            self._delivered += 1
            count = self._delivered
            # Strictly increasing microsecond stamps keep names in delivery order
            # even within one microsecond or if the wall clock steps back.
            now_us = max(time.time_ns() // 1000, self._last_us + 1)
            self._last_us = now_us
        seconds, micros = divmod(now_us, 1_000_000)
        # Standard Maildir name; Dovecot sorts new mail by the secs.Musec prefix.
        return f"{seconds}.M{micros:06d}P{os.getpid()}Q{count}.webpop-test"

    # Setup -----------------------------------------------------------------

    def _write_certs(self) -> None:
        pki = _pki()
        issued = pki.certs[self.cert]
        (self.base / "ca.pem").write_bytes(pki.trusted_ca.cert_pem)
        (self.base / "untrusted-ca.pem").write_bytes(pki.untrusted_ca.cert_pem)
        (self.base / "cert.pem").write_bytes(issued.cert_pem)
        key = self.base / "key.pem"
        key.touch(mode=0o600)
        key.write_bytes(issued.key_pem)

    def _write_config(self) -> None:
        root = self._runtime.root
        (root / "run").mkdir(exist_ok=True)
        (root / "state").mkdir(exist_ok=True)
        config = f"""\
# Generated by tests/dovecot.py for one private test instance.
base_dir = {root / "run"}
state_dir = {root / "state"}
log_path = {self.log_file}
auth_verbose = yes
listen = {HOST}
protocols = pop3
shutdown_clients = yes

default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = 1

ssl = yes
ssl_cert = <{self.base / "cert.pem"}
ssl_key = <{self.base / "key.pem"}
disable_plaintext_auth = no

auth_mechanisms = {self.auth_mechanisms}
# A wrong login takes ~0.5 s (Dovecot flushes queued failures on a fixed
# 500 ms timer) instead of 2 s, and never grows: see also service anvil.
auth_failure_delay = 0
auth_cache_size = 0

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self._passwd_dir}/%u
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self._passwd_dir}/%u
}}

mail_location = maildir:~/Maildir
pop3_uidl_format = %08Xu%08Xv

protocol pop3 {{
  # Concurrency tests must hit our own locking, not Dovecot's limit of 10.
  mail_max_userip_connections = 100
}}

service pop3-login {{
  inet_listener pop3 {{
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    port = {self.pop3s_port}
    ssl = yes
  }}
}}

service anvil {{
  # No per-IP auth penalty: otherwise each further failure waits 2, 4, ... 15 s.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""
        self.config_file.write_text(config + self.extra_config)
