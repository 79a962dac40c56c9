"""Config -> model and training step. The only place in mbf.modeling that reads the yacs config
besides the families' own ``build_*`` functions: it registers the ImageNet ViT backbones and the
two architectures (MBF, the global baseline), translates config keys into their constructor
arguments, and checks a built backbone against what its architecture needs (the contract of
:mod:`mbf.modeling.backbone`).
"""
from __future__ import annotations

import logging

from torch import nn

from ..errors import CheckpointError, ConfigError
from ..parts import NUM_PARTS
from .backbone import (
    CAMERA_EMBEDDING,
    GLOBAL_FEATURE,
    PART_BLOCK,
    PATCH_TOKENS,
    PRETRAINED_WEIGHTS,
    SALIENT_PATCHES,
    TokenSettings,
    check_patch_grid,  # noqa: F401 (moved to backbone.py; importable from here as before)
    normalisation_differs,
    require_capabilities,
)
from .baseline import TransReIDBaseline
from .converters import (
    is_reference_format,
    read_state_dict,
    reference_mbf_to_ours,
    reference_transreid_to_ours,
)
from .mbf import MBF
from .registry import ARCHITECTURES, BACKBONES, Architecture
from .steps import GlobalStep, MBFStep
from .vit import PATCH_SIZE, VIT_SPECS, VisionTransformerReID, backbone_spec

log = logging.getLogger(__name__)

PRETRAIN_CHOICES = ("imagenet", "self", "finetune", "none")


def build_vit(cfg, camera_num: int, view_num: int, salient: bool = True) -> VisionTransformerReID:
    """The ViT of MODEL.TRANSFORMER_TYPE (+ VIT_* overrides); ``salient`` adds the salient-patch
    selection at MODEL.SALIENT_BLOCK (MBF needs it, the global baseline does not)."""
    m = cfg.MODEL
    spec = backbone_spec(m.TRANSFORMER_TYPE, m.VIT_EMBED_DIM, m.VIT_DEPTH, m.VIT_NUM_HEADS)
    settings = TokenSettings.from_config(cfg, camera_num, view_num, salient, PATCH_SIZE)
    return VisionTransformerReID(
        embed_dim=spec.embed_dim,
        depth=spec.depth,
        num_heads=spec.num_heads,
        mlp_ratio=spec.mlp_ratio,
        qkv_bias=spec.qkv_bias,
        qk_scale=spec.qk_scale(),
        **settings.kwargs(),
    )


for _name in VIT_SPECS:
    BACKBONES.register(_name, build_vit)


def build_backbone(cfg, camera_num: int, view_num: int, salient: bool = True) -> nn.Module:
    """The backbone MODEL.TRANSFORMER_TYPE names, built by its registered builder."""
    return BACKBONES.get(cfg.MODEL.TRANSFORMER_TYPE)(cfg, camera_num, view_num, salient=salient)


def build_checked_backbone(cfg, arch: Architecture, camera_num: int, view_num: int, pretrained: bool) -> nn.Module:
    """The backbone of MODEL.TRANSFORMER_TYPE, checked against what MODEL.NAME needs (one
    ConfigError naming the type and every missing capability), against the side information
    asked for (MODEL.SIE_CAMERA / SIE_VIEW need ``camera_embedding``) and against
    MODEL.PRETRAIN_CHOICE 'imagenet' (``pretrained_weights``); one warning when INPUT.PIXEL_MEAN
    / PIXEL_STD differ from the backbone's pretraining normalisation."""
    m = cfg.MODEL
    backbone = build_backbone(cfg, camera_num, view_num, salient=arch.salient)
    needs = list(arch.needs)
    if m.SIE_CAMERA or m.SIE_VIEW:
        needs.append(CAMERA_EMBEDDING)
    if pretrained and m.PRETRAIN_CHOICE == "imagenet":
        needs.append(PRETRAINED_WEIGHTS)
    require_capabilities(backbone, needs, m.TRANSFORMER_TYPE, m.NAME)
    mean, std = list(cfg.INPUT.PIXEL_MEAN), list(cfg.INPUT.PIXEL_STD)
    if normalisation_differs(backbone, mean, std):
        log.warning("INPUT.PIXEL_MEAN %s / PIXEL_STD %s differ from the normalisation MODEL.TRANSFORMER_TYPE %r was "
                    "pretrained with (mean %s, std %s); its pretrained features expect the latter",
                    mean, std, m.TRANSFORMER_TYPE, [round(v, 8) for v in backbone.pixel_mean],
                    [round(v, 8) for v in backbone.pixel_std])
    return backbone


