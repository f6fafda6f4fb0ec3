"""Building outgoing messages: addresses, subjects, quoting, reply and forward, the MIME bytes.

Plain functions without the database, except :func:`original_of`, which reads a
stored message. Every value is made to fit where it goes (see ``text``): free
text for a header (subject, names, file names) is normalised to one line, the
body to LF line ends, message ids from received mail are kept only when
well-formed, and address lists with a control character or line break are
refused, so no field can inject a header or make the ``email`` package raise.
Every address is parsed and validated.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import html
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesHeaderParser

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from mailbox import damage, mime
from mailbox.models import Message

from . import headers, richtext, text

# 7bit: bodies and attachments go out as quoted-printable or base64, so no server needs 8BITMIME.
# Subject and address headers are folded by ``headers`` (see there) and written as they are.
POLICY = email.policy.SMTP.clone(cte_type="7bit", refold_source="none")
_REPLY_PREFIX = re.compile(r"^\s*((re|aw|sv|antw|vs|ref|odp|res|r)(\[\d+\]|\(\d+\))?\s*[:：]\s*)+", re.IGNORECASE)
_FORWARD_PREFIX = re.compile(r"^\s*((fwd?|wg|tr|rv|enc|doorst)(\[\d+\]|\(\d+\))?\s*[:：]\s*)+", re.IGNORECASE)
MAX_REFERENCES = 20
# A rich reply quotes the original's HTML up to this size; beyond it, its text (the editor would crawl).
MAX_QUOTED_HTML = 200_000


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


def check_line(value: str, field: str) -> str:
    """A structured field (an address list) as typed, refused if it holds a line break or control character."""
    if text.has_control(value):
        raise ComposeError(_("Line breaks and control characters are not allowed in this field."), field)
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


def parse_recipients(value: str, field: str) -> list[Mailbox]:
    """``Name <a@b>, c@d`` → mailboxes, validated and without duplicates; ComposeError names the bad one."""
    check_line(value, field)
    found: list[Mailbox] = []
    seen: set[str] = set()
    for group, entries in mime.parse_addresses(value or ""):
        if group:
            raise ComposeError(_("Address groups (“%(group)s:”) are not supported.") % {"group": group}, field)
        for written, pair in entries:
            problem = _("“%(address)s” is not a valid e-mail address.") % {"address": written}
            if pair is None:
                raise ComposeError(problem, field)
            try:
                mailbox = _mailbox(*pair)
            except (ValidationError, ValueError, HeaderParseError):
                raise ComposeError(problem, field) from None
            if mailbox.key not in seen:
                seen.add(mailbox.key)
                found.append(mailbox)
    return found


def _mailbox(name: str, address: str) -> Mailbox:
    """A validated mailbox, its name normalised; raises if the address is not one the message can carry."""
    validate_email(address)
    mailbox = Mailbox(text.one_line(name), _ascii_address(address))
    Address(mailbox.name, addr_spec=mailbox.address)  # str(mailbox) needs the email package to accept it
    return mailbox


def format_mailboxes(mailboxes: list[Mailbox]) -> str:
    return ", ".join(str(m) for m in mailboxes)


# --- Subjects and quoting ----------------------------------------------------------


def reply_subject(subject: str) -> str:
    """``RE: Re[2]: Hello`` → ``Re: Hello``: one prefix, however many there were."""
    rest = _REPLY_PREFIX.sub("", text.one_line(subject))
    return f"Re: {rest}" if rest else "Re:"


def forward_subject(subject: str) -> str:
    """``FW: Fwd: Hello`` → ``Fwd: Hello``."""
    rest = _FORWARD_PREFIX.sub("", text.one_line(subject))
    return f"Fwd: {rest}" if rest else "Fwd:"


def quote(body: str) -> str:
    """Each line behind "> " (">" for an empty or already quoted line: ">> ", not "> > ")."""
    lines = text.body(body).rstrip("\n").split("\n")
    return "\n".join(">" + line if line.startswith(">") or not line else "> " + line for line in lines)


def _when(date: dt.datetime) -> str:
    # Translators: the date in "On <date>, <sender> wrote:" (Django date format syntax; \\a\\t is a literal "at").
    return formats.date_format(timezone.localtime(date), pgettext("reply attribution date", "D, j M Y \\a\\t H:i"))


# --- The message replied to or forwarded ----------------------------------------------


@dataclass
class Original:
    """What reply and forward need from a stored message, read from its raw headers."""

    sender: list[Mailbox] = field(default_factory=list)
    reply_to: list[Mailbox] = field(default_factory=list)
    to: list[Mailbox] = field(default_factory=list)
    cc: list[Mailbox] = field(default_factory=list)
    delivered_to: list[Mailbox] = field(default_factory=list)
    subject: str = ""
    message_id: str = ""  # with brackets, as written
    references: list[str] = field(default_factory=list)
    date: dt.datetime | None = None
    text: str = ""
    html: str = ""  # as received, unsanitized
    from_text: str = ""
    to_text: str = ""
    cc_text: str = ""


def _lenient(value: str) -> list[Mailbox]:
    """Mailboxes of a received header: entries that are not addresses are skipped, not errors."""
    found, seen = [], set()
    for _group, entries in mime.parse_addresses(value or ""):
        for _written, pair in entries:
            if not pair:
                continue
            try:
                mailbox = _mailbox(*pair)
            except (ValidationError, ValueError, HeaderParseError):
                continue
            if mailbox.key not in seen:
                seen.add(mailbox.key)
                found.append(mailbox)
    return found


def _header(fields, name: str, *, decoded: bool = True) -> str:
    """A received header's values joined, as one line; encoded words decoded unless ``decoded`` is False.

    Address lists are parsed undecoded: a decoded name may hold commas, quotes or brackets.
    """
    values = [str(v) for v in fields.get_all(name) or []]
    return ", ".join(text.one_line(mime.decode_words(v) if decoded else v) for v in values)


def original_of(message: Message) -> Original:
    """Read a stored message's headers and readable text.

    Raises ``damage.DamagedFileError`` (an OSError) when its file is missing or does not hash to its
    name: a damaged original is never quoted as if it were what was received.
    """
    return parse_original(damage.read_checked(message.raw_path, message.sha256), message.date)


def parse_original(raw: bytes, date: dt.datetime | None) -> Original:
    """What reply and forward need from a message's bytes, which anyone may have written."""
    fields = BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    parsed = mime.parse_bytes(raw)
    references = text.message_ids(str(fields.get("References", "")))
    message_id = (text.message_ids(str(fields.get("Message-ID", ""))) or [""])[0]
    from_text, to_text, cc_text = _header(fields, "From"), _header(fields, "To"), _header(fields, "Cc")
    return Original(
        sender=_lenient(_header(fields, "From", decoded=False)),
        reply_to=_lenient(_header(fields, "Reply-To", decoded=False)),
        to=_lenient(_header(fields, "To", decoded=False)),
        cc=_lenient(_header(fields, "Cc", decoded=False)),
        delivered_to=_lenient(_header(fields, "Delivered-To", decoded=False)),
        subject=text.one_line(parsed.subject),
        message_id=message_id,
        references=references,
        date=date,
        text=text.body(parsed.text_body or (mime.html_to_text(parsed.html_body) if parsed.html_body else "")),
        html=parsed.html_body or "",
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


def _with_signature(top: str, signature: str, placement: str) -> str:
    """The body of a reply or forward: the signature above the quoted text (the default) or below it."""
    if placement == "below":
        block = signature_block(signature).rstrip("\n")
        return f"\n\n{top}\n\n{block}\n" if block else f"\n\n{top}\n"
    return f"\n\n{signature_block(signature)}{top}\n"


def attribution(original: Original) -> str:
    """The line above the quoted text: "On <date>, <sender> wrote:"."""
    sender = original.from_text or _("someone")
    if original.date:
        return _("On %(date)s, %(sender)s wrote:") % {"date": _when(original.date), "sender": sender}
    return _("%(sender)s wrote:") % {"sender": sender}


def reply_body(original: Original, signature: str = "", placement: str = "above") -> str:
    return _with_signature(f"{attribution(original)}\n{quote(original.text)}", signature, placement)


def forward_body(original: Original, signature: str = "", placement: str = "above") -> str:
    header = "\n".join(_forward_header(original))
    return _with_signature(f"{header}\n\n{original.text.rstrip()}", signature, placement)


def _forward_header(original: Original) -> list[str]:
    lines = [_("---------- Forwarded message ----------"), f"{_('From')}: {original.from_text}"]
    if original.date:
        lines.append(f"{_('Date')}: {_when(original.date)}")
    lines.append(f"{_('Subject')}: {original.subject}")
    if original.to_text:
        lines.append(f"{_('To')}: {original.to_text}")
    if original.cc_text:
        lines.append(f"{_('Cc')}: {original.cc_text}")
    return lines


_SIGNATURE_SEPARATOR = re.compile(r"\A--[ \t]*\n")


def signature_block(signature: str) -> str:
    """The signature behind its "-- " line (RFC 3676 4.3), which a signature may already start with: one only."""
    signature = _signature_text(signature)
    return f"-- \n{signature}\n\n" if signature else ""


def _signature_text(signature: str) -> str:
    signature = text.body(signature).strip("\n")
    return _SIGNATURE_SEPARATOR.sub("", signature + "\n", count=1).strip("\n")


# --- The same in rich text (HTML for the editor; see richtext) ----------------------------------------

_EMPTY_LINE = "<div><br></div>"


def signature_html_block(signature_html: str, signature: str) -> str:
    """The rich signature (else the text one as HTML) behind its "-- " line; "" when there is none."""
    content = richtext.clean(signature_html) if signature_html else ""
    written = richtext.html_to_text(content) if content else ""
    if written.startswith("--"):
        return content  # written with its own separator
    if not written.strip():
        content = ""
    if not content:
        plain = _signature_text(signature)
        content = richtext.text_to_html(plain) if plain else ""
    return f"<div>--\u00a0</div>{content}" if content else ""


def new_html(signature_html: str, signature: str) -> str:
    """A new message's editor content: an empty line to write on, then the signature."""
    return _EMPTY_LINE + signature_html_block(signature_html, signature)


def quoted_html(original: Original, pictures: Mapping[str, str] | None = None) -> str:
    """The original as HTML to quote: its own HTML (cleaned) when it has some, else its text.

    ``pictures`` maps the original's Content-IDs to those of the copies going out with it (a forward's);
    its other pictures are left out.
    """
    if original.html and len(original.html) <= MAX_QUOTED_HTML:
        cleaned = richtext.clean(original.html, list(pictures or ()))
        if cleaned.strip():
            return richtext.renamed_cids(cleaned, pictures or {})
    return richtext.text_to_html(original.text)


def _with_signature_html(top: str, signature_html: str, signature: str, placement: str) -> str:
    block = signature_html_block(signature_html, signature)
    if placement == "below":
        return f"{_EMPTY_LINE}{top}{_EMPTY_LINE + block if block else ''}"
    return f"{_EMPTY_LINE}{block + _EMPTY_LINE if block else ''}{top}"


def reply_html(original: Original, signature_html: str = "", signature: str = "", placement: str = "above") -> str:
    """A rich reply: the attribution, then the original in a quotation (sent as ``<blockquote type="cite">``)."""
    said = html.escape(attribution(original), quote=False)
    top = f"<div>{said}</div><blockquote>{quoted_html(original)}</blockquote>"
    return _with_signature_html(top, signature_html, signature, placement)


def forward_html(
    original: Original,
    signature_html: str = "",
    signature: str = "",
    placement: str = "above",
    pictures: Mapping[str, str] | None = None,
) -> str:
    """A rich forward: the header lines, then the original as it was (its pictures as ``quoted_html`` says)."""
    header = "<br>".join(html.escape(line, quote=False) for line in _forward_header(original))
    top = f"<div>{header}</div>{_EMPTY_LINE}{quoted_html(original, pictures)}"
    return _with_signature_html(top, signature_html, signature, placement)


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
    # Rich text: the HTML part (richtext.clean, cid: pictures) and those pictures: (content id, filename, type, data).
    html: str = ""
    inline: list[tuple[str, str, str, bytes]] = field(default_factory=list)

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
    html: str = "",
    inline: list[tuple[str, str, str, bytes]] = (),
    max_recipients: int = 100,
) -> Draft:
    """Check and normalise every field (see ``text``; at least one recipient) and return what to build from.

    Stored drafts come here as they were saved, even by an older version: nothing is trusted to be clean.
    """
    sender = parse_recipients(from_email, "from_email")
    if len(sender) != 1:
        raise ComposeError(_("The sending identity needs exactly one address."), "from_email")
    draft = Draft(
        from_name=text.one_line(from_name),
        from_email=sender[0].address,
        to=parse_recipients(to, "to"),
        cc=parse_recipients(cc, "cc"),
        bcc=parse_recipients(bcc, "bcc"),
        subject=text.one_line(subject),
        body=text.body(body),
        in_reply_to=" ".join(text.message_ids(in_reply_to)[:1]),
        references=" ".join(text.message_ids(references)[-MAX_REFERENCES:]),
        attachments=[(file_name(name), ctype, data) for name, ctype, data in attachments],
        html=text.storable(html),
        inline=[(cid, file_name(name), ctype, data) for cid, name, ctype, data in inline] if html else [],
    )
    if not draft.recipients:
        raise ComposeError(_("Add at least one recipient."), "to")
    if len(draft.recipients) > max_recipients:
        raise ComposeError(
            _("At most %(n)d recipients per message.") % {"n": max_recipients},
            "to",
        )
    return draft


