"""Weight formats: reading files, one explicit converter per source, and a strict loader.

Sources:
- ImageNet ViT/DeiT checkpoints with timm/jx key names (``jx_vit_base_p16_224-80ecf9dd.pth``,
  DeiT's ``{"model": ...}`` files): :func:`imagenet_to_backbone`.
- State dicts saved by the reference MBF / TransReID ``train.py``: :func:`reference_mbf_to_ours`,
  :func:`reference_transreid_to_ours` (the reference also stores unused copies of blocks;
  those keys are listed here and dropped on purpose).
- Our own ``state_dict()``: loaded as is.
"""
from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from timm.layers import resample_abs_pos_embed
from torch import nn

from ..errors import CheckpointError
from ..state_dicts import fit_problems, load_torch_file

log = logging.getLogger(__name__)

_LIST_LIMIT = 12


def _names(keys) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:_LIST_LIMIT])
    return shown + (f" ... and {len(keys) - _LIST_LIMIT} more" if len(keys) > _LIST_LIMIT else "")


def read_state_dict(source, what: str = "weights") -> dict[str, torch.Tensor]:
    """A state dict from a path or a mapping: unwraps ``model``/``state_dict`` containers and
    strips DistributedDataParallel ``module.`` prefixes. Raises CheckpointError naming the file."""
    name = "the given state dict"
    if isinstance(source, (str, Path)):
        if not str(source):
            raise CheckpointError(f"no {what} file given (empty path)")
        name = str(source)
        source = load_torch_file(source, f"{what} file")
    if not isinstance(source, Mapping):
        raise CheckpointError(f"{what} in {name} is a {type(source).__name__}, expected a state dict")
    for container in ("model", "state_dict"):
        if isinstance(source.get(container), Mapping):
            source = source[container]
            break
    state = {}
    for key, value in source.items():
        if not torch.is_tensor(value):
            raise CheckpointError(f"{what} in {name}: entry {key!r} is a {type(value).__name__}, not a tensor")
        while key.startswith("module."):
            key = key[len("module."):]
        state[key] = value
    if not state:
        raise CheckpointError(f"{what} in {name} holds no tensors")
    return state


def load_strict(module: nn.Module, state: Mapping[str, torch.Tensor], source: str, allow_missing=()) -> None:
    """Copy ``state`` into ``module``; any missing (other than ``allow_missing``), unexpected or
    shape-mismatched key raises CheckpointError naming the keys and shapes."""
    problems = fit_problems(module.state_dict(), state,
                            lambda k: k in allow_missing or k.endswith("num_batches_tracked"), _LIST_LIMIT)
    if problems:
        raise CheckpointError(
            f"{source} does not fit {type(module).__name__} (another architecture or config?): " + " | ".join(problems)
        )
    result = module.load_state_dict(dict(state), strict=False)
    log.debug("loaded %d tensors from %s (left as initialised: %s)", len(state), source, result.missing_keys)


# ----------------------------------------------------------------------------- reference -> ours
# Ordered rules (regex on the reference key, replacement or None to drop); the first match wins.
_DROP = None
_REFERENCE_MBF_RULES: list[tuple[str, str | None]] = [
    (r"^base\.fc\.", _DROP),  # unused 1000-way ImageNet head of the reference backbone
    (r"^base\.", "backbone."),
    (r"^gpart_block\.block_layer\.", "separator.part_block."),
    (r"^gpart_block\.norm_layer\.", "separator.part_norm."),
    (r"^local_block\.", _DROP),  # the same tensors as gpart_block.block_layer (aliases)
    (r"^local_norm\.", _DROP),  # the same tensors as gpart_block.norm_layer
    (r"^last_block\.", _DROP),  # unused copy of the last block
    (r"^last_norm\.", _DROP),  # unused copy of the final norm
    (r"^transformerdecoderlayer\.", _DROP),  # template the decoder layers were cloned from
    (r"^decoder_norm\.", _DROP),  # the same tensors as transformerdecoder.norm
    (r"^transformerdecoder\.norm\.", "decoder.norm."),
    (r"^transformerdecoder\.layers\.(\d+)\.multihead_attn\.", r"decoder.layers.\1.cross_attn."),
    (r"^transformerdecoder\.layers\.(\d+)\.linear1\.", r"decoder.layers.\1.fc1."),
    (r"^transformerdecoder\.layers\.(\d+)\.linear2\.", r"decoder.layers.\1.fc2."),
    (r"^transformerdecoder\.layers\.(\d+)\.norm2\.", r"decoder.layers.\1.norm1."),
    (r"^transformerdecoder\.layers\.(\d+)\.norm3\.", r"decoder.layers.\1.norm2."),
    (r"^query_embed$", "decoder.query_embed"),
    (r"^query_trasform\.conv1d\.", "decoder.to_patches."),
    (r"^patch_classifier\.bn\.", "separator.patch_classifier.bn."),
    (r"^patch_classifier\.classifier\.", "separator.patch_classifier.conv."),
    (r"^bottleneck\.", "neck.bn."),
    (r"^classifier\.", "neck.classifier."),
    (r"^bottleneck_(\d+)_decoder\.", lambda m: f"recovered_necks.{int(m.group(1)) - 1}.bn."),
    (r"^classifier_(\d+)_decoder\.", lambda m: f"recovered_necks.{int(m.group(1)) - 1}.classifier."),
    (r"^bottleneck_(\d+)\.", lambda m: f"part_necks.{int(m.group(1)) - 1}.bn."),
    (r"^classifier_(\d+)\.", lambda m: f"part_necks.{int(m.group(1)) - 1}.classifier."),
]

