"""What the re-ID models return: the train-mode outputs both architectures share, and the
layout of the eval-mode descriptor (which dimensions hold which feature)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

#: one block of the eval descriptor: (name, start, stop, scale): dimensions [start, stop) hold
#: the feature ``name`` multiplied by ``scale``
LayoutBlock = tuple[str, int, int, float]


@dataclass
class MBFOutput:
    """Train-mode outputs. Lists run global first, then the K parts.

    scores: ID logits; feats: BN features the triplet loss uses (parts divided by K);
    patch_probs [B, K+1, fH, fW]; salient_idx int64 [B, T]; sepa_loss scalar;
    patch_feats [B, P, D] (backbone patch tokens); recovered_patches [B, P, D] and
    decoder_scores / decoder_feats (K each) only for the occluded call with recovery.
    The global-only baseline fills scores/feats with one entry and leaves the rest None.
    """

    scores: list[torch.Tensor]
    feats: list[torch.Tensor]
    patch_probs: torch.Tensor | None = None
    salient_idx: torch.Tensor | None = None
    sepa_loss: torch.Tensor | None = None
    patch_feats: torch.Tensor | None = None
    recovered_patches: torch.Tensor | None = None
    decoder_scores: list[torch.Tensor] | None = None
    decoder_feats: list[torch.Tensor] | None = None


def side_by_side(width: int, features: list[tuple[str, float]]) -> tuple[LayoutBlock, ...]:
    """The layout of ``features`` ((name, scale) each, ``width`` dimensions each) concatenated in order."""
    return tuple((name, i * width, (i + 1) * width, float(scale)) for i, (name, scale) in enumerate(features))
