"""Image transforms (torchvision.transforms.v2), applied to an image and its part-label mask together.

Training: bicubic resize to INPUT.SIZE_TRAIN, optional horizontal flip (INPUT.PROB), colour
jitter (Occluded-REID, INPUT.COLOR_JITTER), zero padding (INPUT.PADDING), random crop back to
INPUT.SIZE_TRAIN, to float tensor, normalisation. Random erasing is applied later on the
whole batch (mbf.augmentation), because the training step needs its rectangles.
Test: resize to INPUT.SIZE_TEST (bilinear, as the reference), to float tensor, normalisation.

The PIL image is resized by PIL as in the reference, so images match it bit for bit; a
``tv_tensors.Mask`` passed alongside gets nearest-neighbour resizing, the same flip, pad and
crop, and is left out of colour jitter and normalisation.
"""
from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from ..errors import ConfigError

COLOR_JITTER_DATASETS = ("occ_reid",)  # where the reference trains with colour jitter


def _size(value, key: str) -> list[int]:
    size = [int(v) for v in value]
    if len(size) != 2 or min(size) <= 0:
        raise ConfigError(f"{key} must be [height, width] with positive values, got {list(value)}")
    return size


def _normalise(cfg) -> list:
    return _normalise_with(cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD)


def _normalise_with(mean, std) -> list:
    return [
        v2.ToImage(),
        v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True),
        v2.Normalize(mean=[float(m) for m in mean], std=[float(s) for s in std]),
    ]


def use_color_jitter(cfg) -> bool:
    setting = str(cfg.INPUT.COLOR_JITTER).lower()
    if setting == "auto":
        return cfg.DATASETS.NAMES in COLOR_JITTER_DATASETS
    if setting in ("true", "on", "yes", "1"):
        return True
    if setting in ("false", "off", "no", "0"):
        return False
    raise ConfigError(f"INPUT.COLOR_JITTER must be 'auto', True or False, got {cfg.INPUT.COLOR_JITTER!r}")


def build_train_transform(cfg) -> v2.Compose:
    """``transform(pil_image[, tv_tensors.Mask])`` -> normalised float image [3,H,W] (and mask)."""
    size = _size(cfg.INPUT.SIZE_TRAIN, "INPUT.SIZE_TRAIN")
    steps = [v2.Resize(size, interpolation=v2.InterpolationMode.BICUBIC)]
    if cfg.INPUT.PROB > 0:
        steps.append(v2.RandomHorizontalFlip(p=cfg.INPUT.PROB))
    if use_color_jitter(cfg):
        brightness, contrast, saturation, hue = cfg.INPUT.COLOR_JITTER_STRENGTH
        steps.append(v2.ColorJitter(brightness=brightness, contrast=contrast, saturation=saturation, hue=hue))
    if cfg.INPUT.PADDING > 0:
        steps.append(v2.Pad(cfg.INPUT.PADDING))
    steps.append(v2.RandomCrop(size))
    return v2.Compose(steps + _normalise(cfg))


TEST_INTERPOLATION = "bilinear"  # of the test resize (PIL's), recorded in exported models


def build_test_transform(cfg) -> v2.Compose:
    """``transform(pil_image)`` -> normalised float image [3,H,W] at INPUT.SIZE_TEST."""
    return eval_transform(_size(cfg.INPUT.SIZE_TEST, "INPUT.SIZE_TEST"), cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD)


def eval_transform(size, mean, std) -> v2.Compose:
    """The test transform from its numbers: resize to ``size`` (H, W), scale to [0, 1], normalise."""
    interpolation = v2.InterpolationMode(TEST_INTERPOLATION)
    return v2.Compose([v2.Resize(list(size), interpolation=interpolation)] + _normalise_with(mean, std))
