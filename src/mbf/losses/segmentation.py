"""Segmentation loss of the patch classifier against refined part labels (docs/METHOD.md, section 3)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..errors import InputError

#: background, head, upper body, lower body, shoes (the reference's weights)
DEFAULT_SEG_CLASS_WEIGHTS: tuple[float, ...] = (0.5, 1.0, 0.8, 0.8, 1.0)
DEFAULT_SEG_EPSILON = 0.1


def segmentation_loss(
    patch_probs: torch.Tensor,
    target: torch.Tensor,
    epsilon: float = DEFAULT_SEG_EPSILON,
    class_weights: Sequence[float] | torch.Tensor = DEFAULT_SEG_CLASS_WEIGHTS,
) -> torch.Tensor:
    """Class-weighted, label-smoothed cross-entropy over a patch grid.

    Args:
        patch_probs: [B, C, fH, fW], what the model returns: per-patch class probabilities
            (already softmaxed). As in the reference, ``log_softmax`` is applied to them once
            more; that squashes the objective (log-probabilities stay within log(1/C) +- 1),
            and the published recipe was tuned with it, so it is kept on purpose.
        target: int64 [B, fH, fW] labels in [0, C).
        epsilon: smoothing; the target class gets 1 - epsilon, each other class epsilon / (C - 1).
        class_weights: C weights multiplying each class's smoothed label.

    Returns: the weighted smoothed cross-entropy summed over classes and patches, divided by
    B * fH * fW (the number of patches, not the sum of weights).
    """
    if patch_probs.dim() != 4:
        raise InputError(f"segmentation_loss expects patch_probs [B, C, fH, fW], got {tuple(patch_probs.shape)}")
    B, C, H, W = patch_probs.shape
    if target.shape != (B, H, W):
        raise InputError(
            f"segmentation target {tuple(target.shape)} does not match patch_probs {tuple(patch_probs.shape)}"
        )
    weights = torch.as_tensor(class_weights, dtype=torch.float32, device=patch_probs.device).flatten()
    if weights.numel() != C:
        raise InputError(f"segmentation class_weights has {weights.numel()} entries for {C} classes")
    if not 0.0 <= epsilon < 1.0:
        raise InputError(f"segmentation epsilon must be in [0, 1), got {epsilon}")

    weighted = F.log_softmax(patch_probs.float(), dim=1) * weights.view(1, C, 1, 1)
    off = epsilon / (C - 1)
    on_target = weighted.gather(1, target.long().unsqueeze(1))
    total = off * weighted.sum() + (1.0 - epsilon - off) * on_target.sum()
    return -total / (B * H * W)
