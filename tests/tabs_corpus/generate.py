# ruff: noqa: E501, RUF005  (tables of sample headers read best one sender to a line)
"""Writes the labelled corpus for Inbox tabs (tests/test_tabs_corpus.py): ``mail/*.eml`` and ``labels.csv``.

    .venv/bin/python tests/tabs_corpus/generate.py

Headers follow what the senders named here put in their mail (email service providers' fields,
mailers, list managers), with the variation real mail has: some marketing mail carries no
provider fields at all, some receipts come through marketing platforms, some personal mail
talks about orders and sales, some notifications carry List-Unsubscribe. Labels say what a
person would want, not what any rule would find. Seeded: running it again writes the same files.
"""

from __future__ import annotations

import csv
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

HERE = Path(__file__).parent
rng = random.Random(18)
START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

FIRST = ["Anna", "Jonas", "Maria", "Lukas", "Sophie", "Ben", "Emma", "Paul", "Mia", "Felix", "Lea", "Tom",
         "Priya", "Omar", "Chen", "Sara", "Mehmet", "Julia", "David", "Ines"]  # fmt: skip
LAST = ["Becker", "Schmidt", "Okafor", "Nguyen", "Rossi", "Meyer", "Kowalski", "Silva", "Wagner", "Haddad"]
PERSONAL_DOMAINS = ["gmail.com", "web.de", "gmx.net", "outlook.com", "posteo.de", "icloud.com", "t-online.de",
                    "mailbox.org", "example-uni.de", "fischer-architekten.de", "yahoo.com"]  # fmt: skip
PERSONAL_MAILERS = ["", "", "", "Microsoft Outlook 16.0", "Apple Mail (2.3774.500.171.1.1)",
                    "Mozilla Thunderbird", "iPhone Mail (21E236)", "K-9 Mail for Android", "Roundcube Webmail/1.6.6"]  # fmt: skip
PERSONAL_SUBJECTS = [
    "Lunch on Thursday?", "Photos from the weekend", "Re: Flat viewing", "Kannst du mich morgen abholen?",
    "Re: Your order of the birthday cake", "Receipt for dinner - I'll pay you back", "Selling my bike, interested?",
    "Password for the wifi at the cabin", "Re: Re: Geburtstag von Oma", "Draft of chapter 3", "Quick question",
    "Re: meeting notes", "Are you free on Saturday?", "Rechnung vom Handwerker - kannst du drüberschauen?",
    "Holiday plans", "Re: sale of the old sofa", "Fwd: your flight details", "Happy birthday!",
    "Re: Kita-Abholung", "Can you review my CV?", "The book I mentioned", "Re: Umzug am 12.",
    "Dinner at ours, 50% of the cooking is yours :)", "Re: Shipping the boxes to Hamburg", "Hi from Lisbon",
    "Your account of the trip was hilarious", "Verification of the minutes (board meeting)", "Re: Angebot für die Küche",
]  # fmt: skip

SHOPS = [  # (brand, domain, German?)
    ("Zalando", "zalando.de", True), ("Otto", "otto.de", True), ("MediaMarkt", "mediamarkt.de", True),
    ("IKEA", "ikea.com", False), ("H&M", "hm.com", False), ("Decathlon", "decathlon.de", True),
    ("Etsy", "etsy.com", False), ("Lidl", "lidl.de", True), ("Patagonia", "patagonia.com", False),
    ("Thalia", "thalia.de", True), ("Uniqlo", "uniqlo.eu", False), ("Tchibo", "tchibo.de", True),
    ("Bergfreunde", "bergfreunde.de", True), ("Adidas", "adidas.com", False), ("Notino", "notino.de", True),
]  # fmt: skip
PROMO_SUBJECTS_EN = ["{n}% off everything this weekend", "New arrivals you'll love", "Last chance: sale ends tonight",
                     "Free shipping on all orders", "Your exclusive member discount", "Spring collection is here",
                     "Only 48 hours: save big", "We picked these for you", "Black Friday starts now",
                     "Don't miss out, {n}% off", "Back in stock", "Treat yourself this weekend"]  # fmt: skip
