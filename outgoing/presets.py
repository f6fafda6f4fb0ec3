"""Known providers' SMTP settings, keyed like accounts.presets (data only)."""

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
