"""What an attachment is, in words and icons, and which preview it gets.

Everything here reads the row only (file name, declared type, size): nothing
opens the stored file, so a message page with many attachments costs no I/O.
The declared type and the name are the sender's: a preview checks the bytes
itself (Pillow accepts only the raster formats below, pdf.js reads the PDF),
and anything else is only ever downloaded.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

from django.utils import formats
from django.utils.translation import gettext, ngettext, pgettext

# Previews: "image" (thumbnail + lightbox), "pdf" (pdf.js), "text", "calendar"; "" = download only.
IMAGE_TYPES = {
    "image/jpeg": "JPEG",
    "image/pjpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WebP",
}
IMAGE_EXTENSIONS = {".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".png": "PNG", ".gif": "GIF", ".webp": "WebP"}
# Declared types that say nothing: the file name's extension decides then.
GENERIC_TYPES = {
    "",
    "application/octet-stream",
    "application/x-download",
    "application/download",
    "binary/octet-stream",
}
CALENDAR_TYPES = {"text/calendar", "application/ics", "text/x-vcalendar"}
CALENDAR_EXTENSIONS = {".ics", ".ical", ".ifb", ".vcs"}
TEXT_TYPES = {
    "application/json": "JSON", "application/xml": "XML", "application/x-yaml": "YAML", "application/yaml": "YAML",
    "application/javascript": "JavaScript", "application/x-sh": "Shell", "application/sql": "SQL",
    "application/x-patch": "Patch", "application/x-diff": "Patch", "application/toml": "TOML",
}  # fmt: skip
TEXT_EXTENSIONS = {
    ".txt": "", ".text": "", ".log": "", ".md": "Markdown", ".rst": "", ".csv": "CSV", ".tsv": "TSV",
    ".json": "JSON", ".xml": "XML", ".yaml": "YAML", ".yml": "YAML", ".toml": "TOML", ".ini": "", ".cfg": "",
    ".conf": "", ".diff": "Patch", ".patch": "Patch", ".sql": "SQL", ".py": "Python", ".js": "JavaScript",
    ".ts": "TypeScript", ".css": "CSS", ".c": "C", ".h": "C", ".cc": "C++", ".cpp": "C++", ".hpp": "C++",
    ".java": "Java", ".kt": "Kotlin", ".go": "Go", ".rs": "Rust", ".rb": "Ruby", ".php": "PHP", ".pl": "Perl",
    ".sh": "Shell", ".bash": "Shell", ".ps1": "PowerShell", ".swift": "Swift", ".cs": "C#", ".lua": "Lua",
    ".r": "R", ".tex": "TeX", ".srt": "", ".vtt": "",
}  # fmt: skip
# text/* types shown as text unless listed here (HTML would need the sanitizer: it stays a download).
TEXT_EXCLUDED = {"text/html", "text/x-vcard", "text/vcard", "text/directory"} | CALENDAR_TYPES

ARCHIVES = {".zip": "ZIP", ".7z": "7z", ".rar": "RAR", ".gz": "gzip", ".tgz": "gzip", ".bz2": "bzip2", ".xz": "xz",
            ".tar": "tar", ".zst": "Zstandard"}  # fmt: skip
OFFICE = {
    ".doc": "word", ".docx": "word", ".odt": "document", ".rtf": "document", ".pages": "document",
    ".xls": "excel", ".xlsx": "excel", ".ods": "spreadsheet", ".numbers": "spreadsheet",
    ".ppt": "powerpoint", ".pptx": "powerpoint", ".odp": "presentation", ".key": "presentation",
}  # fmt: skip
OFFICE_TYPES = {
    "application/msword": "word", "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "word",
    "application/vnd.oasis.opendocument.text": "document", "application/rtf": "document",
    "application/vnd.ms-excel": "excel", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "excel",
    "application/vnd.oasis.opendocument.spreadsheet": "spreadsheet",
    "application/vnd.ms-powerpoint": "powerpoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "powerpoint",
    "application/vnd.oasis.opendocument.presentation": "presentation",
}  # fmt: skip
ICONS = {
    "image": "file-image", "pdf": "file-text", "text": "file-text", "code": "file-code", "calendar": "calendar",
    "archive": "file-archive", "audio": "file-music", "video": "file-video", "document": "file-text",
    "spreadsheet": "file-spreadsheet", "presentation": "file-chart-pie", "message": "mail", "signature": "file-lock",
    "other": "file",
}  # fmt: skip


@dataclass(frozen=True)
class Kind:
    """How an attachment is shown: its icon family, its preview ("" for none) and its type in words."""

    family: str
    preview: str
    type_label: str

    @property
    def icon(self) -> str:
        return ICONS.get(self.family, "file")


def extension(filename: str) -> str:
    return os.path.splitext(filename or "")[1].lower()


def kind_of(filename: str, content_type: str) -> Kind:
    """The attachment's kind from its declared type, or its name's extension when the type says nothing."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    ext = extension(filename)
    generic = ctype in GENERIC_TYPES
    if ctype in IMAGE_TYPES or (generic and ext in IMAGE_EXTENSIONS):
        fmt = IMAGE_TYPES.get(ctype) or IMAGE_EXTENSIONS[ext]
        return Kind("image", "image", gettext("%(format)s image") % {"format": fmt})
    if ctype == "image/svg+xml" or (generic and ext == ".svg"):  # script-capable: download only
        return Kind("image", "", gettext("%(format)s image") % {"format": "SVG"})
    if ctype.startswith("image/"):
        return Kind("image", "", gettext("%(format)s image") % {"format": ctype[6:].removeprefix("x-").upper()})
    if ctype == "application/pdf" or (generic and ext == ".pdf"):
        return Kind("pdf", "pdf", "PDF")
    if ctype in CALENDAR_TYPES or (ext in CALENDAR_EXTENSIONS and (generic or ctype.startswith("text/"))):
        return Kind("calendar", "calendar", gettext("Calendar event"))
    if ctype in ("message/rfc822", "message/global") or (generic and ext == ".eml"):
        return Kind("message", "", gettext("E-mail message"))
    if ctype.endswith(("pkcs7-signature", "pgp-signature")) or ext in (".p7s", ".asc", ".sig"):
        return Kind("signature", "", gettext("Signature"))
    if _is_text(ctype, ext, generic):
        return _text_kind(ctype, ext)
    office = OFFICE_TYPES.get(ctype) or (OFFICE.get(ext) if generic or ctype.startswith("application/") else None)
    if office:
        return _office_kind(office)
    if ext in ARCHIVES or ctype in ("application/zip", "application/x-zip-compressed", "application/gzip"):
        return Kind("archive", "", gettext("%(format)s archive") % {"format": ARCHIVES.get(ext, "ZIP")})
    if ctype.startswith("audio/"):
        return Kind("audio", "", gettext("Audio"))
    if ctype.startswith("video/"):
        return Kind("video", "", gettext("Video"))
    if ext and len(ext) <= 6 and ext[1:].isalnum():
        return Kind("other", "", gettext("%(extension)s file") % {"extension": ext[1:].upper()})
    return Kind("other", "", gettext("File"))