PROMO_SUBJECTS_DE = ["{n} % Rabatt auf alles", "Neu eingetroffen: die Frühjahrskollektion", "Nur heute: Gutschein für dich",
                     "Sale: bis zu {n} % sparen", "Deine Vorteile im April", "Entdecke die neuen Trends",
                     "Letzte Chance!", "Wir haben etwas für dich"]  # fmt: skip
NEWSLETTERS = [  # (name, from address, platform)
    ("The Weekly Byte", "hello@weeklybyte.substack.com", "substack"), ("Morning Brew", "crew@morningbrew.com", "sailthru"),
    ("heise Newsletter", "newsletter@heise.de", "cleverreach"), ("Krautreporter", "post@krautreporter.de", "mailchimp"),
    ("Python Weekly", "rahul@pythonweekly.com", "mailchimp"), ("Ghost Digest", "digest@ghostwriters.blog", "ghost"),
    ("Stadtbibliothek", "info@stadtbibliothek-example.de", "plain"), ("Zeit Online", "newsletter@zeit.de", "emarsys"),
    ("The Hustle", "news@thehustle.co", "hubspot"), ("Yoga Studio Om", "studio@om-yoga.de", "sendinblue"),
    ("Climate Weekly", "editor@climateweekly.org", "buttondown"), ("Local Farm Box", "farm@farmbox.example", "klaviyo"),
]  # fmt: skip
NEWS_SUBJECTS = ["Issue #{n}: what we read this week", "This week in tech", "Ausgabe {n}: Die Woche im Überblick",
                 "Your April digest", "Five things worth your time", "Events this month", "Neues aus dem Verein",
                 "Sunday reading list", "The state of the climate, issue {n}"]  # fmt: skip

UPDATES = [  # (brand, from, subjects, provider)
    ("Amazon.de", "bestellbestaetigung@amazon.de", ["Ihre Amazon.de Bestellung #302-{n}", "Versandbestätigung: Ihre Bestellung"], "ses"),
    ("Amazon", "shipment-tracking@amazon.com", ["Your package has shipped!", "Delivered: your Amazon package"], "ses"),
    ("DHL", "noreply@dhl.de", ["Ihre Sendung 00340434{n} wird heute zugestellt", "Sendungsverfolgung: Paket unterwegs"], "plain"),
    ("PayPal", "service@paypal.de", ["Sie haben eine Zahlung an {brand} gesendet", "Quittung für Ihre Zahlung"], "plain"),
    ("GitHub", "noreply@github.com", ["[GitHub] A new SSH key was added to your account", "[GitHub] Please verify your device"], "github"),
    ("Deutsche Bahn", "buchungsbestaetigung@bahn.de", ["Buchungsbestätigung (Auftrag {n})", "Ihr Ticket für Ihre Reise"], "plain"),
    ("Stripe", "receipts@stripe.com", ["Your receipt from {brand} #{n}", "Receipt for your payment"], "postmark"),
    ("Google", "no-reply@accounts.google.com", ["Security alert", "New sign-in on Linux"], "plain"),
    ("Sparkasse", "noreply@sparkasse.de", ["Neuer Kontoauszug verfügbar", "Sicherheitshinweis zu Ihrem Online-Banking"], "plain"),
    ("Hetzner", "billing@hetzner.com", ["Ihre Rechnung {n}", "Invoice {n} for your cloud servers"], "plain"),
    ("Booking.com", "noreply@booking.com", ["Your booking is confirmed", "Reservation confirmed: Hotel Adler"], "sendgrid"),
    ("Zalando", "service@zalando.de", ["Deine Bestellung ist unterwegs", "Deine Zalando Bestellung {n}"], "ses"),
    ("Etsy", "transaction@etsy.com", ["Your Etsy Purchase from MapleCraft ({n})", "Your order has shipped"], "sendgrid"),
    ("Nextcloud", "nextcloud@cloud.example.org", ["Password reset", "Reset your password"], "plain"),
    ("Lieferando", "info@lieferando.de", ["Deine Bestellung bei Pizzeria Roma", "Bestellbestätigung"], "mailgun"),
    ("Apple", "no_reply@email.apple.com", ["Your receipt from Apple.", "Your Apple ID was used to sign in"], "plain"),
    ("Facebook", "notification@facebookmail.com", ["Anna Becker commented on your photo", "You have 3 new notifications"], "fb"),
    ("LinkedIn", "messages-noreply@linkedin.com", ["Jonas, you appeared in 9 searches this week", "You have 2 new invitations"], "linkedin"),
    ("Mastodon", "notifications@chaos.social", ["You were mentioned by @ines", "New follower"], "plain"),
    ("Vodafone", "rechnung@vodafone.de", ["Ihre Vodafone Rechnung ist da", "Ihre Rechnung für März"], "emarsys"),
    ("Uber", "uber.germany@uber.com", ["Your Tuesday evening trip with Uber", "Your trip receipt"], "sendgrid"),
    ("Microsoft", "account-security-noreply@accountprotection.microsoft.com", ["Microsoft account security code", "Unusual sign-in activity"], "plain"),
]  # fmt: skip

