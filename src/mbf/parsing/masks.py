"""Part labels stored as files: label PNGs read per image (sources ``files`` and ``cache``).

Where training part labels come from (HUMAN_PARSING.SOURCE):

- ``hrnet``: none stored; the parser runs on every training batch (the reference's way).
- ``files``: label PNGs (values 0..4) under HUMAN_PARSING.MASK_DIR that mirror the images:
  ``MASK_DIR/<image's folder name>/<image stem>.png`` (the synthetic dataset's ground truth,
  or masks made by another parser). A relative MASK_DIR lies under DATASETS.ROOT_DIR, so
  moving the datasets is one key.
- ``cache``: the labels ``mbf parse`` stored, one PNG per training image, in a folder named
  after the parser checkpoint and settings (see :mod:`mbf.parsing.cache`).

The sources are registered by name in :mod:`mbf.parsing.sources`.

A mask loader maps an image path to its labels uint8 [H,W] at the image's own resolution;
the data pipeline then transforms them together with the image. Loaders are plain picklable
objects, so data-loader workers can use them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DatasetError
from .labels import NUM_PARTS


def read_label_png(path: Path, image_path: str = "") -> np.ndarray:
    """Labels uint8 [H,W] from a PNG, checked to lie in 0..NUM_PARTS; ``image_path`` only names
    the image in the error. The size is checked against the decoded image by the dataset that
    reads both (:class:`mbf.data.loaders.ImageSet`), so the image is not opened twice."""
    path = Path(path)
    if not path.is_file():
        hint = f" for image {image_path}" if image_path else ""
        raise DatasetError(f"part-label mask not found: {path}{hint}")
    try:
        with Image.open(path) as img:
            labels = np.asarray(img)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read part-label mask {path}: {exc}") from None
    if labels.ndim != 2:
        raise DatasetError(f"part-label mask {path} must be a single-channel PNG, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > NUM_PARTS):
        bad = int(labels.max()) if labels.max() > NUM_PARTS else int(labels.min())
        raise DatasetError(f"part-label mask {path} has label {bad}; labels must be 0..{NUM_PARTS}")
    return labels.astype(np.uint8)


class FolderMasks:
    """``MASK_DIR/<image's folder name>/<image stem>.png``."""

    def __init__(self, mask_dir: str):
        self.mask_dir = Path(mask_dir)

    def path_for(self, image_path: str) -> Path:
        image = Path(image_path)
        return self.mask_dir / image.parent.name / f"{image.stem}.png"

    def __call__(self, image_path: str) -> np.ndarray:
        return read_label_png(self.path_for(image_path), image_path)