def _is_text(ctype: str, ext: str, generic: bool) -> bool:
    if ctype in TEXT_TYPES or (ctype.startswith("text/") and ctype not in TEXT_EXCLUDED):
        return True
    return (generic or ctype.startswith(("application/x-", "text/"))) and ext in TEXT_EXTENSIONS


def _text_kind(ctype: str, ext: str) -> Kind:
    if ctype == "text/csv" or ext == ".csv":
        return Kind("spreadsheet", "text", "CSV")
    if ctype == "text/tab-separated-values" or ext == ".tsv":
        return Kind("spreadsheet", "text", "TSV")
    language = TEXT_TYPES.get(ctype) or TEXT_EXTENSIONS.get(ext, "")
    if language in ("JSON", "XML", "YAML", "TOML", "Markdown"):
        return Kind("code", "text", language)
    if language:
        return Kind("code", "text", gettext("%(language)s code") % {"language": language})
    return Kind("text", "text", gettext("Text"))


def _office_kind(office: str) -> Kind:
    labels = {
        "word": ("document", gettext("Word document")),
        "document": ("document", gettext("Document")),
        "excel": ("spreadsheet", gettext("Excel spreadsheet")),
        "spreadsheet": ("spreadsheet", gettext("Spreadsheet")),
        "powerpoint": ("presentation", gettext("PowerPoint presentation")),
        "presentation": ("presentation", gettext("Presentation")),
    }
    family, label = labels[office]
    return Kind(family, "", label)


def size_in_words(size: int) -> str:
    """ "454 bytes", "12 KB", "1.5 MB" in the active language's number format (1 KB = 1024 bytes)."""
    if size < 1024:
        return ngettext("%(count)s byte", "%(count)s bytes", size) % {"count": size}
    units = (
        pgettext("file size", "%(size)s KB"),
        pgettext("file size", "%(size)s MB"),
        pgettext("file size", "%(size)s GB"),
    )
    value, unit = size / 1024, 0
    while unit < len(units) - 1 and round(value) >= 1024:
        value, unit = value / 1024, unit + 1
    # One decimal below 10 ("1.5 MB"), none from there on ("12 KB"), none for whole numbers ("2 MB").
    rounded = math.floor(value * 10 + 0.5) / 10 if value < 9.95 else math.floor(value + 0.5)
    decimals = 0 if rounded == int(rounded) else 1
    return units[unit] % {"size": formats.number_format(rounded, decimals)}


def label(kind: Kind, size: int) -> str:
    """The type and size in words: "PDF, 12 KB"."""
    return pgettext("attachment type and size", "%(type)s, %(size)s") % {
        "type": kind.type_label,
        "size": size_in_words(size),
    }


# Bidirectional controls: "invoice\u202efdp.exe" would show as "invoiceexe.pdf".
_BIDI_CONTROLS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Item:
    """One attachment as lists and previews show it (``filename`` without bidirectional controls)."""

    id: int
    filename: str
    size: int
    kind: Kind
    label: str

    @property
    def preview(self) -> str:
        return self.kind.preview


def item(attachment) -> Item:
    kind = kind_of(attachment.filename, attachment.content_type)
    filename = _BIDI_CONTROLS.sub("", attachment.filename) or "attachment"
    return Item(attachment.id, filename, attachment.size, kind, label(kind, attachment.size))


def zip_members(message) -> list:
    """The attachments "download all" packs: all but the images the formatted message shows within its body."""
    shown_in_body = set((message.html_cache_meta or {}).get("cids") or [])
    return [a for a in message.attachments.all() if a.id not in shown_in_body]
