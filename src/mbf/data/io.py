"""Reading images: one attempt, a clear error naming the file.

The reference retries unreadable images forever; a truncated or corrupt file is a data
problem that no retry fixes, so here it is reported once, with the path.
"""
from __future__ import annotations

import os

from PIL import Image, UnidentifiedImageError

from ..errors import DatasetError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")


def read_image(path: str | os.PathLike) -> Image.Image:
    """The image at ``path`` as an RGB PIL image, fully decoded."""
    try:
        with Image.open(path) as img:
            img.load()  # decode now, so a truncated file fails here and not inside a transform
            return img.convert("RGB")
    except FileNotFoundError:
        raise DatasetError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DatasetError(f"cannot read image {path}: {exc}") from None
