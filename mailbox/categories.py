"""Which Inbox tab a message belongs in: Primary, Updates, Promotions or Forums, from its header fields.

Pure: header fields in (lower-case name → unfolded text, as ``mime`` collects them with
``wanted``), a ``Category`` out; never raises for bad input.

The order of the questions matters more than any one marker:

1. Mail that shows no sign of having been sent by a machine to many people is Primary, and so
   is mail from someone the user knows (their contacts, everyone they wrote to) unless it came
   through a mailing list. A personal message is never sorted away: every other tab needs
   positive evidence of automated mail (list fields, Precedence, an email service provider's
   fields, a bulk mailer, a no-reply sender, Auto-Submitted).
2. A discussion list (List-Id with a List-Post address, or the fields Mailman, Google Groups
   or Discourse add) is Forums. An announcement list ("List-Post: NO") is not.
3. Automated mail that reads as a transaction or a notice about the user's account (receipts,
   orders, shipping, invoices, password resets, sign-in and security notices, codes) is Updates,
   even when it also carries bulk markers: shops send receipts through the same providers as
   their offers, so those markers alone say nothing.
4. Bulk mail with marketing markers (List-Unsubscribe, Precedence bulk, campaign fields, a bulk
   mailer) is Promotions; other automated mail (notifications) is Updates. Promotions is the
   tab where a wrong guess hides mail, so it takes bulk evidence, and a doubt goes to Updates.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping

MAX_VALUE_CHARS = 300


class Category(enum.IntEnum):
    # Stored on Message.category: Primary as NULL (most mail, and mail classified before this existed).
    PRIMARY = 0
    UPDATES = 1
    PROMOTIONS = 2
    FORUMS = 3

    @property
    def slug(self) -> str:
        return self.name.lower()

    @classmethod
    def from_slug(cls, slug: str) -> Category | None:
        return next((c for c in cls if c.slug == slug), None)


# Fields read whole; the prefixes below catch the families email service providers add.
FIELDS = frozenset({
    "subject", "from", "sender", "list-id", "list-post", "list-unsubscribe", "list-unsubscribe-post",
    "list-help", "list-archive", "precedence", "auto-submitted", "feedback-id", "x-mailer",
    "x-ses-outgoing", "x-mc-user", "x-campaign", "x-campaignid", "x-csa-complaints", "x-report-abuse",
    "x-abuse-report", "x-auto-response-suppress", "mailing-list", "x-mailman-version", "x-google-group-id",
    "x-beenthere", "x-loop", "x-list", "x-autoreply", "x-auto-generated",
})  # fmt: skip
PREFIXES = (
    "x-mailgun-", "x-mandrill-", "x-sg-", "x-sendgrid-", "x-mailjet-", "x-campaign-", "x-pm-", "x-sib-",
    "x-klaviyo-", "x-hs-", "x-sfmc-", "x-mkt", "x-marketo", "x-discourse-", "x-github-", "x-gitlab-",
    "x-emarsys-", "x-rpcampaign", "x-cmae-", "x-listmonk",
)  # fmt: skip

# Fields an email service provider adds to everything it sends (transactional and marketing alike).
_ESP_FIELDS = ("x-ses-outgoing", "x-mc-user", "x-csa-complaints", "feedback-id")
_ESP_PREFIXES = ("x-mailgun-", "x-mandrill-", "x-sg-", "x-sendgrid-", "x-mailjet-", "x-pm-", "x-sib-", "x-emarsys-")
# Fields only marketing platforms and campaign tools add.
_CAMPAIGN_FIELDS = ("x-campaign", "x-campaignid", "x-rpcampaign")
_CAMPAIGN_PREFIXES = ("x-campaign-", "x-klaviyo-", "x-hs-", "x-sfmc-", "x-mkt", "x-marketo", "x-cmae-", "x-listmonk")
_BULK_MAILERS = re.compile(
    r"mailchimp|sendinblue|brevo|klaviyo|hubspot|exacttarget|salesforce marketing|campaign ?monitor|mailerlite"
    r"|constant ?contact|acoustic|silverpop|emarsys|cleverreach|rapidmail|newsletter2go|getresponse|listmonk"
    r"|phplist|mailpoet|sendy|activecampaign|customer\.io|iterable|braze|substack|ghost|beehiiv|convertkit",
    re.IGNORECASE,
)
_FORUM_PREFIXES = ("x-discourse-",)
_NOTIFIER_PREFIXES = ("x-github-", "x-gitlab-")

# Sender local parts that mean "a machine, do not reply".
_AUTOMATED_LOCAL = re.compile(
    r"^(no-?reply|do-?not-?reply|donotreply|noreply-\w+|notifications?|notify|alerts?|mailer(-daemon)?|bounces?"
    r"|auto-?confirm|ship-?confirm|automated|system|robot|postmaster|info-noreply|keine-?antwort|nicht-?antworten)"
    r"([+._-].*)?$",
    re.IGNORECASE,
)
# Sender local parts of transactional desks.
_TRANSACTIONAL_LOCAL = re.compile(
    r"^(orders?|order-update|receipts?|billing|invoices?|rechnung(en)?|payments?|shipping|shipment|versand|tracking"
    r"|delivery|security|account(-security|-update|s)?|verify|verification|konto|bestellung(en)?|digital-no-reply)"
    r"([+._-].*)?$",
    re.IGNORECASE,
)
_MARKETING_LOCAL = re.compile(
    r"^(newsletters?|news|marketing|offers?|deals|promo(tions?)?|angebote|aktionen|sale|shop|store|hello|hi|team)"
    r"([+._-].*)?$",
    re.IGNORECASE,
)
# Subjects of transactions and account notices, English and German.
_TRANSACTIONAL_SUBJECT = re.compile(
    r"\b(receipt|invoice|your order|order (no\.?|number|#|confirm\w*)|order \#?\d|has (been )?shipped|shipped"
    r"|out for delivery|delivered|delivery (update|notification)|tracking number|shipment|refund"
    r"|payment (received|confirm\w*|failed|due)|statement|booking confirm\w*|reservation confirm\w*"
    r"|your (ticket|tickets|booking|reservation|subscription|account|trip|e-?ticket)|password|sign-?in|log-?in"
    r"|new device|security (alert|notice|code)|verification code|verify your|confirm your (email|address|account)"
    r"|one-time|2fa|two-factor|your purchase|quittung|rechnung|(ihre|deine) bestellung|bestellbestätigung"
    r"|bestellung( nr\.?| \#?\d)"
    r"|versandbestätigung|versendet|zugestellt|sendungsverfolgung|lieferung|zahlung|kontoauszug|passwort"
    r"|anmeldung|sicherheitshinweis|sicherheitscode|bestätigungscode|buchungsbestätigung|ihr (konto|ticket))",
    re.IGNORECASE,
)
# Words of offers: they outweigh a transactional word in the same subject ("Your order: 20 % off the next").
_MARKETING_SUBJECT = re.compile(
    r"(\d+\s?%|% off|\bsale\b|\bdeals?\b|\bsave\b|\bfree shipping\b|\blimited time\b|\boffer\b|\bcoupon\b|\bvoucher"
    r"|\bnew arrivals\b|\bshop (now|the)\b|\bblack friday\b|\bcyber monday\b|\bexclusive\b|\bdiscount\b"
    r"|\brabatt|\bgutschein|\bangebot|\bsparen\b|\bnur heute\b|\bneu eingetroffen\b|\bausverkauf\b)",
    re.IGNORECASE,
)
_ADDRESS = re.compile(r"<\s*([^<>\s]+@[^<>\s]+)\s*>|([^\s<>\"(),;]+@[^\s<>\"(),;]+)")


def wanted(name: str) -> bool:
    """Whether ``classify`` reads the header field ``name`` (lower case)."""
    return name in FIELDS or name.startswith(PREFIXES)


def sender_address(headers: Mapping[str, str]) -> str:
    """The From (else Sender) address, lower case; "" when there is none."""
    for name in ("from", "sender"):
        match = _ADDRESS.search(headers.get(name) or "")
        if match:
            return (match.group(1) or match.group(2)).strip().lower()
    return ""


def _has(headers: Mapping[str, str], fields: tuple[str, ...], prefixes: tuple[str, ...]) -> bool:
    return any(name in headers for name in fields) or any(name.startswith(prefixes) for name in headers)


def _is_forum(headers: Mapping[str, str]) -> bool:
    post = (headers.get("list-post") or "").strip().lower()
    if "list-id" in headers and post and post not in {"no", "<no>"} and not post.startswith("no "):
        return True
    if _has(headers, ("x-mailman-version", "x-google-group-id"), _FORUM_PREFIXES):
        return True
    return "googlegroups.com" in (headers.get("mailing-list") or "").lower()


def _precedence(headers: Mapping[str, str]) -> str:
    return (headers.get("precedence") or "").strip().lower()


def _auto_submitted(headers: Mapping[str, str]) -> bool:
    value = (headers.get("auto-submitted") or "").strip().lower()
    return bool(value) and value != "no"


def classify(headers: Mapping[str, str], *, known_sender: bool = False) -> Category:
    """The tab of a message with these header fields (names lower case); ``known_sender``: the user
    wrote to the From address or has it in their contacts."""
    headers = {k: (v or "")[:MAX_VALUE_CHARS] for k, v in headers.items() if wanted(k)}
    listed = "list-id" in headers or _precedence(headers) == "list"
    if known_sender and not listed:
        return Category.PRIMARY
    local = sender_address(headers).partition("@")[0]
    subject = headers.get("subject") or ""
    bulk_mailer = bool(_BULK_MAILERS.search(headers.get("x-mailer") or ""))
    campaign = _has(headers, _CAMPAIGN_FIELDS, _CAMPAIGN_PREFIXES) or bulk_mailer
    unsubscribe = "list-unsubscribe" in headers or "list-unsubscribe-post" in headers
    bulk = unsubscribe or campaign or _precedence(headers) in {"bulk", "junk"}
    machine = (
        bulk
        or listed
        or _auto_submitted(headers)
        or _is_forum(headers)
        or _has(headers, _ESP_FIELDS, _ESP_PREFIXES + _NOTIFIER_PREFIXES)
        or bool(_AUTOMATED_LOCAL.match(local) or _TRANSACTIONAL_LOCAL.match(local))
    )
    if not machine:
        return Category.PRIMARY
    if _is_forum(headers):
        return Category.FORUMS
    marketing_words = bool(_MARKETING_SUBJECT.search(subject))
    transactional = bool(_TRANSACTIONAL_LOCAL.match(local)) or (
        bool(_TRANSACTIONAL_SUBJECT.search(subject)) and not (marketing_words and campaign)
    )
    if transactional:
        return Category.UPDATES
    if _has(headers, (), _NOTIFIER_PREFIXES) or (_AUTOMATED_LOCAL.match(local) and not campaign):
        return Category.UPDATES
    if bulk or _MARKETING_LOCAL.match(local):
        return Category.PROMOTIONS
    return Category.UPDATES
