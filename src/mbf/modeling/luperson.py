"""The LUPerson-pretrained ViTs of TransReID-SSL (Luo et al., "Self-Supervised Pre-Training for
Transformer-Based Person Re-Identification", arXiv 2111.12084, github.com/damo-cv/TransReID-SSL):
DINO on LUPerson's person crops, released as ViT-S/16, ViT-S/16+ICS and ViT-B/16+ICS.

What differs from the ImageNet ViT:

- ICS (IBN-based convolution stem, the ``_ics`` types): the image goes through a stem before
  the patch projection: Conv 7x7 stride 2 (64 channels, no bias), IBN (half InstanceNorm, half
  BatchNorm), ReLU, Conv 3x3, IBN, ReLU, Conv 3x3, BatchNorm, ReLU; then an 8x8 projection on
  the half-resolution map. A patch is still 16 image pixels; the projection's stride is half of
  MODEL.STRIDE_SIZE, which must therefore be even (16, 12...), as must INPUT.SIZE_TRAIN, so
  that the grid is the 16-pixel patch grid of the other ViTs. (TransReID-SSL's own code fixes
  the stride at 16 with the stem.)
- The pretraining images were 256 x 128, so the released position table is a 16 x 8 grid
  (TransReID-SSL's PRETRAIN_HW_RATIO 2); it is resized to the re-ID grid with bilinear
  interpolation (align_corners False), as TransReID-SSL does. A square table (an ImageNet
  file in the same layout) is resized the same way.
- ViT-S is the DeiT-S shape (width 384, 6 heads, qkv bias, head_dim ** -0.5), not the old timm
  ViT-S of ``vit_small_patch16_224_TransReID``.
- The DINO pretraining normalised with ImageNet's mean / std (``pixel_mean`` / ``pixel_std``);
  TransReID-SSL's fine-tuning configs use 0.5 / 0.5 (see docs/BACKBONES.md).

Weight files (:meth:`LUPersonViT.checkpoint_filter`): the released state dicts (timm ViT key
layout; ``patch_embed.conv.N.`` for the stem; a classifier ``head`` / ``fc`` is dropped), the
output of TransReID-SSL's ``convert_model_dino.py``, and a DINO checkpoint's ``teacher``
(``backbone.`` prefix) when it holds tensors only.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ..errors import ConfigError
from ..normalisation import IMAGENET_MEAN, IMAGENET_STD
from .backbone import BackboneSpec, TokenSettings
from .converters import (
    WeightFormat,
    register_weight_format,
    resize_positions,
    source_grid,
    width_of,
)
from .registry import BACKBONES
from .vit import VisionTransformerReID

LUPERSON_PATCH = 16
STEM_WIDTH = 64
PRETRAIN_HW_RATIO = 2  # 256 x 128 pretraining crops: a 16 x 8 position grid

#: MODEL.TRANSFORMER_TYPE -> (numbers, convolution stem)
LUPERSON_SPECS: dict[str, tuple[BackboneSpec, bool]] = {
    "vit_small_patch16_luperson": (BackboneSpec(embed_dim=384, depth=12, num_heads=6), False),
    "vit_small_patch16_ics_luperson": (BackboneSpec(embed_dim=384, depth=12, num_heads=6), True),
    "vit_base_patch16_ics_luperson": (BackboneSpec(embed_dim=768, depth=12, num_heads=12), True),
}
_SKIP = ("head", "fc", "dist_token", "pre_logits", "head_dist")


class IBN(nn.Module):
    """Instance norm on the first half of the channels, batch norm on the rest (IBN-Net)."""

    def __init__(self, channels: int):
        super().__init__()
        self.half = channels // 2
        self.IN = nn.InstanceNorm2d(self.half, affine=True)
        self.BN = nn.BatchNorm2d(channels - self.half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.split((self.half, x.shape[1] - self.half), dim=1)
        return torch.cat((self.IN(a.contiguous()), self.BN(b.contiguous())), dim=1)


class ConvStemPatchEmbed(nn.Module):
    """ICS: convolution stem at half resolution, then an 8x8 projection at half the stride -> [B, P, D]."""

    def __init__(self, in_chans: int, embed_dim: int, stride: tuple[int, int], width: int = STEM_WIDTH):
        super().__init__()
        if any(s % 2 for s in stride):
            raise ConfigError(f"MODEL.STRIDE_SIZE {list(stride)} must be even for the LUPerson convolution stem "
                              "(its projection runs on the half-resolution map at half the stride)")
        self.conv = nn.Sequential(
            nn.Conv2d(in_chans, width, kernel_size=7, stride=2, padding=3, bias=False), IBN(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, kernel_size=3, stride=1, padding=1, bias=False), IBN(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, kernel_size=3, stride=1, padding=1, bias=False), nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        self.proj = nn.Conv2d(width, embed_dim, kernel_size=LUPERSON_PATCH // 2, stride=(stride[0] // 2, stride[1] // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.conv(x)).flatten(2).transpose(1, 2)


class LUPersonViT(VisionTransformerReID):
    """A TransReID-SSL ViT (with ``conv_stem``: ICS) with the re-ID additions."""

    family = "LUPerson (TransReID-SSL)"
    weights_name = "LUPerson"
    pixel_mean = IMAGENET_MEAN
    pixel_std = IMAGENET_STD

    def __init__(self, img_size: tuple[int, int], stride: tuple[int, int] = (16, 16), conv_stem: bool = False,
                 embed_dim: int = 384, **kwargs):
        if conv_stem and any(int(v) % 2 for v in img_size):
            raise ConfigError(f"INPUT.SIZE_TRAIN {list(img_size)} must be even for the LUPerson convolution stem")
        stem = ConvStemPatchEmbed(3, embed_dim, tuple(stride)) if conv_stem else None
        super().__init__(img_size, stride, embed_dim=embed_dim, patch_size=LUPERSON_PATCH, patch_embed=stem,
                         norm_eps=1e-6, qkv_bias=True, **kwargs)
        self.conv_stem = conv_stem
        self.accepts = ("luperson_ics",) if conv_stem else ("vit",)

    def checkpoint_filter(self, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """TransReID-SSL's layout -> this module's (classifier heads dropped, positions resized)."""
        out = {k: v for k, v in state.items() if k.split(".")[0] not in _SKIP}
        if "pos_embed" in out:
            pos = out["pos_embed"]
            grid = source_grid(pos.shape[1] - 1, self.grid_size, ratios=(PRETRAIN_HW_RATIO, 1))
            out["pos_embed"] = torch.cat(
                (pos[:, :1], resize_positions(pos[:, 1:], grid, self.grid_size, "bilinear", False)), dim=1)
        return out


def _suggest_ics(state: Mapping[str, torch.Tensor]) -> str:
    size = {384: "small", 768: "base"}.get(width_of(state, "cls_token", "norm.weight"))
    if size is None:  # another width (MODEL.VIT_EMBED_DIM): both keys
        return "set MODEL.TRANSFORMER_TYPE 'vit_small_patch16_ics_luperson' or 'vit_base_patch16_ics_luperson'"
    return f"set MODEL.TRANSFORMER_TYPE 'vit_{size}_patch16_ics_luperson'"


register_weight_format(WeightFormat(
    "luperson_ics", "LUPerson ViT with convolution stem (TransReID-SSL ICS)",
    lambda state: "patch_embed.conv.0.weight" in state, _suggest_ics))


def build_luperson(cfg, camera_num: int, view_num: int, salient: bool = True) -> LUPersonViT:
    """The TransReID-SSL ViT of MODEL.TRANSFORMER_TYPE (+ MODEL.VIT_* overrides)."""
    m = cfg.MODEL
    spec, conv_stem = LUPERSON_SPECS[m.TRANSFORMER_TYPE]
    spec = spec.resized(m.VIT_EMBED_DIM, m.VIT_DEPTH, m.VIT_NUM_HEADS)
    settings = TokenSettings.from_config(cfg, camera_num, view_num, salient, LUPERSON_PATCH)
    return LUPersonViT(conv_stem=conv_stem, embed_dim=spec.embed_dim, depth=spec.depth, num_heads=spec.num_heads,
                       mlp_ratio=spec.mlp_ratio, **settings.kwargs())


for _name in LUPERSON_SPECS:
    BACKBONES.register(_name, build_luperson)