_NAME = r"[a-z0-9!#$&^_.+-]{1,127}"  # an RFC 6838 type or subtype name
_MEDIA_TYPE = re.compile(rf"{_NAME}/{_NAME}")


def media_type(value: str) -> str:
    """``type/subtype`` in lower case, as browsers and received mail name a file's type; junk is octet-stream."""
    value = (value or "").split(";", 1)[0].strip().lower()
    return value if _MEDIA_TYPE.fullmatch(value) else "application/octet-stream"


def file_name(name: str) -> str:
    """An attachment's file name as sent: one line, no folders (see ``mime.clean_filename``), never empty."""
    return mime.clean_filename(text.one_line(name)) or "attachment"


def new_message_id(from_email: str) -> str:
    """A random, globally unique Message-ID in the sender's domain (nothing about this server in it)."""
    domain = from_email.rpartition("@")[2]
    if not domain or len(domain) > 200:  # the id must fit its column (255)
        domain = "webpop.invalid"
    return f"<{secrets.token_hex(16)}@{domain}>"


def build(draft: Draft, *, message_id: str, date: dt.datetime) -> bytes:
    """The message as sent: CRLF, 7-bit (RFC 2047 headers, quoted-printable or base64 parts). No Bcc header.

    Rich text is multipart/alternative (the text, then the HTML), the HTML in multipart/related with its
    pictures when it has some; files make it all the first part of a multipart/mixed.
    """
    msg = EmailMessage(policy=POLICY)
    msg.set_raw("From", headers.mailbox(draft.from_name, draft.from_email))
    if draft.to:
        msg.set_raw("To", headers.address_list("To", [(m.name, m.address) for m in draft.to]))
    if draft.cc:
        msg.set_raw("Cc", headers.address_list("Cc", [(m.name, m.address) for m in draft.cc]))
    if not draft.to and not draft.cc:
        msg.set_raw("To", "undisclosed-recipients:;")
    msg.set_raw("Subject", headers.unstructured("Subject", draft.subject))
    msg["Date"] = email.utils.format_datetime(date)
    msg["Message-ID"] = message_id
    if draft.in_reply_to:
        msg["In-Reply-To"] = draft.in_reply_to
    if draft.references:
        msg["References"] = draft.references
    body = text.body(draft.body)
    if not body.endswith("\n"):
        body += "\n"
    msg.set_content(body, charset="utf-8")
    if draft.html:
        msg.add_alternative(richtext.document(draft.html), subtype="html", charset="utf-8")
        html_part = msg.get_payload()[-1]
        for cid, filename, content_type, data in draft.inline:
            maintype, _slash, subtype = media_type(content_type).partition("/")
            name = file_name(filename)
            html_part.add_related(
                data, maintype=maintype, subtype=subtype, cid=f"<{cid}>", filename=name, disposition="inline"
            )
    for filename, content_type, data in draft.attachments:
        _attach(msg, file_name(filename), content_type, data)
    for part in msg.walk():
        if part is not msg:
            del part["MIME-Version"]  # the email package repeats it on parts; it belongs to the top only
    return msg.as_bytes(policy=POLICY)


def _attach(msg: EmailMessage, filename: str, content_type: str, data: bytes) -> None:
    """Base64, except a forwarded message (message/rfc822 allows only 7bit, 8bit or binary: RFC 2046 5.2.1)."""
    maintype, _slash, subtype = media_type(content_type).partition("/")
    if maintype == "multipart" or (maintype == "message" and subtype != "rfc822"):
        maintype, subtype = "application", "octet-stream"
    if maintype == "message":
        lines = re.sub(rb"\r?\n", b"\r\n", data)
        if lines.isascii() and all(len(line) <= 998 for line in lines.split(b"\r\n")):
            msg.add_attachment(lines, maintype="message", subtype="rfc822", cte="7bit", filename=filename)
            return
        maintype, subtype = "application", "octet-stream"  # 8-bit mail: kept byte-exact as a file
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)


def with_bcc(raw: bytes, bcc: list[Mailbox]) -> bytes:
    """The Sent copy keeps Bcc (recipients do not see it): one header line in front of what was sent."""
    if not bcc:
        return raw
    value = headers.address_list("Bcc", [(m.name, m.address) for m in bcc])
    return f"Bcc: {value}\r\n".encode("ascii") + raw
