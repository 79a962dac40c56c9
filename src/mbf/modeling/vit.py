"""TransReID-style Vision Transformer: overlapping patches, camera/view embedding (SIE) and
salient-patch selection from the CLS attention of one block; the ImageNet ViT / DeiT family and
the token machinery the other ViT families (CLIP, DINOv2, LUPerson) build on.

Every block uses the fused ``scaled_dot_product_attention`` kernel, except the salient block in
training, which needs the attention probabilities of the CLS query and computes them
explicitly. Shapes: B batch, N = P + 1 tokens, P = fH * fW patches, D width, H heads.

A family is a subclass that changes what differs (its blocks' activation or LayerScale through
constructor arguments; its token assembly in :meth:`VisionTransformerReID.embed`; its weight
adapter in :meth:`VisionTransformerReID.checkpoint_filter`) and keeps the contract of
:mod:`mbf.modeling.backbone`.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from timm.layers import DropPath, LayerScale, Mlp, trunc_normal_
from torch import nn

from ..errors import CheckpointError, ConfigError, InputError
from ..geometry import PATCH_SIZE, PatchGrid, feature_grid  # noqa: F401  (feature_grid: part of mbf.modeling)
from .backbone import (
    CAMERA_EMBEDDING,
    GLOBAL_FEATURE,
    PART_BLOCK,
    PATCH_TOKENS,
    PRETRAINED_WEIGHTS,
    SALIENT_PATCHES,
    BackboneSpec,
    ReIDBackbone,
)
from .converters import (
    WeightFormat,
    check_weight_format,
    imagenet_to_backbone,
    load_strict,
    read_pretrained,
    register_weight_format,
    width_of,
)

_VIT_BASE = BackboneSpec(embed_dim=768, depth=12, num_heads=12)

# MODEL.TRANSFORMER_TYPE -> the numbers of that ViT (each registered as a backbone in build.py)
VIT_SPECS: dict[str, BackboneSpec] = {
    "vit_base_patch16_224_MBF": _VIT_BASE,
    "vit_base_patch16_224_TransReID": _VIT_BASE,
    "deit_base_patch16_224_TransReID": _VIT_BASE,
    "vit_small_patch16_224_TransReID": BackboneSpec(
        embed_dim=768, depth=8, num_heads=8, mlp_ratio=3.0, qkv_bias=False, scale_by_embed_dim=True
    ),
    "deit_small_patch16_224_TransReID": BackboneSpec(embed_dim=384, depth=12, num_heads=6),
}


def backbone_spec(name: str, embed_dim: int = 0, depth: int = 0, num_heads: int = 0) -> BackboneSpec:
    """The spec of ``name`` with width, depth and heads overridden where the override is > 0."""
    if name not in VIT_SPECS:
        raise ConfigError(f"MODEL.TRANSFORMER_TYPE {name!r} is not one of: {', '.join(VIT_SPECS)}")
    return VIT_SPECS[name].resized(embed_dim, depth, num_heads)


class PatchEmbed(nn.Module):
    """Overlapping patch embedding: Conv2d(kernel patch_size, stride S) -> tokens [B, P, D]."""

    def __init__(self, in_chans: int, embed_dim: int, stride: tuple[int, int], patch_size: int = PATCH_SIZE,
                 bias: bool = True):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=stride, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with a joint qkv projection (timm/jx parameter layout)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        scale: float | None = None,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = scale if scale is not None else self.head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def heads(self, x: torch.Tensor) -> torch.Tensor:
        """[..., N, D] -> [..., H, N, D/H]."""
        return x.unflatten(-1, (self.num_heads, self.head_dim)).transpose(-3, -2)

    def merge_heads(self, x: torch.Tensor) -> torch.Tensor:
        """[..., H, N, D/H] -> [..., N, D]."""
        return x.transpose(-3, -2).flatten(-2)

    def query(self, x: torch.Tensor) -> torch.Tensor:
        """Queries of ``x`` [..., N, D], split into heads."""
        dim = x.shape[-1]
        bias = None if self.qkv.bias is None else self.qkv.bias[:dim]
        return self.heads(F.linear(x, self.qkv.weight[:dim], bias))

    def key_value(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of ``x`` [..., N, D], split into heads."""
        dim = x.shape[-1]
        bias = None if self.qkv.bias is None else self.qkv.bias[dim:]
        k, v = F.linear(x, self.qkv.weight[dim:], bias).chunk(2, dim=-1)
        return self.heads(k), self.heads(v)

    def output(self, x: torch.Tensor) -> torch.Tensor:
        """Output projection of merged heads."""
        return self.proj_drop(self.proj(self.merge_heads(x)))

    def _dropout_p(self) -> float:
        return self.attn_drop if self.training else 0.0

    def qkv_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """[B, N, D] -> q, k, v, each [B, H, N, D/H]."""
        qkv = self.qkv(x).unflatten(-1, (3, self.num_heads, self.head_dim))
        return qkv.permute(2, 0, 3, 1, 4).unbind(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv_heads(x)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self._dropout_p(), scale=self.scale)
        return self.output(out)

    def forward_cls_only(self, x: torch.Tensor) -> torch.Tensor:
        """Output for the first (CLS) token only: [B, N, D] -> [B, 1, D]."""
        q = self.query(x[:, :1])
        k, v = self.key_value(x)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self._dropout_p(), scale=self.scale)
        return self.output(out)

    def forward_with_cls_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Explicit attention; also returns the CLS row over the patches averaged over heads [B, P]."""
        q, k, v = self.qkv_heads(x)
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        attn = F.dropout(attn, self._dropout_p(), self.training)
        cls_attn = attn[:, :, 0, 1:].mean(dim=1)
        return self.output(attn @ v), cls_attn


class Block(nn.Module):
    """Pre-norm transformer block (LayerNorm, attention, LayerNorm, MLP, drop-path), with
    optional LayerScale (``init_values``: DINOv2's ``ls1`` / ``ls2``) and another activation
    (``act_layer``: QuickGELU for CLIP). Without them it is the ViT / TransReID block."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        norm_eps: float = 1e-6,
        act_layer: type[nn.Module] = nn.GELU,
        init_values: float | None = None,
    ):
        super().__init__()
        self.init_args = dict(dim=dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, qk_scale=qk_scale,
                              drop=drop, attn_drop=attn_drop, drop_path=drop_path, norm_eps=norm_eps,
                              act_layer=act_layer, init_values=init_values)
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, scale=qk_scale, attn_drop=attn_drop, proj_drop=drop)
        self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer, drop=drop)
        self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()

    def fresh_copy(self) -> Block:
        """A new block built with this one's arguments, holding a copy of its weights."""
        block = Block(**self.init_args)
        block.load_state_dict(self.state_dict())
        return block

    def residual_attn(self, x: torch.Tensor, attn_out: torch.Tensor) -> torch.Tensor:
        """``x`` plus the (scaled, dropped) attention output."""
        return x + self.drop_path(self.ls1(attn_out))

    def residual_mlp(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.residual_attn(x, self.attn(self.norm1(x)))
        return self.residual_mlp(x)

    def forward_cls_only(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output for the CLS token only [B, 1, D] (the other outputs unused)."""
        cls = self.residual_attn(x[:, :1], self.attn.forward_cls_only(self.norm1(x)))
        return self.residual_mlp(cls)

    def forward_with_cls_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, cls_attn = self.attn.forward_with_cls_attention(self.norm1(x))
        return self.residual_mlp(self.residual_attn(x, out)), cls_attn


class VisionTransformerReID(ReIDBackbone):
    """ViT with overlapping patches, side-information embedding and salient patches; as built
    here, the ImageNet ViT / DeiT family (timm/jx weights), and the base of the other ViT families.

    Args:
        img_size: (H, W) the model is built for; inputs must have exactly this size.
        stride: (sH, sW) of the patch convolution.
        num_cameras, num_views: rows of the SIE table (0 switches that side information off);
            both > 0 gives one row per (camera, view) pair.
        sie_coe: weight of the SIE embedding added to the tokens.
        salient_block: block whose CLS attention picks the salient patches (negative counts
            from the end; None: no salient selection); keep_ratio: fraction of patches kept,
            ceil(keep_ratio * P).
        patch_size: side of a patch (16; 14 for DINOv2). patch_embed: a patch embedding of
            the family's own (it must have ``proj``, the last convolution); default a
            Conv2d(patch_size, stride) with ``patch_bias``.
        act_layer, init_values: the blocks' activation and LayerScale (None: none).
        num_registers: extra tokens after the class token (DINOv2's registers); they take part
            in attention and are not returned.
    """

    capabilities = frozenset({PATCH_TOKENS, SALIENT_PATCHES, PART_BLOCK, GLOBAL_FEATURE, CAMERA_EMBEDDING,
                              PRETRAINED_WEIGHTS})
    #: the weight family this class reads (messages), the formats its adapter accepts and the
    #: ``what`` of its files in messages
    family = "ImageNet ViT / DeiT"
    accepts: tuple[str, ...] = ("vit",)
    weights_name = "ImageNet"

    def __init__(
        self,
        img_size: tuple[int, int],
        stride: tuple[int, int] = (16, 16),
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        norm_eps: float = 1e-6,
        num_cameras: int = 0,
        num_views: int = 0,
        sie_coe: float = 3.0,
        salient_block: int | None = -2,
        keep_ratio: float = 0.4,
        patch_size: int = PATCH_SIZE,
        patch_embed: nn.Module | None = None,
        patch_bias: bool = True,
        act_layer: type[nn.Module] = nn.GELU,
        init_values: float | None = None,
        num_registers: int = 0,
    ):
        super().__init__()
        self.img_size = (int(img_size[0]), int(img_size[1]))
        self.stride = (int(stride[0]), int(stride[1]))
        self.in_chans = in_chans
        self.patch_grid = PatchGrid(self.img_size, self.stride, patch_size)
        self.grid_size = self.patch_grid.size
        self.num_patches = self.patch_grid.num_patches
        self.embed_dim = embed_dim
        self.depth = depth
        self.salient_block, self.num_salient = None, 0
        if salient_block is not None:
            if not -depth <= salient_block < depth:
                raise ConfigError(f"MODEL.SALIENT_BLOCK {salient_block} is outside a backbone of depth {depth}")
            if not 0.0 < keep_ratio <= 1.0:
                raise ConfigError(f"MODEL.EFFECTIVE_RADIO must be in (0, 1], got {keep_ratio}")
            self.salient_block = salient_block % depth
            self.num_salient = math.ceil(keep_ratio * self.num_patches)

        self.patch_embed = patch_embed if patch_embed is not None else PatchEmbed(
            in_chans, embed_dim, self.stride, patch_size, bias=patch_bias)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_patches + 1, embed_dim))
        self.num_registers = int(num_registers)
        self.register_tokens = nn.Parameter(torch.zeros(1, num_registers, embed_dim)) if num_registers else None
        self.num_cameras = max(int(num_cameras), 0)
        self.num_views = max(int(num_views), 0)
        self.sie_coe = sie_coe
        sie_rows = max(self.num_cameras, 1) * max(self.num_views, 1) if self.num_cameras or self.num_views else 0
        self.sie_embed = nn.Parameter(torch.zeros(sie_rows, 1, embed_dim)) if sie_rows else None
        self.pos_drop = nn.Dropout(drop_rate)
        drop_path = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, qk_scale, drop_rate, attn_drop_rate, drop_path[i], norm_eps,
                  act_layer, init_values)
            for i in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The reference's initialisation (truncated normal 0.02 for linear layers and tokens)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        proj = self.patch_embed.proj
        nn.init.normal_(proj.weight, 0.0, math.sqrt(2.0 / (proj.kernel_size[0] * proj.kernel_size[1] * proj.out_channels)))
        for p in (self.cls_token, self.pos_embed, self.sie_embed, self.register_tokens):
            if p is not None:
                trunc_normal_(p, std=0.02)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_token"}

    # ------------------------------------------------------------------ input
    def check_input(self, x: torch.Tensor, cam_label, view_label) -> None:
        """Raise InputError when the batch does not fit the model (size, channels, SIE labels)."""
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise InputError(f"expected images [B, {self.in_chans}, H, W], got shape {tuple(x.shape)}")
        if tuple(x.shape[-2:]) != self.img_size:
            raise InputError(
                f"image size {x.shape[-2]}x{x.shape[-1]} does not match the model's "
                f"{self.img_size[0]}x{self.img_size[1]} (INPUT.SIZE_TRAIN / SIZE_TEST)"
            )
        for name, labels, count in (("cam_label", cam_label, self.num_cameras), ("view_label", view_label, self.num_views)):
            if not count:
                continue
            if labels is None:
                raise InputError(f"{name} is required: the model has a side-information embedding of {count} entries")
            labels = torch.as_tensor(labels)
            if labels.shape != (x.shape[0],):
                raise InputError(f"{name} must have shape [{x.shape[0]}], got {tuple(labels.shape)}")
            if labels.is_floating_point() or bool(((labels < 0) | (labels >= count)).any()):
                raise InputError(
                    f"{name} values must be integers in [0, {count - 1}] (the model was built for {count}); "
                    f"got {labels.tolist() if labels.numel() <= 16 else 'values out of range'}"
                )

    # ------------------------------------------------------------------ forward
    def side_information(self, cam_label, view_label, device) -> torch.Tensor:
        """The SIE rows of a batch, [B, 1, D] (call only when ``sie_embed`` exists)."""
        cam = torch.as_tensor(cam_label, device=device) if self.num_cameras else None
        view = torch.as_tensor(view_label, device=device) if self.num_views else None
        if cam is not None and view is not None:
            row = cam * self.num_views + view
        else:
            row = cam if cam is not None else view
        return self.sie_embed[row]

    def embed(self, x: torch.Tensor, cam_label=None, view_label=None) -> torch.Tensor:
        """Images [B, 3, H, W] -> tokens [B, 1 + R + P, D] (CLS, registers, patches) with position
        and SIE (TransReID: the SIE row is added to every token)."""
        self.check_input(x, cam_label, view_label)
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1) + self.pos_embed
        if self.sie_embed is not None:
            x = x + self.sie_coe * self.side_information(cam_label, view_label, x.device)
        return self.pos_drop(self.with_registers(x))

    def with_registers(self, x: torch.Tensor) -> torch.Tensor:
        """[CLS, patches] -> [CLS, registers, patches] (DINOv2: registers carry no position)."""
        if self.register_tokens is None:
            return x
        return torch.cat((x[:, :1], self.register_tokens.expand(x.shape[0], -1, -1), x[:, 1:]), dim=1)

    def without_registers(self, x: torch.Tensor) -> torch.Tensor:
        if self.register_tokens is None:
            return x
        return torch.cat((x[:, :1], x[:, 1 + self.num_registers:]), dim=1)

    def forward_features(
        self, x: torch.Tensor, cam_label=None, view_label=None, salient: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """All tokens after the final LayerNorm [B, 1 + P, D], and with ``salient`` the indices
        [B, T] of the T patches with the highest CLS attention in the salient block (descending)."""
        x = self.embed(x, cam_label, view_label)
        salient_idx = None
        if salient and self.salient_block is None:
            raise ValueError("this backbone was built without a salient block")
        for i, block in enumerate(self.blocks):
            if salient and i == self.salient_block:
                x, cls_attn = block.forward_with_cls_attention(x)
                if self.num_registers:
                    cls_attn = cls_attn[:, self.num_registers:]
                salient_idx = cls_attn.topk(self.num_salient, dim=1, largest=True, sorted=True).indices
            else:
                x = block(x)
        return self.without_registers(self.norm(x)), salient_idx

    def forward_cls(self, x: torch.Tensor, cam_label=None, view_label=None) -> torch.Tensor:
        """The normalised CLS token [B, D]; the last block computes the CLS output only."""
        x = self.embed(x, cam_label, view_label)
        for block in self.blocks[:-1]:
            x = block(x)
        return self.norm(self.blocks[-1].forward_cls_only(x)[:, 0])

    def forward(self, x: torch.Tensor, cam_label=None, view_label=None) -> torch.Tensor:
        return self.forward_features(x, cam_label, view_label)[0]

    # ------------------------------------------------------------------ the contract
    def part_block(self) -> tuple[Block, nn.Module]:
        """Fresh copies of the last block and of the final norm (MBF's part branch starts from them)."""
        return self.blocks[-1].fresh_copy(), copy.deepcopy(self.norm)

    def checkpoint_filter(self, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The family's weight adapter: pretraining state dict -> this module's keys (timm/jx ViT
        and DeiT: :func:`~mbf.modeling.converters.imagenet_to_backbone`)."""
        return imagenet_to_backbone(state, self)

    def load_pretrained(self, source) -> None:
        """Read the family's pretraining weights (a path or a state dict) through
        :meth:`checkpoint_filter` and load them strictly; only the camera table may be absent."""
        name = str(source) if not isinstance(source, Mapping) else f"{self.weights_name} state dict"
        state = read_pretrained(source, f"{self.weights_name} weights")
        check_weight_format(state, self.accepts, name, self.family)
        try:
            state = self.checkpoint_filter(state)
        except CheckpointError as exc:
            raise CheckpointError(f"{name}: {exc}") from None
        load_strict(self, state, name, allow_missing=("sie_embed",))


# ------------------------------------------------------------------ the formats this family reads
def _is_timm_vit(state: Mapping[str, torch.Tensor]) -> bool:
    return all(k in state for k in ("cls_token", "pos_embed", "patch_embed.proj.weight")) and any(
        k.startswith("blocks.0.attn.qkv.") for k in state)


def _suggest_vit(state: Mapping[str, torch.Tensor]) -> str:
    width = width_of(state, "cls_token")
    keys = {768: "'vit_base_patch16_224_MBF' (ViT-B/16)",
            384: "'deit_small_patch16_224_TransReID' (DeiT-S, ImageNet) or 'vit_small_patch16_luperson' (LUPerson)"}
    return f"set MODEL.TRANSFORMER_TYPE {keys.get(width, keys[768] + ' or ' + keys[384])}"


register_weight_format(WeightFormat(
    "vit", "timm / jx ViT (ImageNet ViT or DeiT, or LUPerson's plain ViT)", _is_timm_vit, _suggest_vit,
    generic=True))
