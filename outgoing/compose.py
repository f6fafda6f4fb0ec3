"""Building outgoing messages: addresses, subjects, quoting, reply and forward, the MIME bytes.

Plain functions without the database, except :func:`original_of`, which reads a
stored message. Every value that ends up in a header is checked for CR, LF and
NUL first (no header injection), and every address is parsed and validated.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import re
import secrets
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesHeaderParser

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.translation import gettext as _

from mailbox import mime, store
from mailbox.models import Message

# 7bit: bodies and attachments go out as quoted-printable or base64, so no server needs 8BITMIME.
POLICY = email.policy.SMTP.clone(cte_type="7bit")
_FORBIDDEN = re.compile(r"[\r\n\x00]")
_REPLY_PREFIX = re.compile(r"^\s*((re|aw|sv|antw|vs|ref|odp|res|r)(\[\d+\]|\(\d+\))?\s*[:：]\s*)+", re.IGNORECASE)
_FORWARD_PREFIX = re.compile(r"^\s*((fwd?|wg|tr|rv|enc|doorst)(\[\d+\]|\(\d+\))?\s*[:：]\s*)+", re.IGNORECASE)
_MSGID = re.compile(r"<[^<>\s]{1,990}>")
MAX_REFERENCES = 20


class ComposeError(ValueError):
    """Bad input, with the form field it belongs to."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Mailbox:
    name: str
    address: str

    @property
    def key(self) -> str:
        return self.address.lower()

    def __str__(self) -> str:
        return str(Address(self.name, addr_spec=self.address)) if self.name else self.address


# --- Header fields ---------------------------------------------------------------


def check_header(value: str, field: str) -> str:
    """A header value as typed, refused if it could end the header (CR, LF, NUL)."""
    if _FORBIDDEN.search(value or ""):
        raise ComposeError(_("Line breaks are not allowed in this field."), field)
    return value or ""


def _ascii_address(address: str) -> str:
    """The address with an IDNA domain; the part before "@" must be ASCII (no SMTPUTF8 needed)."""
    local, _at, domain = address.rpartition("@")
    if not local.isascii():
        raise ValueError(address)
    try:
        domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        raise ValueError(address) from None
    return f"{local}@{domain}"


def parse_recipients(text: str, field: str) -> list[Mailbox]:
    """``Name <a@b>, c@d`` → mailboxes, validated and without duplicates; ComposeError names the bad one."""
    check_header(text, field)
    found: list[Mailbox] = []
    seen: set[str] = set()
    for group, entries in mime.parse_addresses(text or ""):
        if group:
            raise ComposeError(_("Address groups (“%(group)s:”) are not supported.") % {"group": group}, field)
        for written, pair in entries:
            problem = _("“%(address)s” is not a valid e-mail address.") % {"address": written}
            if pair is None:
                raise ComposeError(problem, field)
            name, address = pair
            try:
                validate_email(address)
                address = _ascii_address(address)
            except (ValidationError, ValueError):
                raise ComposeError(problem, field) from None
            mailbox = Mailbox(" ".join(name.split()), address)
            if mailbox.key not in seen:
                seen.add(mailbox.key)
                found.append(mailbox)
    return found


def format_mailboxes(mailboxes: list[Mailbox]) -> str:
    return ", ".join(str(m) for m in mailboxes)


# --- Subjects and quoting ----------------------------------------------------------


def reply_subject(subject: str) -> str:
    """``RE: Re[2]: Hello`` → ``Re: Hello``: one prefix, however many there were."""
    rest = _REPLY_PREFIX.sub("", " ".join((subject or "").split()))
    return f"Re: {rest}" if rest else "Re:"


def forward_subject(subject: str) -> str:
    """``FW: Fwd: Hello`` → ``Fwd: Hello``."""
    rest = _FORWARD_PREFIX.sub("", " ".join((subject or "").split()))
    return f"Fwd: {rest}" if rest else "Fwd:"


def quote(text: str) -> str:
    """Each line behind "> " (">" for an empty or already quoted line: ">> ", not "> > ")."""
    lines = (text or "").replace("\r\n", "\n").replace("\r", "\n").rstrip("\n").split("\n")
    return "\n".join(">" + line if line.startswith(">") or not line else "> " + line for line in lines)


def _when(date: dt.datetime) -> str:
    return timezone.localtime(date).strftime("%a, %d %b %Y at %H:%M")


# --- The message replied to or forwarded ----------------------------------------------


@dataclass
class Original:
    """What reply and forward need from a stored message, read from its raw headers."""

    sender: list[Mailbox] = field(default_factory=list)
    reply_to: list[Mailbox] = field(default_factory=list)
    to: list[Mailbox] = field(default_factory=list)
    cc: list[Mailbox] = field(default_factory=list)
    subject: str = ""
    message_id: str = ""  # with brackets, as written
    references: list[str] = field(default_factory=list)
    date: dt.datetime | None = None
    text: str = ""
    from_text: str = ""
    to_text: str = ""
    cc_text: str = ""


