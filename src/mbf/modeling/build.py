"""Config -> model and training step. The only place in mbf.modeling that reads the yacs config:
it registers the ViT backbones and the two architectures (MBF, the global baseline) and
translates config keys into their constructor arguments.
"""
from __future__ import annotations

import logging

from torch import nn

from ..errors import CheckpointError, ConfigError
from ..parts import NUM_PARTS
from .baseline import TransReIDBaseline
from .converters import is_reference_format, read_state_dict, reference_mbf_to_ours, reference_transreid_to_ours
from .mbf import MBF
from .registry import ARCHITECTURES, BACKBONES, Architecture
from .steps import GlobalStep, MBFStep
from .vit import PATCH_SIZE, VIT_SPECS, PatchGrid, VisionTransformerReID, backbone_spec

log = logging.getLogger(__name__)

PRETRAIN_CHOICES = ("imagenet", "self", "finetune", "none")


def build_vit(cfg, camera_num: int, view_num: int, salient: bool = True) -> VisionTransformerReID:
    """The ViT of MODEL.TRANSFORMER_TYPE (+ VIT_* overrides); ``salient`` adds the salient-patch
    selection at MODEL.SALIENT_BLOCK (MBF needs it, the global baseline does not)."""
    m = cfg.MODEL
    spec = backbone_spec(m.TRANSFORMER_TYPE, m.VIT_EMBED_DIM, m.VIT_DEPTH, m.VIT_NUM_HEADS)
    size_train, size_test = tuple(cfg.INPUT.SIZE_TRAIN), tuple(cfg.INPUT.SIZE_TEST)
    if size_train != size_test:
        raise ConfigError(
            f"INPUT.SIZE_TEST {list(size_test)} must equal INPUT.SIZE_TRAIN {list(size_train)}: "
            "the position embedding is learned for one patch grid"
        )
    stride = tuple(m.STRIDE_SIZE)
    if len(stride) != 2 or min(stride) < 1:
        raise ConfigError(f"MODEL.STRIDE_SIZE must be two positive integers, got {list(stride)}")
    check_patch_grid(size_train, stride)
    return VisionTransformerReID(
        img_size=size_train,
        stride=stride,
        embed_dim=spec.embed_dim,
        depth=spec.depth,
        num_heads=spec.num_heads,
        mlp_ratio=spec.mlp_ratio,
        qkv_bias=spec.qkv_bias,
        qk_scale=spec.qk_scale(),
        drop_rate=m.DROP_OUT,
        attn_drop_rate=m.ATT_DROP_RATE,
        drop_path_rate=m.DROP_PATH,
        num_cameras=camera_num if m.SIE_CAMERA else 0,
        num_views=view_num if m.SIE_VIEW else 0,
        sie_coe=m.SIE_COE,
        salient_block=m.SALIENT_BLOCK if salient else None,
        keep_ratio=m.EFFECTIVE_RADIO,
    )


def check_patch_grid(size: tuple[int, int], stride: tuple[int, int], patch: int = PATCH_SIZE) -> None:
    """INPUT.SIZE_TRAIN must be covered by the patch grid of MODEL.STRIDE_SIZE.

    With patches side by side (stride = patch) the size must be a multiple of the patch, else
    its last rows or columns would be cut off silently. With overlapping patches the grid may
    leave fewer than ``stride`` pixels unread, as TransReID does (the paper's stride-12 model at
    256 x 128 reads 124 of 128 columns): that is logged, not refused.
    """
    if max(stride) > patch:
        raise ConfigError(f"MODEL.STRIDE_SIZE {list(stride)} is larger than the {patch}-pixel patch: the pixels "
                          f"between patches would never be read; use a stride of at most {patch}")
    grid = PatchGrid(tuple(size), tuple(stride), patch)
    unread = grid.unread
    cut = [axis for axis in (0, 1) if unread[axis] and stride[axis] == patch]
    if cut:
        fitting = [[size[a] - unread[a], size[a] - unread[a] + stride[a]] if a in cut else [size[a]] * 2
                   for a in (0, 1)]
        raise ConfigError(
            f"INPUT.SIZE_TRAIN {list(size)} is not covered by {patch}-pixel patches at MODEL.STRIDE_SIZE "
            f"{list(stride)}: the last {unread[0]} rows and {unread[1]} columns would never be read; use "
            f"[{fitting[0][0]}, {fitting[1][0]}] or [{fitting[0][1]}, {fitting[1][1]}]")
    if any(unread):
        log.info("patch grid %d x %d: the last %d rows and %d columns of each %d x %d image are not read "
                 "(overlapping patches at stride %s, as in TransReID)", *grid.size, *unread, *size, list(stride))


for _name in VIT_SPECS:
    BACKBONES.register(_name, build_vit)


def build_backbone(cfg, camera_num: int, view_num: int, salient: bool = True) -> nn.Module:
    """The backbone MODEL.TRANSFORMER_TYPE names, built by its registered builder."""
    return BACKBONES.get(cfg.MODEL.TRANSFORMER_TYPE)(cfg, camera_num, view_num, salient=salient)


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
    build=_build_mbf, step=_mbf_step, from_reference=reference_mbf_to_ours, part_labels=True, salient=True))
ARCHITECTURES.register("transreid", Architecture(
    build=_build_baseline, step=_baseline_step, from_reference=reference_transreid_to_ours))


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

    backbone = build_backbone(cfg, camera_num, view_num, salient=arch.salient)
    model = arch.build(cfg, backbone, num_classes)
    log.info(
        "built %s: %s, width %d, depth %d, grid %dx%d (stride %s), %d identities",
        type(model).__name__, m.TRANSFORMER_TYPE, backbone.embed_dim, backbone.depth, *backbone.grid_size,
        list(backbone.stride), num_classes,
    )
    if pretrained and choice == "imagenet":
        if not m.PRETRAIN_PATH:
            raise ConfigError("MODEL.PRETRAIN_CHOICE is 'imagenet' but MODEL.PRETRAIN_PATH is empty")
        model.load_imagenet(m.PRETRAIN_PATH)
        log.info("loaded ImageNet weights from %s", m.PRETRAIN_PATH)
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