# ------------------------------------------------------------------ the architectures
def _build_mbf(cfg, backbone: nn.Module, num_classes: int) -> MBF:
    m = cfg.MODEL
    if m.NUM_DECODER_LAYER < 1 or m.QUERY_NUM < 1:
        raise ConfigError("MODEL.NUM_DECODER_LAYER and MODEL.QUERY_NUM must be >= 1")
    if backbone.embed_dim % m.NUM_HEAD:
        raise ConfigError(f"MODEL.NUM_HEAD ({m.NUM_HEAD}) must divide the embedding width ({backbone.embed_dim})")
    return MBF(
        backbone,
        num_classes,
        num_parts=NUM_PARTS,
        recovery=m.RECOVERY,
        num_queries=m.QUERY_NUM,
        decoder_layers=m.NUM_DECODER_LAYER,
        decoder_heads=m.NUM_HEAD,
        decoder_ffn_dim=m.DECODER_FFN_DIM,
        decoder_dropout=m.DECODER_DROP_RATE,
        neck_feat=cfg.TEST.NECK_FEAT,
    )


def _mbf_step(cfg, model: nn.Module, criterion, parser: nn.Module | None) -> MBFStep:
    return MBFStep(model, criterion, parser, erase_prob=cfg.INPUT.RE_PROB, beta=cfg.MODEL.BETA,
                   erase_attempts=cfg.INPUT.RE_MAX_ATTEMPTS)


def _build_baseline(cfg, backbone: nn.Module, num_classes: int) -> TransReIDBaseline:
    return TransReIDBaseline(backbone, num_classes, neck_feat=cfg.TEST.NECK_FEAT)


def _baseline_step(cfg, model: nn.Module, criterion, parser: nn.Module | None) -> GlobalStep:
    return GlobalStep(model, criterion, cfg.INPUT.RE_PROB, cfg.INPUT.RE_MAX_ATTEMPTS)


ARCHITECTURES.register("transformer", Architecture(
    build=_build_mbf, step=_mbf_step, from_reference=reference_mbf_to_ours, part_labels=True, salient=True,
    needs=(PATCH_TOKENS, SALIENT_PATCHES, PART_BLOCK)))
ARCHITECTURES.register("transreid", Architecture(
    build=_build_baseline, step=_baseline_step, from_reference=reference_transreid_to_ours, needs=(GLOBAL_FEATURE,)))


def architecture(cfg) -> Architecture:
    """The entry MODEL.NAME names."""
    return ARCHITECTURES.get(cfg.MODEL.NAME)


def build_step(cfg, model: nn.Module, criterion, parser: nn.Module | None = None) -> nn.Module:
    """The training step of MODEL.NAME around ``model`` and ``criterion``."""
    return architecture(cfg).step(cfg, model, criterion, parser)


