"""Sender trust (spam/trust.py): who vouches for the sender, and the warnings, without Django."""

from __future__ import annotations

import pytest

from spam import trust
from spam.trust import Auth

AR_PASS = (
    "mx.provider.example; dkim=pass (2048-bit key) header.d=example.com header.i=@example.com header.s=s1;\r\n"
    "\tspf=pass smtp.mailfrom=bounce@mail.example.com; dmarc=pass (p=reject sp=none) header.from=example.com"
)
AR_FAIL = "mx.provider.example; dkim=fail header.d=paypal.com; spf=fail smtp.mailfrom=x@evil.example; dmarc=fail (p=REJECT) header.from=paypal.com"  # noqa: E501


def kinds(result: trust.Trust) -> list[str]:
    return [w.kind for w in result.warnings]


def test_authentication_results_only_from_the_trusted_authserv_id_and_only_its_topmost():
    forged = "mx.provider.example; dkim=pass header.d=paypal.com; dmarc=pass header.from=paypal.com"
    other = "attacker.example; dkim=pass header.d=paypal.com"
    assert trust.from_authentication_results([other], "mx.provider.example") == Auth()
    assert trust.from_authentication_results([AR_PASS, other], "") == Auth()
    auth = trust.from_authentication_results([other, AR_PASS, forged], "MX.Provider.Example")
    assert auth == Auth("mx.provider.example", ("example.com",), (), "pass", "mail.example.com", "pass", "reject")


def test_a_failing_authentication_results_header():
    auth = trust.from_authentication_results([AR_FAIL], "mx.provider.example")
    assert (auth.dkim, auth.dkim_failed, auth.spf, auth.dmarc, auth.dmarc_policy) == (
        (), ("paypal.com",), "fail", "fail", "reject",
    )  # fmt: skip


def test_unparsable_authentication_results_are_ignored():
    assert trust.from_authentication_results(["mx.provider.example; dkim"], "mx.provider.example") == Auth()


def test_rspamd_symbols():
    auth = trust.from_rspamd(
        {"R_DKIM_ALLOW": ["example.com:s=sel", "esp.example:s=x"], "R_SPF_ALLOW": ["+ip4:192.0.2.1"],
         "DMARC_POLICY_ALLOW": ["example.com", "reject"]},
        envelope_domain="bounce.example.com",
    )  # fmt: skip
    assert auth == Auth("rspamd", ("example.com", "esp.example"), (), "pass", "bounce.example.com", "pass", "")
    failed = trust.from_rspamd(
        {
            "R_DKIM_REJECT": ["paypal.com:s=sel"],
            "DMARC_POLICY_REJECT": ["paypal.com : No valid SPF, DKIM not aligned", "reject"],
        }
    )
    assert (failed.dkim_failed, failed.dmarc, failed.dmarc_policy) == (("paypal.com",), "fail", "reject")
    assert trust.from_rspamd({"DMARC_POLICY_QUARANTINE": ["x.example", "quarantine"]}).dmarc_policy == "quarantine"


def test_signed_by_puts_the_aligned_domain_first():
    auth = Auth("rspamd", ("esp.example", "example.com"), spf="pass", spf_domain="bounce.example.com")
    result = trust.assess("Example", "news@mail.example.com", auth)
    assert result.signed_by == ("example.com", "esp.example")
    assert result.mailed_by == "bounce.example.com"
    assert result.warnings == ()


@pytest.mark.parametrize(
    ("domain", "sender", "expected"),
    [
        ("example.com", "example.com", True),
        ("example.com", "mail.example.com", True),
        ("mail.example.com", "example.com", True),
        ("example.com", "badexample.com", False),
        ("sendgrid.net", "example.com", False),
        ("", "example.com", False),
    ],
)
def test_alignment(domain, sender, expected):
    assert trust.aligned(domain, sender) is expected


def test_dmarc_failure_is_a_warning():
    auth = trust.from_authentication_results([AR_FAIL], "mx.provider.example")
    result = trust.assess("PayPal", "service@paypal.com", auth)
    assert kinds(result) == ["dmarc_fail"]
    assert result.warnings[0].domain == "paypal.com"
    assert result.signed_by == ()


