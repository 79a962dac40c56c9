"""Patch-level part labels and their refinement (docs/METHOD.md, section 3).

Every function works on whole batches with tensor operations, on the input's device.
Patch windows are ``kernel`` x ``kernel`` pixels taken every ``stride`` pixels, as the ViT's
overlapping patch embedding sees the image: fH = (H - kernel) // stride + 1 (likewise fW).
``stride`` is one int (the reference's use) or a (vertical, horizontal) pair.
"""
from __future__ import annotations

import torch

from ..errors import InputError
from ..geometry import PATCH_SIZE

PATCH_KERNEL = PATCH_SIZE  # window of one patch label: the ViT patch
ERASE_THRESHOLD = 0.7  # a window more than this much inside the erased rectangle loses its label


def _pair(stride) -> tuple[int, int]:
    if isinstance(stride, int):
        return stride, stride
    sh, sw = (int(s) for s in stride)
    return sh, sw


def patch_labels(labels: torch.Tensor, num_parts: int, stride, kernel: int = PATCH_KERNEL) -> torch.Tensor:
    """Most frequent label (0..num_parts) of every patch window, ties to the lowest label.

    labels: integer pixel labels [B,H,W]. Returns int64 [B,fH,fW].
    """
    if labels.dim() != 3 or labels.shape[-2] < kernel or labels.shape[-1] < kernel:
        raise InputError(f"patch_labels expects pixel labels [B,H,W] of at least {kernel}x{kernel}, "
                         f"got shape {tuple(labels.shape)}")
    sh, sw = _pair(stride)
    windows = labels.unfold(1, kernel, sh).unfold(2, kernel, sw)  # [B,fH,fW,k,k], a view
    counts = torch.stack([(windows == part).sum(dim=(-2, -1)) for part in range(num_parts + 1)], dim=-1)
    return counts.argmax(dim=-1)  # argmax returns the first maximum: the lowest label


def erase_patches(patch_lbl: torch.Tensor, rects: torch.Tensor, stride, kernel: int = PATCH_KERNEL,
                  threshold: float = ERASE_THRESHOLD, image_size: tuple[int, int] | None = None) -> torch.Tensor:
    """Zero the patches whose window lies more than ``threshold`` inside the erased rectangle.

    patch_lbl: [B,fH,fW]. rects: int64 [B,4] (top, left, height, width) per image; a row of -1
    means not erased. image_size: (H, W); it does not change the result (windows never reach
    past the grid), so by default the smallest size that has this grid is used.
    """
    b, fh, fw = patch_lbl.shape
    sh, sw = _pair(stride)
    h, w = image_size or ((fh - 1) * sh + kernel, (fw - 1) * sw + kernel)
    rects = torch.as_tensor(rects, device=patch_lbl.device).long().reshape(b, 4)
    top, left, rh, rw = rects.unbind(1)
    erased = top >= 0
    ys = torch.arange(h, device=patch_lbl.device)
    xs = torch.arange(w, device=patch_lbl.device)
    inside_y = (ys >= top[:, None]) & (ys < (top + rh)[:, None])  # [B,H]
    inside_x = (xs >= left[:, None]) & (xs < (left + rw)[:, None])  # [B,W]
    # a rectangle's coverage of a window is separable: (rows inside) x (columns inside)
    rows = inside_y.long().unfold(1, kernel, sh).sum(-1)[:, :fh]  # [B,fH]
    cols = inside_x.long().unfold(1, kernel, sw).sum(-1)[:, :fw]  # [B,fW]
    ratio = (rows[:, :, None] * cols[:, None, :]).float() / (kernel * kernel)
    covered = (ratio > threshold) & erased[:, None, None]
    return patch_lbl.masked_fill(covered, 0)


def drop_covered(patch_lbl: torch.Tensor, covered: torch.Tensor) -> torch.Tensor:
    """Zero the patches covered by background augmentation (covered: bool [B, fH*fW])."""
    return patch_lbl.masked_fill(covered.reshape(patch_lbl.shape).bool(), 0)


def keep_salient(patch_lbl: torch.Tensor, salient_idx: torch.Tensor) -> torch.Tensor:
    """Keep only the labels of the salient patches (salient_idx: int64 [B,T] flat patch indices)."""
    b = patch_lbl.shape[0]
    keep = torch.zeros(b, patch_lbl[0].numel(), dtype=torch.bool, device=patch_lbl.device)
    keep.scatter_(1, salient_idx.long(), True)
    return patch_lbl * keep.reshape(patch_lbl.shape)
