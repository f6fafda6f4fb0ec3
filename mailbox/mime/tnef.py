"""Files inside a TNEF stream (winmail.dat, as Outlook sends attachments).

Only what an attachment list needs is read: each file's name, MIME type and
bytes. A malformed stream yields what was read before the damage, never raises.
"""

from __future__ import annotations

import mimetypes
import struct

MAX_FILES = 1000  # as many as a message may have parts

_TNEF_SIGNATURE = 0x223E9F78
_ATT_RENDDATA, _ATT_TITLE, _ATT_DATA, _ATT_MAPI = 0x9002, 0x8010, 0x800F, 0x9005
_PR_DISPLAY_NAME, _PR_ATTACH_DATA, _PR_FILENAME, _PR_LONG_FILENAME, _PR_MIME_TAG = (
    0x3001,
    0x3701,
    0x3704,
    0x3707,
    0x370E,
)
_MAPI_FIXED = {0x0002: 4, 0x0003: 4, 0x0004: 4, 0x0005: 8, 0x0006: 8, 0x0007: 8, 0x000A: 4, 0x000B: 4, 0x0014: 8}
_MAPI_FIXED |= {0x0040: 8, 0x0048: 16, 0x0001: 4}
_MAPI_VARIABLE = {0x001E, 0x001F, 0x0102, 0x000D}


def tnef_files(data: bytes, limit: int = MAX_FILES) -> list[tuple[str, str, bytes]]:
    """(filename, content type, bytes) of the files in a TNEF stream; [] if it holds none or is not TNEF."""
    if len(data) < 6 or struct.unpack_from("<I", data)[0] != _TNEF_SIGNATURE:
        return []
    files: list[dict] = []
    pos = 6
    while pos + 9 <= len(data) and len(files) <= limit:
        level = data[pos]
        attr, length = struct.unpack_from("<II", data, pos + 1)
        start, end = pos + 9, pos + 9 + length
        if end > len(data):
            break
        pos = end + 2  # checksum
        if level != 2:
            continue
        kind = attr & 0xFFFF
        if kind == _ATT_RENDDATA or not files:
            files.append({})
            if kind == _ATT_RENDDATA:
                continue
        current = files[-1]
        if kind == _ATT_TITLE:
            current.setdefault("title", data[start:end].split(b"\0", 1)[0].decode("cp1252", "replace"))
        elif kind == _ATT_DATA:
            current["data"] = data[start:end]
        elif kind == _ATT_MAPI:
            current.update(_mapi_props(data[start:end]))
    out = []
    for item in files:
        body = item.get("data", item.get("object"))
        if body is None:
            continue
        name = item.get("long") or item.get("short") or item.get("title") or item.get("display") or ""
        ctype = item.get("mime") or mimetypes.guess_type(name)[0] or "application/octet-stream"
        out.append((name, ctype, body))
    return out


def _mapi_props(data: bytes) -> dict:
    """The few attachment properties we use from a MAPI property block; stops quietly when malformed."""
    found: dict = {}
    try:
        (count,) = struct.unpack_from("<I", data)
        pos = 4
        for _ in range(min(count, 10_000)):
            ptype, pid = struct.unpack_from("<HH", data, pos)
            pos += 4
            if pid >= 0x8000:  # named property: GUID, kind, then id or name
                pos += 16
                (kind,) = struct.unpack_from("<I", data, pos)
                pos += 4
                if kind == 0:
                    pos += 4
                else:
                    (size,) = struct.unpack_from("<I", data, pos)
                    pos += 4 + size + (-size % 4)
            multi = bool(ptype & 0x1000)
            base = ptype & ~0x1000
            values = []
            if base in _MAPI_VARIABLE:
                (nvalues,) = struct.unpack_from("<I", data, pos)
                pos += 4
                for _ in range(min(nvalues, 10_000)):
                    (size,) = struct.unpack_from("<I", data, pos)
                    pos += 4
                    values.append(data[pos : pos + size])
                    pos += size + (-size % 4)
            elif base in _MAPI_FIXED:
                nvalues = struct.unpack_from("<I", data, pos)[0] if multi else 1
                pos += 4 if multi else 0
                width = _MAPI_FIXED[base]
                pos += nvalues * max(width, 4)
            else:
                break  # unknown type: its length is unknown, stop here
            if pos > len(data):
                break
            if not values:
                continue
            value = values[0]
            if base == 0x001F:
                text = value.decode("utf-16-le", "replace").split("\0", 1)[0]
            elif base == 0x001E:
                text = value.split(b"\0", 1)[0].decode("cp1252", "replace")
            else:
                text = None
            if pid == _PR_LONG_FILENAME and text:
                found["long"] = text
            elif pid == _PR_FILENAME and text:
                found["short"] = text
            elif pid == _PR_DISPLAY_NAME and text:
                found["display"] = text
            elif pid == _PR_MIME_TAG and text:
                found["mime"] = text.strip().lower()
            elif pid == _PR_ATTACH_DATA and base == 0x0102:
                found["object"] = value
    except struct.error:
        pass
    return found
