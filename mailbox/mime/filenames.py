"""Attachment file names: made safe to offer for download, or a default from the content type."""

from __future__ import annotations

import mimetypes

from .charsets import _CONTROL, _WS, _clean
from .headers import decode_words

_DEFAULT_NAMES = {
    "message/rfc822": "message.eml",
    "message/global": "message.eml",
    "text/calendar": "invite.ics",
    "application/ics": "invite.ics",
    "application/pkcs7-signature": "smime.p7s",
    "application/x-pkcs7-signature": "smime.p7s",
    "application/pkcs7-mime": "smime.p7m",
    "application/x-pkcs7-mime": "smime.p7m",
    "application/pgp-signature": "signature.asc",
    "application/pgp-encrypted": "pgp-version.txt",
    "application/pgp-keys": "key.asc",
    "message/delivery-status": "delivery-status.txt",
    "message/disposition-notification": "disposition-notification.txt",
    "text/rfc822-headers": "headers.txt",
    "application/ms-tnef": "winmail.dat",
    "application/vnd.ms-tnef": "winmail.dat",
    "text/plain": "attachment.txt",
    "text/html": "attachment.html",
}


def clean_filename(name: str) -> str:
    """A file name safe to offer for download: no folders, no control characters, at most 255 characters."""
    if "=?" in name:
        name = decode_words(name)
    name = _clean(name).replace("\\", "/").rsplit("/", 1)[-1]
    name = _WS.sub(" ", _CONTROL.sub("", name)).strip()
    if name in ("", ".", ".."):
        return ""
    if len(name) > 255:
        stem, dot, ext = name.rpartition(".")
        name = stem[: 254 - len(ext)] + "." + ext if dot and len(ext) < 20 else name[:255]
    return name


def _default_name(content_type: str, index: int) -> str:
    known = _DEFAULT_NAMES.get(content_type)
    if known:
        return known
    extension = mimetypes.guess_extension(content_type, strict=False) or ".bin"
    return f"attachment-{index}{extension}"
