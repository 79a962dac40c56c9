"""DINOv2's ViT-S/14 and ViT-B/14 (Oquab et al., TMLR 2024, github.com/facebookresearch/dinov2),
with and without registers (Darcet et al., ICLR 2024), as re-ID backbones.

What differs from the ImageNet ViT:

- 14-pixel patches: MODEL.STRIDE_SIZE is at most 14; at stride 14 INPUT.SIZE_TRAIN must be a
  multiple of 14 (e.g. 252 x 126, an 18 x 9 grid), overlapping strides (12, 10...) take any
  size and leave fewer than a stride of pixels unread, as for every ViT here;
- LayerScale after attention and MLP (``ls1`` / ``ls2``); LayerNorm eps 1e-6, GELU, qkv bias;
- the ``_reg4`` types have 4 register tokens after the class token: they carry no position
  embedding, take part in attention and are never returned (the tokens are [class, patches]);
- the 37 x 37 position grid of the 518-pixel pretraining is resized to the re-ID grid with
  bicubic interpolation, antialiased for the register models and not for the others, as
  DINOv2's ``interpolate_pos_encoding`` does for each release (without its 0.1 offset);
- ImageNet mean / std (``pixel_mean`` / ``pixel_std``); the camera / view embedding is added
  to the class and patch tokens (TransReID's SIE).

Weight files (:meth:`DINOv2ReID.checkpoint_filter`): the released ``dinov2_vit{s,b}14[_reg4]_pretrain.pth``
(``cls_token``, ``pos_embed`` with the class position, ``register_tokens``, ``mask_token`` which
is dropped, ``blocks.N.ls1.gamma``...; chunked ``blocks.C.N.`` training layouts are flattened)
and timm's layout of the same weights (``reg_token``, and for register models a position table
without the class position, whose class token already holds it).
"""
from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from ..errors import CheckpointError
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

DINOV2_PATCH = 14

_SMALL = BackboneSpec(embed_dim=384, depth=12, num_heads=6)
_BASE = BackboneSpec(embed_dim=768, depth=12, num_heads=12)
#: MODEL.TRANSFORMER_TYPE -> (numbers, register tokens)
DINOV2_SPECS: dict[str, tuple[BackboneSpec, int]] = {
    "vit_small_patch14_dinov2": (_SMALL, 0),
    "vit_base_patch14_dinov2": (_BASE, 0),
    "vit_small_patch14_reg4_dinov2": (_SMALL, 4),
    "vit_base_patch14_reg4_dinov2": (_BASE, 4),
}


class DINOv2ReID(VisionTransformerReID):
    """DINOv2's ViT with the re-ID additions (grid, SIE, salient patches).

    Args: ``num_registers`` (0 or 4), ``init_values`` (LayerScale start when not loading
    weights: 1e-5 as timm); the rest as :class:`VisionTransformerReID`.
    """

    family = "DINOv2"
    accepts = ("dinov2",)
    weights_name = "DINOv2"
    pixel_mean = IMAGENET_MEAN
    pixel_std = IMAGENET_STD

    def __init__(self, img_size: tuple[int, int], num_registers: int = 0, init_values: float = 1e-5, **kwargs):
        super().__init__(img_size, patch_size=DINOV2_PATCH, norm_eps=1e-6, qkv_bias=True, init_values=init_values,
                         num_registers=num_registers, **kwargs)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return super().no_weight_decay() | ({"register_tokens"} if self.num_registers else set())

    def checkpoint_filter(self, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The released layout or timm's -> this module's."""
        state = {_CHUNKED.sub(r"blocks.\1.", k): v for k, v in state.items() if k != "mask_token"}
        timm_layout = "reg_token" in state
        if timm_layout:
            state["register_tokens"] = state.pop("reg_token")
        registers = int(state["register_tokens"].shape[1]) if "register_tokens" in state else 0
        if registers != self.num_registers:
            kind = f"{registers} register tokens" if registers else "no register tokens"
            raise CheckpointError(f"the DINOv2 weights have {kind}, MODEL.TRANSFORMER_TYPE has {self.num_registers}: "
                                  f"{_suggest_dinov2(state)}")
        if "pos_embed" in state:
            pos = state["pos_embed"]
            if timm_layout:  # timm folds the class position into cls_token: a zero class position is the same
                pos = torch.cat((pos.new_zeros(1, 1, pos.shape[-1]), pos), dim=1)
            grid = source_grid(pos.shape[1] - 1, self.grid_size)
            state["pos_embed"] = torch.cat(
                (pos[:, :1], resize_positions(pos[:, 1:], grid, self.grid_size, "bicubic", bool(registers))), dim=1)
        return state


_CHUNKED = re.compile(r"^blocks\.\d+\.(\d+)\.")


def _is_dinov2(state: Mapping[str, torch.Tensor]) -> bool:
    if any(k in state for k in ("mask_token", "register_tokens", "reg_token")):
        return True
    proj = state.get("patch_embed.proj.weight")
    return proj is not None and proj.ndim == 4 and proj.shape[-1] == DINOV2_PATCH and any(
        k.endswith(".ls1.gamma") for k in state)


def _suggest_dinov2(state: Mapping[str, torch.Tensor]) -> str:
    registers = "_reg4" if any(k in state for k in ("register_tokens", "reg_token")) else ""
    size = {384: "small", 768: "base"}.get(width_of(state, "cls_token", "norm.weight"))
    if size is None:  # another width (MODEL.VIT_EMBED_DIM): both sizes
        return (f"set MODEL.TRANSFORMER_TYPE 'vit_small_patch14{registers}_dinov2' or "
                f"'vit_base_patch14{registers}_dinov2'")
    return f"set MODEL.TRANSFORMER_TYPE 'vit_{size}_patch14{registers}_dinov2'"


register_weight_format(WeightFormat("dinov2", "DINOv2", _is_dinov2, _suggest_dinov2))


def build_dinov2(cfg, camera_num: int, view_num: int, salient: bool = True) -> DINOv2ReID:
    """The DINOv2 ViT of MODEL.TRANSFORMER_TYPE (+ MODEL.VIT_* overrides)."""
    m = cfg.MODEL
    spec, registers = DINOV2_SPECS[m.TRANSFORMER_TYPE]
    spec = spec.resized(m.VIT_EMBED_DIM, m.VIT_DEPTH, m.VIT_NUM_HEADS)
    settings = TokenSettings.from_config(cfg, camera_num, view_num, salient, DINOV2_PATCH)
    return DINOv2ReID(num_registers=registers, embed_dim=spec.embed_dim, depth=spec.depth, num_heads=spec.num_heads,
                      mlp_ratio=spec.mlp_ratio, **settings.kwargs())


for _name in DINOV2_SPECS:
    BACKBONES.register(_name, build_dinov2)
