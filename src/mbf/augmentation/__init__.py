"""Batch augmentations of the occluded branch: random erasing and background augmentation."""

from .background import background_augmentation, pick_other_identity
from .random_erasing import random_erasing

__all__ = ["random_erasing", "pick_other_identity", "background_augmentation"]