LISTS = [  # (list id, post address, manager)
    ("debian-user.lists.debian.org", "debian-user@lists.debian.org", "debian"),
    ("python-dev.python.org", "python-dev@python.org", "mailman3"),
    ("postgresql general <pgsql-general.lists.postgresql.org>", "pgsql-general@lists.postgresql.org", "pglister"),
    ("Kletterverein Süd <kletterverein-sued.googlegroups.com>", "kletterverein-sued@googlegroups.com", "google"),
    ("elternrat-3b.googlegroups.com", "elternrat-3b@googlegroups.com", "google"),
    ("forum.nixos.org", "", "discourse"),
    ("discuss.python.org", "", "discourse"),
    ("dovecot.dovecot.org", "dovecot@dovecot.org", "mailman"),
    ("Repair Café Ost <repaircafe.groups.io>", "repaircafe@groups.io", "groupsio"),
    ("sympa-users.listes.example.fr", "sympa-users@listes.example.fr", "sympa"),
]  # fmt: skip
LIST_SUBJECTS = ["Re: Problem with systemd-resolved after upgrade", "[ANN] Release candidate 2", "Question about VACUUM",
                 "Re: Treffen am Mittwoch: wer kommt?", "Re: Wandertag Klasse 3b", "Best practice for flakes?",
                 "Re: PEP discussion", "Re: sieve filter not matching", "Nächster Termin: Toaster-Reparatur",
                 "Re: configuration question", "Re: Re: Hallenzeiten im Winter", "Proposal: drop Python 3.9"]  # fmt: skip

rows: list[tuple[str, str, str, str]] = []  # (file, label, known, kind)


def msgid(domain: str) -> str:
    return f"<{rng.getrandbits(64):016x}@{domain}>"


