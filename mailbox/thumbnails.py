"""Image previews of attachments: small thumbnails for lists, a larger image for the lightbox.

Mail is untrusted, and these are made inside a web request, so the work is
bounded before any pixel is decoded:

- only files up to ``MAX_FILE_BYTES`` are read, and Pillow may only identify
  JPEG, PNG, GIF and WebP (an SVG, a PSD or a TIFF named ``.png`` is refused,
  never handed to another decoder);
- the dimensions in the header decide: a JPEG is asked to decode at a reduced
  scale first (``draft``), then anything above ``MAX_PIXELS`` is refused
  without decoding; Pillow's own decompression-bomb check is turned into an
  error as well;
- a truncated or corrupt file is refused, not partly shown;
- only the first frame of an animation is decoded.

The result is always re-encoded by us (WebP), upright (EXIF orientation
applied) and without metadata (no EXIF, GPS or colour profile of the sender's),
so the browser never decodes the sender's bytes. Results are cached by content
(the attachment's SHA-256 and size), refusals too, in Django's cache: they can
be made again at any time, so no file of their own is stored.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from django.core.cache import cache
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from . import store

MAX_FILE_BYTES = 30 * 1024 * 1024
MAX_PIXELS = 25_000_000  # about 100 MB decoded (RGBA): a 24-megapixel photo still passes
FORMATS = ("JPEG", "PNG", "GIF", "WEBP")


@dataclass(frozen=True)
class Size:
    name: str
    box: tuple[int, int]
    quality: int
    cache_seconds: int


SIZES = {
    # Twice the size a list shows (sharp on high-density screens).
    "thumb": Size("thumb", (320, 240), 75, 30 * 24 * 3600),
    "large": Size("large", (2048, 2048), 82, 24 * 3600),
}
CACHE_VERSION = 1
_REFUSED = b"refused"


class Refused(Exception):
    """The file is not an image we preview (type, size, dimensions, or damaged)."""


def render(data: bytes, box: tuple[int, int], quality: int = 80) -> bytes:
    """A WebP no larger than ``box`` of the image in ``data``; raises Refused."""
    if len(data) > MAX_FILE_BYTES:
        raise Refused("file too large")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as image:
                return _render(image, box, quality)
    except (
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        MemoryError,
    ) as exc:
        raise Refused(type(exc).__name__) from None


def _render(image: ImageFile.ImageFile, box: tuple[int, int], quality: int) -> bytes:
    if image.format == "JPEG":
        image.draft("RGB", box)  # the decoder scales down by 1/2, 1/4 or 1/8 as it decodes
    width, height = image.size
    if width < 1 or height < 1 or width * height > MAX_PIXELS:
        raise Refused("too many pixels")
    image.load()  # the first frame only; raises on truncated data (LOAD_TRUNCATED_IMAGES stays off)
    upright = ImageOps.exif_transpose(image)
    has_alpha = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
    clean = upright.convert("RGBA" if has_alpha else "RGB")  # a new image: no EXIF, ICC or comments
    clean.info.clear()
    clean.thumbnail(box, Image.Resampling.LANCZOS, reducing_gap=3.0)
    out = io.BytesIO()
    clean.save(out, "WEBP", quality=quality, method=4)
    return out.getvalue()


def _cache_key(sha256: str, size: int, variant: Size) -> str:
    return f"attachment-image:{CACHE_VERSION}:{sha256}:{size}:{variant.name}"


def image_for(attachment, variant: Size) -> bytes:
    """The cached or newly made ``variant`` of an attachment's image; raises Refused (also from cache)."""
    key = _cache_key(attachment.sha256, attachment.size, variant)
    cached = cache.get(key)
    if cached == _REFUSED:
        raise Refused("refused before")
    if cached is not None:
        return cached
    if attachment.size > MAX_FILE_BYTES:
        raise Refused("file too large")
    try:
        with store.open_file(attachment.stored_path) as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError:
        raise Refused("not readable") from None  # not cached: the file may come back (a storage hiccup)
    try:
        result = render(data, variant.box, variant.quality)
    except Refused:
        cache.set(key, _REFUSED, variant.cache_seconds)
        raise
    cache.set(key, result, variant.cache_seconds)
    return result