def _lenient(text: str) -> list[Mailbox]:
    """Mailboxes of a received header: entries that are not addresses are skipped, not errors."""
    found, seen = [], set()
    for _group, entries in mime.parse_addresses(text or ""):
        for _written, pair in entries:
            if not pair:
                continue
            try:
                validate_email(pair[1])
                address = _ascii_address(pair[1])
            except (ValidationError, ValueError):
                continue
            mailbox = Mailbox(" ".join(pair[0].split()), address)
            if mailbox.key not in seen:
                seen.add(mailbox.key)
                found.append(mailbox)
    return found


def _header(headers, name: str) -> str:
    values = headers.get_all(name) or []
    return ", ".join(" ".join(mime.decode_words(str(v)).split()) for v in values)


def original_of(message: Message) -> Original:
    """Read a stored message's headers and readable text (raises OSError if its file is gone)."""
    with store.open_file(message.raw_path) as fh:
        raw = fh.read()
    headers = BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    parsed = mime.parse_bytes(raw)
    references = _MSGID.findall(str(headers.get("References", "")))
    message_id = (_MSGID.findall(str(headers.get("Message-ID", ""))) or [""])[0]
    from_text, to_text, cc_text = _header(headers, "From"), _header(headers, "To"), _header(headers, "Cc")
    return Original(
        sender=_lenient(from_text),
        reply_to=_lenient(_header(headers, "Reply-To")),
        to=_lenient(to_text),
        cc=_lenient(cc_text),
        subject=parsed.subject,
        message_id=message_id,
        references=references,
        date=message.date,
        text=parsed.text_body or (mime.html_to_text(parsed.html_body) if parsed.html_body else ""),
        from_text=from_text,
        to_text=to_text,
        cc_text=cc_text,
    )


def _without(mailboxes: list[Mailbox], excluded: set[str]) -> list[Mailbox]:
    kept, seen = [], set(excluded)
    for mailbox in mailboxes:
        if mailbox.key not in seen:
            seen.add(mailbox.key)
            kept.append(mailbox)
    return kept


def reply_recipients(original: Original, own: set[str], *, reply_all: bool) -> tuple[list[Mailbox], list[Mailbox]]:
    """(To, Cc) of a reply. ``own``: the user's addresses (lower case), never replied to.

    To is Reply-To, else From; a reply to one's own message goes to its recipients
    instead. Reply all adds the other To and Cc addresses to Cc.
    """
    own = {address.lower() for address in own}
    from_me = any(m.key in own for m in original.sender)
    if from_me:
        to = original.to
        cc = original.cc if reply_all else []
    else:
        to = original.reply_to or original.sender
        cc = [*original.to, *original.cc] if reply_all else []
    to = _without(to, own)
    cc = _without(cc, own | {m.key for m in to})
    return to, cc


def threading_headers(original: Original) -> tuple[str, str]:
    """(In-Reply-To, References) of a reply: the parent's id, and its references plus it (bounded)."""
    if not original.message_id:
        return "", " ".join(original.references[-MAX_REFERENCES:])
    chain = [ref for ref in original.references if ref != original.message_id]
    chain.append(original.message_id)
    if len(chain) > MAX_REFERENCES:  # RFC 5322 3.6.4: keep the first and the most recent
        chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
    return original.message_id, " ".join(chain)


def reply_body(original: Original, signature: str = "") -> str:
    sender = original.from_text or _("someone")
    attribution = (
        _("On %(date)s, %(sender)s wrote:") % {"date": _when(original.date), "sender": sender}
        if original.date
        else _("%(sender)s wrote:") % {"sender": sender}
    )
    return f"\n\n{signature_block(signature)}{attribution}\n{quote(original.text)}\n"


def forward_body(original: Original, signature: str = "") -> str:
    lines = [_("---------- Forwarded message ----------"), f"{_('From')}: {original.from_text}"]
    if original.date:
        lines.append(f"{_('Date')}: {_when(original.date)}")
    lines.append(f"{_('Subject')}: {original.subject}")
    if original.to_text:
        lines.append(f"{_('To')}: {original.to_text}")
    if original.cc_text:
        lines.append(f"{_('Cc')}: {original.cc_text}")
    header = "\n".join(lines)
    return f"\n\n{signature_block(signature)}{header}\n\n{original.text.rstrip()}\n"


def signature_block(signature: str) -> str:
    signature = (signature or "").replace("\r\n", "\n").strip("\n")
    return f"-- \n{signature}\n\n" if signature else ""


# --- The bytes ----------------------------------------------------------------------


