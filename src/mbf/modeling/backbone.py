"""The backbone contract: what an architecture may ask of a backbone, written as code.

A backbone is an ``nn.Module`` with the attributes every backbone has (:data:`BASE_ATTRIBUTES`)
and a set of named *capabilities* (:data:`CAPABILITIES`) it declares in ``capabilities``. An
:class:`~mbf.modeling.registry.Architecture` lists the capabilities it needs (``needs``); the
build layer (:func:`require_capabilities`) checks a built backbone against them and raises one
:class:`~mbf.errors.ConfigError` that names ``MODEL.TRANSFORMER_TYPE``, the architecture and
every missing capability, before any forward pass. Nothing else is read from a backbone: an
architecture uses the names below and never the internals of a block.

Every backbone (:data:`BASE_ATTRIBUTES`)
    ``embed_dim`` (D), ``depth`` (blocks or stages, recorded in model cards), ``stride``
    ((sH, sW), recorded in model cards), ``num_cameras`` / ``num_views`` (rows of the camera /
    view embedding it was built with, 0 without), ``no_weight_decay() -> set[str]``, and
    ``pixel_mean`` / ``pixel_std`` (the input normalisation of its pretraining, or None when
    unknown; the build layer warns once when INPUT.PIXEL_MEAN / PIXEL_STD differ).

Capabilities
    ``patch_tokens``: ``forward_features(img, cam_label, view_label, salient=False) ->
    (tokens [B, 1 + P, D], None)``, the class token then the P patch tokens after the final
    norm (extra tokens such as registers are not returned), on the grid ``patch_grid`` (a
    :class:`mbf.geometry.PatchGrid`: patch size and stride per axis), with ``grid_size``
    (fH, fW), ``num_patches`` (P) and ``img_size`` (H, W).
    ``salient_patches``: ``forward_features(..., salient=True)`` also returns the indices
    [B, T] of the T patches with the highest class-token attention in the salient block (the
    builder's ``salient`` argument turns the selection on).
    ``part_block``: ``part_block() -> (block, norm)``, fresh copies of the last block
    ([B, N, D] -> [B, N, D]) and of the final norm, for MBF's part branch, and ``norm`` (the
    final norm, which MBF applies once more to the class token, as the reference does). A
    block that is an :class:`mbf.modeling.vit.Block` gets the batched part branch; any other
    block gets one plain pass per part.
    ``global_feature``: ``forward_cls(img, cam_label, view_label) -> [B, D]``.
    ``camera_embedding``: a camera / view table ``sie_embed`` [cameras x views, 1, D] when
    built with MODEL.SIE_CAMERA / SIE_VIEW (a checkpoint's camera count is read from it).
    ``pretrained_weights``: ``load_pretrained(source)`` reads the family's own weight files
    (a path or a state dict) through its own adapter, as timm families bring their
    ``checkpoint_filter_fn``; a file of another family is one CheckpointError naming the
    file, the family its keys look like and the MODEL.TRANSFORMER_TYPE to set.

:class:`ReIDBackbone` gives the base attributes' defaults; subclassing it is optional.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from torch import nn

from ..errors import ConfigError
from ..geometry import PatchGrid

log = logging.getLogger(__name__)

PATCH_TOKENS = "patch_tokens"
SALIENT_PATCHES = "salient_patches"
PART_BLOCK = "part_block"
GLOBAL_FEATURE = "global_feature"
CAMERA_EMBEDDING = "camera_embedding"
PRETRAINED_WEIGHTS = "pretrained_weights"

#: capability -> (what it promises, the attributes it needs)
CAPABILITIES: dict[str, tuple[str, tuple[str, ...]]] = {
    PATCH_TOKENS: ("forward_features() -> the class token and the patch tokens [B, 1 + P, D] on patch_grid",
                   ("forward_features", "patch_grid", "grid_size", "num_patches", "img_size")),
    SALIENT_PATCHES: ("forward_features(salient=True) -> the indices of the salient patches",
                      ("forward_features",)),
    PART_BLOCK: ("part_block() -> fresh copies of the last block and final norm, for MBF's part branch",
                 ("part_block", "norm")),
    GLOBAL_FEATURE: ("forward_cls() -> the global feature [B, D]", ("forward_cls",)),
    CAMERA_EMBEDDING: ("a camera / view embedding (MODEL.SIE_CAMERA, MODEL.SIE_VIEW)", ("sie_embed",)),
    PRETRAINED_WEIGHTS: ("load_pretrained(path) with the family's weight adapter (MODEL.PRETRAIN_CHOICE 'imagenet')",
                         ("load_pretrained",)),
}

BASE_ATTRIBUTES = ("embed_dim", "depth", "stride", "num_cameras", "num_views", "no_weight_decay")


class ReIDBackbone(nn.Module):
    """Defaults of the attributes every backbone has; a subclass sets ``capabilities`` to what it offers."""

    capabilities: frozenset[str] = frozenset()
    num_cameras: int = 0
    num_views: int = 0
    pixel_mean: tuple[float, float, float] | None = None
    pixel_std: tuple[float, float, float] | None = None

    def no_weight_decay(self) -> set[str]:
        return set()


def capabilities_of(backbone: nn.Module) -> frozenset[str]:
    """The capabilities ``backbone`` declares (its ``capabilities`` attribute; none without one)."""
    return frozenset(getattr(backbone, "capabilities", ()) or ())


def require_capabilities(backbone: nn.Module, needs: Iterable[str], type_name: str, arch_name: str = "") -> None:
    """Raise one ConfigError naming MODEL.TRANSFORMER_TYPE ``type_name`` and every capability of
    ``needs`` (or base attribute) that ``backbone`` lacks; a declared capability whose attributes
    are missing counts as lacking."""
    declared = capabilities_of(backbone)
    unknown = sorted(set(declared) - CAPABILITIES.keys())
    if unknown:
        raise ConfigError(f"MODEL.TRANSFORMER_TYPE {type_name!r} declares unknown capabilities {unknown}; "
                          f"the contract knows: {', '.join(CAPABILITIES)}")
    problems = [f"attribute {name!r} (every backbone has it)" for name in BASE_ATTRIBUTES if not hasattr(backbone, name)]
    for capability in needs:
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}; the contract knows: {', '.join(CAPABILITIES)}")
        what, attributes = CAPABILITIES[capability]
        absent = [a for a in attributes if getattr(backbone, a, None) is None]
        if capability not in declared:
            problems.append(f"{capability} ({what})")
        elif absent:
            problems.append(f"{capability} (declared, but {', '.join(absent)} missing)")
    if problems:
        who = f" under MODEL.NAME {arch_name!r}" if arch_name else ""
        raise ConfigError(f"MODEL.TRANSFORMER_TYPE {type_name!r} ({type(backbone).__name__}) cannot be used{who}: "
                          f"it lacks {'; '.join(problems)}")


def normalisation_differs(backbone: nn.Module, mean: Sequence[float], std: Sequence[float], tol: float = 1e-3) -> bool:
    """Whether ``mean`` / ``std`` differ from the backbone's pretraining normalisation (False when it is unknown)."""
    ref_mean, ref_std = getattr(backbone, "pixel_mean", None), getattr(backbone, "pixel_std", None)
    if ref_mean is None or ref_std is None:
        return False
    pairs = list(zip(list(mean) + list(std), list(ref_mean) + list(ref_std)))
    return len(pairs) != 6 or any(abs(float(a) - float(b)) > tol for a, b in pairs)


