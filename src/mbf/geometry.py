"""The patch grid: which pixels each ViT patch token sees. Defined here once; a model owns its
grid (``model.patch_grid``) and the training step and mask operations ask it.

A patch is a ``patch_size`` x ``patch_size`` window taken every ``stride`` pixels (the
overlapping patch embedding of TransReID / MBF*): ``fH = (H - patch_size) // sH + 1``, likewise
``fW``.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError

PATCH_SIZE = 16  # the ViT patch side in pixels


@dataclass(frozen=True)
class PatchGrid:
    image_size: tuple[int, int]  # (H, W)
    stride: tuple[int, int]  # (vertical, horizontal)
    patch_size: int = PATCH_SIZE

    def __post_init__(self):
        h, w = self.image_size
        if min(self.stride) < 1:
            raise ConfigError(f"the patch stride must be positive, got {list(self.stride)}")
        if max(self.stride) > self.patch_size:
            raise ConfigError(f"the patch stride {list(self.stride)} is larger than the {self.patch_size}-pixel patch: "
                              "the pixels between patches would never be read")
        if h < self.patch_size or w < self.patch_size:
            raise ConfigError(f"image size {h}x{w} is smaller than one {self.patch_size}x{self.patch_size} patch")

    @property
    def size(self) -> tuple[int, int]:
        """(fH, fW)."""
        (h, w), (sh, sw), p = self.image_size, self.stride, self.patch_size
        return (h - p) // sh + 1, (w - p) // sw + 1

    @property
    def unread(self) -> tuple[int, int]:
        """(rows, columns) at the bottom and right of the image that no patch covers."""
        (h, w), (sh, sw), p = self.image_size, self.stride, self.patch_size
        return (h - p) % sh, (w - p) % sw

    @property
    def num_patches(self) -> int:
        fh, fw = self.size
        return fh * fw


def feature_grid(image_size: tuple[int, int], stride: tuple[int, int], patch_size: int = PATCH_SIZE) -> tuple[int, int]:
    """(fH, fW) of the patch grid of an image of ``image_size`` (H, W)."""
    return PatchGrid((int(image_size[0]), int(image_size[1])), (int(stride[0]), int(stride[1])), patch_size).size
