"""Known providers' POP3 settings, so most people only type their address and password."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from django.utils.translation import gettext_noop


@dataclass(frozen=True)
class Preset:
    key: str
    name: str
    host: str
    port: int = 995
    security: str = "ssl"
    # How the login name is formed: the whole address, or the part before "@".
    username: str = "address"
    domains: tuple[str, ...] = ()
    notes: str = ""  # marked with gettext_noop; translated where it is shown (autoconfig.suggest)
    oauth: str = field(default="")  # "google" / "microsoft" once OAuth2 is configured

    def as_dict(self) -> dict:
        data = asdict(self)
        data["domains"] = list(self.domains)
        return data

    def username_for(self, address: str) -> str:
        return address.split("@", 1)[0] if self.username == "local" else address


PRESETS: tuple[Preset, ...] = (
    Preset(
        "gmail",
        "Gmail",
        "pop.gmail.com",
        domains=("gmail.com", "googlemail.com"),
        notes=gettext_noop(
            "Turn on POP in Gmail's settings (Forwarding and POP/IMAP). With 2-step verification, "
            "use an app password. Gmail keeps its own copy whatever webpop's policy says."
        ),
        oauth="google",
    ),
    Preset(
        "outlook",
        "Outlook.com / Office 365",
        "outlook.office365.com",
        domains=("outlook.com", "hotmail.com", "live.com", "msn.com", "hotmail.co.uk", "outlook.de"),
        notes=gettext_noop(
            "Turn on POP in Outlook's settings (Mail → Forwarding and IMAP). Microsoft accounts "
            "need “Sign in with Microsoft” where passwords are no longer accepted."
        ),
        oauth="microsoft",
    ),
    Preset(
        "yahoo",
        "Yahoo Mail",
        "pop.mail.yahoo.com",
        domains=("yahoo.com", "yahoo.co.uk", "yahoo.de", "yahoo.fr", "ymail.com", "rocketmail.com"),
        notes=gettext_noop("Create an app password in Yahoo's account security settings and use it here."),
    ),
    Preset(
        "aol", "AOL Mail", "pop.aol.com", domains=("aol.com", "aim.com"), notes=gettext_noop("Use an app password.")
    ),
    Preset(
        "gmx",
        "GMX",
        "pop.gmx.net",
        domains=("gmx.net", "gmx.de", "gmx.at", "gmx.ch", "gmx.com"),
        notes=gettext_noop("Allow POP3 access in GMX's settings (E-Mail → POP3 & IMAP)."),
    ),
    Preset(
        "webde",
        "WEB.DE",
        "pop3.web.de",
        domains=("web.de",),
        notes=gettext_noop("Allow POP3 access in WEB.DE's settings (E-Mail → POP3 & IMAP)."),
    ),
    Preset(
        "mailru",
        "Mail.ru",
        "pop.mail.ru",
        domains=("mail.ru", "inbox.ru", "list.ru", "bk.ru"),
        notes=gettext_noop("Use a password for external applications."),
    ),
    Preset(
        "yandex",
        "Yandex Mail",
        "pop.yandex.com",
        domains=("yandex.com", "yandex.ru", "ya.ru"),
        notes=gettext_noop("Allow POP3 in Yandex Mail's settings and use an app password."),
    ),
    Preset(
        "zoho",
        "Zoho Mail",
        "pop.zoho.com",
        domains=("zoho.com", "zohomail.com"),
        notes=gettext_noop("Enable POP access in Zoho Mail's settings. Accounts in the EU use pop.zoho.eu."),
    ),
    Preset(
        "fastmail",
        "Fastmail",
        "pop.fastmail.com",
        domains=("fastmail.com", "fastmail.fm", "messagingengine.com"),
        notes=gettext_noop("Create an app password with POP access in Fastmail's settings."),
    ),
)

BY_KEY = {preset.key: preset for preset in PRESETS}
_BY_DOMAIN = {domain: preset for preset in PRESETS for domain in preset.domains}


def for_address(address: str) -> Preset | None:
    domain = address.rpartition("@")[2].strip().lower()
    return _BY_DOMAIN.get(domain)
