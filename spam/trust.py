"""Who vouches for a message's sender, and what about the sender should make the reader wary. No Django.

Authentication (DKIM, SPF, DMARC) comes from rspamd's scan (its symbols and their options) or,
without rspamd, from the topmost ``Authentication-Results`` header of the authserv-id the account
trusts (RFC 8601 §5: anyone can write that header; only the receiving provider's own counts).
The rest is read from the message's own headers: a display name holding another address, a
sender domain that looks like one the user knows (Unicode confusables, punycode, mixed
alphabets), and a Reply-To that leads to another domain. Warnings never hide the message.

Alignment is approximated without a public suffix list: two domains align when they are equal
or one is a subdomain of the other. That never calls a foreign domain aligned; it can miss a
sibling subdomain (mail.example.com / news.example.com), which then shows as "signed by" the
domain that signed, as it is.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import getaddresses
from functools import lru_cache

import authres
import idna
from confusable_homoglyphs import confusables

RSPAMD = "rspamd"

# rspamd's symbols (its modules spf, dkim, dmarc) and the result each stands for.
_SPF = {
    "R_SPF_ALLOW": "pass", "R_SPF_FAIL": "fail", "R_SPF_SOFTFAIL": "softfail", "R_SPF_NEUTRAL": "neutral",
    "R_SPF_NA": "none", "R_SPF_DNSFAIL": "temperror", "R_SPF_PERMFAIL": "permerror",
}  # fmt: skip
_DKIM_FAILED = ("R_DKIM_REJECT", "R_DKIM_PERMFAIL")
_DMARC = {
    "DMARC_POLICY_ALLOW": ("pass", ""), "DMARC_POLICY_ALLOW_WITH_FAILURES": ("pass", ""),
    "DMARC_POLICY_REJECT": ("fail", "reject"), "DMARC_POLICY_QUARANTINE": ("fail", "quarantine"),
    "DMARC_POLICY_SOFTFAIL": ("fail", "none"), "DMARC_NA": ("none", ""),
}  # fmt: skip
_ADDRESS_IN_NAME = re.compile(r"[^\s<>()\"',;:@]+@[^\s<>()\"',;:@]+\.[^\s<>()\"',;:@]+")
_DMARC_COMMENT = re.compile(r"\bdmarc\s*=\s*\w+\s*\([^)]*?\bp=(reject|quarantine|none)\b", re.IGNORECASE)
_ASCII_LOOKALIKES = str.maketrans({"0": "o", "1": "l"})


@dataclass(frozen=True)
class Auth:
    """What the authenticating side said about a message; empty when nobody we trust said anything."""

    by: str = ""  # RSPAMD, or the authserv-id of the trusted Authentication-Results
    dkim: tuple[str, ...] = ()  # domains whose DKIM signature verified
    dkim_failed: tuple[str, ...] = ()  # domains whose signature did not (altered, or forged)
    spf: str = ""  # pass, fail, softfail, neutral, none, temperror, permerror, or "" (not checked)
    spf_domain: str = ""
    dmarc: str = ""  # pass, fail, none, or "" (not checked)
    dmarc_policy: str = ""  # the domain's policy on failure: reject, quarantine, none

    @property
    def known(self) -> bool:
        return bool(self.by)


@dataclass(frozen=True)
class Caution:
    """Something to tell the reader; ``kind`` one of the names below, the rest what the sentence names."""

    kind: str
    domain: str = ""  # the sender's domain as shown (Unicode, with its xn-- form when they differ)
    other: str = ""  # the address in the name, the domain it looks like, or where replies go


DMARC_FAIL = "dmarc_fail"
DKIM_FORGED = "dkim_forged"
NAME_ADDRESS = "name_address"
LOOKALIKE = "lookalike"
MIXED_SCRIPT = "mixed_script"
REPLY_TO = "reply_to"


@dataclass(frozen=True)
class Trust:
    signed_by: tuple[str, ...] = ()  # DKIM domains that vouch, those aligned with From first
    mailed_by: str = ""  # the domain SPF let send it
    warnings: tuple[Caution, ...] = field(default_factory=tuple)


# --- reading what the authenticating side said -------------------------------------------------


def from_rspamd(symbols: Mapping[str, Sequence[str]], *, envelope_domain: str = "") -> Auth:
    """``symbols``: rspamd's symbol names with their options (``{"R_DKIM_ALLOW": ["example.com:s=sel"]}``).

    rspamd checks SPF for the envelope sender; webpop scans mail long after delivery, so it gives
    the Return-Path's domain as ``envelope_domain``.
    """
    dkim = tuple(_domain(option.split(":", 1)[0]) for option in symbols.get("R_DKIM_ALLOW", ()))
    failed = tuple(_domain(o.split(":", 1)[0]) for name in _DKIM_FAILED for o in symbols.get(name, ()))
    spf = next((result for name, result in _SPF.items() if name in symbols), "")
    dmarc, policy = next((value for name, value in _DMARC.items() if name in symbols), ("", ""))
    if dmarc == "fail":
        options = list(symbols.get(next(name for name in _DMARC if name in symbols), ()))
        if len(options) > 1 and options[-1] in ("reject", "quarantine", "none"):
            policy = options[-1]
    return Auth(
        RSPAMD, tuple(d for d in dkim if d), tuple(d for d in failed if d), spf,
        _domain(envelope_domain) if spf else "", dmarc, policy,
    )  # fmt: skip


def from_authentication_results(values: Iterable[str], authserv_id: str) -> Auth:
    """The topmost ``Authentication-Results`` header (values, topmost first) of ``authserv_id``."""
    wanted = authserv_id.strip().lower()
    if not wanted:
        return Auth()
    for value in values:
        try:
            header = authres.AuthenticationResultsHeader.parse_value(_unfold(value))
        except (authres.AuthResError, ValueError, IndexError, AttributeError):
            continue
        if (header.authserv_id or "").lower() != wanted:
            continue
        dkim, failed, spf, spf_domain, dmarc, policy = [], [], "", "", "", ""
        for result in header.results:
            method, outcome = (result.method or "").lower(), (result.result or "").lower()
            props = {f"{p.type}.{p.name}".lower(): str(p.value or "") for p in result.properties}
            if method == "dkim":
                domain = _domain(props.get("header.d") or props.get("header.i", "").rpartition("@")[2])
                if domain and outcome == "pass":
                    dkim.append(domain)
                elif domain and outcome in ("fail", "permerror"):
                    failed.append(domain)
            elif method == "spf" and not spf:
                spf = outcome
                mailfrom = props.get("smtp.mailfrom") or props.get("smtp.helo", "")
                spf_domain = _domain(mailfrom.rpartition("@")[2])
            elif method == "dmarc" and not dmarc:
                dmarc = outcome
                policy = _policy(result, _unfold(value))
        return Auth(wanted, tuple(dkim), tuple(failed), spf, spf_domain, dmarc, policy)
    return Auth()


def _policy(result, text: str) -> str:
    props = {f"{p.type}.{p.name}".lower(): str(p.value or "").lower() for p in result.properties}
    policy = props.get("policy.dmarc", "")
    if not policy:  # most providers put it in a comment, which authres drops: dmarc=fail (p=REJECT sp=NONE)
        match = _DMARC_COMMENT.search(text)
        policy = match.group(1).lower() if match else ""
    return policy if policy in ("reject", "quarantine", "none") else ""


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]+", " ", str(value)).strip()


# --- judging ---------------------------------------------------------------------------------------


def assess(
    from_name: str, from_email: str, auth: Auth, *, reply_to: str = "", known_domains: Iterable[str] | KnownDomains = ()
) -> Trust:
    """Who vouches for the sender and what to warn about.

    ``known_domains``: the user's contacts' domains, or anything with ``imitated(domain)`` as KnownDomains has.
    """
    sender_domain = _domain(from_email.rpartition("@")[2]) if "@" in from_email else ""
    warnings: list[Caution] = []
    shown = display_domain(sender_domain)
    signed_by = tuple(sorted(set(auth.dkim), key=lambda d: (not aligned(d, sender_domain), d)))
    if auth.dmarc == "fail":
        warnings.append(Caution(DMARC_FAIL, shown))
    elif not any(aligned(d, sender_domain) for d in auth.dkim) and any(
        aligned(d, sender_domain) for d in auth.dkim_failed
    ):
        warnings.append(Caution(DKIM_FORGED, shown))
    in_name = name_address(from_name, from_email)
    if in_name:
        warnings.append(Caution(NAME_ADDRESS, shown, in_name))
    imitated = lookalike(sender_domain, known_domains)
    if imitated:
        warnings.append(Caution(LOOKALIKE, shown, display_domain(imitated)))
    elif mixed_script(sender_domain):
        warnings.append(Caution(MIXED_SCRIPT, shown))
    elsewhere = reply_elsewhere(reply_to, sender_domain)
    if elsewhere:
        warnings.append(Caution(REPLY_TO, shown, elsewhere))
    mailed_by = auth.spf_domain if auth.spf == "pass" else ""
    return Trust(signed_by, mailed_by, tuple(warnings))


def aligned(domain: str, sender_domain: str) -> bool:
    """Relaxed alignment, approximated: the same domain, or one a subdomain of the other."""
    a, b = _domain(domain), _domain(sender_domain)
    return bool(a and b) and (a == b or a.endswith("." + b) or b.endswith("." + a))


def name_address(from_name: str, from_email: str) -> str:
    """An address written in the display name that is not the sender's ("service@paypal.com" <x@evil>)."""
    real = from_email.strip().lower()
    for found in _ADDRESS_IN_NAME.findall(unicodedata.normalize("NFKC", from_name or "")):
        if found.strip(".").lower() != real:
            return found.strip(".")
    return ""


