"""CLIP's ViT-B/16 image encoder as a re-ID backbone, as CLIP-ReID uses it (Li et al., AAAI 2023,
github.com/Syliz517/CLIP-ReID, ``model/clip/model.py``).

What differs from the ImageNet ViT:

- the patch convolution has no bias, and a LayerNorm (``norm_pre``, CLIP's ``ln_pre``) is
  applied to the tokens before the first block (pre-norm); LayerNorms use eps 1e-5;
- the MLPs use QuickGELU, x * sigmoid(1.702 x) (timm's), for OpenAI's weights
  (``vit_base_patch16_clip_quickgelu``); open_clip's own LAION / DataComp ViT-B/16 weights were
  trained with GELU (``vit_base_patch16_clip``);
- the input is normalised with CLIP's mean / std (``pixel_mean`` / ``pixel_std``);
- the camera / view embedding (MODEL.SIE_CAMERA) is added to the class token only, before the
  position embedding and ``norm_pre``, scaled by MODEL.SIE_COE (CLIP-ReID's SIE uses 1.0);
- overlapping patches (MODEL.STRIDE_SIZE below 16, CLIP-ReID's OLP uses 12) as for every ViT
  here; the 14 x 14 position grid of the 224-pixel pretraining is resized to the re-ID grid
  with bilinear interpolation (align_corners False), as CLIP-ReID does;
- the final norm is CLIP's ``ln_post`` on every token; CLIP's 768 -> 512 image projection
  (``proj``) is not used (MBF and the baseline work on the 768-wide tokens) and not loaded.

Weight files (:meth:`CLIPVisionReID.checkpoint_filter`): a state dict in OpenAI's key layout,
which open_clip keeps (``visual.conv1.weight``, ``visual.transformer.resblocks.N.attn.in_proj_weight``
...; the whole CLIP model, its visual tower alone, with or without a ``module.`` prefix), saved
by ``torch.save`` or as ``.safetensors`` (open_clip's ``open_clip_pytorch_model.bin`` /
``open_clip_model.safetensors``). OpenAI's own release file is a TorchScript archive, which is
not read (one error gives the command that converts it; see docs/BACKBONES.md).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
from timm.layers import QuickGELU
from torch import nn

from .backbone import BackboneSpec, TokenSettings
from .converters import (
    DROP,
    WeightFormat,
    register_weight_format,
    rename_keys,
    resize_positions,
    source_grid,
)
from .registry import BACKBONES
from .vit import VisionTransformerReID

log = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CLIP_PATCH = 16

#: MODEL.TRANSFORMER_TYPE -> (numbers, QuickGELU)
CLIP_SPECS: dict[str, tuple[BackboneSpec, bool]] = {
    "vit_base_patch16_clip_quickgelu": (BackboneSpec(embed_dim=768, depth=12, num_heads=12), True),
    "vit_base_patch16_clip": (BackboneSpec(embed_dim=768, depth=12, num_heads=12), False),
}


class CLIPVisionReID(VisionTransformerReID):
    """CLIP's visual transformer with the re-ID additions (grid, SIE on the class token, salient patches).

    Args: ``quick_gelu`` (OpenAI's weights) or GELU; the rest as :class:`VisionTransformerReID`.
    """

    family = "CLIP (OpenAI / open_clip)"
    accepts = ("clip",)
    weights_name = "CLIP"
    pixel_mean = CLIP_MEAN
    pixel_std = CLIP_STD

    def __init__(self, img_size: tuple[int, int], quick_gelu: bool = True, embed_dim: int = 768, **kwargs):
        super().__init__(img_size, embed_dim=embed_dim, patch_size=CLIP_PATCH, patch_bias=False, norm_eps=1e-5,
                         act_layer=QuickGELU if quick_gelu else nn.GELU, qkv_bias=True, **kwargs)
        self.norm_pre = nn.LayerNorm(embed_dim, eps=1e-5)

    def embed(self, x: torch.Tensor, cam_label=None, view_label=None) -> torch.Tensor:
        """Images -> [B, 1 + P, D]: patches, class token (+ SIE), position, then ``norm_pre``."""
        self.check_input(x, cam_label, view_label)
        x = self.patch_embed(x)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        if self.sie_embed is not None:
            cls = cls + self.sie_coe * self.side_information(cam_label, view_label, x.device)
        x = torch.cat((cls, x), dim=1) + self.pos_embed
        return self.pos_drop(self.norm_pre(x))

    def checkpoint_filter(self, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """OpenAI / open_clip key layout -> this module's."""
        prefix = "visual." if any(k.startswith("visual.") for k in state) else ""
        # without the text tower, logit_scale, input_resolution...
        visual = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
        if "proj" in visual:
            log.info("CLIP weights: not loading the 768 -> 512 image projection (proj): MBF uses the tokens")
        out = rename_keys(visual, _OPENAI_TO_OURS, "CLIP weights")
        if "cls_token" in out:
            out["cls_token"] = out["cls_token"].reshape(1, 1, -1)
        if "pos_embed" in out:
            out["pos_embed"] = self._positions(out["pos_embed"].reshape(1, -1, out["pos_embed"].shape[-1]))
        return out

    def _positions(self, posemb: torch.Tensor) -> torch.Tensor:
        grid = source_grid(posemb.shape[1] - 1, self.grid_size)
        return torch.cat((posemb[:, :1], resize_positions(posemb[:, 1:], grid, self.grid_size, "bilinear", False)), 1)


_OPENAI_TO_OURS = [
    (r"^proj$", DROP),
    (r"^conv1\.", "patch_embed.proj."),
    (r"^class_embedding$", "cls_token"),
    (r"^positional_embedding$", "pos_embed"),
    (r"^ln_pre\.", "norm_pre."),
    (r"^ln_post\.", "norm."),
    (r"^transformer\.resblocks\.(\d+)\.ln_1\.", r"blocks.\1.norm1."),
    (r"^transformer\.resblocks\.(\d+)\.ln_2\.", r"blocks.\1.norm2."),
    (r"^transformer\.resblocks\.(\d+)\.attn\.in_proj_(weight|bias)$", r"blocks.\1.attn.qkv.\2"),
    (r"^transformer\.resblocks\.(\d+)\.attn\.out_proj\.", r"blocks.\1.attn.proj."),
    (r"^transformer\.resblocks\.(\d+)\.mlp\.c_fc\.", r"blocks.\1.mlp.fc1."),
    (r"^transformer\.resblocks\.(\d+)\.mlp\.c_proj\.", r"blocks.\1.mlp.fc2."),
]


def _is_clip(state: Mapping[str, torch.Tensor]) -> bool:
    return any(f"{p}class_embedding" in state and f"{p}conv1.weight" in state for p in ("visual.", ""))


register_weight_format(WeightFormat(
    "clip", "CLIP (OpenAI / open_clip layout)", _is_clip,
    lambda state: ("set MODEL.TRANSFORMER_TYPE 'vit_base_patch16_clip_quickgelu' (OpenAI's weights) or "
                   "'vit_base_patch16_clip' (open_clip's GELU-trained weights)")))


def build_clip(cfg, camera_num: int, view_num: int, salient: bool = True) -> CLIPVisionReID:
    """The CLIP image encoder of MODEL.TRANSFORMER_TYPE (+ MODEL.VIT_* overrides)."""
    m = cfg.MODEL
    spec, quick_gelu = CLIP_SPECS[m.TRANSFORMER_TYPE]
    spec = spec.resized(m.VIT_EMBED_DIM, m.VIT_DEPTH, m.VIT_NUM_HEADS)
    settings = TokenSettings.from_config(cfg, camera_num, view_num, salient, CLIP_PATCH)
    return CLIPVisionReID(quick_gelu=quick_gelu, embed_dim=spec.embed_dim, depth=spec.depth,
                          num_heads=spec.num_heads, mlp_ratio=spec.mlp_ratio, **settings.kwargs())


for _name in CLIP_SPECS:
    BACKBONES.register(_name, build_clip)