_REFERENCE_TRANSREID_RULES: list[tuple[str, str | None]] = [
    (r"^base\.fc\.", _DROP),
    (r"^base\.", "backbone."),
    (r"^bottleneck\.", "neck.bn."),
    (r"^classifier\.", "neck.classifier."),
]

# (alias prefix, kept prefix): the reference registers these modules twice; both copies must agree.
_REFERENCE_ALIASES = [("local_block.", "gpart_block.block_layer."), ("local_norm.", "gpart_block.norm_layer."),
                      ("decoder_norm.", "transformerdecoder.norm.")]


def _apply_rules(state: Mapping[str, torch.Tensor], rules) -> dict[str, torch.Tensor]:
    compiled = [(re.compile(pattern), repl) for pattern, repl in rules]
    out, dropped = {}, []
    for key, value in state.items():
        for pattern, repl in compiled:
            match = pattern.match(key)
            if match:
                if repl is _DROP:
                    dropped.append(key)
                    key = None
                else:
                    key = pattern.sub(repl, key, count=1)
                break
        if key is not None:
            out[key] = value  # keys no rule knows stay as they are and are reported by load_strict
    log.debug("reference checkpoint: dropped %d unused or aliased keys", len(dropped))
    return out


def is_reference_format(state: Mapping[str, torch.Tensor]) -> bool:
    """Reference checkpoints keep the backbone under ``base.``; ours under ``backbone.``."""
    return any(k.startswith("base.") for k in state)


def reference_mbf_to_ours(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Convert a state dict of the reference MBF model (``build_transformer_local``)."""
    for alias, kept in _REFERENCE_ALIASES:
        for key, value in state.items():
            if key.startswith(alias):
                twin = kept + key[len(alias):]
                if twin in state and not torch.equal(state[twin], value):
                    raise CheckpointError(f"reference checkpoint: {key} and {twin} should be the same tensor but differ")
    return _apply_rules(state, _REFERENCE_MBF_RULES)


def reference_transreid_to_ours(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Convert a state dict of the reference global-feature TransReID model (``build_transformer``)."""
    return _apply_rules(state, _REFERENCE_TRANSREID_RULES)


# ----------------------------------------------------------------------------- ImageNet -> backbone
_IMAGENET_SKIP = ("head", "head_dist", "dist_token", "pre_logits")


def imagenet_to_backbone(state: Mapping[str, torch.Tensor], backbone: nn.Module) -> dict[str, torch.Tensor]:
    """Adapt a timm/jx ViT or DeiT ImageNet state dict to ``backbone`` (VisionTransformerReID).

    Classifier heads and distillation tokens are skipped; a linear patch projection of old
    checkpoints is reshaped to a convolution; the square grid of position embeddings is resized
    to the backbone's (fH, fW) grid with bilinear interpolation (align_corners False).
    """
    prefix_tokens = 2 if "dist_token" in state else 1
    out = {}
    for key, value in state.items():
        if key.split(".")[0] in _IMAGENET_SKIP:
            continue
        if key == "patch_embed.proj.weight" and value.ndim < 4:
            value = value.reshape(backbone.patch_embed.proj.weight.shape[0], -1, *backbone.patch_embed.proj.kernel_size)
        elif key == "pos_embed":
            value = _resize_pos_embed(value, prefix_tokens, backbone.grid_size)
        out[key] = value
    return out


def _resize_pos_embed(posemb: torch.Tensor, prefix_tokens: int, grid: tuple[int, int]) -> torch.Tensor:
    if posemb.ndim != 3:
        raise CheckpointError(f"pos_embed has shape {tuple(posemb.shape)}, expected [1, N, D]")
    cls_pos = posemb[:, :1]  # a distilled model's second prefix token has no counterpart here
    grid_pos = posemb[:, prefix_tokens:]
    side = math.isqrt(grid_pos.shape[1])
    if side * side != grid_pos.shape[1]:
        raise CheckpointError(f"pos_embed grid of {grid_pos.shape[1]} positions is not square")
    if (side, side) != tuple(grid):
        grid_pos = resample_abs_pos_embed(
            grid_pos, new_size=list(grid), old_size=[side, side], num_prefix_tokens=0,
            interpolation="bilinear", antialias=False,
        )
        log.info("resized position embedding from %dx%d to %dx%d", side, side, *grid)
    return torch.cat((cls_pos, grid_pos), dim=1)
