"""Pieces shared by the re-ID models: the BNNeck and the backbone-owning base class with the
one way weights are loaded into a model (output types: :mod:`.outputs`)."""
from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
from torch import nn

from ..geometry import PatchGrid
from .converters import is_reference_format, load_strict, read_state_dict
from .outputs import LayoutBlock, side_by_side

log = logging.getLogger(__name__)


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
    """A re-ID model built on ``self.backbone`` (a backbone of the contract in
    :mod:`mbf.modeling.backbone`): grid and weight-decay helpers, and weight loading, written
    once for every architecture: :meth:`load_imagenet` (the backbone's pretraining, through the
    backbone's own adapter) and :meth:`load_param` (a whole model, ours or the reference's)."""

    backbone: nn.Module

    # ------------------------------------------------------------------ weights
    def load_imagenet(self, source) -> None:
        """The backbone family's pretraining weights (MODEL.PRETRAIN_CHOICE 'imagenet': ImageNet
        ViT / DeiT, CLIP, DINOv2, LUPerson... whatever MODEL.TRANSFORMER_TYPE reads), loaded by
        the backbone's ``load_pretrained``; then :meth:`after_pretrained`."""
        self.backbone.load_pretrained(source)
        self.after_pretrained()

    def after_pretrained(self) -> None:
        """What the architecture refreshes from new backbone weights (MBF: its part block)."""

    def from_reference(self, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The reference implementation's state dict -> ours (an architecture with one overrides this)."""
        return dict(state)

    def filter_param(self, state: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
        """Keys of a whole-model checkpoint this model leaves out on purpose (MBF without recovery)."""
        return state

    def load_param(self, source) -> None:
        """Load a whole model: our state dict or the reference train.py's (converted); strict."""
        name = str(source) if not isinstance(source, dict) else "state dict"
        state = read_state_dict(source, "model weights")
        if is_reference_format(state):
            state = self.from_reference(state)
        load_strict(self, self.filter_param(state, name), name)

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
