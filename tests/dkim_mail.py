"""DKIM-signed test mail and the DNS records that vouch for it (dkimpy signs; tests/dnsserver.py serves).

``Signer("example.com")`` makes a key pair; ``records()`` are its DKIM key and a DMARC policy for
DnsServer; ``sign(raw)`` signs with the published key, ``forge(raw)`` with another one, as a forger
without the domain's key would.
"""

from __future__ import annotations

import base64

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

SIGNED_HEADERS = [b"from", b"to", b"subject", b"date", b"message-id", b"reply-to"]


def _private_pem() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, base64.b64encode(der).decode()


class Signer:
    def __init__(self, domain: str, selector: str = "s1", dmarc: str = "reject") -> None:
        self.domain, self.selector, self.dmarc = domain, selector, dmarc
        self._pem, self._public = _private_pem()
        self._forger_pem, _ = _private_pem()

    def records(self) -> dict[tuple[str, str], list[str]]:
        text = f"v=DKIM1; k=rsa; p={self._public}"
        strings = " ".join(f'"{text[i : i + 200]}"' for i in range(0, len(text), 200))  # at most 255 a string
        return {
            (f"{self.selector}._domainkey.{self.domain}", "TXT"): [strings],
            (f"_dmarc.{self.domain}", "TXT"): [f'"v=DMARC1; p={self.dmarc}"'],
        }

    def sign(self, raw: bytes) -> bytes:
        return self._sign(raw, self._pem)

    def forge(self, raw: bytes) -> bytes:
        return self._sign(raw, self._forger_pem)

    def _sign(self, raw: bytes, pem: bytes) -> bytes:
        signature = dkim.sign(raw, self.selector.encode(), self.domain.encode(), pem, include_headers=SIGNED_HEADERS)
        return signature + raw