@dataclass
class Draft:
    """Everything a message is built from, already validated by :func:`validate`."""

    from_name: str
    from_email: str
    to: list[Mailbox]
    cc: list[Mailbox]
    bcc: list[Mailbox]
    subject: str
    body: str
    in_reply_to: str = ""
    references: str = ""
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)  # (filename, type, data)

    @property
    def recipients(self) -> list[str]:
        return [m.address for m in _without([*self.to, *self.cc, *self.bcc], set())]


def validate(
    *,
    from_name: str,
    from_email: str,
    to: str,
    cc: str,
    bcc: str,
    subject: str,
    body: str,
    in_reply_to: str = "",
    references: str = "",
    attachments: list[tuple[str, str, bytes]] = (),
    max_recipients: int = 100,
) -> Draft:
    """Check every field (CR/LF, addresses, at least one recipient) and return what to build from."""
    check_header(subject, "subject")
    check_header(from_name, "from_name")
    check_header(in_reply_to, "in_reply_to")
    check_header(references, "references")
    sender = parse_recipients(from_email, "from_email")
    if len(sender) != 1:
        raise ComposeError(_("The sending identity needs exactly one address."), "from_email")
    draft = Draft(
        from_name=from_name.strip(),
        from_email=sender[0].address,
        to=parse_recipients(to, "to"),
        cc=parse_recipients(cc, "cc"),
        bcc=parse_recipients(bcc, "bcc"),
        subject=subject.strip(),
        body=body,
        in_reply_to=" ".join(_MSGID.findall(in_reply_to)[:1]),
        references=" ".join(_MSGID.findall(references)[-MAX_REFERENCES:]),
        attachments=[(check_header(name, "attachments"), ctype, data) for name, ctype, data in attachments],
    )
    if not draft.recipients:
        raise ComposeError(_("Add at least one recipient."), "to")
    if len(draft.recipients) > max_recipients:
        raise ComposeError(
            _("At most %(n)d recipients per message.") % {"n": max_recipients},
            "to",
        )
    return draft


def new_message_id(from_email: str) -> str:
    """A random, globally unique Message-ID in the sender's domain (nothing about this server in it)."""
    domain = from_email.rpartition("@")[2] or "webpop.invalid"
    return f"<{secrets.token_hex(16)}@{domain}>"


def build(draft: Draft, *, message_id: str, date: dt.datetime) -> bytes:
    """The message as sent: CRLF, 7-bit (RFC 2047 headers, quoted-printable or base64 parts). No Bcc header."""
    msg = EmailMessage(policy=POLICY)
    msg["From"] = Address(draft.from_name, addr_spec=draft.from_email)
    if draft.to:
        msg["To"] = [Address(m.name, addr_spec=m.address) for m in draft.to]
    if draft.cc:
        msg["Cc"] = [Address(m.name, addr_spec=m.address) for m in draft.cc]
    if not draft.to and not draft.cc:
        msg["To"] = "undisclosed-recipients:;"
    msg["Subject"] = draft.subject
    msg["Date"] = email.utils.format_datetime(date)
    msg["Message-ID"] = message_id
    if draft.in_reply_to:
        msg["In-Reply-To"] = draft.in_reply_to
    if draft.references:
        msg["References"] = draft.references
    body = draft.body.replace("\r\n", "\n").replace("\r", "\n")
    if not body.endswith("\n"):
        body += "\n"
    msg.set_content(body, charset="utf-8")
    for filename, content_type, data in draft.attachments:
        _attach(msg, filename or "attachment", content_type, data)
    for part in msg.iter_parts():
        del part["MIME-Version"]  # the email package repeats it on parts; it belongs to the top only
    return msg.as_bytes(policy=POLICY)


def _attach(msg: EmailMessage, filename: str, content_type: str, data: bytes) -> None:
    """Base64, except a forwarded message (message/rfc822 allows only 7bit, 8bit or binary: RFC 2046 5.2.1)."""
    maintype, _slash, subtype = (content_type or "").lower().partition("/")
    if not maintype or not subtype or maintype == "multipart" or (maintype == "message" and subtype != "rfc822"):
        maintype, subtype = "application", "octet-stream"
    if maintype == "message":
        text = re.sub(rb"\r?\n", b"\r\n", data)
        if text.isascii() and all(len(line) <= 998 for line in text.split(b"\r\n")):
            msg.add_attachment(text, maintype="message", subtype="rfc822", cte="7bit", filename=filename)
            return
        maintype, subtype = "application", "octet-stream"  # 8-bit mail: kept byte-exact as a file
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)


def with_bcc(raw: bytes, bcc: list[Mailbox]) -> bytes:
    """The Sent copy keeps Bcc (recipients do not see it): one header line in front of what was sent."""
    if not bcc:
        return raw
    msg = EmailMessage(policy=POLICY)
    msg["Bcc"] = [Address(m.name, addr_spec=m.address) for m in bcc]
    header = msg.as_bytes(policy=POLICY).split(b"\r\n\r\n", 1)[0]
    return header + b"\r\n" + raw