def reply_elsewhere(reply_to: str, sender_domain: str) -> str:
    """The first Reply-To address whose domain does not align with the sender's."""
    if not reply_to or not sender_domain:
        return ""
    for _name, address in getaddresses([reply_to]):
        domain = _domain(address.rpartition("@")[2]) if "@" in address else ""
        if domain and not aligned(domain, sender_domain):
            return address
    return ""


class KnownDomains:
    """The user's known domains by skeleton: which one a domain imitates is one lookup, however many are known.

    Built once per set of domains (spam/sender.py keeps the skeletons with the contacts' addresses and
    builds one from just the domains that share the sender's skeleton).
    """

    def __init__(self, domains: Iterable[str]):
        self.domains = frozenset(_domain(d) for d in domains) - {""}
        self.by_skeleton: dict[str, str] = {}
        for other in sorted(self.domains):  # the first in order when several share a skeleton
            self.by_skeleton.setdefault(skeleton(other), other)

    def imitated(self, domain: str) -> str:
        """The known domain that ``domain`` imitates (same skeleton, different domain), or ""."""
        domain = _domain(domain)
        if not domain or domain in self.domains:
            return ""
        return self.by_skeleton.get(skeleton(domain), "")


def lookalike(domain: str, known_domains: Iterable[str] | KnownDomains) -> str:
    """The known domain that ``domain`` imitates (same skeleton, different domain), or ""."""
    known = known_domains if hasattr(known_domains, "imitated") else KnownDomains(known_domains)
    return known.imitated(domain)


