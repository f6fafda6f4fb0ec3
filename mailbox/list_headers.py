"""What a mailing list's header fields offer for unsubscribing: List-Unsubscribe (RFC 2369),
List-Unsubscribe-Post (RFC 8058) and List-Id (RFC 2919).

Pure and bounded: header text in, an ``Unsubscribe`` out; never raises for bad input.

* List-Unsubscribe is a comma-separated list of ``<uri>``, in the sender's order of
  preference, with comments and white space around them (white space inside the
  brackets, left by folding, is ignored). As RFC 2369 says, a field that does not start
  with ``<`` is ignored, and so is everything from the first item that is not
  ``<uri>``. Of the URIs only ``https:`` and ``mailto:`` are kept (the first of each):
  ``http:`` would send the request in clear text and is not what RFC 8058 allows, and
  other schemes are no business of a web mail server.
* One-click (RFC 8058) holds only when List-Unsubscribe-Post says
  ``List-Unsubscribe=One-Click`` and there is an https URI to POST that to.
* A ``mailto:`` URI (RFC 6068) gives one address and, from its query, the subject and
  body, which default to "unsubscribe". Further recipients (``to=`` beside an address,
  ``cc=``, ``bcc=``) and other header fields are dropped: an unsubscribe request goes to
  the list and nowhere else. An internationalised domain is kept in its ASCII (xn--)
  form, which SMTP needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from webpop.lib import guarded_http

MAX_FIELD_CHARS = 16_384
MAX_URIS = 10
MAX_URI_CHARS = 2048
MAX_NAME_CHARS = 200
MAX_SUBJECT_CHARS = 200
MAX_BODY_CHARS = 2000
DEFAULT_TEXT = "unsubscribe"

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")
_ADDRESS = re.compile(r'^([^\s@<>(),;:"\[\]\\]+)@([^\s@<>(),;:"\[\]\\/?#]+)$')
_ONE_CLICK = "list-unsubscribe=one-click"


@dataclass(frozen=True)
class Mailto:
    address: str
    subject: str = DEFAULT_TEXT
    body: str = DEFAULT_TEXT


@dataclass(frozen=True)
class Unsubscribe:
    """How a message lets its reader unsubscribe; false when it offers no way webpop can use."""

    https: str = ""
    one_click: bool = False
    mailto: Mailto | None = None
    list_name: str = ""

    def __bool__(self) -> bool:
        return bool(self.https or self.mailto)

    def as_json(self) -> dict:
        """For ``Message.list_unsubscribe``: ``{}`` when there is nothing to offer."""
        if not self:
            return {}
        data: dict = {"https": self.https, "one_click": self.one_click, "list": self.list_name}
        if self.mailto:
            data["mailto"] = {"address": self.mailto.address, "subject": self.mailto.subject, "body": self.mailto.body}
        return data

    @classmethod
    def from_json(cls, data: dict | None) -> Unsubscribe:
        if not isinstance(data, dict) or not data:
            return cls()
        mailto = data.get("mailto")
        return cls(
            https=str(data.get("https") or ""),
            one_click=bool(data.get("one_click")) and bool(data.get("https")),
            mailto=Mailto(str(mailto["address"]), str(mailto["subject"]), str(mailto["body"]))
            if isinstance(mailto, dict) and mailto.get("address")
            else None,
            list_name=str(data.get("list") or ""),
        )


def parse(list_unsubscribe: str, list_unsubscribe_post: str = "", list_id: str = "") -> Unsubscribe:
    https, mailto = "", None
    for uri in uris(list_unsubscribe):
        if not https and uri[:6].lower() == "https:":
            https = https_url(uri)
        elif mailto is None and uri[:7].lower() == "mailto:":
            mailto = parse_mailto(uri)
    one_click = bool(https) and re.sub(r"\s+", "", list_unsubscribe_post or "").lower() == _ONE_CLICK
    return Unsubscribe(https=https, one_click=one_click, mailto=mailto, list_name=list_name(list_id))


def _skip_blanks(text: str, pos: int) -> int:
    """Past white space and (nested) comments."""
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
        elif text[pos] == "(":
            depth = 0
            while pos < len(text):
                if text[pos] == "\\":
                    pos += 1
                elif text[pos] == "(":
                    depth += 1
                elif text[pos] == ")":
                    depth -= 1
                    if depth == 0:
                        break
                pos += 1
            pos += 1
        else:
            break
    return pos


def uris(value: str) -> list[str]:
    """The angle-bracketed URIs of a List-* field, in order (RFC 2369 section 2)."""
    text = (value or "")[:MAX_FIELD_CHARS]
    found: list[str] = []
    pos = _skip_blanks(text, 0)
    while pos < len(text) and text[pos] == "<" and len(found) < MAX_URIS:
        end = text.find(">", pos + 1)
        if end < 0:
            break
        uri = re.sub(r"\s+", "", text[pos + 1 : end])
        if uri:
            found.append(uri)
        pos = _skip_blanks(text, end + 1)
        if pos >= len(text) or text[pos] != ",":
            break
        pos = _skip_blanks(text, pos + 1)
    return found


def https_url(uri: str) -> str:
    """``uri`` when it is a usable https URL (host, no credentials, sane length), else ""."""
    if len(uri) > MAX_URI_CHARS or _CONTROL.search(uri):
        return ""
    try:
        guarded_http.target(uri, ("https",))
    except (guarded_http.BadURL, ValueError):
        return ""
    return "https:" + uri[6:]


def _one_line(text: str, limit: int) -> str:
    return re.sub(r"\s+", " ", _CONTROL.sub(" ", _LINE_BREAKS.sub(" ", text))).strip()[:limit]


def _body(text: str) -> str:
    text = _LINE_BREAKS.sub("\n", text).replace("\t", " ")
    return _CONTROL.sub("", text).strip()[:MAX_BODY_CHARS]


def mail_address(text: str) -> str:
    """A plain addr-spec with its domain in ASCII (IDNA), or "" when it is not one."""
    match = _ADDRESS.match(text.strip())
    if not match:
        return ""
    local, domain = match.groups()
    if _CONTROL.search(local) or domain.startswith(".") or domain.endswith(".") or ".." in domain:
        return ""
    try:
        domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        return ""
    return f"{local}@{domain.lower()}"


def parse_mailto(uri: str) -> Mailto | None:
    """The address, subject and body of a ``mailto:`` URI (RFC 6068), or None when it names no address."""
    if len(uri) > MAX_URI_CHARS or uri[:7].lower() != "mailto:":
        return None
    addresses, _sep, query = uri[7:].partition("?")
    fields: dict[str, str] = {}
    for pair in query.split("&") if query else ():
        name, _eq, value = pair.partition("=")
        fields.setdefault(unquote(name).strip().lower(), unquote(value, errors="replace"))
    candidates = [unquote(a, errors="replace") for a in addresses.split(",") if a.strip()]
    if not candidates and fields.get("to"):
        candidates = [a for a in fields["to"].split(",") if a.strip()]
    address = mail_address(candidates[0]) if candidates else ""
    if not address:
        return None
    subject = _one_line(fields.get("subject", ""), MAX_SUBJECT_CHARS) or DEFAULT_TEXT
    body = _body(fields.get("body", "")) or DEFAULT_TEXT
    return Mailto(address=address, subject=subject, body=body)


def list_name(list_id: str) -> str:
    """The list's name from a List-Id field (its phrase, else the id in brackets)."""
    text = _one_line((list_id or "")[:MAX_FIELD_CHARS], MAX_FIELD_CHARS)
    phrase, bracket, rest = text.partition("<")
    name = phrase.strip().strip('"').strip()
    if not name and bracket:
        name = rest.partition(">")[0].strip()
    return name[:MAX_NAME_CHARS]
