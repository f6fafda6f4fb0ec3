"""Pieces of the POP3 client that need no server: SCRAM vectors, response codes, CAPA."""

import base64

import pytest

from mailbox import pop3
from mailbox.pop3 import Capabilities, Pop3AuthError, Pop3ServerError, Pop3TemporaryError, Scram
from tests.pop3_drivers import DRIVERS


@pytest.mark.parametrize(
    ("hash_name", "password", "nonce", "server_first", "client_final", "server_final"),
    [
        (  # RFC 5802 section 5
            "sha1",
            "pencil",
            "fyko+d2lbbFgONRv9qkxdawL",
            "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
            "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
        ),
        (  # RFC 7677 section 3
            "sha256",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO",
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        ),
    ],
)
def test_scram_matches_the_rfc_test_vectors(hash_name, password, nonce, server_first, client_final, server_final):
    scram = Scram(hash_name, "user", password, nonce=nonce)
    assert scram.client_first() == f"n,,n=user,r={nonce}".encode()
    assert scram.step(server_first.encode()).decode() == client_final
    assert scram.step(server_final.encode()) == b""
    assert scram.server_verified


def test_scram_rejects_a_server_that_does_not_know_the_password():
    scram = Scram("sha1", "user", "pencil", nonce="fyko+d2lbbFgONRv9qkxdawL")
    scram.step(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
    forged = b"v=" + base64.b64encode(b"\0" * 20)
    with pytest.raises(Pop3AuthError, match="signature is wrong"):
        scram.step(forged)
    assert not scram.server_verified


def test_scram_refuses_a_nonce_the_client_did_not_start():
    scram = Scram("sha256", "user", "pencil")
    with pytest.raises(Pop3AuthError, match="malformed"):
        scram.step(b"r=someone-elses-nonce,s=QSXCR+Q6sek8bf92,i=4096")


def test_scram_escapes_user_names():
    assert Scram("sha1", "a=b,c", "x").client_first().startswith(b"n,,n=a=3Db=2Cc,r=")


@pytest.mark.parametrize(
    ("line", "during_login", "cls", "code"),
    [
        ("-ERR [IN-USE] Mailbox locked", True, Pop3TemporaryError, "IN-USE"),
        ("-ERR [LOGIN-DELAY] Wait 900 s", True, Pop3TemporaryError, "LOGIN-DELAY"),
        ("-ERR [SYS/TEMP] Try later", False, Pop3TemporaryError, "SYS/TEMP"),
        ("-ERR [SYS/PERM] Account closed", True, Pop3ServerError, "SYS/PERM"),
        ("-ERR [AUTH] Authentication failed.", True, Pop3AuthError, "AUTH"),
        ("-ERR Bad password", True, Pop3AuthError, None),
        ("-ERR maildrop already locked", True, Pop3TemporaryError, None),
        ("-ERR no such message", False, Pop3ServerError, None),
    ],
)
def test_response_codes_map_to_exceptions(line, during_login, cls, code):
    error = pop3.server_error(line, during_login=during_login)
    assert type(error) is cls
    assert error.code == code


def test_capabilities_are_typed():
    caps = Capabilities.parse(
        ["TOP", "UIDL", "SASL PLAIN XOAUTH2", "LOGIN-DELAY 900", "EXPIRE 30 USER", "IMPLEMENTATION Shlemazle v1",
         "PIPELINING", "UTF8 USER", "RESP-CODES", "AUTH-RESP-CODE"]
    )  # fmt: skip
    assert caps.top and caps.uidl and caps.pipelining and caps.utf8 and caps.resp_codes and caps.auth_resp_code
    assert caps.sasl == ["PLAIN", "XOAUTH2"]
    assert (caps.login_delay, caps.expire, caps.expire_never) == (900, 30, False)
    assert caps.implementation == "Shlemazle v1"
    assert Capabilities.parse(["EXPIRE NEVER"]).expire_never
    empty = Capabilities()
    assert not (empty.uidl or empty.top or empty.pipelining) and empty.login_delay is None


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("192.168.1.1", False),
        ("169.254.1.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("::ffff:127.0.0.1", False),
        ("224.0.0.1", False),
        ("0.0.0.0", False),
        ("100.64.0.1", False),
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
    ],
)
def test_only_public_addresses_are_allowed_by_default(address, public):
    assert pop3.is_public_address(address) is public


def test_fingerprints_are_normalized():
    assert pop3.normalize_fingerprint("AB:" * 31 + "AB") == "ab" * 32
    with pytest.raises(ValueError):
        pop3.normalize_fingerprint("abc")


def test_command_arguments_cannot_inject_lines():
    client = pop3.Pop3Client("example.net", 995)
    with pytest.raises(ValueError):
        client._send("USER a\r\nDELE 1")


@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_client_reaches_an_ipv6_server(fault_server, driver):
    from tests.fault_server import make_message

    server = fault_server([make_message(1)], host="::1")
    with DRIVERS[driver]("::1", server.port, "none", allow_private=True, timeout=5) as client:
        client.login("alice", "secret", allow_plaintext=True)
        assert client.stat()[0] == 1
        client.quit()


def test_the_resuming_context_is_set_up_as_the_librarys_default_client_context():
    import ssl

    from webpop.lib.tls import ResumingContext, make_tls_context

    ours, default = make_tls_context(resume=True), ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    default.minimum_version = ssl.TLSVersion.TLSv1_2
    assert isinstance(ours, ResumingContext)
    for setting in ("verify_mode", "check_hostname", "options", "verify_flags", "minimum_version", "maximum_version"):
        assert getattr(ours, setting) == getattr(default, setting), setting
    assert ours.get_ciphers() == default.get_ciphers()
    assert len(ours.get_ca_certs()) == len(default.get_ca_certs())