# ------------------------------------------------------------------ the patch grid of a token backbone
def check_patch_grid(size: tuple[int, int], stride: tuple[int, int], patch: int = 16) -> None:
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


@dataclass(frozen=True)
class BackboneSpec:
    """Architecture numbers of one ``MODEL.TRANSFORMER_TYPE``."""

    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    # The old timm ViT-S weights were trained with scale = embed_dim ** -0.5 instead of
    # head_dim ** -0.5; that model type keeps the quirk so its ImageNet weights stay valid.
    scale_by_embed_dim: bool = False

    def qk_scale(self) -> float:
        return (self.embed_dim if self.scale_by_embed_dim else self.embed_dim // self.num_heads) ** -0.5

    def resized(self, embed_dim: int = 0, depth: int = 0, num_heads: int = 0) -> BackboneSpec:
        """This spec with width, depth and heads overridden where the override is > 0
        (MODEL.VIT_EMBED_DIM, VIT_DEPTH, VIT_NUM_HEADS: tiny models for tests)."""
        spec = replace(self, embed_dim=embed_dim or self.embed_dim, depth=depth or self.depth,
                       num_heads=num_heads or self.num_heads)
        if spec.embed_dim % spec.num_heads:
            raise ConfigError(
                f"MODEL.VIT_NUM_HEADS ({spec.num_heads}) must divide the embedding width ({spec.embed_dim})")
        return spec


@dataclass(frozen=True)
class TokenSettings:
    """The constructor arguments every token backbone (ViT family) takes from the config.

    ``from_config`` checks the sizes once for all families: INPUT.SIZE_TEST must equal
    INPUT.SIZE_TRAIN (the position embedding is learned for one grid) and the patch grid of
    MODEL.STRIDE_SIZE must cover the image (:func:`check_patch_grid`, with the family's patch).
    """

    img_size: tuple[int, int]
    stride: tuple[int, int]
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.0
    num_cameras: int = 0
    num_views: int = 0
    sie_coe: float = 3.0
    salient_block: int | None = -2
    keep_ratio: float = 0.4

    @classmethod
    def from_config(cls, cfg, camera_num: int, view_num: int, salient: bool = True,
                    patch_size: int = 16) -> TokenSettings:
        m = cfg.MODEL
        size_train, size_test = tuple(cfg.INPUT.SIZE_TRAIN), tuple(cfg.INPUT.SIZE_TEST)
        if size_train != size_test:
            raise ConfigError(
                f"INPUT.SIZE_TEST {list(size_test)} must equal INPUT.SIZE_TRAIN {list(size_train)}: "
                "the position embedding is learned for one patch grid"
            )
        stride = tuple(m.STRIDE_SIZE)
        if len(stride) != 2 or min(stride) < 1:
            raise ConfigError(f"MODEL.STRIDE_SIZE must be two positive integers, got {list(stride)}")
        check_patch_grid(size_train, stride, patch_size)
        return cls(
            img_size=size_train, stride=stride, drop_rate=m.DROP_OUT, attn_drop_rate=m.ATT_DROP_RATE,
            drop_path_rate=m.DROP_PATH, num_cameras=camera_num if m.SIE_CAMERA else 0,
            num_views=view_num if m.SIE_VIEW else 0, sie_coe=m.SIE_COE,
            salient_block=m.SALIENT_BLOCK if salient else None, keep_ratio=m.EFFECTIVE_RADIO,
        )

    def kwargs(self) -> dict:
        """As keyword arguments of :class:`~mbf.modeling.vit.VisionTransformerReID` and its families."""
        return dict(img_size=self.img_size, stride=self.stride, drop_rate=self.drop_rate,
                    attn_drop_rate=self.attn_drop_rate, drop_path_rate=self.drop_path_rate,
                    num_cameras=self.num_cameras, num_views=self.num_views, sie_coe=self.sie_coe,
                    salient_block=self.salient_block, keep_ratio=self.keep_ratio)
