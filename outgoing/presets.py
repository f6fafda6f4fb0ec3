"""Known providers' SMTP settings, keyed like accounts.presets, and a first guess for everyone else."""

from __future__ import annotations

from dataclasses import dataclass

from accounts import presets
from accounts.models import MailAccount


@dataclass(frozen=True)
class SmtpPreset:
    host: str
    port: int
    security: str


SMTP_PRESETS: dict[str, SmtpPreset] = {
    "gmail": SmtpPreset("smtp.gmail.com", 465, "ssl"),
    "outlook": SmtpPreset("smtp.office365.com", 587, "starttls"),
    "yahoo": SmtpPreset("smtp.mail.yahoo.com", 465, "ssl"),
    "aol": SmtpPreset("smtp.aol.com", 465, "ssl"),
    "gmx": SmtpPreset("mail.gmx.net", 587, "starttls"),
    "webde": SmtpPreset("smtp.web.de", 587, "starttls"),
    "mailru": SmtpPreset("smtp.mail.ru", 465, "ssl"),
    "yandex": SmtpPreset("smtp.yandex.com", 465, "ssl"),
    "zoho": SmtpPreset("smtp.zoho.com", 465, "ssl"),
    "fastmail": SmtpPreset("smtp.fastmail.com", 465, "ssl"),
}


def choices() -> list[tuple[str, str]]:
    return [(p.key, p.name) for p in presets.PRESETS if p.key in SMTP_PRESETS]


def as_data() -> dict[str, dict]:
    """For the settings page's script: fills host, port and security when a provider is picked."""
    return {key: {"host": p.host, "port": p.port, "security": p.security} for key, p in SMTP_PRESETS.items()}


def for_account(account: MailAccount) -> tuple[str, SmtpPreset] | None:
    """The provider of an account, by its POP3 host or its address's domain."""
    for preset in presets.PRESETS:
        if preset.host == account.host.lower() and preset.key in SMTP_PRESETS:
            return preset.key, SMTP_PRESETS[preset.key]
    preset = presets.for_address(account.username)
    if preset and preset.key in SMTP_PRESETS:
        return preset.key, SMTP_PRESETS[preset.key]
    return None


def guess(account: MailAccount) -> SmtpPreset:
    """Where an unknown provider most likely takes mail for sending: its POP3 server's "smtp." sibling.

    pop.example.org → smtp.example.org; mail.example.org stays; anything else → smtp.<the address's domain>.

    No lookup happens here (the compose page renders at once); the page's script asks the domain's own
    records afterwards (outgoing.views.smtp_suggest) and replaces the guess with what the domain publishes.
    """
    host = account.host.lower().rstrip(".")
    first, _dot, rest = host.partition(".")
    domain = account.username.rpartition("@")[2].lower() if "@" in account.username else ""
    if first in {"pop", "pop3", "pops"} and "." in rest:
        host = f"smtp.{rest}"
    elif first != "mail" and domain:  # mail.example.org mostly takes both
        host = f"smtp.{domain}"
    return SmtpPreset(host, 587, "starttls")  # submission with STARTTLS (RFC 6409), offered almost everywhere


def initial_for(account: MailAccount) -> dict:
    """A first set of sending settings for an account that has none: its provider's, else a guess.

    ``source`` says which ("preset" with ``provider``, or "guess"); login and From come from the account.
    """
    found = for_account(account)
    if found:
        key, smtp = found
        source = {"source": "preset", "provider": presets.BY_KEY[key].name, "preset": key}
    else:
        smtp = guess(account)
        source = {"source": "guess", "provider": "", "preset": ""}
    return {
        "host": smtp.host,
        "port": smtp.port,
        "security": smtp.security,
        "auth": "same",
        "from_email": account.username if "@" in account.username else "",
        **source,
    }
