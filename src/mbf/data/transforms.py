"""Image transforms (torchvision.transforms.v2), applied to an image and its part-label mask together.

Training: bicubic resize to INPUT.SIZE_TRAIN, optional horizontal flip (INPUT.PROB), colour
jitter (Occluded-REID, INPUT.COLOR_JITTER), zero padding (INPUT.PADDING), random crop back to
INPUT.SIZE_TRAIN, to float tensor, normalisation. Random erasing is applied later on the
whole batch (mbf.augmentation), because the training step needs its rectangles.
Test: resize to INPUT.SIZE_TEST (bilinear, as the reference), to float tensor, normalisation.

The PIL image is resized by PIL as in the reference, so images match it bit for bit; a
``tv_tensors.Mask`` passed alongside gets nearest-neighbour resizing, the same flip, pad and
crop, and is left out of colour jitter and normalisation. The config's keys are read by
:mod:`mbf.data.build`.
"""
from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

TEST_INTERPOLATION = "bilinear"  # of the test resize (PIL's), recorded in exported models


def _normalise(mean, std) -> list:
    return [
        v2.ToImage(),
        v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True),
        v2.Normalize(mean=[float(m) for m in mean], std=[float(s) for s in std]),
    ]


def train_transform(size, mean, std, flip_prob: float = 0.5, padding: int = 0,
                    color_jitter: tuple[float, float, float, float] | None = None) -> v2.Compose:
    """``transform(pil_image[, tv_tensors.Mask])`` -> normalised float image [3,H,W] (and mask):
    bicubic resize to ``size`` (H, W), flip, colour jitter (brightness, contrast, saturation,
    hue), zero padding, random crop back to ``size``, [0, 1], (x - mean) / std."""
    size = list(size)
    steps = [v2.Resize(size, interpolation=v2.InterpolationMode.BICUBIC)]
    if flip_prob > 0:
        steps.append(v2.RandomHorizontalFlip(p=flip_prob))
    if color_jitter is not None:
        brightness, contrast, saturation, hue = color_jitter
        steps.append(v2.ColorJitter(brightness=brightness, contrast=contrast, saturation=saturation, hue=hue))
    if padding > 0:
        steps.append(v2.Pad(padding))
    steps.append(v2.RandomCrop(size))
    return v2.Compose(steps + _normalise(mean, std))


def eval_transform(size, mean, std) -> v2.Compose:
    """The test transform from its numbers: resize to ``size`` (H, W), scale to [0, 1], normalise."""
    interpolation = v2.InterpolationMode(TEST_INTERPOLATION)
    return v2.Compose([v2.Resize(list(size), interpolation=interpolation)] + _normalise(mean, std))