def build_model(cfg, num_classes: int, camera_num: int, view_num: int, pretrained: bool = True) -> nn.Module:
    """The network of MODEL.NAME ('transformer': :class:`MBF`, 'transreid': the global baseline)
    on the backbone of MODEL.TRANSFORMER_TYPE.

    With ``pretrained`` (default) MODEL.PRETRAIN_CHOICE is applied: 'imagenet' loads
    MODEL.PRETRAIN_PATH into the backbone, 'self'/'finetune' loads a whole model, 'none'
    keeps the random initialisation. Pass ``pretrained=False`` when a whole model is loaded
    right after (testing), so that no ImageNet file is needed.
    """
    m = cfg.MODEL
    arch = architecture(cfg)
    if m.ID_LOSS_TYPE != "softmax":
        raise ConfigError(f"MODEL.ID_LOSS_TYPE {m.ID_LOSS_TYPE!r} is not supported (only 'softmax')")
    if cfg.TEST.NECK_FEAT not in ("after", "before"):
        raise ConfigError(f"TEST.NECK_FEAT must be 'after' or 'before', got {cfg.TEST.NECK_FEAT!r}")
    choice = m.PRETRAIN_CHOICE
    if choice not in PRETRAIN_CHOICES:
        raise ConfigError(f"MODEL.PRETRAIN_CHOICE {choice!r} is not one of: {', '.join(PRETRAIN_CHOICES)}")
    if num_classes < 1:
        raise ConfigError(f"the model needs at least one training identity, got num_classes={num_classes}")

    backbone = build_checked_backbone(cfg, arch, camera_num, view_num, pretrained)
    model = arch.build(cfg, backbone, num_classes)
    grid = getattr(backbone, "grid_size", None)
    log.info(
        "built %s: %s, width %d, depth %d, %s (stride %s), %d identities",
        type(model).__name__, m.TRANSFORMER_TYPE, backbone.embed_dim, backbone.depth,
        f"grid {grid[0]}x{grid[1]}" if grid else "no patch grid", list(backbone.stride), num_classes,
    )
    if pretrained and choice == "imagenet":
        if not m.PRETRAIN_PATH:
            raise ConfigError("MODEL.PRETRAIN_CHOICE is 'imagenet' but MODEL.PRETRAIN_PATH is empty")
        model.load_imagenet(m.PRETRAIN_PATH)
        log.info("loaded the pretrained weights of %s from %s", m.TRANSFORMER_TYPE, m.PRETRAIN_PATH)
    elif pretrained and choice in ("self", "finetune"):
        if not m.PRETRAIN_PATH:
            raise ConfigError(f"MODEL.PRETRAIN_CHOICE is {choice!r} but MODEL.PRETRAIN_PATH is empty")
        model.load_param(m.PRETRAIN_PATH)
        log.info("loaded model weights from %s", m.PRETRAIN_PATH)
    return model


def build_model_from_checkpoint(cfg, weights, num_views: int | None = None) -> nn.Module:
    """The configured model sized for a trained checkpoint, with its weights loaded.

    The number of identities and cameras are read from the checkpoint's classifier and SIE
    table, so descriptors can be extracted without the training dataset at hand. With both
    MODEL.SIE_CAMERA and MODEL.SIE_VIEW the table has cameras x views rows: pass ``num_views``
    (every dataset read here has one view).
    """
    state = read_state_dict(weights, "model weights")
    if is_reference_format(state):
        state = architecture(cfg).from_reference(state)
    classifier = state.get("neck.classifier.weight")
    if classifier is None:
        raise CheckpointError(f"{weights}: no identity classifier (neck.classifier.weight); is it a model checkpoint?")
    sie = state.get("backbone.sie_embed")
    rows = int(sie.shape[0]) if sie is not None else 0
    if cfg.MODEL.SIE_CAMERA and cfg.MODEL.SIE_VIEW and rows:
        if not num_views or rows % num_views:
            raise ConfigError(f"{weights}: with both MODEL.SIE_CAMERA and MODEL.SIE_VIEW its {rows}-row camera x view "
                              f"table cannot be split without the number of views (got {num_views})")
        cameras, views = rows // num_views, num_views
    else:
        cameras = rows if cfg.MODEL.SIE_CAMERA else 1
        views = rows if cfg.MODEL.SIE_VIEW else 1
    model = build_model(cfg, int(classifier.shape[0]), max(cameras, 1), max(views, 1), pretrained=False)
    model.load_param(state)
    return model
