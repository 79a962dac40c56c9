"""Reading images: one attempt, a clear error naming the file, 8-bit RGB out.

The reference retries unreadable images forever; a truncated or corrupt file is a data
problem that no retry fixes, so here it is reported once, with the path.

Every image becomes 8-bit RGB. Pillow's ``convert("RGB")`` clips deeper data instead of
scaling it (a 16-bit PNG comes out all white), so the grey modes deeper than 8 bits are
scaled here, linearly from the range of their sample type to 0..255 (rounded):

* 16-bit grey (``I;16``, ``I;16B``, ``I;16L``, ``I;16N``): 0..65535;
* 32-bit integer grey (``I``): the range of the sample type the file declares (a TIFF's
  BitsPerSample and SampleFormat: unsigned b bits 0..2^b-1, signed 0..2^(b-1)-1); a file that
  declares none (PGM, or a 16-bit PNG read by an older Pillow) holds 16-bit data, 0..65535;
* floating-point grey (``F``): 0..1.

Values outside that range (negative, above it, NaN) are one :class:`DatasetError` naming the
file, the mode and the values found: no scale would be right for all such files. Pillow itself
reads 16-bit colour (RGB, RGBA, grey with alpha) as 8-bit colour by keeping the high byte; the
8-bit modes (L, LA, P, PA, RGBA, CMYK, 1, YCbCr, ...) go through Pillow's conversion, alpha
dropped.

Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``, kept as it is) is enforced
with an error, not a warning: an image above it is one DatasetError naming the file, its size
and the limit.
"""
from __future__ import annotations

import errno
import os
import re
import threading
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DatasetError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")

_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")
_UNDECLARED_I = 65535  # the range of an "I" image whose file declares no sample type: 16-bit data
_TIFF_BITS, _TIFF_SAMPLE_FORMAT, _SIGNED = 258, 339, 2
_BOMB = (Image.DecompressionBombError, Image.DecompressionBombWarning)
# warnings.catch_warnings changes process-wide state: one thread at a time opens images under it
_OPEN_LOCK = threading.Lock()


def read_image(path: str | os.PathLike) -> Image.Image:
    """The image at ``path`` as an 8-bit RGB PIL image, fully decoded."""
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # above the limit: refused, not warned
            img = Image.open(path)
        with img:
            img.load()  # decode now, so a truncated file fails here and not inside a transform
            return to_rgb(img, path)
    except FileNotFoundError:
        raise DatasetError(f"image not found: {path}") from None
    except _BOMB as exc:
        raise DatasetError(bomb_message(path, exc)) from None
    except OSError as exc:
        raise DatasetError(f"cannot read image {path}: {os_reason(exc)}") from None
    except (UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise DatasetError(f"cannot read image {path}: {exc}") from None


def os_reason(exc: OSError, path: str | os.PathLike | None = None) -> str:
    """Why an OSError happened, in words, without the file name Python appends; ``path``: the file, to
    say where a broken symbolic link points."""
    if exc.errno == errno.ELOOP:
        return "it is a symbolic link that loops (it leads back to itself)"
    if exc.errno == errno.ENOENT and path is not None and os.path.islink(path):
        return f"it is a symbolic link to {os.readlink(path)}, which does not exist"
    return exc.strerror or str(exc)


def bomb_message(path, exc: Exception) -> str:
    pixels = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{int(pixels.group(1)):,} pixels" if pixels else "more pixels than the limit"
    return (f"image {path} is refused as a possible decompression bomb: {size}, more than Pillow's limit of "
            f"{Image.MAX_IMAGE_PIXELS:,} pixels (PIL.Image.MAX_IMAGE_PIXELS)")


def to_rgb(img: Image.Image, source: str | os.PathLike = "handed over as a PIL image") -> Image.Image:
    """``img`` as 8-bit RGB: deep grey modes scaled by the rule of this module, the rest by Pillow.
    ``source`` names the image in an error (its path)."""
    if img.mode not in (*_SIXTEEN_BIT, "I", "F"):
        return img.convert("RGB")
    values = np.asarray(img)
    if img.mode == "F":
        top = 1
    elif img.mode == "I":
        values, top = _declared_integers(img, values)
    else:
        top = 65535
    grey = _scaled(values, top, img.mode, source)
    return Image.fromarray(np.repeat(grey[..., None], 3, axis=2))


def _declared_integers(img: Image.Image, values: np.ndarray) -> tuple[np.ndarray, int]:
    """An "I" image's values and the top of their sample type's range (see the module docstring)."""
    tags = getattr(img, "tag_v2", None)
    if not tags or _TIFF_BITS not in tags:
        return values, _UNDECLARED_I
    bits = int(tags[_TIFF_BITS][0])
    signed = int(tags.get(_TIFF_SAMPLE_FORMAT, (1,))[0]) == _SIGNED
    if bits == 32 and not signed:  # Pillow keeps unsigned 32-bit samples in int32: read them back as unsigned
        values = values.view(np.uint32)
    return values, 2 ** (bits - signed) - 1


def _scaled(values: np.ndarray, top: float, mode: str, source) -> np.ndarray:
    """``values`` in 0..``top`` mapped linearly to uint8 0..255; DatasetError naming the file otherwise."""
    low, high = values.min(), values.max()
    if not (np.isfinite(low) and np.isfinite(high) and low >= 0 and high <= top):
        shown = [f"{v:g}" if isinstance(v, np.floating) else str(v) for v in (low, high)]
        raise DatasetError(
            f"image {source} has mode {mode} pixels in {shown[0]}..{shown[1]}; expected 0..{top} to scale them to "
            "8 bits (see mbf.data.io; save it as an 8- or 16-bit image)"
        )
    return np.rint(values * (255.0 / top)).astype(np.uint8)