@lru_cache(maxsize=65536)  # senders' domains repeat
def skeleton(domain: str) -> str:
    """``domain`` with every character replaced by the ASCII letter it can be mistaken for (UTS #39)."""
    if domain.isascii() and "xn--" not in domain:
        return _ascii_skeleton(domain.lower())
    text = unicodedata.normalize("NFKC", to_unicode(domain)).lower()
    out = []
    for char in text:
        if char.isascii():
            out.append(char)
            continue
        found = confusables.is_confusable(char, greedy=True) or []
        glyphs = [g["c"] for hit in found for g in hit["homoglyphs"] if len(g["c"]) == 1 and g["c"].isascii()]
        out.append(glyphs[0].lower() if glyphs else char)
    return _ascii_skeleton("".join(out))


def address_skeleton(address: str) -> str:
    """The skeleton of an address's domain (what a stored known address is looked up by)."""
    return skeleton(_domain(address.rpartition("@")[2]))


def _ascii_skeleton(text: str) -> str:
    """Letters that pass for others at a glance: 0 and 1 for o and l, rn for m, vv for w (UTS #39)."""
    return text.translate(_ASCII_LOOKALIKES).replace("rn", "m").replace("vv", "w")


def mixed_script(domain: str) -> bool:
    """A label of ``domain`` mixes alphabets (Latin with Cyrillic …): a classic disguise."""
    return any(confusables.is_mixed_script(label) for label in to_unicode(domain).split(".") if label)


def to_unicode(domain: str) -> str:
    try:
        return idna.decode(domain) if "xn--" in domain else domain
    except (idna.IDNAError, UnicodeError, ValueError):
        return domain


def display_domain(domain: str) -> str:
    """How to name a domain to the reader: Unicode, and its xn-- form when that differs."""
    if not domain:
        return ""
    text = to_unicode(domain)
    try:
        ascii_form = domain if domain.isascii() else idna.encode(domain, uts46=True).decode()
    except (idna.IDNAError, UnicodeError, ValueError):
        ascii_form = domain
    return text if text == ascii_form else f"{text} ({ascii_form})"


def _domain(text: str) -> str:
    return (text or "").strip().strip(".").strip("<>").lower()