def person() -> tuple[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    sep = rng.choice([".", "", "_", "-"])
    return (
        f"{first} {last}",
        f"{first.lower()}{sep}{last.lower()}{rng.choice(['', '', str(rng.randint(1, 99))])}@{rng.choice(PERSONAL_DOMAINS)}",
    )


def write(kind: str, label: str, headers: list[tuple[str, str]], body: str, *, known: bool = False) -> None:
    n = len(rows)
    date = START + timedelta(hours=n * 7 + rng.randint(0, 5), minutes=rng.randint(0, 59))
    domain = headers[0][1].rpartition("@")[2].strip(">") or "example.org"
    base = [("Date", format_datetime(date)), ("Message-ID", msgid(domain)), ("To", "jo@example.net")]
    head = "".join(f"{k}: {v}\r\n" for k, v in headers + base)
    text = (
        head
        + "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + body
        + "\r\n"
    )
    name = f"{n:03d}-{kind}.eml"
    (HERE / "mail" / name).write_bytes(text.encode())
    rows.append((name, label, "yes" if known else "no", kind))


def unsubscribe(domain: str, one_click: bool) -> list[tuple[str, str]]:
    token = rng.getrandbits(64)
    fields = [("List-Unsubscribe", rng.choice([
        f"<https://{domain}/unsubscribe/{token:x}>, <mailto:unsubscribe@{domain}?subject=unsubscribe>",
        f"<mailto:leave-{token:x}@{domain}>",
        f"<https://click.{domain}/u/{token:x}>",
    ]))]  # fmt: skip
    if one_click:
        fields.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    return fields


def platform_fields(platform: str, domain: str) -> list[tuple[str, str]]:
    token = f"{rng.getrandbits(48):x}"
    return {
        "mailchimp": [
            ("X-Mailer", "MailChimp Mailer - **CID" + token + "**"),
            ("X-MC-User", token),
            ("X-Campaign", "mailchimp" + token),
            ("X-campaignid", "mailchimp" + token),
            ("X-Report-Abuse", "Please report abuse at https://mailchimp.com/contact/abuse/"),
            ("Feedback-ID", f"{rng.randint(10000, 99999)}:{rng.randint(100, 999)}:mc"),
        ],
        "substack": [
            ("X-Mailgun-Sid", token),
            ("X-Mailgun-Tag", "post"),
            ("Feedback-ID", f"post-{rng.randint(1000, 9999)}:substack"),
        ],
        "cleverreach": [("X-Mailer", "CleverReach Mailer"), ("X-CSA-Complaints", "csa-complaints@eco.de")],
        "ghost": [("X-Mailgun-Variables", '{"email-id": "' + token + '"}')],
        "sailthru": [("X-rpcampaign", "sailthru" + token), ("Feedback-ID", f"{token}:sailthru")],
        "emarsys": [("X-EMarSys-Identify", token), ("X-CSA-Complaints", "csa-complaints@eco.de")],
        "hubspot": [("X-HS-Cid", token), ("X-Report-Abuse-To", "abuse@hubspot.com")],
        "sendinblue": [("X-Mailer", "Sendinblue"), ("X-sib-id", token), ("X-CSA-Complaints", "csa-complaints@eco.de")],
        "klaviyo": [("X-Kmail-Account", token), ("X-Klaviyo-Campaign", token)],
        "sendgrid": [("X-SG-EID", token), ("X-Entity-ID", token)],
        "ses": [("X-SES-Outgoing", "2026.03.01-54.240.4.9"), ("Feedback-ID", f"1.eu-west-1.{token}=:AmazonSES")],
        "postmark": [("X-PM-Message-Id", token), ("X-PM-Tag", "receipt")],
        "mailgun": [("X-Mailgun-Sid", token)],
        "buttondown": [],
        "plain": [],
    }.get(platform, [])


def promotions(count: int) -> None:
    for i in range(count):
        brand, domain, german = SHOPS[i % len(SHOPS)]
        subject = rng.choice(PROMO_SUBJECTS_DE if german else PROMO_SUBJECTS_EN).format(
            n=rng.choice([10, 15, 20, 30, 40, 50, 70])
        )
        local = rng.choice(["newsletter", "news", "info", "angebote" if german else "offers", "hello", "mail", "shop"])
        headers = [
            ("From", f'"{brand}" <{local}@{rng.choice(["", "mail.", "news.", "e."])}{domain}>'),
            ("Subject", subject),
        ]
        style = i % 5
        if style == 0:
            headers += unsubscribe(domain, True) + platform_fields(
                rng.choice(["sendgrid", "ses", "emarsys", "klaviyo"]), domain
            )
        elif style == 1:
            headers += unsubscribe(domain, False) + [("Precedence", "bulk")]
        elif style == 2:
            headers += unsubscribe(domain, rng.random() < 0.5)  # nothing else: a shop's own mail server
        elif style == 3:
            headers += [
                ("X-Mailer", rng.choice(["Salesforce Marketing Cloud", "Acoustic Campaign", "Brevo"]))
            ] + unsubscribe(domain, True)
        else:
            headers += (
                platform_fields("mailchimp", domain)
                + unsubscribe(domain, True)
                + [("List-ID", f"{rng.getrandbits(40):x}.list-id.mcsv.net")]
            )
        write("promotion", "promotions", headers, f"{subject}\n\nShop now at https://{domain}/ \n")


def newsletters(count: int) -> None:
    for i in range(count):
        name, address, platform = NEWSLETTERS[i % len(NEWSLETTERS)]
        domain = address.rpartition("@")[2]
        subject = rng.choice(NEWS_SUBJECTS).format(n=rng.randint(12, 340))
        headers = [("From", f'"{name}" <{address}>'), ("Subject", subject)]
        headers += platform_fields(platform, domain)
        if platform == "plain":
            headers += [("Precedence", "bulk")]
        else:
            headers += unsubscribe(domain, platform not in {"buttondown", "cleverreach"})
        if platform in {"substack", "ghost", "buttondown"}:
            headers += [("List-Id", f"<{domain}>")]
        write("newsletter", "promotions", headers, f"{subject}\n\nRead online: https://{domain}/p/{i}\n")


def updates(count: int) -> None:
    for i in range(count):
        brand, address, subjects, provider = UPDATES[i % len(UPDATES)]
        domain = address.rpartition("@")[2]
        subject = rng.choice(subjects).format(
            n=rng.randint(1000000, 9999999), brand=rng.choice(["Spotify", "Etsy", "Kiosk 24"])
        )
        headers = [("From", f'"{brand}" <{address}>'), ("Subject", subject)]
        if provider == "github":
            headers += [("X-GitHub-Reason", "security_alert"), ("X-Auto-Response-Suppress", "All"), ("Precedence", "list"),
                        ("List-Id", "<security.github.com>")]  # fmt: skip
        elif provider == "fb":
            headers += [("X-Facebook-Notify", "comment"), ("Precedence", "bulk")] + unsubscribe(
                "facebookmail.com", True
            )
        elif provider == "linkedin":
            headers += [
                ("X-LinkedIn-Class", "EMAIL-DEFAULT"),
                ("X-LinkedIn-Template", "email_network_digest"),
            ] + unsubscribe("linkedin.com", True)
        else:
            headers += platform_fields(provider, domain)
        if rng.random() < 0.3 and provider not in {"fb", "linkedin"}:
            headers += unsubscribe(domain, rng.random() < 0.5)  # some send receipts with an unsubscribe link too
        if rng.random() < 0.3:
            headers += [("Auto-Submitted", "auto-generated")]
        write("update", "updates", headers, f"{subject}\n\nDetails: https://{domain}/account\n")


def personal(count: int) -> None:
    for i in range(count):
        name, address = person()
        subject = PERSONAL_SUBJECTS[i % len(PERSONAL_SUBJECTS)]
        headers = [("From", f'"{name}" <{address}>' if rng.random() < 0.8 else address), ("Subject", subject)]
        mailer = rng.choice(PERSONAL_MAILERS)
        if mailer:
            headers.append(
                ("X-Mailer" if "Outlook" in mailer or "Apple" in mailer or "iPhone" in mailer else "User-Agent", mailer)
            )
        if subject.startswith("Re:"):
            headers.append(("In-Reply-To", msgid("example.net")))
        if "outlook" in address or "fischer" in address:
            headers += [("Thread-Topic", subject), ("X-MS-Has-Attach", ""), ("X-MS-TNEF-Correlator", "")]
        if "gmail" in address:
            headers.append(("X-Gm-Message-State", f"AOJu0Y{rng.getrandbits(60):x}"))
        write("personal", "primary", headers, "Hi Jo,\n\nsee above.\n\nCheers\n", known=rng.random() < 0.6)


def mailing_lists(count: int) -> None:
    for i in range(count):
        list_id, post, manager = LISTS[i % len(LISTS)]
        name, address = person()
        subject = rng.choice(LIST_SUBJECTS)
        bare_id = list_id.rpartition("<")[2].rstrip(">")
        headers = [
            ("From", f'"{name}" <{address}>'),
            ("Subject", subject),
            ("List-Id", list_id if "<" in list_id else f"<{list_id}>"),
        ]
        if manager == "discourse":
            host = bare_id
            headers = [("From", f'"{name} via {host}" <notifications@{host}>'), ("Subject", f"[{host.split('.')[0]}] {subject}"),
                       ("List-Id", f"<{bare_id}>"), ("X-Discourse-Post-Id", str(rng.randint(1000, 99999))),
                       ("X-Discourse-Topic-Id", str(rng.randint(100, 9999))), ("Precedence", "list"),
                       ("Auto-Submitted", "auto-generated")] + unsubscribe(host, False)  # fmt: skip
        elif manager == "google":
            headers += [("Mailing-list", f"list {post}; contact {post.replace('@', '+owners@')}"), ("List-Post", f"<mailto:{post}>"),
                        ("X-Google-Group-Id", str(rng.randint(10**11, 10**12))), ("Precedence", "list"),
                        ("List-Help", "<https://support.google.com/a/answer/1234>")] + unsubscribe("googlegroups.com", False)  # fmt: skip
        elif manager in {"mailman", "mailman3"}:
            headers += [("List-Post", f"<mailto:{post}>"), ("X-Mailman-Version", "2.1.39" if manager == "mailman" else "3.3.9"),
                        ("Precedence", "list"), ("List-Archive", f"<https://{post.rpartition('@')[2]}/archives/>")] + unsubscribe(post.rpartition("@")[2], False)  # fmt: skip
        elif manager == "debian":
            headers += [("List-Post", f"<mailto:{post}>"), ("X-Mailing-List", f"<{post}> archive/latest/{rng.randint(1000, 9999)}"),
                        ("X-Loop", post), ("List-Archive", "<https://lists.debian.org/msgid-search/>"), ("Precedence", "list"),
                        ("Resent-Sender", f"{post.replace('@', '-request@')}")] + unsubscribe("lists.debian.org", False)  # fmt: skip
        elif manager == "pglister":
            headers += [("List-Post", f"<mailto:{post}>"), ("List-Archive", "<https://www.postgresql.org/list/pgsql-general/>"),
                        ("Precedence", "bulk")] + unsubscribe("lists.postgresql.org", False)  # fmt: skip
        elif manager == "groupsio":
            headers += [("List-Post", f"<mailto:{post}>"), ("Precedence", "Bulk"), ("X-Groupsio-MsgNum", str(rng.randint(10, 900)))] + unsubscribe("groups.io", True)  # fmt: skip
        else:
            headers += [("List-Post", f"<mailto:{post}>"), ("X-Loop", post), ("Precedence", "list")] + unsubscribe(post.rpartition("@")[2], False)  # fmt: skip
        write("list", "forums", headers, "> quoted text\n\nMy reply.\n", known=rng.random() < 0.2)


def main() -> None:
    (HERE / "mail").mkdir(exist_ok=True)
    for old in (HERE / "mail").glob("*.eml"):
        old.unlink()
    promotions(45)
    newsletters(36)
    updates(66)
    personal(56)
    mailing_lists(44)
    rng.shuffle(rows)
    with open(HERE / "labels.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "label", "known_sender", "kind"])
        writer.writerows(sorted(rows))


if __name__ == "__main__":
    main()
