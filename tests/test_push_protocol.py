"""push/webpush.py and push/vapid.py against a push service on loopback that checks VAPID and decrypts (RFC 8291)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from push import vapid, webpush
from tests.push_service import PushService, b64url, decrypt, unb64url
from tests.tlsutil import make_pki

SUBJECT = "mailto:postmaster@example.org"


@pytest.fixture
def keys():
    private = vapid.generate_private_key()
    return private, vapid.public_key_of(private)


@pytest.fixture
def service():
    running = PushService().start()
    yield running
    running.stop()


def _subscription(service: PushService, name: str = "browser-1") -> webpush.Subscription:
    return webpush.Subscription(service.endpoint(name), service.p256dh, service.auth)


def _send(service, keys, plaintext: bytes = b'{"title": "New mail"}', **options) -> webpush.Result:
    options = {"ttl": 3600, "topic": "new-mail", "allow_private": True, **options}
    return webpush.send(_subscription(service), plaintext, private_key=keys[0], subject=SUBJECT, **options)


def test_the_tests_decryption_is_the_rfcs():
    # RFC 8291 Appendix A: the example message, decrypted with the user agent's private key and auth secret.
    ua_private = vapid.load_private_key("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94")
    assert b64url(ua_private.public_key().public_bytes(*_uncompressed())) == (
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
    )
    body = unb64url(
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_"
        "yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
    )
    assert decrypt(body, ua_private, unb64url("BTBZMqHH6r4Tts7J_aSIgg")) == b"When I grow up, I want to be a watermelon"


def _uncompressed():
    from cryptography.hazmat.primitives import serialization

    return serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint


def test_a_push_reaches_the_service_signed_and_only_the_browser_can_read_it(service, keys):
    plaintext = json.dumps({"title": "New mail", "body": "3 unread", "unread": 3}).encode()
    result = _send(service, keys, plaintext)
    assert result.outcome is webpush.Outcome.DELIVERED and result.status == 201
    [got] = service.wait()
    assert got.path == "/push/browser-1"
    assert got.plaintext == plaintext
    service.check_claims(got, subject=SUBJECT, public_key=keys[1])
    assert got.headers["content-encoding"] == "aes128gcm"
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["ttl"] == "3600" and got.headers["topic"] == "new-mail" and got.headers["urgency"] == "normal"
    assert plaintext not in got.body and b"unread" not in got.body  # encrypted on the wire
    # Another browser's keys cannot read it.
    from cryptography.hazmat.primitives.asymmetric import ec

    with pytest.raises(Exception):  # noqa: B017 - AES-GCM refuses: InvalidTag
        decrypt(got.body, ec.generate_private_key(ec.SECP256R1()), service.auth_secret)


def test_every_message_has_its_own_key_and_salt(service, keys):
    _send(service, keys)
    _send(service, keys)
    first, second = service.wait(2)
    assert first.body[:16] != second.body[:16]  # salt
    assert first.body[21:86] != second.body[21:86]  # the sender's one-time ECDH key
    assert first.plaintext == second.plaintext


def test_the_largest_payload_fits_one_record_and_a_larger_one_is_refused(service, keys):
    largest = b"x" * webpush.MAX_PLAINTEXT
    assert _send(service, keys, largest).outcome is webpush.Outcome.DELIVERED
    [got] = service.wait()
    assert got.plaintext == largest and len(got.body) <= 4096
    result = _send(service, keys, largest + b"x")
    assert result.outcome is webpush.Outcome.REFUSED and len(service.received) == 1


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (201, webpush.Outcome.DELIVERED),
        (202, webpush.Outcome.DELIVERED),
        (404, webpush.Outcome.GONE),
        (410, webpush.Outcome.GONE),
        (429, webpush.Outcome.RETRY),
        (500, webpush.Outcome.RETRY),
        (503, webpush.Outcome.RETRY),
        (400, webpush.Outcome.REFUSED),
        (401, webpush.Outcome.REFUSED),
        (403, webpush.Outcome.REFUSED),
        (413, webpush.Outcome.REFUSED),
    ],
)
def test_the_push_services_answer_decides_the_outcome(service, keys, answer, outcome):
    service.answers.append(answer)
    result = _send(service, keys)
    assert result.outcome is outcome and result.status == answer
    assert len(service.received) == 1


def test_retry_after_is_passed_on(service, keys):
    service.answers.append((429, {"Retry-After": "120"}))
    result = _send(service, keys)
    assert (result.outcome, result.retry_after) == (webpush.Outcome.RETRY, 120)


def test_no_push_service_listening_is_a_retry(keys):
    stopped = PushService().start()
    stopped.stop()
    result = _send(stopped, keys)
    assert result.outcome is webpush.Outcome.RETRY and result.status is None


def test_endpoints_on_private_addresses_are_refused_unless_allowed(service, keys):
    port = service.server.server_port
    for host in ("127.0.0.1", "localhost", "127.0.0.2", "[::ffff:127.0.0.1]"):
        subscription = webpush.Subscription(f"https://{host}:{port}/push/x", service.p256dh, service.auth)
        result = webpush.send(subscription, b"{}", private_key=keys[0], subject=SUBJECT, ttl=60, topic="t")
        assert result.outcome is webpush.Outcome.REFUSED, host
        # (py_vapid signs no audience with an IPv6 literal: refused before the address is even looked at.)
        assert "non-public" in result.detail or host.startswith("[")
    assert service.received == []  # nothing was sent


def test_the_endpoint_must_be_https(keys):
    for endpoint, reason in [
        ("http://push.example.net/x", "https"),
        ("ftp://push.example.net/x", "https"),
        ("https://user:pw@push.example.net/x", "credentials"),
        ("https:///x", "no host"),
        ("https://push.example.net:99999/x", "port"),
        ("https://push.example.net/x#y", "fragment"),
        ("https://push.example.net/a b", "characters"),
        ("https://push.example.net/" + "x" * 2100, "too long"),
    ]:
        with pytest.raises(webpush.EndpointError, match=reason):
            webpush.check_endpoint(endpoint, allow_private=False)
    assert webpush.check_endpoint("https://fcm.googleapis.com/fcm/send/abc?x=1", allow_private=False) == (
        "https",
        "fcm.googleapis.com",
        443,
        "/fcm/send/abc?x=1",
    )


def test_the_push_services_certificate_is_verified(tmp_path, keys):
    # A certificate no trusted CA signed: nothing is delivered (TLS is never skipped).
    _ca, cert, key = make_pki(tmp_path, ["127.0.0.1"])
    tls = PushService(tls_files=(cert, key)).start()
    try:
        result = _send(tls, keys)
    finally:
        tls.stop()
    assert result.outcome is webpush.Outcome.RETRY
    assert "TLS" in result.detail and "CERTIFICATE_VERIFY_FAILED" in result.detail
    assert tls.received == []


def test_subscriptions_are_checked_before_they_are_kept(service):
    good = _subscription(service)
    webpush.check_subscription(good, allow_private=True)
    bad_keys = [
        webpush.Subscription(good.endpoint, "not base64!", good.auth),
        webpush.Subscription(good.endpoint, b64url(b"\x04" + b"\x01" * 64), good.auth),  # not on the curve
        webpush.Subscription(good.endpoint, good.p256dh[:-4], good.auth),
        webpush.Subscription(good.endpoint, good.p256dh, b64url(b"short")),
    ]
    for subscription in bad_keys:
        with pytest.raises(vapid.VapidKeyError):
            webpush.check_subscription(subscription, allow_private=True)
    with pytest.raises(webpush.EndpointError):
        webpush.check_subscription(good, allow_private=False)  # plain http on loopback: tests only


def test_vapid_keys_round_trip_and_bad_keys_are_named():
    private = vapid.generate_private_key()
    public = vapid.public_key_of(private)
    assert len(unb64url(private)) == 32 and len(unb64url(public)) == 65 and unb64url(public)[0] == 4
    assert vapid.public_key_of(private) == public
    assert (
        vapid.load_public_key(public).public_numbers() == vapid.load_private_key(private).public_key().public_numbers()
    )
    for bad, reason in [
        ("", "base64url"),
        ("a+b/", "base64url"),
        (b64url(b"x" * 31), "32 bytes"),
        (b64url(b"\0" * 32), "P-256"),
    ]:
        with pytest.raises(vapid.VapidKeyError, match=reason):
            vapid.public_key_of(bad)


def test_the_jwt_lives_at_most_a_day():
    private = vapid.generate_private_key()
    header = webpush.authorization("https://push.example.net:8443/abc", private, SUBJECT, now=1_000_000)
    from tests.push_service import verify_vapid

    checked = verify_vapid(header)
    assert checked.claims == {"aud": "https://push.example.net:8443", "sub": SUBJECT, "exp": 1_000_000 + 12 * 3600}
    assert checked.public_key == vapid.public_key_of(private)


# --- Configuration: settings and the vapidkeys command ----------------------------------------------------


def _settings(env: dict[str, str], *expressions: str) -> subprocess.CompletedProcess:
    code = "import django; django.setup(); from django.conf import settings; " + "; ".join(
        f"print({e})" for e in expressions
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith("WEBPOP_VAPID")}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**base, "DJANGO_SETTINGS_MODULE": "webpop.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_settings_take_keys_from_the_environment_and_fail_loudly(tmp_path, keys):
    private, public = keys
    data = {"WEBPOP_DATA_DIR": str(tmp_path)}
    ok = _settings({**data, "WEBPOP_VAPID_PRIVATE_KEY": private}, "settings.WEBPOP_VAPID_PUBLIC_KEY")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.split() == [public]
    off = _settings(data, "repr(settings.WEBPOP_VAPID_PUBLIC_KEY)")
    assert off.returncode == 0 and off.stdout.split() == ["''"]
    other_public = vapid.public_key_of(vapid.generate_private_key())
    for env, message in [
        ({"WEBPOP_VAPID_PRIVATE_KEY": "not a key!"}, "WEBPOP_VAPID_PRIVATE_KEY: not base64url"),
        ({"WEBPOP_VAPID_PRIVATE_KEY": "nonsense"}, "a private key has 32 bytes"),
        ({"WEBPOP_VAPID_PRIVATE_KEY": private, "WEBPOP_VAPID_PUBLIC_KEY": other_public}, "is not the public key"),
        ({"WEBPOP_VAPID_PUBLIC_KEY": public}, "without WEBPOP_VAPID_PRIVATE_KEY"),
        ({"WEBPOP_VAPID_SUBJECT": "postmaster@example.org"}, "not a mailto: or https: URL"),
    ]:
        failed = _settings({**data, **env}, "1")
        assert failed.returncode != 0 and "ImproperlyConfigured" in failed.stderr and message in failed.stderr, env


def test_vapidkeys_writes_a_private_key_file_once_and_settings_read_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBPOP_VAPID")}
    env["WEBPOP_DATA_DIR"] = str(tmp_path)
    command = [sys.executable, "manage.py", "vapidkeys"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "vapid_private_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    public = first.stdout.strip()
    assert public == vapid.public_key_of(key_file.read_text().strip())
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout.strip() == public and "exists already" in again.stderr
    read = _settings({"WEBPOP_DATA_DIR": str(tmp_path)}, "settings.WEBPOP_VAPID_PUBLIC_KEY")
    assert read.stdout.split() == [public]
    key_file.chmod(0o644)
    loose = _settings({"WEBPOP_DATA_DIR": str(tmp_path)}, "1")
    assert loose.returncode != 0 and "readable by others" in loose.stderr


def test_vapidkeys_env_prints_a_new_pair_and_writes_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBPOP_VAPID")}
    env["WEBPOP_DATA_DIR"] = str(tmp_path)
    done = subprocess.run([sys.executable, "manage.py", "vapidkeys", "--env"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split("=", 1) for line in done.stdout.split())
    assert vapid.public_key_of(lines["WEBPOP_VAPID_PRIVATE_KEY"]) == lines["WEBPOP_VAPID_PUBLIC_KEY"]
    assert not (tmp_path / "vapid_private_key").exists()
