"""Pieces shared by the re-ID models: the BNNeck and the backbone-owning base class (output
types: :mod:`.outputs`)."""
from __future__ import annotations

import torch
from torch import nn

from ..geometry import PatchGrid
from .outputs import LayoutBlock, side_by_side


class BNNeck(nn.Module):
    """BatchNorm1d with a frozen zero bias, then a bias-free linear ID classifier."""

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(dim)
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)
        self.bn.bias.requires_grad_(False)
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """The normalised feature (call ``classifier`` on it for the ID logits)."""
        return self.bn(feat)


class BackboneModel(nn.Module):
    """A re-ID model built on ``self.backbone`` (a VisionTransformerReID): grid and weight-decay helpers."""

    backbone: nn.Module

    @property
    def patch_grid(self) -> PatchGrid:
        """Pixels -> patch tokens of the training/test image size; the step and the mask
        operations take stride and patch size from here."""
        return self.backbone.patch_grid

    @property
    def grid_size(self) -> tuple[int, int]:
        return self.backbone.grid_size

    def descriptor_layout(self) -> tuple[LayoutBlock, ...]:
        """(name, start, stop, scale) of each block of the eval descriptor (``descriptor_dim``
        dimensions), in order, for model cards; by default the whole descriptor is the global
        feature (the baseline), a model with parts says where they are."""
        return side_by_side(self.descriptor_dim, [("global", 1.0)])

    def feature_grid(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """(fH, fW) of the patch grid for an image of ``image_size`` (H, W)."""
        grid = self.patch_grid
        return PatchGrid(tuple(image_size), grid.stride, grid.patch_size).size

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return {f"backbone.{name}" for name in self.backbone.no_weight_decay()}