def test_a_broken_signature_of_the_senders_domain_without_dmarc_is_a_warning():
    result = trust.assess("Bank", "info@bank.example", Auth("rspamd", dkim_failed=("bank.example",)))
    assert kinds(result) == ["dkim_forged"]
    # a mailing list's broken signature beside its own valid one: nothing to warn about
    assert kinds(trust.assess("B", "info@bank.example", Auth("r", ("bank.example",), ("bank.example",)))) == []


@pytest.mark.parametrize(
    ("name", "address", "shown"),
    [
        ("service@paypal.com", "x@evil.example", "service@paypal.com"),
        ("PayPal (service@paypal.com)", "x@evil.example", "service@paypal.com"),
        ("ｓｅｒｖｉｃｅ@paypal.com", "x@evil.example", "service@paypal.com"),  # fullwidth letters
        ("Alice Example", "alice@example.com", ""),
        ("alice@example.com", "Alice@Example.com", ""),  # the name is the address itself
    ],
)
def test_a_display_name_holding_another_address(name, address, shown):
    assert trust.name_address(name, address) == shown
    assert ("name_address" in kinds(trust.assess(name, address, Auth()))) is bool(shown)


def test_a_cyrillic_a_in_paypal_looks_like_the_contacts_domain():
    spoof = "service@p\u0430ypal.com"  # Cyrillic а
    result = trust.assess("PayPal", spoof, Auth(), known_domains={"paypal.com", "example.org"})
    assert kinds(result) == ["lookalike"]
    assert result.warnings[0].other == "paypal.com"
    assert result.warnings[0].domain == "p\u0430ypal.com (xn--pypal-4ve.com)"


def test_the_punycode_form_of_a_lookalike_is_recognised():
    result = trust.assess("PayPal", "service@xn--pypal-4ve.com", Auth(), known_domains={"paypal.com"})
    assert kinds(result) == ["lookalike"]
    assert result.warnings[0].domain == "p\u0430ypal.com (xn--pypal-4ve.com)"


@pytest.mark.parametrize(
    "domain", ["paypa1.com", "examp1e.org", "g\u03bfogle.com", "\u0440aypal.com", "rnicrosoft.com"]
)
def test_lookalikes(domain):
    assert trust.lookalike(domain, {"paypal.com", "example.org", "google.com", "microsoft.com"}) != ""


@pytest.mark.parametrize("domain", ["paypal.com", "PayPal.COM", "paypal.de", "pay.example", "münchen.de", ""])
def test_not_lookalikes(domain):
    assert trust.lookalike(domain, {"paypal.com", "muenchen.de"}) == ""


def test_a_mixed_script_domain_nobody_knows_is_still_a_warning():
    result = trust.assess("Shop", "info@sh\u043ep-example.com", Auth())  # Cyrillic о among Latin letters
    assert kinds(result) == ["mixed_script"]
    assert "xn--" in result.warnings[0].domain
    assert kinds(trust.assess("Stadt", "info@münchen.de", Auth())) == []  # one alphabet: a real IDN


@pytest.mark.parametrize(
    ("reply_to", "elsewhere"),
    [
        ("Support <help@other.example>", "help@other.example"),
        ("help@example.com", ""),
        ("help@support.example.com", ""),
        ("a@example.com, b@collect.example", "b@collect.example"),
        ("", ""),
    ],
)
def test_reply_to_another_domain(reply_to, elsewhere):
    assert trust.reply_elsewhere(reply_to, "example.com") == elsewhere
    result = trust.assess("Shop", "news@example.com", Auth(), reply_to=reply_to)
    assert [w.other for w in result.warnings if w.kind == "reply_to"] == ([elsewhere] if elsewhere else [])


def test_the_skeleton_index_answers_as_the_list_does():
    known = ["paypal.com", "example.org", "google.com", "microsoft.com", "paypa1.com"]
    index = trust.KnownDomains(known)
    for domain in ["paypal.com", "paypa1.com", "paypai.com", "p\u0430ypal.com", "rnicrosoft.com", "other.example", ""]:
        assert index.imitated(domain) == trust.lookalike(domain, known) == trust.lookalike(domain, index)
    assert index.imitated("p\u0430ypal.com") == "paypa1.com"  # of those alike, the first in order
