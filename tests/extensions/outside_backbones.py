"""Two backbones registered from outside the package, neither a subclass of the built-in ViT:
a timm ``VisionTransformer`` behind the backbone contract (every capability MBF and the
baseline need) and a small CNN that offers a global feature only. Imported by the contract test
(tests/modeling/test_backbone_contract.py) and the plug-in test."""
from __future__ import annotations

import copy
import math

import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from mbf.geometry import PatchGrid
from mbf.modeling import BACKBONES, ReIDBackbone
from mbf.modeling.backbone import (
    CAMERA_EMBEDDING,
    GLOBAL_FEATURE,
    PART_BLOCK,
    PATCH_TOKENS,
    SALIENT_PATCHES,
    TokenSettings,
)

TIMM_VIT = "toy_timm_vit"
CNN = "toy_cnn"


class TimmViTBackbone(ReIDBackbone):
    """timm's VisionTransformer (16-pixel patches side by side) with a camera table and salient patches."""

    capabilities = frozenset({PATCH_TOKENS, SALIENT_PATCHES, PART_BLOCK, GLOBAL_FEATURE, CAMERA_EMBEDDING})

    def __init__(self, img_size, embed_dim=32, depth=2, num_heads=2, num_cameras=0, salient_block=None,
                 keep_ratio=0.4):
        super().__init__()
        self.vit = VisionTransformer(img_size=tuple(img_size), patch_size=16, embed_dim=embed_dim, depth=depth,
                                     num_heads=num_heads, num_classes=0, qkv_bias=True)
        self.img_size, self.embed_dim, self.depth, self.stride = tuple(img_size), embed_dim, depth, (16, 16)
        self.patch_grid = PatchGrid(self.img_size, self.stride, 16)
        self.grid_size, self.num_patches = self.patch_grid.size, self.patch_grid.num_patches
        self.num_cameras = num_cameras
        self.sie_embed = nn.Parameter(torch.randn(num_cameras, 1, embed_dim) * 0.02) if num_cameras else None
        self.norm = self.vit.norm
        self.salient_block = None if salient_block is None else salient_block % depth
        self.num_salient = math.ceil(keep_ratio * self.num_patches)

    def forward_features(self, x, cam_label=None, view_label=None, salient=False):
        x = self.vit._pos_embed(self.vit.patch_embed(x))
        if self.sie_embed is not None:
            x = x + self.sie_embed[cam_label]
        salient_idx = None
        for i, block in enumerate(self.vit.blocks):
            if salient and i == self.salient_block:
                attn, h = block.attn, block.norm1(x)
                q, k, _ = attn.qkv(h).unflatten(-1, (3, attn.num_heads, -1)).permute(2, 0, 3, 1, 4)
                probs = (q @ k.transpose(-2, -1) * attn.scale).softmax(-1)
                salient_idx = probs[:, :, 0, 1:].mean(1).topk(self.num_salient, dim=1).indices
            x = block(x)
        return self.vit.norm(x), salient_idx

    def forward_cls(self, x, cam_label=None, view_label=None):
        return self.forward_features(x, cam_label, view_label)[0][:, 0]

    def part_block(self):
        return copy.deepcopy(self.vit.blocks[-1]), copy.deepcopy(self.vit.norm)

    def no_weight_decay(self):
        return {"vit.pos_embed", "vit.cls_token"}


class TinyCNN(ReIDBackbone):
    """Two strided convolutions and global average pooling: a global feature, no tokens."""

    capabilities = frozenset({GLOBAL_FEATURE})

    def __init__(self, embed_dim=32):
        super().__init__()
        self.embed_dim, self.depth, self.stride = embed_dim, 2, (4, 4)
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, embed_dim, 3, stride=2, padding=1), nn.BatchNorm2d(embed_dim), nn.ReLU())

    def forward_cls(self, x, cam_label=None, view_label=None):
        return self.body(x).mean(dim=(2, 3))


@BACKBONES.register(TIMM_VIT)
def build_timm_vit(cfg, camera_num: int, view_num: int, salient: bool = True) -> TimmViTBackbone:
    settings = TokenSettings.from_config(cfg, camera_num, view_num, salient, patch_size=16)
    m = cfg.MODEL
    return TimmViTBackbone(settings.img_size, m.VIT_EMBED_DIM or 32, m.VIT_DEPTH or 2, m.VIT_NUM_HEADS or 2,
                           settings.num_cameras, settings.salient_block, settings.keep_ratio)


@BACKBONES.register(CNN)
def build_cnn(cfg, camera_num: int, view_num: int, salient: bool = True) -> TinyCNN:
    return TinyCNN(cfg.MODEL.VIT_EMBED_DIM or 32)
