"""A backbone, an online mask source and a loss term registered from this file alone (no edit
of src/), each training a few steps of a tiny run: the three extension points of
docs/ARCHITECTURE.md. The backbones include ones that are not the built-in ViT
(``outside_backbones``: a timm ViT behind the backbone contract, and a CNN)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mbf.engine.build import build_trainer
from mbf.errors import ConfigError
from mbf.losses import LOSS_TERMS
from mbf.modeling import BACKBONES, VisionTransformerReID
from mbf.parsing import MASK_SOURCES, PartLabels
from mbf.parts import BACKGROUND, UPPER

from .outside_backbones import CNN, TIMM_VIT, TimmViTBackbone


# ------------------------------------------------------------------ a backbone family
class ColourMixViT(VisionTransformerReID):
    """A ViT whose patch embedding sees the image after a learned 1x1 colour mixing."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.colour = nn.Conv2d(3, 3, kernel_size=1)

    def embed(self, x, cam_label=None, view_label=None):
        return super().embed(self.colour(x), cam_label, view_label)


@BACKBONES.register("toy_colour_mix_vit")
def build_colour_mix_vit(cfg, camera_num: int, view_num: int, salient: bool = True) -> ColourMixViT:
    m = cfg.MODEL
    return ColourMixViT(
        img_size=tuple(cfg.INPUT.SIZE_TRAIN), stride=tuple(m.STRIDE_SIZE), embed_dim=m.VIT_EMBED_DIM,
        depth=m.VIT_DEPTH, num_heads=m.VIT_NUM_HEADS, num_cameras=camera_num if m.SIE_CAMERA else 0,
        salient_block=m.SALIENT_BLOCK if salient else None, keep_ratio=m.EFFECTIVE_RADIO,
    )


def test_a_backbone_registered_outside_the_package_trains(tiny_cfg):
    trainer = build_trainer(tiny_cfg(extra=["MODEL.TRANSFORMER_TYPE", "toy_colour_mix_vit"], output="backbone"))
    backbone = trainer.model.backbone
    assert isinstance(backbone, ColourMixViT)
    before = backbone.colour.weight.detach().clone()
    record = trainer.train_epoch(1)
    assert math.isfinite(record["loss"])
    assert not torch.equal(before, backbone.colour.weight)  # the new part learned


def test_a_backbone_that_is_not_the_builtin_vit_trains_mbf_through_the_trainer(tiny_cfg):
    trainer = build_trainer(tiny_cfg(extra=["MODEL.TRANSFORMER_TYPE", TIMM_VIT], output="timm_vit"))
    backbone = trainer.model.backbone
    assert isinstance(backbone, TimmViTBackbone) and not isinstance(backbone, VisionTransformerReID)
    before = backbone.vit.blocks[0].attn.qkv.weight.detach().clone()
    record = trainer.train_epoch(1)
    assert math.isfinite(record["loss"])
    assert not torch.equal(before, backbone.vit.blocks[0].attn.qkv.weight)


def test_a_cnn_registered_outside_is_one_config_error_under_mbf_naming_what_it_lacks(tiny_cfg):
    with pytest.raises(ConfigError, match=f"MODEL.TRANSFORMER_TYPE '{CNN}'.*patch_tokens.*salient_patches.*part_block"):
        build_trainer(tiny_cfg(extra=["MODEL.TRANSFORMER_TYPE", CNN, "MODEL.SIE_CAMERA", "False"], output="cnn"))


# ------------------------------------------------------------------ an online mask source
class BrightnessParser(nn.Module):
    """Pixels brighter than their image's mean are 'upper body', the rest background."""

    calls = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        BrightnessParser.calls += 1
        grey = images.mean(dim=1)
        bright = grey > grey.flatten(1).mean(dim=1)[:, None, None]
        return torch.where(bright, UPPER, BACKGROUND).long()


@MASK_SOURCES.register("toy_brightness")
def build_brightness(cfg) -> PartLabels:
    return PartLabels(make_parser=BrightnessParser)


def test_an_online_mask_source_registered_outside_the_package_teaches_the_step(tiny_cfg):
    trainer = build_trainer(tiny_cfg(extra=["HUMAN_PARSING.SOURCE", "toy_brightness"], output="source"))
    assert "mask" not in next(iter(trainer.loader))  # labels come from the parser, per batch
    BrightnessParser.calls = 0
    record = trainer.train_epoch(1)
    assert BrightnessParser.calls == len(trainer.loader)
    assert math.isfinite(record["loss"]) and record["seg_holistic"] > 0


# ------------------------------------------------------------------ a loss term
@LOSS_TERMS.register("toy_feat_l2")
def build_feat_l2(cfg, num_classes: int):
    return lambda inputs: inputs.holistic.feats[0].float().pow(2).mean()


def test_a_loss_term_registered_outside_the_package_joins_the_criterion_with_its_weight(tiny_cfg):
    cfg = tiny_cfg(output="term")
    terms = [*cfg.MODEL.LOSS_TERMS, "toy_feat_l2"]
    cfg = tiny_cfg(extra=["MODEL.LOSS_TERMS", str(terms), "MODEL.LOSS_WEIGHTS.TOY_FEAT_L2", "0.5"], output="term")
    trainer = build_trainer(cfg)
    batch = trainer._to_device(next(iter(trainer.loader)))
    for hook in trainer.hooks:
        hook.before_epoch(trainer, 1)
    out = trainer.step.train()(batch, trainer.generator)
    assert "toy_feat_l2" in out.terms
    others = sum(v for k, v in out.terms.items() if k != "toy_feat_l2")
    assert torch.allclose(out.loss, others + 0.5 * out.terms["toy_feat_l2"])
    record = trainer.train_epoch(1)
    assert record["toy_feat_l2"] > 0
